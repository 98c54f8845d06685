package ed2k

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// NetConfig describes a lab eD2K network.
type NetConfig struct {
	// Seed makes the network reproducible (ids, user hashes, files).
	Seed uint64
	// Server starts the lab's eD2K server, to which every client offers
	// its shares.
	Server bool
	// KadNodes is the number of lab Kad nodes (0: no Kad). Clients
	// publish each share to the ten nodes closest to the file.
	KadNodes int
	// KadTolerance makes Kad nodes store only keys near their ids, as
	// aMule does (see KadConfig.Tolerance).
	KadTolerance bool
	// Files is the number of synthetic files; FileSizes are their sizes,
	// taken in turn (default: 300,000 bytes and two parts).
	Files     int
	FileSizes []int64
	// Names name the files in turn (default: synthetic-<seed>.bin); the
	// server and the Kad nodes index them by their words, as eMule
	// does. Neutral words only ("lab-keyword-alpha 01.bin").
	Names []string
	// Clients is the number of honest clients; each shares
	// SharesPerClient files (round robin), every third of them holding
	// only the first part of multi-part files.
	Clients         int
	SharesPerClient int
	// Movers of the honest clients move once to a new address, keeping
	// their user hash (Move).
	Movers int
	// Hostile adds one client per behaviour, sharing file 0.
	Hostile []Behaviour
	// Base is the first address of the lab's blocks: the server on
	// Base+1, Kad nodes from Base+1.0.0, clients from Base+2.0.0, moved
	// clients from Base+3.0.0 (default 127.80.0.0).
	Base netip.Addr
}

// Truth is what the lab knows of one (client, file) pair.
type Truth struct {
	UserHash  [16]byte
	Addrs     []netip.AddrPort // every address the client listened on, oldest first
	File      [16]byte
	Size      int64
	Complete  bool // the client holds every part
	Parts     int  // parts the client holds
	Behaviour Behaviour
}

// Net is a running lab eD2K network.
type Net struct {
	cfg     NetConfig
	Server  *Server
	Kad     []*KadNode
	Clients []*Client
	Files   []*File
	movers  []*Client
	moved   int
}

func addrAt(base netip.Addr, block, i int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(block)<<16 + uint32(i) + 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// StartNet starts a lab network and publishes every share. It returns
// once the server has every offer and the Kad nodes confirmed the
// publications (or ctx ends).
func StartNet(ctx context.Context, cfg NetConfig) (*Net, error) {
	if !cfg.Base.IsValid() {
		cfg.Base = netip.MustParseAddr("127.80.0.0")
	}
	if len(cfg.FileSizes) == 0 {
		cfg.FileSizes = []int64{300_000, wire.PartSize + 500_000}
	}
	if cfg.SharesPerClient <= 0 {
		cfg.SharesPerClient = 1
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1ab))
	n := &Net{cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	for i := 0; i < cfg.Files; i++ {
		f := NewFile(cfg.Seed<<20|uint64(i), cfg.FileSizes[i%len(cfg.FileSizes)])
		if i < len(cfg.Names) {
			f.Name = cfg.Names[i]
		}
		n.Files = append(n.Files, f)
	}
	if cfg.Server {
		s, err := StartServer(netip.AddrPortFrom(addrAt(cfg.Base, 0, 0), 0))
		if err != nil {
			return nil, err
		}
		n.Server = s
	}
	if err := n.startKad(rng); err != nil {
		return nil, err
	}
	userHash := func() [16]byte {
		var h [16]byte
		for i := range h {
			h[i] = byte(rng.Uint32())
		}
		h[5], h[14] = 14, 111
		return h
	}
	for i := 0; i < cfg.Clients; i++ {
		var shares []Share
		for k := 0; k < cfg.SharesPerClient && len(n.Files) > 0; k++ {
			f := n.Files[(i*cfg.SharesPerClient+k)%len(n.Files)]
			s := Share{File: f}
			if i%3 == 2 && wire.Parts(f.Size) > 1 {
				s.Have = make([]bool, wire.Parts(f.Size))
				s.Have[0] = true
			}
			shares = append(shares, s)
		}
		c, err := StartClient(ClientConfig{UserHash: userHash(), Software: AMule233,
			Addr: netip.AddrPortFrom(addrAt(cfg.Base, 2, i), 4662), Shares: shares})
		if err != nil {
			return nil, err
		}
		n.Clients = append(n.Clients, c)
		if i < cfg.Movers {
			n.movers = append(n.movers, c)
		}
	}
	for j, b := range cfg.Hostile {
		if len(n.Files) == 0 {
			break
		}
		c, err := StartClient(ClientConfig{UserHash: userHash(), Software: AMule233, Behaviour: b,
			Addr: netip.AddrPortFrom(addrAt(cfg.Base, 2, cfg.Clients+j), 4662), Shares: []Share{{File: n.Files[0]}}})
		if err != nil {
			return nil, err
		}
		n.Clients = append(n.Clients, c)
	}
	for _, c := range n.Clients {
		if err := n.publish(ctx, c); err != nil {
			return nil, err
		}
	}
	n.indexKeywords()
	ok = true
	return n, nil
}

func (n *Net) startKad(rng *rand.Rand) error {
	for i := 0; i < n.cfg.KadNodes; i++ {
		var id kadwire.ID
		for k := range id {
			id[k] = byte(rng.Uint32())
		}
		kn, err := StartKadNode(netip.AddrPortFrom(addrAt(n.cfg.Base, 1, i), 4672), id, KadConfig{Tolerance: n.cfg.KadTolerance})
		if err != nil {
			return err
		}
		n.Kad = append(n.Kad, kn)
	}
	// Each node knows up to 8 nodes per distance bucket (the number of
	// leading bits its id shares with theirs), like a Kademlia routing
	// table that has been running for a while.
	const perBucket = 8
	for _, a := range n.Kad {
		var buckets [129][]kadwire.Contact
		for _, b := range n.Kad {
			if a == b {
				continue
			}
			lz := a.id.Xor(b.id).LeadingZeros()
			if len(buckets[lz]) < perBucket {
				buckets[lz] = append(buckets[lz], b.Contact())
			}
		}
		var cs []kadwire.Contact
		for _, bk := range buckets {
			cs = append(cs, bk...)
		}
		a.mu.Lock()
		a.cfg.MaxContacts = max(a.cfg.MaxContacts, len(cs)+100)
		a.mu.Unlock()
		a.AddContacts(cs...)
	}
	return nil
}

// closestKad is the k lab nodes closest to id (the publisher's lookup,
// done by the lab's oracle).
func (n *Net) closestKad(id kadwire.ID, k int) []kadwire.Contact {
	cs := make([]kadwire.Contact, 0, len(n.Kad))
	for _, kn := range n.Kad {
		cs = append(cs, kn.Contact())
	}
	slices.SortFunc(cs, func(a, b kadwire.Contact) int { return a.ID.Xor(id).Cmp(b.ID.Xor(id)) })
	return cs[:min(k, len(cs))]
}

func (n *Net) publish(ctx context.Context, c *Client) error {
	if n.Server != nil {
		if err := c.Offer(ctx, n.Server.Addr()); err != nil {
			return err
		}
	}
	if len(n.Kad) > 0 {
		for _, s := range c.Shares() {
			nodes := n.closestKad(kadwire.FileID(s.File.Hash), 10)
			got, err := c.PublishKad(ctx, s, nodes, 5*time.Second)
			if err != nil {
				return err
			}
			if got == 0 && !n.cfg.KadTolerance {
				return fmt.Errorf("lab: no Kad node confirmed %s's publication", c.Addr())
			}
		}
	}
	if n.Server != nil {
		deadline := time.Now().Add(5 * time.Second)
		for _, s := range c.Shares() {
			for !n.serverHas(s.File.Hash, c.Addr()) {
				if time.Now().After(deadline) {
					return errors.New("lab: the server did not register an offer")
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

// indexKeywords stores, for every word of every shared file's name, a
// keyword entry on the ten Kad nodes closest to the word's id: what
// eMule's keyword publishing (KADEMLIA2_PUBLISH_KEY_REQ) leaves there,
// done by the lab's oracle rather than on the wire.
func (n *Net) indexKeywords() {
	if len(n.Kad) == 0 {
		return
	}
	shared := map[*File]int{}
	for _, c := range n.Clients {
		for _, s := range c.Shares() {
			shared[s.File]++
		}
	}
	byID := map[kadwire.ID]*KadNode{}
	for _, kn := range n.Kad {
		byID[kn.id] = kn
	}
	for _, f := range n.Files {
		if shared[f] == 0 {
			continue
		}
		for _, w := range wire.Words(f.Name) {
			for _, c := range n.closestKad(kadwire.KeywordID(w), 10) {
				byID[c.ID].AddKeyword(w, f, shared[f])
			}
		}
	}
}

// Names returns the names of the lab's files, by hash.
func (n *Net) Names() map[[16]byte]string {
	out := map[[16]byte]string{}
	for _, f := range n.Files {
		out[f.Hash] = f.Name
	}
	return out
}

func (n *Net) serverHas(h [16]byte, a netip.AddrPort) bool {
	for _, s := range n.Server.Sources(h) {
		if sa, ok := s.Addr(); ok && sa == a {
			return true
		}
	}
	return false
}

// MoveAll moves every mover to its next address and publishes again
// from there.
func (n *Net) MoveAll(ctx context.Context) error {
	n.moved++
	for i, c := range n.movers {
		if err := c.Move(netip.AddrPortFrom(addrAt(n.cfg.Base, 2+n.moved, i), 4662)); err != nil {
			return err
		}
		if err := n.publish(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// Bootstrap returns up to k Kad node addresses to join through.
func (n *Net) Bootstrap(k int) []netip.AddrPort {
	var out []netip.AddrPort
	for _, kn := range n.Kad[:min(k, len(n.Kad))] {
		out = append(out, kn.Contact().Addr)
	}
	return out
}

// Truth returns the ground truth: one row per (client, file) pair.
func (n *Net) Truth() []Truth {
	var out []Truth
	for i, c := range n.Clients {
		addrs := []netip.AddrPort{netip.AddrPortFrom(addrAt(n.cfg.Base, 2, i), 4662)}
		if slices.Contains(n.movers, c) {
			for m := 1; m <= n.moved; m++ {
				addrs = append(addrs, netip.AddrPortFrom(addrAt(n.cfg.Base, 2+m, slices.Index(n.movers, c)), 4662))
			}
		}
		for _, s := range c.Shares() {
			t := Truth{UserHash: c.UserHash(), Addrs: addrs, File: s.File.Hash, Size: s.File.Size,
				Complete: s.Complete(), Behaviour: c.Behaviour(), Parts: wire.Parts(s.File.Size)}
			if !t.Complete {
				t.Parts = 0
				for _, h := range s.Have {
					if h {
						t.Parts++
					}
				}
			}
			out = append(out, t)
		}
	}
	return out
}

// Close stops everything.
func (n *Net) Close() {
	for _, c := range n.Clients {
		c.Close()
	}
	for _, k := range n.Kad {
		k.Close()
	}
	if n.Server != nil {
		n.Server.Close()
	}
}
