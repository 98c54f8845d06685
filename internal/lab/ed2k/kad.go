package ed2k

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// KadConfig says how a lab Kad node behaves.
type KadConfig struct {
	// Tolerance: store a source only when the file's id is within
	// kadwire.SearchTolerance of the node's id, as aMule does. Off, a
	// node stores whatever is published to it (small labs, where few ids
	// fall that close).
	Tolerance bool
	// ConnectBack answers firewall checks (KADEMLIA_FIREWALLED2_REQ) the
	// way aMule does: an answer with the asker's address, and a TCP
	// connection to its port with a hello and OP_KAD_FWTCPCHECK_ACK, so
	// that an aMule in the lab learns it is not firewalled.
	ConnectBack bool
	// TCPPort is the TCP port the node names (0: none).
	TCPPort uint16
	// MaxContacts bounds the routing table (default 1000).
	MaxContacts int
}

// KadNode is a lab Kad node: it routes (BOOTSTRAP, HELLO, KADEMLIA2_REQ),
// stores published sources, answers source searches, keyword searches
// (from the keyword entries the lab gives it: AddKeyword) and pings. It
// keeps no notes.
type KadNode struct {
	id       kadwire.ID
	cfg      KadConfig
	pc       *net.UDPConn
	addr     netip.AddrPort
	mu       sync.Mutex
	contacts []kadwire.Contact
	sources  map[kadwire.ID]map[kadwire.ID][]kadwire.Tag // file -> source id -> tags
	keywords map[kadwire.ID]map[kadwire.ID][]kadwire.Tag // keyword id -> file -> tags
	wg       sync.WaitGroup
	// Requests counts datagrams received; Searches counts source
	// searches answered with at least one source; KeywordSearches
	// keyword searches answered with at least one file.
	Requests, Searches, KeywordSearches atomic.Int64
}

// StartKadNode listens on addr with id.
func StartKadNode(addr netip.AddrPort, id kadwire.ID, cfg KadConfig) (*KadNode, error) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("lab kad node: %w", err)
	}
	if cfg.MaxContacts <= 0 {
		cfg.MaxContacts = 1000
	}
	n := &KadNode{id: id, cfg: cfg, pc: pc, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(),
		sources: map[kadwire.ID]map[kadwire.ID][]kadwire.Tag{}, keywords: map[kadwire.ID]map[kadwire.ID][]kadwire.Tag{}}
	n.wg.Add(1)
	go n.run()
	return n, nil
}

// Contact is the node as others name it.
func (n *KadNode) Contact() kadwire.Contact {
	return kadwire.Contact{ID: n.id, Addr: n.addr, TCPPort: n.cfg.TCPPort, Version: kadwire.Version}
}

// ID is the node's id.
func (n *KadNode) ID() kadwire.ID { return n.id }

// Close stops the node.
func (n *KadNode) Close() {
	n.pc.Close()
	n.wg.Wait()
}

// AddContacts adds contacts to the routing table (up to its bound).
func (n *KadNode) AddContacts(cs ...kadwire.Contact) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range cs {
		n.addLocked(c)
	}
}

func (n *KadNode) addLocked(c kadwire.Contact) {
	if c.ID == n.id || !c.Addr.Addr().Is4() || c.Addr.Port() == 0 {
		return
	}
	for i := range n.contacts {
		if n.contacts[i].ID == c.ID {
			n.contacts[i] = c
			return
		}
	}
	if len(n.contacts) < n.cfg.MaxContacts {
		n.contacts = append(n.contacts, c)
	}
}

// Contacts returns the routing table.
func (n *KadNode) Contacts() []kadwire.Contact {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.contacts)
}

// SourcesOf is the number of sources the node stores for a file.
func (n *KadNode) SourcesOf(file kadwire.ID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.sources[file])
}

// AddKeyword stores a keyword entry: under word's id (kadwire.KeywordID;
// word as wire.Words gives it), the file with its name, size and source
// count, as a node does on KADEMLIA2_PUBLISH_KEY_REQ. With Tolerance, a
// key too far from the node's id is not stored (false).
func (n *KadNode) AddKeyword(word string, f *File, sources int) bool {
	key := kadwire.KeywordID(word)
	if n.cfg.Tolerance && key.Xor(n.id).Top32() > kadwire.SearchTolerance {
		return false
	}
	tags := []kadwire.Tag{kadwire.StrTag(kadwire.TagFileName, f.Name), kadwire.IntTag(kadwire.TagFileSize, uint64(f.Size)),
		kadwire.IntTag(kadwire.TagSources, uint64(sources))}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.keywords[key] == nil {
		n.keywords[key] = map[kadwire.ID][]kadwire.Tag{}
	}
	n.keywords[key][kadwire.FileID(f.Hash)] = tags
	return true
}

// closest returns up to k contacts closest to target.
func (n *KadNode) closest(target kadwire.ID, k int) []kadwire.Contact {
	n.mu.Lock()
	cs := slices.Clone(n.contacts)
	n.mu.Unlock()
	slices.SortFunc(cs, func(a, b kadwire.Contact) int { return a.ID.Xor(target).Cmp(b.ID.Xor(target)) })
	return cs[:min(k, len(cs))]
}

func (n *KadNode) send(to netip.AddrPort, op byte, payload []byte) {
	n.pc.WriteToUDPAddrPort(kadwire.Encode(op, payload), to)
}

func (n *KadNode) run() {
	defer n.wg.Done()
	buf := make([]byte, 8<<10) // lab datagrams are small; a longer one is cut and dropped
	for {
		k, from, err := n.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		n.Requests.Add(1)
		p, err := kadwire.Decode(buf[:k], kadwire.DefaultMaxUnpacked)
		if err != nil {
			continue
		}
		n.handle(from, p)
	}
}

func (n *KadNode) handle(from netip.AddrPort, p kadwire.Packet) {
	switch p.Opcode {
	case kadwire.OpBootstrapReq:
		n.mu.Lock()
		cs := slices.Clone(n.contacts[:min(20, len(n.contacts))])
		n.mu.Unlock()
		n.send(from, kadwire.OpBootstrapRes, kadwire.BootstrapRes{ID: n.id, TCPPort: n.cfg.TCPPort, Version: kadwire.Version, Contacts: cs}.AppendTo(nil))
	case kadwire.OpHelloReq, kadwire.OpHelloRes:
		h, err := kadwire.DecodeHello(p.Payload)
		if err != nil {
			return
		}
		port := from.Port()
		if u := h.UDPPort(); u != 0 {
			port = u
		}
		if !h.UDPFirewalled() {
			n.AddContacts(kadwire.Contact{ID: h.ID, Addr: netip.AddrPortFrom(from.Addr(), port), TCPPort: h.TCPPort, Version: h.Version})
		}
		if p.Opcode == kadwire.OpHelloReq {
			n.send(from, kadwire.OpHelloRes, kadwire.Hello{ID: n.id, TCPPort: n.cfg.TCPPort, Version: kadwire.Version,
				Tags: []kadwire.Tag{kadwire.IntTag(kadwire.TagSourceUPort, uint64(n.addr.Port()))}}.AppendTo(nil))
		}
	case kadwire.OpReq:
		r, err := kadwire.DecodeReq(p.Payload)
		if err != nil || r.Receiver != n.id {
			return
		}
		n.send(from, kadwire.OpRes, kadwire.Res{Target: r.Target, Contacts: n.closest(r.Target, int(r.Type&0x1F))}.AppendTo(nil))
	case kadwire.OpPublishSrcReq:
		r, err := kadwire.DecodePublishSourceReq(p.Payload)
		if err != nil {
			return
		}
		if n.cfg.Tolerance && r.File.Xor(n.id).Top32() > kadwire.SearchTolerance {
			return
		}
		tags := []kadwire.Tag{kadwire.IntTag(kadwire.TagSourceIP, uint64(kadwire.IPToUint32(from.Addr())))}
		hasUDP := false
		for _, t := range r.Tags {
			if t.Named(kadwire.TagSourceIP) {
				continue
			}
			if t.Named(kadwire.TagSourceUPort) {
				hasUDP = true
			}
			tags = append(tags, t)
		}
		if !hasUDP {
			tags = append(tags, kadwire.IntTag(kadwire.TagSourceUPort, uint64(from.Port())))
		}
		n.mu.Lock()
		if n.sources[r.File] == nil {
			n.sources[r.File] = map[kadwire.ID][]kadwire.Tag{}
		}
		n.sources[r.File][r.Source] = tags
		n.mu.Unlock()
		n.send(from, kadwire.OpPublishRes, kadwire.PublishRes{File: r.File}.AppendTo(nil))
	case kadwire.OpSearchSourceReq:
		r, err := kadwire.DecodeSearchSourceReq(p.Payload)
		if err != nil {
			return
		}
		n.answer(from, r.Target, r.Start, n.sources, &n.Searches)
	case kadwire.OpSearchKeyReq:
		// The search expression, if any, is not applied: every file
		// stored under the keyword is returned.
		r, err := kadwire.DecodeSearchKeyReq(p.Payload)
		if err != nil {
			return
		}
		n.answer(from, r.Target, r.Start, n.keywords, &n.KeywordSearches)
	case kadwire.OpPing:
		n.send(from, kadwire.OpPong, kadwire.Pong{Port: from.Port()}.AppendTo(nil))
	case kadwire.OpFirewalled2Req:
		r, err := kadwire.DecodeFirewalled2Req(p.Payload)
		if err != nil || !n.cfg.ConnectBack {
			return
		}
		n.send(from, kadwire.OpFirewalledRes, kadwire.FirewalledRes{IP: from.Addr()}.AppendTo(nil))
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.connectBack(netip.AddrPortFrom(from.Addr(), r.TCPPort))
		}()
	}
}

// answer sends what index holds under target, from start, 50 entries a
// datagram, and counts the answer in answered; nothing for a key it does
// not hold, as aMule.
func (n *KadNode) answer(from netip.AddrPort, target kadwire.ID, start uint16, index map[kadwire.ID]map[kadwire.ID][]kadwire.Tag, answered *atomic.Int64) {
	n.mu.Lock()
	var results []kadwire.Result
	for id, tags := range index[target] {
		results = append(results, kadwire.Result{ID: id, Tags: tags})
	}
	n.mu.Unlock()
	if len(results) == 0 {
		return
	}
	answered.Add(1)
	slices.SortFunc(results, func(a, b kadwire.Result) int { return a.ID.Cmp(b.ID) })
	results = results[min(int(start&0x7FFF), len(results)):]
	for len(results) > 0 {
		k := min(50, len(results))
		n.send(from, kadwire.OpSearchRes, kadwire.SearchRes{Sender: n.id, Target: target, Results: results[:k]}.AppendTo(nil))
		results = results[k:]
	}
}

// connectBack connects to a client that asked for a firewall check,
// from the node's address, says hello, and acknowledges the check.
func (n *KadNode) connectBack(to netip.AddrPort) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: n.addr.Addr().AsSlice()}}
	nc, err := d.DialContext(ctx, "tcp", to.String())
	if err != nil {
		return
	}
	defer nc.Close()
	pc := pconn.New(nc, nil, wire.DefaultLimits())
	var uh [16]byte
	copy(uh[:], n.id[:])
	uh[5], uh[14] = 14, 111
	h := wire.Hello{UserHash: uh, ClientID: wire.AddrToID(n.addr.Addr()), Port: n.cfg.TCPPort, Tags: []wire.Tag{
		wire.StrTag(wire.CTName, "vigil lab kad node"), wire.IntTag(wire.CTVersion, wire.EDonkeyVersion),
		wire.IntTag(wire.CTEmuleVersion, 0x56<<24|1<<10), wire.IntTag(wire.CTEmuleMisc2, kadwire.Version)}}
	if pc.Send(ctx, 10*time.Second, wire.ProtoEDonkey, wire.OpHello, h.AppendTo(nil)) != nil {
		return
	}
	for {
		p, _, err := pc.Next(ctx, 10*time.Second)
		if err != nil {
			return
		}
		if p.Proto == wire.ProtoEDonkey && p.Opcode == wire.OpHelloAnswer {
			break
		}
	}
	pc.Send(ctx, 10*time.Second, wire.ProtoEMule, 0xA8, nil) // OP_KAD_FWTCPCHECK_ACK
	pc.Next(ctx, 2*time.Second)                              // let it read before the close
}
