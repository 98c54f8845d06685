package tracker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// errWaitOver is one retransmission wait running out; it never leaves the
// package.
var errWaitOver = errors.New("tracker: wait over")

func (c *Client) announceUDP(ctx context.Context, t trackerURL, req Request) (Response, error) {
	s, err := c.openUDP(ctx, t)
	if err != nil {
		return Response{}, err
	}
	defer s.close()
	numWant := int32(udpAnnounceNumWantDf)
	if req.NumWant > 0 {
		numWant = int32(min(req.NumWant, math.MaxInt32))
	}
	pkt, err := c.roundTrip(ctx, s, ActionAnnounce, func(id uint64, tx uint32) []byte {
		return AppendAnnounceRequest(nil, AnnounceRequest{
			ConnectionID: id, TransactionID: tx,
			InfoHash: req.InfoHash, PeerID: req.PeerID,
			Downloaded: req.Downloaded, Left: req.Left, Uploaded: req.Uploaded,
			Event: req.Event, Key: req.Key, NumWant: numWant, Port: req.Port,
		})
	})
	r := Response{Sent: s.sent, Raw: s.raw, Records: s.log.records(s.sent, s.raw)}
	if err != nil {
		return r, err
	}
	ar, err := ParseAnnounceResponse(pkt, t.addr.Addr().Is6(), c.cfg.MaxPeers)
	if err != nil {
		return r, fmt.Errorf("tracker %s: %w", t.raw, err)
	}
	if ar.Interval > maxSeconds || ar.Seeders > math.MaxInt32 || ar.Leechers > math.MaxInt32 {
		return r, fmt.Errorf("tracker %s: interval %d, seeders %d or leechers %d out of range: %w", t.raw, ar.Interval, ar.Seeders, ar.Leechers, ErrMalformed)
	}
	r.Interval = time.Duration(ar.Interval) * time.Second
	r.Complete, r.Incomplete = int(ar.Seeders), int(ar.Leechers)
	r.Peers, r.PeersSkipped = ar.Peers, ar.PeersSkipped
	return r, nil
}

func (c *Client) scrapeUDP(ctx context.Context, t trackerURL, batch [][20]byte, out map[[20]byte]ScrapeStats) error {
	s, err := c.openUDP(ctx, t)
	if err != nil {
		return err
	}
	defer s.close()
	pkt, err := c.roundTrip(ctx, s, ActionScrape, func(id uint64, tx uint32) []byte {
		return AppendScrapeRequest(nil, ScrapeRequest{ConnectionID: id, TransactionID: tx, InfoHashes: batch})
	})
	if err != nil {
		return err
	}
	sr, err := ParseScrapeResponse(pkt)
	if err != nil {
		return fmt.Errorf("tracker %s: %w", t.raw, err)
	}
	if len(sr.Stats) != len(batch) {
		return fmt.Errorf("tracker %s: scrape of %d hashes answered with %d entries: %w", t.raw, len(batch), len(sr.Stats), ErrMalformed)
	}
	for i, h := range batch {
		out[h] = sr.Stats[i]
	}
	return nil
}

// udpSession is one guarded socket used for one operation, with the
// datagrams it sent and accepted.
type udpSession struct {
	t    trackerURL
	pc   net.PacketConn
	buf  []byte
	sent []byte
	raw  []byte
	log  wireLog // each datagram sent or accepted, with its time
	now  func() time.Time
	stop func() bool
}

// openUDP listens on a guarded socket of the tracker's address family.
// Cancelling ctx unblocks its reads.
func (c *Client) openUDP(ctx context.Context, t trackerURL) (*udpSession, error) {
	network := "udp4"
	if t.addr.Addr().Is6() {
		network = "udp6"
	}
	local, ok := c.cfg.localFor(t.addr.Addr())
	if !ok {
		return nil, fmt.Errorf("tracker %s: %w", t.raw, ErrNoLocalAddr)
	}
	if !local.IsValid() {
		switch {
		case t.addr.Addr().Is4() && t.addr.Addr().IsLoopback():
			local = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		case t.addr.Addr().IsLoopback():
			local = netip.IPv6Loopback()
		case t.addr.Addr().Is4():
			local = netip.IPv4Unspecified()
		default:
			local = netip.IPv6Unspecified()
		}
	}
	pc, err := c.guard.ListenPacket(ctx, nil, network, netip.AddrPortFrom(local, 0).String())
	if err != nil {
		return nil, fmt.Errorf("tracker %s: UDP socket on %v: %w", t.raw, local, err)
	}
	c.cfg.dialled(c.localEnd(ctx, pc.LocalAddr(), t.addr))
	s := &udpSession{t: t, pc: pc, buf: make([]byte, c.cfg.MaxUDPDatagram+1), now: c.now}
	s.stop = context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	return s, nil
}

func (s *udpSession) close() {
	s.stop()
	s.pc.Close()
}

func (s *udpSession) send(ctx context.Context, pkt []byte) error {
	s.log.add(true, s.now(), len(s.sent), len(s.sent)+len(pkt))
	s.sent = append(s.sent, pkt...)
	if _, err := s.pc.WriteTo(pkt, net.UDPAddrFromAddrPort(s.t.addr)); err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("tracker %s: %w", s.t.raw, err)
	}
	return nil
}

// await reads until the answer to transaction tx arrives, the wait runs out
// (errWaitOver) or ctx ends. Datagrams from other addresses, with other
// transaction ids, too short or too long are dropped. An error action
// becomes a *FailureError.
func (s *udpSession) await(ctx context.Context, tx uint32, want Action, wait time.Duration) ([]byte, error) {
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := s.pc.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("tracker %s: %w", s.t.raw, err)
	}
	// The deadline just set may have replaced the one cancellation sets.
	if ctx.Err() != nil {
		return nil, fmt.Errorf("tracker %s: %w", s.t.raw, context.Cause(ctx))
	}
	for {
		n, from, err := s.pc.ReadFrom(s.buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("tracker %s: %w", s.t.raw, context.Cause(ctx))
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// The read deadline may be the context's, reached just
				// before the context notices.
				if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
					return nil, fmt.Errorf("tracker %s: %w", s.t.raw, context.DeadlineExceeded)
				}
				return nil, errWaitOver
			}
			return nil, fmt.Errorf("tracker %s: %w", s.t.raw, err)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || ua.AddrPort().Addr().Unmap() != s.t.addr.Addr() || ua.AddrPort().Port() != s.t.addr.Port() {
			continue
		}
		if n > len(s.buf)-1 { // over MaxUDPDatagram, possibly cut short
			continue
		}
		action, rtx, err := ResponseHeader(s.buf[:n])
		if err != nil || rtx != tx {
			continue
		}
		pkt := append([]byte(nil), s.buf[:n]...)
		s.log.add(false, s.now(), len(s.raw), len(s.raw)+n)
		s.raw = append(s.raw, pkt...)
		if action == ActionError {
			e, _ := ParseErrorResponse(pkt)
			return nil, &FailureError{Tracker: s.t.raw, Reason: e.Message}
		}
		if action != want {
			return nil, fmt.Errorf("tracker %s: answer to action %d has action %d: %w", s.t.raw, want, action, ErrMalformed)
		}
		return pkt, nil
	}
}

// roundTrip runs BEP 15's exchange: connect unless a fresh connection id
// is cached, then the request built by build; every wait that runs out
// doubles the next (UDPRetryBase·2^n) until UDPMaxRetries resends.
func (c *Client) roundTrip(ctx context.Context, s *udpSession, action Action, build func(connID uint64, tx uint32) []byte) ([]byte, error) {
	addr := s.t.addr
	for n := 0; ; {
		wait := c.cfg.UDPRetryBase << n
		id, ok := c.cachedConnID(addr)
		if !ok {
			tx := rand.Uint32()
			if err := s.send(ctx, AppendConnectRequest(nil, ConnectRequest{TransactionID: tx})); err != nil {
				return nil, err
			}
			pkt, err := s.await(ctx, tx, ActionConnect, wait)
			if errors.Is(err, errWaitOver) {
				if n++; n > c.cfg.UDPMaxRetries {
					return nil, fmt.Errorf("tracker %s: no connect answer after %d tries: %w", s.t.raw, n, ErrTimeout)
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			cr, err := ParseConnectResponse(pkt)
			if err != nil {
				return nil, fmt.Errorf("tracker %s: %w", s.t.raw, err)
			}
			id = cr.ConnectionID
			c.storeConnID(addr, id)
		}
		tx := rand.Uint32()
		if err := s.send(ctx, build(id, tx)); err != nil {
			return nil, err
		}
		pkt, err := s.await(ctx, tx, action, wait)
		if errors.Is(err, errWaitOver) {
			// The tracker may have forgotten the id (a restart): connect again.
			c.forgetConnID(addr)
			if n++; n > c.cfg.UDPMaxRetries {
				return nil, fmt.Errorf("tracker %s: no answer after %d tries: %w", s.t.raw, n, ErrTimeout)
			}
			continue
		}
		if err != nil {
			var fe *FailureError
			if errors.As(err, &fe) {
				// The error may be about the connection id; do not reuse it.
				c.forgetConnID(addr)
			}
			return nil, err
		}
		return pkt, nil
	}
}

func (c *Client) cachedConnID(addr netip.AddrPort) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.connIDs[addr]
	if !ok {
		return 0, false
	}
	if c.now().Sub(e.at) >= c.cfg.ConnectionIDLifetime {
		delete(c.connIDs, addr)
		return 0, false
	}
	return e.id, true
}

func (c *Client) storeConnID(addr netip.AddrPort, id uint64) {
	if c.cfg.ConnectionIDLifetime == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.connIDs) >= maxConnIDs {
		for a, e := range c.connIDs {
			if now.Sub(e.at) >= c.cfg.ConnectionIDLifetime {
				delete(c.connIDs, a)
			}
		}
		if len(c.connIDs) >= maxConnIDs {
			return
		}
	}
	c.connIDs[addr] = connID{id: id, at: now}
}

func (c *Client) forgetConnID(addr netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.connIDs, addr)
}

// localEnd returns the address and port a tracker at to sees datagrams of
// a socket bound to bound come from. A socket bound to an unspecified
// address (0.0.0.0, ::) has no address of its own: each datagram leaves
// from the address the system's route to the destination picks, which is
// what a tracker sees and may list as a peer. That address is learnt from
// a connected UDP socket to the tracker (connecting a UDP socket sends
// nothing; the guard checks the address first), with the bound socket's
// port. When it cannot be learnt, bound is returned as it is.
func (c *Client) localEnd(ctx context.Context, bound net.Addr, to netip.AddrPort) net.Addr {
	ua, ok := bound.(*net.UDPAddr)
	if !ok || !ua.IP.IsUnspecified() {
		return bound
	}
	network := "udp4"
	if to.Addr().Is6() {
		network = "udp6"
	}
	conn, err := c.guard.Dialer(nil).DialContext(ctx, network, to.String())
	if err != nil {
		return bound
	}
	defer conn.Close()
	src, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return bound
	}
	return &net.UDPAddr{IP: src.IP, Port: ua.Port}
}
