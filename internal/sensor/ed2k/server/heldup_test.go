//go:build linux

package server

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
	"golang.org/x/sys/unix"
)

// heldUpConn is the sensor's end of a server connection whose reader is
// held up once, as a loaded machine holds up a goroutine: when armed, the
// first read under a short deadline (a drain waiting for a packet to
// begin) tells the server to send (sendNow), waits until that packet
// has arrived and the deadline has passed, and only then reads. It
// embeds the *net.TCPConn, so the kernel can still be asked what waits
// (SyscallConn).
type heldUpConn struct {
	*net.TCPConn
	armed, armedWrite atomic.Bool
	sendNow           chan struct{}
	mu                sync.Mutex
	rd                time.Time
}

// waitArrived returns once the kernel holds bytes of the server's (or
// after 10 s).
func (c *heldUpConn) waitArrived() {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		n := 0
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if n > 0 {
			return
		}
	}
}

func (c *heldUpConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rd = t
	c.mu.Unlock()
	return c.TCPConn.SetReadDeadline(t)
}

// SetWriteDeadline holds up the writer, when armedWrite, once: the
// last step before a request's write, after the drain ended.
func (c *heldUpConn) SetWriteDeadline(t time.Time) error {
	if c.armedWrite.CompareAndSwap(true, false) {
		c.sendNow <- struct{}{}
		c.waitArrived() // the packet arrives before the request is written
	}
	return c.TCPConn.SetWriteDeadline(t)
}

func (c *heldUpConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	rd := c.rd
	c.mu.Unlock()
	if !rd.IsZero() && time.Until(rd) < 10*time.Millisecond && c.armed.CompareAndSwap(true, false) {
		c.sendNow <- struct{}{}
		c.waitArrived()                               // the packet arrives
		time.Sleep(time.Until(rd) + time.Millisecond) // the wait for one to begin passes
	}
	return c.TCPConn.Read(b)
}

// A server names a file's sources again, unasked, while the drain before
// the next request for it waits for a packet to begin; the packet
// arrives within that wait, but the drain's goroutine is held up past it
// before its read (a loaded machine). The read found the deadline passed
// and nothing read, and the drain took the connection for quiet, though
// the kernel held the packet: the request was sent and the packet, which
// came before it, was taken as its answer, with its time. A packet that
// has arrived by the end of the wait is read.
func TestAnswerArrivedWhileTheDrainWasHeldUpIsNotTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	h := [16]byte{0x5d, 0x7e, 4}
	conn := make(chan *heldUpConn, 1)
	dial := cfg.Dial
	cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		nc, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		hc := &heldUpConn{TCPConn: nc.(*net.TCPConn), sendNow: make(chan struct{}, 1)}
		conn <- hc
		return hc, nil
	}
	var asks atomic.Int32
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		if asks.Add(1) == 1 {
			hc := <-conn
			go func() {
				<-hc.sendNow
				labed2k.SendSources(ctx, pc, h, source("127.91.133.7"))
			}()
			hc.armed.Store(true) // the answer's reads wait longer: the next drain's is held up
			labed2k.SendSources(ctx, pc, h, source("127.91.133.9"))
		}
		return true // then knows no source: says nothing
	}}
	s := loginScripted(ctx, t, "127.91.133.1:0", cfg, srv)
	if f, err := s.Sources(ctx, h, 1000); err != nil || len(f.Sources) != 1 || f.Sources[0] != source("127.91.133.9")[0] {
		t.Fatalf("first request: %v %v; want its answer", f.Sources, err)
	}
	again, err := s.Sources(ctx, h, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Sources) != 0 || again.Late != 1 {
		t.Fatalf("second request: sources %v at %v, %d late; want the answer that came before it dropped (one late), none taken",
			again.Sources, again.At, again.Late)
	}
}

// The same, the sensor held up after the drain ended and before the
// request's write: the packet arrived before the request was sent, after
// the drain's last look, and was taken as the request's answer. The
// kernel is asked once more after the last step before the write.
func TestAnswerArrivedBeforeTheHeldUpWriteIsNotTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	h := [16]byte{0x5d, 0x7e, 6}
	conn := make(chan *heldUpConn, 1)
	dial := cfg.Dial
	cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		nc, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		hc := &heldUpConn{TCPConn: nc.(*net.TCPConn), sendNow: make(chan struct{}, 1)}
		conn <- hc
		return hc, nil
	}
	var asks atomic.Int32
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		if asks.Add(1) == 1 {
			hc := <-conn
			go func() {
				<-hc.sendNow
				labed2k.SendSources(ctx, pc, h, source("127.91.133.7"))
			}()
			hc.armedWrite.Store(true) // the next request's write is held up
			labed2k.SendSources(ctx, pc, h, source("127.91.133.9"))
		}
		return true // then knows no source: says nothing
	}}
	s := loginScripted(ctx, t, "127.91.133.3:0", cfg, srv)
	if f, err := s.Sources(ctx, h, 1000); err != nil || len(f.Sources) != 1 || f.Sources[0] != source("127.91.133.9")[0] {
		t.Fatalf("first request: %v %v; want its answer", f.Sources, err)
	}
	again, err := s.Sources(ctx, h, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Sources) != 0 || again.Late != 1 || !again.Asked {
		t.Fatalf("second request: sources %v at %v, %d late, asked %v; want the answer that came before it dropped (one late), none taken, the request sent",
			again.Sources, again.At, again.Late, again.Asked)
	}
	if n := asks.Load(); n != 2 {
		t.Fatalf("the server was asked %d times, want 2", n)
	}
}
