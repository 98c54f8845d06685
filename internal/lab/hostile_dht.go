package lab

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// spoofer forges DHT replies. It sees the get_peers queries the sensor
// sends to the lab's DHT nodes (Lab.SetQueryTap: an attacker who sees the
// traffic, or who runs one of the nodes asked) and, before the real node
// answers, sends the sensor a reply from its own address with the
// query's transaction id, and with the next Predict ids too (a counter is
// predictable). The reply names innocent addresses as peers and carries a
// lab client's node id.
type spoofer struct {
	conn      *net.UDPConn
	from      netip.Addr
	sensor    netip.Addr
	predict   int
	watched   map[[20]byte]bool
	innocents []innocent
	forgedID  [20]byte
	every     int64
	seen      atomic.Int64
	sent      atomic.Int64
}

// remove drops one peer of ih (the lab's own stores never expire entries).
func (s *peerStore) remove(ih metainfo.Hash, a netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.m[ih]
	for i, p := range l {
		if p.Port == int(a.Port()) && p.IP.Equal(net.IP(a.Addr().AsSlice())) {
			s.m[ih] = append(l[:i:i], l[i+1:]...)
			return
		}
	}
}

func (h *Hostile) startSpoofer(r *rand.Rand, nextAddr func() (netip.Addr, error), seeders []*peer) error {
	from, err := nextAddr()
	if err != nil {
		return err
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)))
	if err != nil {
		return err
	}
	h.udp = append(h.udp, c)
	s := &spoofer{conn: c, from: from, sensor: h.cfg.SensorAddr, predict: h.cfg.Predict, every: int64(max(1, h.cfg.SpoofEvery)), watched: map[[20]byte]bool{}}
	for _, t := range h.l.torrents {
		if !t.Watched {
			continue
		}
		for _, hx := range t.SwarmHashes() {
			var k [20]byte
			if n, _ := hexDecode(k[:], hx); n == 20 {
				s.watched[k] = true
			}
		}
	}
	// Innocents: an address where nothing listens, and lab seeders, each
	// named for torrents it does not have (the spoofer names every
	// innocent for every watched torrent; a seeder of one is left out).
	none, err := nextAddr()
	if err != nil {
		return err
	}
	s.innocents = append(s.innocents, innocent{addr: netip.AddrPortFrom(none, 6881)})
	for _, p := range seeders {
		in := innocent{addr: p.addrPort(), has: map[[20]byte]bool{}}
		for _, t := range p.torrents {
			for _, hx := range t.SwarmHashes() {
				var k [20]byte
				if n, _ := hexDecode(k[:], hx); n == 20 {
					in.has[k] = true
				}
			}
		}
		s.innocents = append(s.innocents, in)
	}
	if len(seeders) > 0 {
		s.forgedID = seeders[r.IntN(len(seeders))].nodeID
	} else {
		s.forgedID = randID(r)
	}
	h.spoof = s
	h.l.SetQueryTap(s.onQuery())
	return nil
}

func hexDecode(dst []byte, s string) (int, error) {
	if len(s) != 2*len(dst) {
		return 0, nil
	}
	for i := range dst {
		var v byte
		for _, c := range []byte(s[2*i : 2*i+2]) {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | (c - 'a' + 10)
			case c >= 'A' && c <= 'F':
				v = v<<4 | (c - 'A' + 10)
			default:
				return 0, nil
			}
		}
		dst[i] = v
	}
	return len(dst), nil
}

// onQuery forges the replies to one query, if it is a get_peers for a
// watched torrent from the sensor.
func (s *spoofer) onQuery() func(*krpc.Msg, net.Addr) {
	return func(m *krpc.Msg, src net.Addr) {
		if m.Q != "get_peers" || m.A == nil {
			return
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			return
		}
		to := ua.AddrPort()
		to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
		if to.Addr() != s.sensor || !s.watched[m.A.InfoHash] {
			return
		}
		if s.seen.Add(1)%s.every != 0 {
			return
		}
		var values []krpc.NodeAddr
		for _, a := range s.innocentsFor(m.A.InfoHash) {
			values = append(values, krpc.NodeAddr{IP: a.Addr().AsSlice(), Port: int(a.Port())})
		}
		tok := "forged"
		ts := []string{m.T}
		if len(m.T) == 4 {
			t := binary.BigEndian.Uint32([]byte(m.T))
			for i := 1; i <= s.predict; i++ {
				ts = append(ts, string(binary.BigEndian.AppendUint32(nil, t+uint32(i))))
			}
		}
		for _, t := range ts {
			r := krpc.Msg{T: t, Y: "r", R: &krpc.Return{ID: krpc.ID(s.forgedID), Token: &tok, Values: values}}
			b, err := bencode.Marshal(r)
			if err != nil {
				return
			}
			if _, err := s.conn.WriteToUDPAddrPort(b, to); err == nil {
				s.sent.Add(1)
			}
		}
	}
}

// innocent is an address the spoofer names, with the torrents it does
// have (snapshot at start: the tap must not wait on a peer's lock).
type innocent struct {
	addr netip.AddrPort
	has  map[[20]byte]bool
}

// innocentsFor leaves out the seeders that do have the torrent: the
// spoofer names only addresses that never had it.
func (s *spoofer) innocentsFor(ih [20]byte) []netip.AddrPort {
	var out []netip.AddrPort
	for _, in := range s.innocents {
		if !in.has[ih] {
			out = append(out, in.addr)
		}
	}
	return out
}
