package lab

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/vigil-oss/vigil/internal/observe"
)

// Hostile device kinds: what a device of the hostile lab does. Honest
// kinds say on the wire exactly what they hold; the others lie, forge or
// reuse, and the ground truth says what they really hold and who they
// really are.
const (
	// KindLabClient is a client of the lab proper (anacrolix/torrent),
	// seeder or leecher.
	KindLabClient = "lab_client"
	// KindAnnouncedOnly is listed in the DHT for a torrent but nothing
	// listens at its address (a peer behind NAT, or gone).
	KindAnnouncedOnly = "honest_announced_only"
	// KindAckNothing accepts the handshake and sends have_none.
	KindAckNothing = "honest_acknowledged_nothing"
	// KindPartial sends a valid bitfield of the pieces it holds.
	KindPartial = "honest_partial"
	// KindComplete sends a valid, full bitfield.
	KindComplete = "honest_complete"
	// KindLiarSpareBits holds one piece and sends a bitfield of the
	// right length with its spare bits set.
	KindLiarSpareBits = "liar_spare_bits"
	// KindLiarExtraBytes holds one piece and sends a bitfield with spare
	// bits set and an extra byte of ones (the 80 3F FF).
	KindLiarExtraBytes = "liar_extra_bytes"
	// KindLiarHavePastEnd holds nothing and sends have for pieces past
	// the end of the torrent.
	KindLiarHavePastEnd = "liar_have_past_end"
	// KindLiarHaveAllAfterBitfield holds two pieces, sends them in a
	// valid bitfield, then have_all (BEP 6 allows have_all only in place
	// of a bitfield).
	KindLiarHaveAllAfterBitfield = "liar_have_all_after_bitfield"
	// KindLiarHaveAllNothing holds nothing and sends have_all, a
	// well-formed message: only fetching a piece (verify) tells.
	KindLiarHaveAllNothing = "liar_have_all_holding_nothing"
	// KindLiarWrongHash answers the handshake with another torrent's
	// info-hash.
	KindLiarWrongHash = "liar_wrong_infohash"
	// KindReplayer presents the peer id of a lab client, from its own
	// address, while that client is online.
	KindReplayer = "peer_id_replayer"
	// KindNodeIDForger holds pieces honestly but its DHT port answers
	// the sensor's ping with a lab client's node id.
	KindNodeIDForger = "node_id_forger"
	// KindNodeIDSpoofer holds pieces honestly; the answer to the
	// sensor's ping of its DHT port comes from another address, with a
	// lab client's node id.
	KindNodeIDSpoofer = "node_id_spoofed_reply"
	// KindReassignedFirst and KindReassignedSecond are two devices that
	// use the same IP:port one after the other.
	KindReassignedFirst  = "reassigned_address_first"
	KindReassignedSecond = "reassigned_address_second"
	// KindInnocent is an address a forged DHT reply names: nothing of
	// the torrent was ever there.
	KindInnocent = "innocent_named_by_spoofer"
)

// TruthItem is what a device really did with one torrent.
type TruthItem struct {
	// Torrent is the index of the torrent in the manifest.
	Torrent int `json:"torrent"`
	// Hashes are every hash the torrent is known by (hex): v1, full v2,
	// truncated v2.
	Hashes []string `json:"hashes"`
	// Watched: the torrent is on the lab's watch-list (the sensor looks
	// for no other).
	Watched bool `json:"watched"`
	// InDHT: the device is listed in the lab's DHT for the torrent.
	InDHT bool `json:"in_dht"`
	// OnTracker: the device announces the torrent to the lab tracker.
	OnTracker bool `json:"on_tracker"`
	// Shown is the highest level the device's own, well-formed messages
	// justify: announced (it accepted no handshake), acknowledged,
	// partial or complete.
	Shown observe.Level `json:"shown"`
	// ShownPieces is how many distinct in-range pieces its well-formed
	// messages advertised (-1: any number up to Pieces, for lab clients
	// whose download progresses during the run).
	ShownPieces int `json:"shown_pieces"`
	// HeldPieces is how many pieces it really holds (-1 as above).
	HeldPieces int `json:"held_pieces"`
	// Pieces is the torrent's piece count.
	Pieces int `json:"pieces"`
}

// Stint is a period during which a device used an address.
type Stint struct {
	Addr netip.AddrPort `json:"addr"`
	From time.Time      `json:"from"`
	To   time.Time      `json:"to,omitzero"` // zero: until the lab stopped
}

// TruthDevice is one device of the lab as it really is.
type TruthDevice struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// PeerID and NodeID are the device's own identifiers (hex); what it
	// presents may differ (a replayer presents another's).
	PeerID string `json:"peer_id,omitempty"`
	NodeID string `json:"node_id,omitempty"`
	// Presents is the identifier the device shows that belongs to
	// another device (replayers, forgers), and Victim that device.
	Presents string      `json:"presents,omitempty"`
	Victim   string      `json:"victim,omitempty"`
	Stints   []Stint     `json:"stints"`
	Items    []TruthItem `json:"items"`
}

// Truth is the ground truth of a lab run with hostile devices.
type Truth struct {
	Devices []TruthDevice `json:"devices"`
	// Spoofer is the address forged DHT replies come from (never a
	// device: it answers queries it was not asked).
	Spoofer netip.Addr `json:"spoofer"`
	// Forged counts the forged DHT replies sent.
	Forged int `json:"forged_replies"`
}

// DeviceAt returns the device that used addr's IP at t, if any. Devices
// are told apart by IP: in the lab every device has addresses of its own,
// and the two that share one (KindReassigned*) never at the same time.
func (t *Truth) DeviceAt(ip netip.Addr, at time.Time) (*TruthDevice, *Stint) {
	for i := range t.Devices {
		d := &t.Devices[i]
		for k := range d.Stints {
			s := &d.Stints[k]
			if s.Addr.Addr() != ip || at.Before(s.From) || (!s.To.IsZero() && !at.Before(s.To)) {
				continue
			}
			return d, s
		}
	}
	return nil, nil
}

// Item returns the device's truth for the torrent a hash names.
func (d *TruthDevice) Item(hexHash string) (*TruthItem, bool) {
	for i := range d.Items {
		if slices.Contains(d.Items[i].Hashes, hexHash) {
			return &d.Items[i], true
		}
	}
	return nil, false
}

// HostileConfig sets up the hostile devices.
type HostileConfig struct {
	// Seed draws addresses, peer ids and node ids.
	Seed uint64
	// SensorAddr is the sensor's address: the spoofer answers the DHT
	// queries that come from it, as an attacker aiming at a known
	// sensor does.
	SensorAddr netip.Addr
	// Predict is how many transaction ids past the one it saw the
	// spoofer also forges replies for (a counter is predictable).
	Predict int
	// SpoofEvery: the spoofer answers one get_peers query in this many
	// (0 or 1: every one). A spoofer that wins every race also hides the
	// real answers; answering some lets both effects be measured.
	SpoofEvery int
}

// Hostile is the running hostile part of a lab.
type Hostile struct {
	l       *Lab
	cfg     HostileConfig
	devices []*hostileDevice
	spoof   *spoofer
	udp     []*net.UDPConn
	reR     *hostileDevice // KindReassignedFirst, then Second
	reNext  *hostileDevice

	mu    sync.Mutex
	truth Truth
	wg    sync.WaitGroup
}

// hostileBase is the host index within a place where hostile devices
// start, far from the lab's own peers.
const hostileBase = 200 * 254

// StartHostile starts the hostile devices on l and lists them in its DHT:
// honest peers of every level, liars about pieces, a peer-id replayer,
// node-id forgers, two devices that will share an address, and a DHT
// spoofer that answers the sensor's get_peers for watched torrents with
// forged replies naming innocent addresses. Only loopback addresses are
// used. Close stops them (Lab.Close does not).
func StartHostile(ctx context.Context, l *Lab, cfg HostileConfig) (_ *Hostile, err error) {
	if !cfg.SensorAddr.IsLoopback() {
		return nil, fmt.Errorf("%w: sensor address %v is not a loopback address", ErrConfig, cfg.SensorAddr)
	}
	if l.cfg.Family != Family4 {
		return nil, fmt.Errorf("%w: hostile devices run on IPv4 only; the lab runs on family %s", ErrConfig, l.cfg.Family)
	}
	var items []*Torrent
	for _, t := range l.torrents {
		if t.Watched && t.built.HasV1 && t.built.NumPieces >= 4 {
			items = append(items, t)
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: hostile devices need a watched v1 or hybrid torrent of at least 4 pieces", ErrConfig)
	}
	var seeders []*peer
	for _, p := range l.peers {
		if p.role == RoleSeeder {
			seeders = append(seeders, p)
		}
	}
	h := &Hostile{l: l, cfg: cfg}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	r := rand.New(rand.NewPCG(cfg.Seed, 0x4057))
	host := hostileBase
	nextAddr := func() (netip.Addr, error) {
		pl := Places[host%(len(Places)-1)]
		a, err := hostIn(pl.Prefix, host)
		host++
		return a, err
	}
	kinds := []string{
		KindAnnouncedOnly, KindAckNothing, KindPartial, KindComplete,
		KindLiarSpareBits, KindLiarExtraBytes, KindLiarHavePastEnd,
		KindLiarHaveAllAfterBitfield, KindLiarHaveAllNothing, KindLiarWrongHash,
		KindReplayer, KindNodeIDForger, KindNodeIDSpoofer,
		KindReassignedFirst,
	}
	for i, kind := range kinds {
		t := items[i%len(items)]
		d := &hostileDevice{name: fmt.Sprintf("%s-%d", kind, i), kind: kind, torrent: t, torrents: l.torrents}
		d.peerID = randPeerID(r, "-HL0001-")
		d.nodeID = randID(r)
		if d.addr, err = nextAddr(); err != nil {
			return nil, err
		}
		if len(seeders) > 0 {
			d.victim = seeders[i%len(seeders)]
		}
		if kind == KindReplayer || kind == KindNodeIDForger || kind == KindNodeIDSpoofer {
			if d.victim == nil {
				return nil, fmt.Errorf("%w: %s needs a lab seeder to imitate", ErrConfig, kind)
			}
		}
		if kind == KindNodeIDSpoofer {
			if d.spoofFrom, err = nextAddr(); err != nil {
				return nil, err
			}
		}
		h.devices = append(h.devices, d)
	}
	// The second user of the reassigned address: another torrent if there
	// is one (a probe of the same address and torrent is not repeated
	// within the sensor's ProbeEvery).
	first := h.devices[len(h.devices)-1]
	second := &hostileDevice{name: "reassigned_address_second", kind: KindReassignedSecond, torrents: l.torrents,
		torrent: items[(slices.Index(items, first.torrent)+1)%len(items)], addr: first.addr}
	second.peerID = randPeerID(r, "-HL0001-")
	second.nodeID = randID(r)
	h.reR, h.reNext = first, second

	now := time.Now()
	for _, d := range h.devices {
		if err := d.start(ctx, 0); err != nil {
			return nil, err
		}
		d.from = now
		h.announce(d)
	}
	if err := h.startSpoofer(r, nextAddr, seeders); err != nil {
		return nil, err
	}
	return h, nil
}

func randPeerID(r *rand.Rand, prefix string) (id [20]byte) {
	copy(id[:], prefix)
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	for k := len(prefix); k < 20; k++ {
		id[k] = alnum[r.IntN(len(alnum))]
	}
	return id
}

// announce lists d in every lab DHT node's peer store under each swarm
// hash of its torrent, as if it had announced to all of them.
func (h *Hostile) announce(d *hostileDevice) {
	for _, hx := range d.torrent.SwarmHashes() {
		var ih metainfo.Hash
		if b, err := hex.DecodeString(hx); err == nil && len(b) == 20 {
			copy(ih[:], b)
		} else {
			continue
		}
		for _, n := range h.l.nodes {
			n.store.AddPeer(ih, krpc.NodeAddr{IP: d.addr.AsSlice(), Port: int(d.port)})
		}
	}
}

// unannounce removes d from every lab DHT node's peer store.
func (h *Hostile) unannounce(d *hostileDevice) {
	for _, hx := range d.torrent.SwarmHashes() {
		var ih metainfo.Hash
		if b, err := hex.DecodeString(hx); err == nil && len(b) == 20 {
			copy(ih[:], b)
		} else {
			continue
		}
		for _, n := range h.l.nodes {
			n.store.remove(ih, d.addrPort())
		}
	}
}

// ReassignedAddr is the address two devices use one after the other.
func (h *Hostile) ReassignedAddr() netip.AddrPort { return h.reR.addrPort() }

// Reassign stops the first user of the reassigned address and starts the
// second on the same IP:port, listed in the DHT for its own torrent; the
// first is no longer listed. at is when the first one's use of the
// address ends in the truth.
func (h *Hostile) Reassign(ctx context.Context, at time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.reNext == nil {
		return errors.New("lab: the address was already reassigned")
	}
	first, second := h.reR, h.reNext
	first.stop()
	first.to = at
	// The two users are a month apart in the store (the harness stamps
	// the second's observations later): the first's DHT announces have
	// long expired.
	h.unannounce(first)
	if err := second.start(ctx, first.port); err != nil {
		return fmt.Errorf("lab: reassigned address %v: %w", first.addrPort(), err)
	}
	second.from = time.Now()
	h.devices = append(h.devices, second)
	h.announce(second)
	h.reNext = nil
	return nil
}

// Truth returns the ground truth now: the lab's clients (from its
// manifest) and the hostile devices.
func (h *Hostile) Truth() Truth {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.l.Manifest()
	var tr Truth
	itemsOf := func(t *Torrent) TruthItem {
		idx := slices.Index(h.l.torrents, t)
		var hs []string
		for _, x := range []string{t.InfoHash, t.InfoHashV2, t.InfoHashV2Short} {
			if x != "" {
				hs = append(hs, x)
			}
		}
		return TruthItem{Torrent: idx, Hashes: hs, Pieces: t.built.NumPieces, Watched: t.Watched}
	}
	start := h.l.started
	for i, p := range h.l.peers {
		mp := m.Peers[i]
		d := TruthDevice{Name: fmt.Sprintf("%s-%d", p.role, p.index), Kind: KindLabClient, PeerID: mp.PeerID, NodeID: mp.NodeID}
		// Stints: previous addresses, in order, each until the client
		// stopped there, then the current one from that moment.
		from := start
		p.mu.Lock()
		for k, a := range p.prev {
			d.Stints = append(d.Stints, Stint{Addr: a, From: from, To: p.left[k]})
			from = p.left[k]
		}
		p.mu.Unlock()
		cur, _ := netip.ParseAddrPort(mp.Addr)
		d.Stints = append(d.Stints, Stint{Addr: cur, From: from})
		for _, t := range p.torrents {
			it := itemsOf(t)
			it.InDHT, it.OnTracker = true, t.Tracker != ""
			it.Shown, it.ShownPieces, it.HeldPieces = observe.Complete, it.Pieces, it.Pieces
			if p.role == RoleLeecher {
				it.ShownPieces, it.HeldPieces = -1, -1
			}
			d.Items = append(d.Items, it)
		}
		tr.Devices = append(tr.Devices, d)
	}
	for _, hd := range h.devices {
		d := TruthDevice{Name: hd.name, Kind: hd.kind, PeerID: hex.EncodeToString(hd.peerID[:]), NodeID: hex.EncodeToString(hd.nodeID[:])}
		d.Stints = []Stint{{Addr: hd.addrPort(), From: hd.from, To: hd.to}}
		it := itemsOf(hd.torrent)
		it.InDHT = true
		it.Shown, it.ShownPieces, it.HeldPieces = hd.truthLevel(it.Pieces)
		d.Items = append(d.Items, it)
		if hd.victim != nil {
			switch hd.kind {
			case KindReplayer:
				d.Presents, d.Victim = hex.EncodeToString(hd.victim.peerID[:]), fmt.Sprintf("%s-%d", hd.victim.role, hd.victim.index)
			case KindNodeIDForger, KindNodeIDSpoofer:
				d.Presents, d.Victim = hex.EncodeToString(hd.victim.nodeID[:]), fmt.Sprintf("%s-%d", hd.victim.role, hd.victim.index)
			}
		}
		tr.Devices = append(tr.Devices, d)
	}
	if h.spoof != nil {
		tr.Spoofer = h.spoof.from
		tr.Forged = int(h.spoof.sent.Load())
		for _, in := range h.spoof.innocents {
			if in.has != nil {
				continue // a lab client, listed above
			}
			tr.Devices = append(tr.Devices, TruthDevice{Name: "innocent-" + in.addr.String(), Kind: KindInnocent,
				Stints: []Stint{{Addr: in.addr, From: start}}, Items: []TruthItem{}})
		}
	}
	return tr
}

// Close stops every hostile device and the spoofer.
func (h *Hostile) Close() error {
	h.l.SetQueryTap(nil)
	h.mu.Lock()
	for _, d := range h.devices {
		d.stop()
	}
	for _, c := range h.udp {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}
