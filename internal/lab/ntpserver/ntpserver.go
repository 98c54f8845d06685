// Package ntpserver is a small NTP (RFC 5905, version 4, server mode)
// responder on loopback for the lab, the demo and the tests of the
// sensors' clock measurement (internal/timesync). Besides an honest
// server it plays the hostile ones a sensor must not trust silently: one
// whose time is wildly wrong, one that answers with a malformed packet,
// one that answers from another address than the one asked, one that
// sends a kiss-of-death, one that says it is not synchronised.
//
// It must never listen or answer outside 127.0.0.0/8 and ::1.
package ntpserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Lie is how a hostile server departs from an honest one.
type Lie int

const (
	// Honest answers correctly (its clock shifted by Config.Shift, if set).
	Honest Lie = iota
	// Malformed answers with a truncated packet.
	Malformed
	// OtherAddress answers from another socket (another port on the same
	// loopback address) than the one asked: a forged reply.
	OtherAddress
	// KissOfDeath answers with stratum 0 and the code RATE.
	KissOfDeath
	// Unsynchronised answers with the leap indicator "not synchronised".
	Unsynchronised
	// WrongOrigin answers with an origin timestamp that is not the
	// client's: a reply to someone else's query.
	WrongOrigin
)

// ErrNotLoopback is returned for an address outside 127.0.0.0/8 and ::1.
var ErrNotLoopback = errors.New("ntpserver: not a loopback address")

// Config says how the responder behaves.
type Config struct {
	// Addr is where it listens, a loopback IP:port (port 0: any free one).
	Addr netip.AddrPort
	// Shift is added to the true time in every answer: a server whose
	// clock is wrong by this much.
	Shift time.Duration
	// Lie is how it misbehaves (Honest by default).
	Lie Lie
	// Stratum it claims (default 2).
	Stratum uint8
	// RootDispersion it claims (default 1 ms).
	RootDispersion time.Duration
}

// Server is a running responder.
type Server struct {
	cfg     Config
	conn    *net.UDPConn
	other   *net.UDPConn // OtherAddress: the socket replies leave from
	queries atomic.Int64
	wg      sync.WaitGroup
}

// ntpEpochOffset is the seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const ntpEpochOffset = 2208988800

// Start listens on cfg.Addr and answers until Close.
func Start(cfg Config) (*Server, error) {
	if !cfg.Addr.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("%w: %s", ErrNotLoopback, cfg.Addr)
	}
	if cfg.Stratum == 0 {
		cfg.Stratum = 2
	}
	if cfg.RootDispersion == 0 {
		cfg.RootDispersion = time.Millisecond
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Addr))
	if err != nil {
		return nil, fmt.Errorf("ntpserver: listen %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, conn: conn}
	if cfg.Lie == OtherAddress {
		if s.other, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.Addr.Addr(), 0))); err != nil {
			conn.Close()
			return nil, fmt.Errorf("ntpserver: listen for the other address: %w", err)
		}
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is the address it answers on.
func (s *Server) Addr() netip.AddrPort {
	return s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Queries is the number of queries it received.
func (s *Server) Queries() int { return int(s.queries.Load()) }

// Close stops it and waits for its goroutine.
func (s *Server) Close() error {
	err := s.conn.Close()
	s.wg.Wait()
	if s.other != nil {
		s.other.Close()
	}
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	buf := make([]byte, 512)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		recv := time.Now().Add(s.cfg.Shift)
		if n < 48 || !from.Addr().Unmap().IsLoopback() {
			continue
		}
		s.queries.Add(1)
		reply := s.answer(buf[:n], recv)
		out := s.conn
		if s.other != nil {
			out = s.other
		}
		_, _ = out.WriteToUDPAddrPort(reply, from)
	}
}

// answer builds the reply to query q received at recv (server time).
func (s *Server) answer(q []byte, recv time.Time) []byte {
	r := make([]byte, 48)
	leap := byte(0)
	if s.cfg.Lie == Unsynchronised {
		leap = 3
	}
	r[0] = leap<<6 | 4<<3 | 4 // LI, version 4, mode 4 (server)
	r[1] = s.cfg.Stratum
	r[2] = 6                // poll: 64 s
	r[3] = byte(-20 & 0xff) // precision: about 1 µs
	binary.BigEndian.PutUint32(r[8:], shortFormat(s.cfg.RootDispersion))
	copy(r[12:16], "LAB\x00") // reference id
	copy(r[24:32], q[40:48])  // origin: the client's transmit timestamp
	putTime(r[32:], recv)
	putTime(r[16:], recv.Add(-time.Minute)) // reference time: last set a minute ago
	switch s.cfg.Lie {
	case KissOfDeath:
		r[1] = 0
		copy(r[12:16], "RATE")
	case WrongOrigin:
		r[24] ^= 0xff
	}
	putTime(r[40:], time.Now().Add(s.cfg.Shift))
	if s.cfg.Lie == Malformed {
		return r[:30]
	}
	return r
}

// putTime writes t as a 64-bit NTP timestamp (era 0).
func putTime(b []byte, t time.Time) {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	binary.BigEndian.PutUint64(b, secs<<32|frac)
}

// shortFormat is d in NTP's 32-bit short format (16.16 seconds).
func shortFormat(d time.Duration) uint32 {
	return uint32(d.Seconds() * 65536)
}
