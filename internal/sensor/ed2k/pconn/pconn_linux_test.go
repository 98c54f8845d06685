//go:build linux

package pconn

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A packet that has arrived is read whatever the wait for one to begin:
// a goroutine held up past that wait before its read (a loaded machine)
// found the deadline passed and read nothing, and a drain took the
// connection for quiet with a late answer waiting in it. A wait of 1 ns
// has always passed by the read.
func TestArrivedPacketIsReadAfterItsWaitPassed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.91.132.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.Write(wire.Append(nil, wire.ProtoEDonkey, wire.OpServerMessage, []byte{0, 0})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // arrived
	c := New(nc, nil, wire.DefaultLimits())
	p, _, err := c.NextWithin(context.Background(), time.Nanosecond, time.Second)
	if err != nil || p.Opcode != wire.OpServerMessage {
		t.Fatalf("read %v, %v; want the packet that arrived", p.Opcode, err)
	}
	// Nothing more has arrived: the short wait ends, the stream in step.
	if _, _, err := c.NextWithin(context.Background(), time.Millisecond, time.Second); err == nil || c.Broken() {
		t.Fatalf("read %v, broken %v; want a timeout, in step", err, c.Broken())
	}
}
