package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/scope"
)

// dialPeer connects to peer over TCP or uTP and says which.
//
// The policy: a peer that said it takes uTP (peer.Transport, from a PEX
// flag) is dialled over uTP first, any other over TCP first. The other
// transport is tried only if the first could not connect (refused,
// unreachable, or no answer within half the time left): many peers
// listen on one and not the other. Once a peer has answered, nothing is
// repeated over the other transport. A scope refusal is final: both
// transports go to the same address.
func (p *Prober) dialPeer(ctx context.Context, peer Peer) (net.Conn, string, error) {
	order := [2]string{TransportTCP, TransportUTP}
	if peer.Transport == TransportUTP {
		order = [2]string{TransportUTP, TransportTCP}
	}
	// Each dial gets half the time left, so that a peer that answers
	// late still leaves time for the conversation.
	dial := func(transport string) (net.Conn, error) {
		dctx, cancel := context.WithCancel(ctx)
		if deadline, ok := ctx.Deadline(); ok {
			dctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)/2))
		}
		defer cancel()
		return p.Dial(dctx, transport, peer.Addr)
	}
	c, err := dial(order[0])
	if err == nil {
		return c, order[0], nil
	}
	if errors.Is(err, scope.ErrOutOfScope) || errors.Is(err, ErrNoListenFamily) || ctx.Err() != nil {
		return nil, "", err
	}
	c, err2 := dial(order[1])
	if err2 != nil {
		return nil, "", fmt.Errorf("%s: %w; %s: %w", order[0], err, order[1], err2)
	}
	return c, order[1], nil
}

// Dial dials peer over one transport (TransportTCP or TransportUTP) from
// the sensor's listen address of the peer's family (never from the other
// family's: a sensor without an address of that family does not dial,
// ErrNoListenFamily), through the scope guard.
//
// The connection's local address and port go to Config.Dialled before
// any byte is exchanged: a peer that passes them on by PEX must not make
// the sensor record itself. A uTP socket's go before its SYN, even when
// the dial then fails (the peer saw the SYN). A TCP dial that fails is
// not told: its source port is chosen by connect (bindNoPort) and is not
// known to the dialer after a failure.
func (p *Prober) Dial(ctx context.Context, transport string, peer netip.AddrPort) (net.Conn, error) {
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if err := p.guard.Check(peer); err != nil {
		return nil, err // the guard's refusal first, whatever the family
	}
	local, ok := p.listenFor(peer.Addr())
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrNoListenFamily, peer)
	}
	var c net.Conn
	var err error
	if transport == TransportUTP {
		// The socket's source is told before the SYN leaves: a dial
		// that fails has shown it to the peer too. (Telling it again
		// below, once connected, only refreshes it.)
		c, err = dialUTP(ctx, p.guard, local, peer, func(a net.Addr) {
			if p.cfg.Dialled != nil {
				p.cfg.Dialled(addrPortOf(a))
			}
		})
	} else {
		network := "tcp4"
		if peer.Addr().Is6() {
			network = "tcp6"
		}
		c, err = p.guard.Dialer(probeDialer(local)).DialContext(ctx, network, peer.String())
	}
	if err != nil {
		return nil, err
	}
	if p.cfg.Dialled != nil {
		p.cfg.Dialled(addrPortOf(c.LocalAddr()))
	}
	return c, nil
}

// addrPortOf is a net.Addr of TCP or UDP as an AddrPort (zero if neither).
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return netip.AddrPortFrom(addrOf(a.IP), uint16(a.Port))
	case *net.UDPAddr:
		return netip.AddrPortFrom(addrOf(a.IP), uint16(a.Port))
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// probeDialer is the TCP dialer of probes: bound to the sensor's listen
// address, with the source port left to connect (bindNoPort), so that
// probes from one address are not limited to one connection per ephemeral
// port. The scope guard wraps it (Guard.Dialer keeps this Control hook and
// runs its own check first).
func probeDialer(listen netip.Addr) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: listen.AsSlice()}, Control: bindNoPort}
}
