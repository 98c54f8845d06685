// Package pconn reads and writes eD2K packets on one TCP connection,
// bounded by wire.Limits, with every packet's wire bytes recorded in a
// transcript. The probe and the server client share it.
//
// It must never read without a deadline, allocate more than a packet's
// bound for one packet, or hand out a packet whose bytes it did not
// record (it says whether they were kept whole).
package pconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/record"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// Conn is one eD2K TCP connection.
type Conn struct {
	c     net.Conn
	peer  netip.AddrPort
	local netip.AddrPort
	rec   *record.Recorder
	lim   wire.Limits
	// withhold selects the packets counted, never kept (SetWithheld).
	withhold func(wire.Header, *wire.Packet) bool
	// In and Out count the wire bytes received and sent.
	In, Out int64
	// broken: a read stopped inside a packet; the stream is out of step.
	broken bool
}

// ErrBroken is returned once a read has stopped inside a packet: the
// stream can no longer be read in step.
var ErrBroken = errors.New("pconn: connection out of step after a partial packet")

// ErrNotUnpacked is returned for a packet read whole (its length known:
// the stream is still in step) whose payload does not unpack within the
// bounds: a packed packet that inflates past them (a zlib bomb) or does
// not inflate. The caller may drop it and read on.
var ErrNotUnpacked = errors.New("pconn: packet read whole but not unpacked")

// Broken reports whether a read stopped inside a packet.
func (c *Conn) Broken() bool { return c.broken }

// SetRecorder makes later packets go to rec (nil: none recorded).
func (c *Conn) SetRecorder(rec *record.Recorder) { c.rec = rec }

// SetWithheld makes the packets received that withhold selects (nil:
// none) counted in the transcript, never kept (record.Withheld): what
// must not reach an observation (a server's keyword search result, which
// names unwatched files, or sources of another file, arriving while the
// sources of a watched one are awaited). withhold gets the header and
// the packet unpacked (nil when it is not whole or does not unpack).
func (c *Conn) SetWithheld(withhold func(wire.Header, *wire.Packet) bool) { c.withhold = withhold }

// received records the wire bytes of one packet (whole or not) of header
// h (nil: not parsed), p unpacked (nil: not whole, or not unpacked).
func (c *Conn) received(h *wire.Header, p *wire.Packet, b []byte) bool {
	if c.rec == nil {
		return true
	}
	if h != nil && c.withhold != nil && c.withhold(*h, p) {
		return c.rec.Withheld(c.peer, b)
	}
	return c.rec.Received(c.peer, b)
}

// New wraps c; rec may be nil (nothing recorded).
func New(c net.Conn, rec *record.Recorder, lim wire.Limits) *Conn {
	pc := &Conn{c: c, rec: rec, lim: lim}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		pc.peer = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		pc.local = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	}
	return pc
}

// Peer is the remote address; Local is the sensor's end.
func (c *Conn) Peer() netip.AddrPort  { return c.peer }
func (c *Conn) Local() netip.AddrPort { return c.local }

// Recorder returns the connection's recorder (may be nil).
func (c *Conn) Recorder() *record.Recorder { return c.rec }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

func (c *Conn) deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	return t
}

// Send writes one packet and records it.
func (c *Conn) Send(ctx context.Context, timeout time.Duration, proto, opcode byte, payload []byte) error {
	return c.SendRaw(ctx, timeout, wire.Append(nil, proto, opcode, payload))
}

// ErrArrived is returned by SendQuiet, nothing sent, when bytes of the
// peer wait unread.
var ErrArrived = errors.New("pconn: bytes arrived before the write: not sent")

// SendQuiet is Send unless bytes of the peer wait unread at the last
// step before the write (on Linux the kernel is asked, after the write
// deadline is set; elsewhere it cannot tell, and sends): then nothing is
// sent, ErrArrived. What arrived before a request is not its answer, and
// the caller reads it first.
func (c *Conn) SendQuiet(ctx context.Context, timeout time.Duration, proto, opcode byte, payload []byte) error {
	return c.send(ctx, timeout, wire.Append(nil, proto, opcode, payload), true)
}

// SendRaw writes bytes that already form packets, and records them.
func (c *Conn) SendRaw(ctx context.Context, timeout time.Duration, b []byte) error {
	return c.send(ctx, timeout, b, false)
}

func (c *Conn) send(ctx context.Context, timeout time.Duration, b []byte, quiet bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.c.SetWriteDeadline(c.deadline(ctx, timeout))
	if quiet {
		if yes, _ := arrived(c.c); yes {
			return fmt.Errorf("sending to %s: %w", c.peer, ErrArrived)
		}
	}
	n, err := c.c.Write(b)
	c.Out += int64(n)
	if n > 0 && c.rec != nil {
		c.rec.Sent(c.peer, b[:n])
	}
	if err != nil {
		return fmt.Errorf("sending to %s: %w", c.peer, err)
	}
	return nil
}

// Next reads one packet within timeout (and ctx), records its wire bytes,
// and reports whether they are all in the transcript. A packet that
// breaks the limits is an error; its header is recorded.
func (c *Conn) Next(ctx context.Context, timeout time.Duration) (wire.Packet, bool, error) {
	return c.NextWithin(ctx, timeout, timeout)
}

// NextWithin is Next for a packet that must begin within first and be
// whole within whole (both from the call, and within ctx): a wait for
// whatever may come that ends before a packet begins leaves the stream
// in step, and one that began is read whole, however short first. On
// Linux, one whose bytes had arrived when the wait for it to begin ended
// (at the call, or when the read found the wait over) is read, however
// late the read (elsewhere it must begin within first all the same).
func (c *Conn) NextWithin(ctx context.Context, first, whole time.Duration) (wire.Packet, bool, error) {
	if err := ctx.Err(); err != nil {
		return wire.Packet{}, false, err
	}
	if c.broken {
		return wire.Packet{}, false, ErrBroken
	}
	wholeBy, firstBy := c.deadline(ctx, whole), c.deadline(ctx, first)
	if first < whole {
		if yes, _ := arrived(c.c); yes {
			// Begun already: a goroutine held up past first before its read
			// would find the deadline passed and read nothing.
			firstBy = wholeBy
		}
	}
	c.c.SetReadDeadline(firstBy)
	var h [wire.HeaderLen]byte
	n, err := io.ReadFull(c.c, h[:1])
	if n == 0 && firstBy.Before(wholeBy) && errors.Is(err, os.ErrDeadlineExceeded) {
		if yes, _ := arrived(c.c); yes {
			// Arrived within the wait, but the read came after it (the
			// goroutine held up): the packet began in time.
			firstBy = wholeBy
			c.c.SetReadDeadline(wholeBy)
			n, err = io.ReadFull(c.c, h[:1])
		}
	}
	c.In += int64(n)
	if err != nil {
		return wire.Packet{}, false, fmt.Errorf("reading from %s: %w", c.peer, err)
	}
	if !wholeBy.Equal(firstBy) {
		c.c.SetReadDeadline(wholeBy)
	}
	m, err := io.ReadFull(c.c, h[1:])
	c.In += int64(m)
	n += m
	if err != nil {
		if n > 0 {
			c.broken = true
			c.received(nil, nil, h[:n])
		}
		return wire.Packet{}, false, fmt.Errorf("reading from %s: %w", c.peer, err)
	}
	hd, err := wire.ParseHeader(h[:], c.lim)
	if err != nil {
		c.broken = true
		c.received(nil, nil, h[:])
		return wire.Packet{}, false, fmt.Errorf("from %s: %w", c.peer, err)
	}
	raw := make([]byte, wire.HeaderLen+hd.PayloadLen())
	copy(raw, h[:])
	n, err = io.ReadFull(c.c, raw[wire.HeaderLen:])
	c.In += int64(n)
	if err != nil {
		c.broken = true
		c.received(&hd, nil, raw[:wire.HeaderLen+n])
		return wire.Packet{}, false, fmt.Errorf("reading from %s: %w", c.peer, err)
	}
	p, err := wire.Unpack(hd, raw[wire.HeaderLen:], c.lim)
	if err != nil {
		kept := c.received(&hd, nil, raw)
		return wire.Packet{}, kept, fmt.Errorf("from %s: %w: %w", c.peer, ErrNotUnpacked, err)
	}
	return p, c.received(&hd, &p, raw), nil
}
