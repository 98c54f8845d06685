package ed2k

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// Behaviour is how a simulated client departs from the protocol.
type Behaviour string

// Behaviours. Honest clients say what they hold; the others are the
// hostile devices the sensor must not believe.
const (
	Honest Behaviour = ""
	// LiarSpareBits: its file status sets every bit of the part map's
	// last byte, spare bits past the part count included.
	LiarSpareBits Behaviour = "liar_spare_bits"
	// LiarWrongCount: its file status has every bit set, for twice the
	// file's part count.
	LiarWrongCount Behaviour = "liar_wrong_count"
	// WrongFile: it answers file requests for another hash.
	WrongFile Behaviour = "wrong_file"
	// Bomb: after its hello answer it sends a packed packet that
	// inflates to 16 MiB (eight times the packet bound).
	Bomb Behaviour = "bomb"
	// Oversize: after its hello answer it announces a 100 MB packet.
	Oversize Behaviour = "oversize"
	// Queue: it queues every download request (no upload slot).
	Queue Behaviour = "queue"
	// CorruptData: it serves part data with one byte changed.
	CorruptData Behaviour = "corrupt_data"
)

// Share is a file a client shares; Have nil means the whole file, else
// one entry per data part.
type Share struct {
	File *File
	Have []bool
}

// Complete reports whether the share holds every part.
func (s Share) Complete() bool {
	for _, h := range s.Have {
		if !h {
			return false
		}
	}
	return true
}

// Software is what a client's hello says it runs.
type Software struct {
	Nick    string
	Compat  byte // CT_EMULE_VERSION's compatible client: 0 eMule, 3 aMule
	Version [3]int
}

// AMule233 is aMule 2.3.3's hello.
var AMule233 = Software{Nick: "http://www.aMule.org", Compat: 3, Version: [3]int{2, 3, 3}}

// ClientConfig describes one simulated client.
type ClientConfig struct {
	UserHash  [16]byte
	Software  Software
	Addr      netip.AddrPort // TCP listen address
	Shares    []Share
	Behaviour Behaviour
}

// Client is a simulated eD2K client listening on loopback.
type Client struct {
	cfg    ClientConfig
	mu     sync.Mutex
	ln     net.Listener
	addr   netip.AddrPort
	server net.Conn // login to the lab server, while connected
	wg     sync.WaitGroup
	closed atomic.Bool
	// Served counts part bytes sent; Probed counts hellos answered.
	Served, Probed atomic.Int64
}

// StartClient listens on cfg.Addr and serves.
func StartClient(cfg ClientConfig) (*Client, error) {
	c := &Client{cfg: cfg}
	if cfg.Behaviour == Bomb {
		bomb() // made before the first probe, not during it
	}
	if err := c.listen(cfg.Addr); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) listen(addr netip.AddrPort) error {
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return fmt.Errorf("lab client: %w", err)
	}
	c.mu.Lock()
	c.ln, c.addr = ln, ln.Addr().(*net.TCPAddr).AddrPort()
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer nc.Close()
				c.serve(nc)
			}()
		}
	}()
	return nil
}

// Addr is where the client listens now.
func (c *Client) Addr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// UserHash is the client's user hash.
func (c *Client) UserHash() [16]byte { return c.cfg.UserHash }

// Shares are the client's shares.
func (c *Client) Shares() []Share { return c.cfg.Shares }

// Behaviour is the client's behaviour.
func (c *Client) Behaviour() Behaviour { return c.cfg.Behaviour }

// Move stops listening where it was and listens on addr instead, keeping
// its user hash: a device that got a new address.
func (c *Client) Move(addr netip.AddrPort) error {
	c.mu.Lock()
	old, srv := c.ln, c.server
	c.server = nil
	c.mu.Unlock()
	old.Close()
	if srv != nil {
		srv.Close()
	}
	return c.listen(addr)
}

// Close stops the client and waits for its connections to end.
func (c *Client) Close() {
	c.closed.Store(true)
	c.mu.Lock()
	c.ln.Close()
	if c.server != nil {
		c.server.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *Client) hello(answer bool) wire.Hello {
	sw := c.cfg.Software
	ver := uint32(sw.Version[0])<<17 | uint32(sw.Version[1])<<10 | uint32(sw.Version[2])<<7
	a := c.Addr()
	return wire.Hello{
		Answer: answer, UserHash: c.cfg.UserHash, ClientID: wire.AddrToID(a.Addr()), Port: a.Port(),
		Tags: []wire.Tag{
			wire.StrTag(wire.CTName, sw.Nick),
			wire.IntTag(wire.CTVersion, wire.EDonkeyVersion),
			wire.IntTag(wire.CTEmuleUDP, 0),
			wire.IntTag(wire.CTEmuleVersion, uint32(sw.Compat)<<24|ver),
			wire.IntTag(wire.CTEmuleMisc1, 0),
			wire.IntTag(wire.CTEmuleMisc2, 0),
		},
	}
}

func (c *Client) share(h [16]byte) (Share, bool) {
	for _, s := range c.cfg.Shares {
		if s.File.Hash == h {
			return s, true
		}
	}
	return Share{}, false
}

var (
	bombOnce sync.Once
	bombPkt  []byte
)

// bomb is a packed packet of about 16 KiB that inflates to 16 MiB.
func bomb() []byte {
	bombOnce.Do(func() { bombPkt = wire.AppendPacked(nil, wire.OpQueueRanking, make([]byte, 16<<20)) })
	return bombPkt
}

const clientIdle = 30 * time.Second

func (c *Client) serve(nc net.Conn) {
	ctx := context.Background()
	pc := pconn.New(nc, nil, wire.DefaultLimits())
	send := func(proto, op byte, payload []byte) error {
		return pc.Send(ctx, clientIdle, proto, op, payload)
	}
	var uploading *Share
	for !c.closed.Load() {
		p, _, err := pc.Next(ctx, clientIdle)
		if err != nil {
			return
		}
		if p.Proto != wire.ProtoEDonkey {
			continue
		}
		switch p.Opcode {
		case wire.OpHello:
			if _, err := wire.DecodeHello(p.Payload, false); err != nil {
				return
			}
			c.Probed.Add(1)
			if send(wire.ProtoEDonkey, wire.OpHelloAnswer, c.hello(true).AppendTo(nil)) != nil {
				return
			}
			switch c.cfg.Behaviour {
			case Bomb:
				pc.SendRaw(ctx, clientIdle, bomb())
			case Oversize:
				pc.SendRaw(ctx, clientIdle, []byte{wire.ProtoEDonkey, 0, 0xE1, 0xF5, 0x05, wire.OpFileStatus})
				return
			}
		case wire.OpRequestFileName:
			if len(p.Payload) < 16 {
				return
			}
			h := [16]byte(p.Payload[:16])
			s, ok := c.share(h)
			if !ok {
				continue
			}
			if c.cfg.Behaviour == WrongFile {
				h[0] ^= 0xFF
			}
			send(wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: h, Name: s.File.Name}.AppendTo(nil))
		case wire.OpSetReqFileID:
			m, err := wire.DecodeHashMsg(p.Payload)
			if err != nil {
				return
			}
			s, ok := c.share(m.Hash)
			if !ok {
				send(wire.ProtoEDonkey, wire.OpFileReqAnsNoFile, m.AppendTo(nil))
				continue
			}
			send(wire.ProtoEDonkey, wire.OpFileStatus, c.status(s).AppendTo(nil))
		case wire.OpHashSetRequest:
			m, err := wire.DecodeHashMsg(p.Payload)
			if err != nil {
				return
			}
			if s, ok := c.share(m.Hash); ok && len(s.File.Parts) > 0 {
				send(wire.ProtoEDonkey, wire.OpHashSetAnswer, s.File.HashSet().AppendTo(nil))
			}
		case wire.OpStartUploadReq:
			m, err := wire.DecodeHashMsg(p.Payload)
			if err != nil {
				return
			}
			s, ok := c.share(m.Hash)
			switch {
			case !ok:
				send(wire.ProtoEDonkey, wire.OpFileReqAnsNoFile, m.AppendTo(nil))
			case c.cfg.Behaviour == Queue:
				send(wire.ProtoEMule, wire.OpQueueRanking, append([]byte{7, 0}, make([]byte, 10)...))
			default:
				uploading = &s
				send(wire.ProtoEDonkey, wire.OpAcceptUploadReq, nil)
			}
		case wire.OpRequestParts:
			rp, err := wire.DecodeRequestParts(p.Payload)
			if err != nil || uploading == nil || rp.Hash != uploading.File.Hash {
				return
			}
			if c.sendParts(ctx, pc, *uploading, rp) != nil {
				return
			}
		}
	}
}

// status is the client's OP_FILESTATUS for a share, lies included.
func (c *Client) status(s Share) wire.FileStatus {
	f := s.File
	st := wire.FileStatus{Hash: f.Hash}
	switch c.cfg.Behaviour {
	case WrongFile:
		st.Hash[0] ^= 0xFF
	case LiarWrongCount:
		st.Count = uint16(2 * wire.StatusPartCount(f.Size))
		st.Bits = make([]byte, (int(st.Count)+7)/8)
		for i := range st.Bits {
			st.Bits[i] = 0xFF
		}
		return st
	}
	if s.Have == nil && c.cfg.Behaviour != LiarSpareBits {
		return st // count 0: the whole file
	}
	st.Count = uint16(wire.StatusPartCount(f.Size))
	st.Bits = make([]byte, (int(st.Count)+7)/8)
	for i := 0; i < wire.Parts(f.Size); i++ {
		if s.Have == nil || i < len(s.Have) && s.Have[i] {
			st.Bits[i/8] |= 1 << (i % 8)
		}
	}
	if c.cfg.Behaviour == LiarSpareBits {
		st.Bits[len(st.Bits)-1] = 0xFF
	}
	return st
}

// sendParts sends the requested ranges in 10 KB packets, as eMule does;
// only ranges of parts the client has.
func (c *Client) sendParts(ctx context.Context, pc *pconn.Conn, s Share, rp wire.RequestParts) error {
	for i := range rp.Start {
		start, end := int64(rp.Start[i]), int64(rp.End[i])
		if end <= start {
			continue
		}
		if end > s.File.Size {
			return errors.New("range past the end")
		}
		for part := int(start / wire.PartSize); part <= int((end-1)/wire.PartSize); part++ {
			if s.Have != nil && (part >= len(s.Have) || !s.Have[part]) {
				return errors.New("range of a part not held")
			}
		}
		for off := start; off < end; {
			n := min(end-off, 10240)
			data := make([]byte, n)
			s.File.ReadAt(data, off)
			if c.cfg.Behaviour == CorruptData {
				data[0] ^= 1
			}
			sp := wire.SendingPart{Hash: s.File.Hash, Start: uint32(off), End: uint32(off + n), Data: data}
			if err := pc.Send(ctx, clientIdle, wire.ProtoEDonkey, wire.OpSendingPart, sp.AppendTo(nil)); err != nil {
				return err
			}
			c.Served.Add(n)
			off += n
		}
	}
	return nil
}

// Offer logs in to an eD2K server from the client's address and offers
// its shares; the login stays open until Close or Move.
func (c *Client) Offer(ctx context.Context, server netip.AddrPort) error {
	a := c.Addr()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: a.Addr().AsSlice()}, Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		return fmt.Errorf("lab client %s: %w", a, err)
	}
	pc := pconn.New(nc, nil, wire.DefaultLimits())
	login := wire.Login{UserHash: c.cfg.UserHash, Port: a.Port(), Tags: []wire.Tag{
		wire.StrTag(wire.CTName, c.cfg.Software.Nick), wire.IntTag(wire.CTVersion, wire.EDonkeyVersion)}}
	if err := pc.Send(ctx, clientIdle, wire.ProtoEDonkey, wire.OpLoginRequest, login.AppendTo(nil)); err != nil {
		nc.Close()
		return err
	}
	var id uint32
	for id == 0 {
		p, _, err := pc.Next(ctx, 10*time.Second)
		if err != nil {
			nc.Close()
			return fmt.Errorf("lab client %s: login: %w", a, err)
		}
		if p.Opcode == wire.OpIDChange {
			m, err := wire.DecodeIDChange(p.Payload)
			if err != nil || m.ID == 0 {
				nc.Close()
				return fmt.Errorf("lab client %s: login refused", a)
			}
			id = m.ID
		}
	}
	var of wire.OfferFiles
	for _, s := range c.cfg.Shares {
		of.Files = append(of.Files, wire.OfferedFile{Hash: s.File.Hash, ClientID: id, Port: a.Port(), Tags: []wire.Tag{
			wire.StrTag(wire.FTFileName, s.File.Name), wire.IntTag(wire.FTFileSize, uint32(s.File.Size))}})
	}
	if err := pc.Send(ctx, clientIdle, wire.ProtoEDonkey, wire.OpOfferFiles, of.AppendTo(nil)); err != nil {
		nc.Close()
		return err
	}
	c.mu.Lock()
	if c.server != nil {
		c.server.Close()
	}
	c.server = nc
	c.mu.Unlock()
	c.wg.Add(1)
	go func() { // drain whatever the server says, until closed
		defer c.wg.Done()
		defer nc.Close()
		for {
			if _, _, err := pc.Next(context.Background(), time.Hour); err != nil {
				return
			}
		}
	}()
	return nil
}

// PublishKad publishes one share as a source to the given Kad nodes,
// from a UDP socket on the client's address, and waits (up to timeout)
// for each node to confirm. It returns how many confirmed.
func (c *Client) PublishKad(ctx context.Context, s Share, nodes []kadwire.Contact, timeout time.Duration) (int, error) {
	a := c.Addr()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.Addr(), 0)))
	if err != nil {
		return 0, fmt.Errorf("lab client %s: %w", a, err)
	}
	defer pc.Close()
	req := kadwire.PublishSourceReq{File: kadwire.FileID(s.File.Hash), Source: kadwire.ID(c.cfg.UserHash), Tags: []kadwire.Tag{
		kadwire.IntTag(kadwire.TagSourceType, 1), kadwire.IntTag(kadwire.TagSourcePort, uint64(a.Port())),
		kadwire.IntTag(kadwire.TagFileSize, uint64(s.File.Size))}}
	dg := kadwire.Encode(kadwire.OpPublishSrcReq, req.AppendTo(nil))
	want := 0
	for _, n := range nodes {
		if _, err := pc.WriteToUDPAddrPort(dg, n.Addr); err == nil {
			want++
		}
	}
	got := 0
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	pc.SetReadDeadline(deadline)
	buf := make([]byte, 2048)
	for got < want {
		n, _, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		if p, err := kadwire.Decode(buf[:n], kadwire.DefaultMaxUnpacked); err == nil && p.Opcode == kadwire.OpPublishRes {
			got++
		}
	}
	return got, nil
}
