package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/vigil-oss/vigil/internal/observe"
)

// hostileDevice is one peer-wire server of the hostile lab. It speaks
// just enough BitTorrent (BEP 3, 6, 9, 10) for a probe: the handshake,
// an extension handshake offering ut_metadata, the metadata, the PORT
// message, and what its kind says about pieces; it never sends a piece.
type hostileDevice struct {
	name      string
	kind      string
	torrent   *Torrent
	torrents  []*Torrent // the lab's, for the wrong-hash liar
	peerID    [20]byte
	nodeID    [20]byte
	addr      netip.Addr
	victim    *peer      // whose peer id or node id it presents
	spoofFrom netip.Addr // KindNodeIDSpoofer: where its DHT answers come from

	mu       sync.Mutex
	port     uint16
	ln       net.Listener
	dht      *net.UDPConn // its DHT port (forgers)
	spoofOut *net.UDPConn
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
	from, to time.Time
}

func (d *hostileDevice) addrPort() netip.AddrPort {
	d.mu.Lock()
	defer d.mu.Unlock()
	return netip.AddrPortFrom(d.addr, d.port)
}

// truthLevel is what the device's well-formed messages show, and what it
// holds, for a torrent of n pieces.
func (d *hostileDevice) truthLevel(n int) (shown observe.Level, shownPieces, held int) {
	switch d.kind {
	case KindAnnouncedOnly, KindLiarWrongHash:
		return observe.Announced, 0, 0
	case KindAckNothing, KindReplayer, KindLiarHavePastEnd:
		return observe.Acknowledged, 0, 0
	case KindPartial, KindNodeIDForger, KindNodeIDSpoofer, KindReassignedSecond:
		return observe.Partial, n / 2, n / 2
	case KindComplete, KindReassignedFirst:
		return observe.Complete, n, n
	case KindLiarSpareBits, KindLiarExtraBytes:
		return observe.Partial, 1, 1
	case KindLiarHaveAllAfterBitfield:
		return observe.Partial, 2, 2
	case KindLiarHaveAllNothing:
		// have_all is well-formed: the wire shows complete, the disk holds
		// nothing. Only a fetched piece (verify) tells them apart.
		return observe.Complete, n, 0
	}
	return observe.Announced, 0, 0
}

// pieceMessages returns the messages about pieces the device sends after
// the extension handshake, for a torrent of n pieces.
func (d *hostileDevice) pieceMessages(n int) []byte {
	nb := (n + 7) / 8
	bitfield := func(pieces ...int) []byte {
		b := make([]byte, nb)
		for _, p := range pieces {
			b[p/8] |= 0x80 >> (p % 8)
		}
		return b
	}
	spare := func(b []byte) {
		if r := n % 8; r != 0 {
			b[nb-1] |= byte(0xff) >> r
		}
	}
	var out []byte
	switch d.kind {
	case KindAckNothing, KindReplayer:
		out = msg(out, 0x0f, nil) // have_none
	case KindPartial, KindNodeIDForger, KindNodeIDSpoofer, KindReassignedSecond:
		var ps []int
		for i := range n / 2 {
			ps = append(ps, i)
		}
		out = msg(out, 5, bitfield(ps...))
	case KindComplete, KindReassignedFirst:
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		out = msg(out, 5, bitfield(all...))
	case KindLiarSpareBits:
		b := bitfield(0)
		spare(b)
		if n%8 == 0 {
			// No spare bits in a whole number of bytes: have past the end
			// instead, the same lie.
			out = msg(out, 5, b)
			out = msg(out, 4, binary.BigEndian.AppendUint32(nil, uint32(n)))
			break
		}
		out = msg(out, 5, b)
	case KindLiarExtraBytes:
		b := bitfield(0)
		spare(b)
		out = msg(out, 5, append(b, 0xff))
	case KindLiarHavePastEnd:
		for i := range 8 {
			out = msg(out, 4, binary.BigEndian.AppendUint32(nil, uint32(n+i)))
		}
	case KindLiarHaveAllAfterBitfield:
		out = msg(out, 5, bitfield(0, 1))
		out = msg(out, 0x0e, nil)
	case KindLiarHaveAllNothing:
		out = msg(out, 0x0e, nil)
	}
	return out
}

// msg appends one length-prefixed peer-wire message.
func msg(b []byte, id byte, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(1+len(payload)))
	b = append(b, id)
	return append(b, payload...)
}

// start listens on d.addr (port 0: any) and serves until stop. Devices
// of the announced-only kind reserve the port and listen on nothing.
func (d *hostileDevice) start(ctx context.Context, port uint16) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conns == nil {
		d.conns = map[net.Conn]bool{}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp4", netip.AddrPortFrom(d.addr, port).String())
	if err != nil {
		return fmt.Errorf("lab hostile device %s on %v: %w", d.name, d.addr, err)
	}
	d.port = uint16(ln.Addr().(*net.TCPAddr).Port)
	if d.kind == KindAnnouncedOnly {
		// Nothing listens: the port was only picked.
		ln.Close()
		return nil
	}
	d.ln = ln
	if d.kind == KindNodeIDForger || d.kind == KindNodeIDSpoofer {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(d.addr, d.port)))
		if err != nil {
			ln.Close()
			return fmt.Errorf("lab hostile device %s DHT port: %w", d.name, err)
		}
		d.dht = c
		out := c
		if d.kind == KindNodeIDSpoofer {
			if d.spoofOut, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(d.spoofFrom, 0))); err != nil {
				ln.Close()
				c.Close()
				return fmt.Errorf("lab hostile device %s spoofing socket: %w", d.name, err)
			}
			out = d.spoofOut
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.answerPings(c, out)
		}()
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns[c] = true
			d.mu.Unlock()
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.serve(c)
				d.mu.Lock()
				delete(d.conns, c)
				d.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return nil
}

// stop closes the listener and every connection, and waits for them.
func (d *hostileDevice) stop() {
	d.mu.Lock()
	if d.ln != nil {
		d.ln.Close()
		d.ln = nil
	}
	for c := range d.conns {
		c.Close()
	}
	if d.dht != nil {
		d.dht.Close()
		d.dht = nil
	}
	if d.spoofOut != nil {
		d.spoofOut.Close()
		d.spoofOut = nil
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// answerPings answers KRPC queries on the device's DHT port with a node id
// that is not its own (the victim's), sending from out: the port itself
// (a forger) or another address (a spoofer).
func (d *hostileDevice) answerPings(in, out *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var q krpc.Msg
		if bencode.Unmarshal(buf[:n], &q) != nil || q.Y != "q" {
			continue
		}
		r := krpc.Msg{T: q.T, Y: "r", R: &krpc.Return{ID: krpc.ID(d.victim.nodeID)}}
		b, err := bencode.Marshal(r)
		if err != nil {
			continue
		}
		_, _ = out.WriteToUDPAddrPort(b, from)
	}
}

// serve runs one connection: the probe speaks first.
func (d *hostileDevice) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var hs [68]byte
	if _, err := io.ReadFull(br, hs[:]); err != nil || hs[0] != 19 || string(hs[1:20]) != "BitTorrent protocol" {
		return
	}
	asked := hs[28:48]
	mine := false
	for _, hx := range d.torrent.SwarmHashes() {
		if hexEq(hx, asked) {
			mine = true
		}
	}
	if !mine {
		return
	}
	theirExt := hs[25]&0x10 != 0
	reply := make([]byte, 0, 68)
	reply = append(reply, hs[:20]...)
	var rsv [8]byte
	rsv[5] |= 0x10 // extension protocol
	rsv[7] |= 0x04 // fast extension
	if d.dht != nil {
		rsv[7] |= 0x01
	}
	reply = append(reply, rsv[:]...)
	ih := asked
	if d.kind == KindLiarWrongHash {
		// Echo another torrent's hash.
		for _, t := range d.torrents {
			if t != d.torrent && t.built.HasV1 {
				ih = t.built.InfoHashV1[:]
				break
			}
		}
	}
	reply = append(reply, ih...)
	pid := d.peerID
	if d.kind == KindReplayer {
		pid = d.victim.peerID
	}
	reply = append(reply, pid[:]...)
	if _, err := c.Write(reply); err != nil || d.kind == KindLiarWrongHash {
		if d.kind == KindLiarWrongHash {
			time.Sleep(200 * time.Millisecond)
		}
		return
	}
	info := d.torrent.built.Info
	var out []byte
	if theirExt {
		eh, _ := bencode.Marshal(map[string]any{
			"m":             map[string]int{"ut_metadata": 3},
			"metadata_size": len(info),
			"v":             "Vigil lab hostile 1.0",
			"p":             int(d.port),
		})
		out = msg(out, 20, append([]byte{0}, eh...))
	}
	if d.dht != nil {
		out = msg(out, 9, binary.BigEndian.AppendUint16(nil, d.port))
	}
	out = append(out, d.pieceMessages(d.torrent.built.NumPieces)...)
	if _, err := c.Write(out); err != nil {
		return
	}
	// Answer metadata requests; leave after a quiet second (a have-only
	// liar never sends a bitfield, so the probe waits for the close).
	theirMeta := 0
	for {
		_ = c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		var lb [4]byte
		if _, err := io.ReadFull(br, lb[:]); err != nil {
			return
		}
		ln := binary.BigEndian.Uint32(lb[:])
		if ln == 0 {
			continue
		}
		if ln > 1<<20 {
			return
		}
		body := make([]byte, ln)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		if body[0] != 20 || len(body) < 2 {
			continue
		}
		switch body[1] {
		case 0:
			var eh struct {
				M map[string]int `bencode:"m"`
			}
			if bencode.Unmarshal(body[2:], &eh) == nil {
				theirMeta = eh.M["ut_metadata"]
			}
		case 3:
			var rq struct {
				Type  int `bencode:"msg_type"`
				Piece int `bencode:"piece"`
			}
			if bencode.Unmarshal(body[2:], &rq) != nil || rq.Type != 0 || theirMeta == 0 {
				continue
			}
			lo := rq.Piece * 16384
			if lo < 0 || lo >= len(info) {
				continue
			}
			hi := min(lo+16384, len(info))
			hd, _ := bencode.Marshal(map[string]int{"msg_type": 1, "piece": rq.Piece, "total_size": len(info)})
			p := append([]byte{byte(theirMeta)}, hd...)
			p = append(p, info[lo:hi]...)
			if _, err := c.Write(msg(nil, 20, p)); err != nil {
				return
			}
		}
	}
}

func hexEq(hx string, b []byte) bool {
	return len(hx) == 2*len(b) && bytes.EqualFold([]byte(hx), []byte(fmt.Sprintf("%x", b)))
}
