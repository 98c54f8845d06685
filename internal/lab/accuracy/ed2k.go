package accuracy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/lab"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/pipeline"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// Device kinds of the eD2K lab (lab.TruthDevice.Kind); the hostile ones
// are named for their labed2k.Behaviour.
const (
	KindED2KHonestComplete = "honest_complete" // shares whole files
	KindED2KHonestPartial  = "honest_partial"  // holds only the first part of a two-part file
	KindED2KMover          = "honest_mover"    // moves to a new address half-way, keeping its user hash
	KindED2KUserHashClone  = "user_hash_clone" // another device presenting a lab client's user hash at the same time
	// KindED2KInnocent is an address where nothing listens, named as a
	// source of file 0 in Kad by a publication whose UDP source address
	// was forged (Kad index poisoning): it never had anything.
	KindED2KInnocent = "innocent_named_in_kad"
)

// The eD2K lab's hostile clients, one each, all sharing file 0: liars
// about parts, a client answering for another file, a compressed-packet
// bomb, an oversized packet, and two that behave honestly unless Vigil
// fetches a part (off: the harness runs without --verify).
var ed2kHostile = []labed2k.Behaviour{labed2k.LiarSpareBits, labed2k.LiarWrongCount, labed2k.WrongFile,
	labed2k.Bomb, labed2k.Oversize, labed2k.Queue, labed2k.CorruptData}

const (
	// ed2kCloneVictim is the lab client whose user hash the clone
	// presents: one that does not move (clients 0 and 1 do).
	ed2kCloneVictim = 3
	// ed2kCloneHost and ed2kInnocentHost are the clone's and the
	// innocent address's host numbers in the clients' block.
	ed2kCloneHost    = 100
	ed2kInnocentHost = 150
)

// ED2KLabConfig is the eD2K lab the measurement runs (labed2k.StartNet):
// the lab's eD2K server, 24 Kad nodes, 3 synthetic files (300,000 bytes,
// one part; 10,228,000 bytes, two parts), all watched; 6 honest clients
// sharing 2 files each (clients 2 and 5 hold only the first part of the
// two-part file), of which clients 0 and 1 move to a new address half-way
// keeping their user hash; and the hostile clients of ed2kHostile. Every
// client offers its files to the server and publishes them in Kad.
func ED2KLabConfig(c Config) labed2k.NetConfig {
	base := c.ED2KBase
	if !base.IsValid() {
		base = DefaultConfig().ED2KBase
	}
	return labed2k.NetConfig{Seed: c.Seed, Server: true, KadNodes: 24, Files: 3, Clients: 6, SharesPerClient: 2, Movers: 2,
		Hostile: ed2kHostile, Base: base}
}

// ED2KSensorConfig is the eD2K sensor as measured: ed2k.LabConfig
// (searches every 10 s, probe timeout 5 s, a (client, file) pair probed
// again after 5 min, no wire budget), probes on, verify off, on
// 127.0.0.1, asking the lab's server and joining its Kad through 4 nodes.
func ED2KSensorConfig(c Config, n *labed2k.Net) ed2k.Config {
	sc := ed2k.LabConfig()
	sc.ID, sc.Version, sc.Listen = "accuracy", c.Version, netip.MustParseAddr("127.0.0.1")
	sc.Servers = []netip.AddrPort{n.Server.Addr()}
	sc.KadBootstrap = n.Bootstrap(4)
	return sc
}

// RunED2K measures the eD2K and Kad sensor: it starts the eD2K lab
// (ED2KLabConfig), a clone of one client's user hash and a forged Kad
// source naming an innocent address (poisonKad), runs the sensor
// through the pipeline ('vigil sensor ed2k': ingest placing each
// observation, the analysis scoring what ingest commits) into a temporary
// SQLite store, moves the movers half-way, and compares every observation,
// link and ISP request row with the truth.
func RunED2K(ctx context.Context, c Config) (_ *Report, err error) {
	def := DefaultConfig()
	if c.Duration <= 0 {
		c.Duration = def.Duration
	}
	if c.StaleWindow <= 0 {
		c.StaleWindow = def.StaleWindow
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := c.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "vigil-accuracy-ed2k-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	nc := ED2KLabConfig(c)
	n, err := labed2k.StartNet(ctx, nc)
	if err != nil {
		return nil, fmt.Errorf("accuracy: eD2K lab: %w", err)
	}
	defer n.Close()
	clone, cloneKad, err := startClone(ctx, n, nc.Base)
	if err != nil {
		return nil, err
	}
	defer clone.Close()
	innocent, err := poisonKad(ctx, n, nc.Base, c.Seed)
	if err != nil {
		return nil, err
	}

	sq, err := sqlite.Open(ctx, filepath.Join(dir, "accuracy.db"), sqlite.DefaultConfig())
	if err != nil {
		return nil, err
	}
	defer sq.Close()
	if err := importED2KWatchlist(ctx, sq, n); err != nil {
		return nil, err
	}
	files, err := lab.WriteGeo(filepath.Join(dir, "geo"))
	if err != nil {
		return nil, err
	}
	gc := geo.DefaultConfig()
	gc.PlaceFiles, gc.ASNFiles, gc.ProviderFile = []string{files.City}, []string{files.ASN}, files.Providers
	loc, err := geo.Open(gc)
	if err != nil {
		return nil, fmt.Errorf("accuracy: lab geo database: %w", err)
	}
	defer loc.Close()

	p, err := pipeline.New(ctx, pipeline.Config{Store: sq, Analysis: sq, Geo: loc, Log: log})
	if err != nil {
		return nil, err
	}
	sc := ED2KSensorConfig(c, n)
	if _, err := p.AddED2K(ctx, pipeline.ED2K{Sensor: sc, Scope: scope.DefaultConfig()}); err != nil {
		return nil, err
	}
	var (
		mu     sync.Mutex
		moveAt time.Time
	)
	p.Go("eD2K lab movers", func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Duration / 2):
		}
		mu.Lock()
		moveAt = time.Now()
		mu.Unlock()
		if err := n.MoveAll(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("moving the lab's movers: %w", err)
		}
		return nil
	})
	runCtx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	if err := p.Run(runCtx); err != nil {
		return nil, fmt.Errorf("accuracy: eD2K pipeline: %w", err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	mu.Lock()
	moved := moveAt
	mu.Unlock()

	truth := ed2kTruth(n, clone, cloneKad, start, moved)
	truth.Devices = append(truth.Devices, lab.TruthDevice{Name: KindED2KInnocent, Kind: KindED2KInnocent,
		Stints: []lab.Stint{{Addr: innocent, From: start}}})
	in := Inputs{Network: NetworkED2K, Truth: truth, Sensor: []netip.Addr{sc.Listen},
		StaleWindow: c.StaleWindow, Rows: map[string][]isp.Row{}}
	rows := c.ISPRows
	if rows == nil {
		rows = TimelineISPRows
	}
	if err := gather(ctx, sq, rows, time.Now().Add(time.Hour), &in); err != nil {
		return nil, err
	}
	rep := Evaluate(in)
	rep.Seed, rep.Duration = c.Seed, c.Duration
	return rep, nil
}

// gather reads every stored observation, every target with its timeline
// and its ISP request rows (made at now) into in.
func gather(ctx context.Context, sq *sqlite.Store, rows func(context.Context, *sqlite.Store, string, time.Time) ([]isp.Row, error), now time.Time, in *Inputs) error {
	if err := sq.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		in.Observations = append(in.Observations, *o)
		return nil
	}); err != nil {
		return err
	}
	for off := 0; ; off += 1000 {
		ts, total, err := sq.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 1000, Offset: off})
		if err != nil {
			return err
		}
		for _, t := range ts {
			d, err := sq.TargetWithTimeline(ctx, t.ID, analysis.AllAgencies, 1<<20)
			if err != nil {
				return err
			}
			in.Targets = append(in.Targets, *d)
			if in.Rows[t.ID], err = rows(ctx, sq, t.ID, now); err != nil {
				return err
			}
		}
		if off+len(ts) >= total || len(ts) == 0 {
			return nil
		}
	}
}

// TimelineISPRows builds a target's ISP request rows as internal/api
// builds the request: from every timeline entry as it was recorded
// (method, marks, the sensor's own address, the transcript digest) and
// the target's active links. 'vigil lab accuracy' passes the command's own
// builder instead, so that what is measured is what it prints.
func TimelineISPRows(ctx context.Context, sq *sqlite.Store, id string, now time.Time) ([]isp.Row, error) {
	d, err := sq.TargetWithTimeline(ctx, id, analysis.AllAgencies, 1<<20)
	if err != nil {
		return nil, err
	}
	tg := isp.Target{ID: d.ID, Jurisdiction: d.Jurisdiction, Agency: d.Jurisdiction, Score: d.Score}
	for _, l := range d.Links {
		if l.State == "active" {
			tg.Links = append(tg.Links, isp.Link{A: l.A, B: l.B, Rule: l.Rule, Evidence: l.Evidence, Reason: l.Reason,
				Confidence: l.Confidence, State: l.State})
		}
	}
	s := make([]isp.Sighting, 0, len(d.Timeline))
	for i := range d.Timeline {
		o := d.Timeline[i].Observation()
		sg := isp.FromObservation(&o)
		sg.Item = d.Timeline[i].Kind + ":" + d.Timeline[i].Hash
		s = append(s, sg)
	}
	req := isp.Build(tg, s, now, isp.DefaultRetention())
	var out []isp.Row
	for _, g := range req.Groups {
		out = append(out, g.Rows...)
	}
	return out, nil
}

// importED2KWatchlist puts every lab file on the watch-list as an ed2k
// link (name, size, hash), the form lists of ed2k hashes come in.
func importED2KWatchlist(ctx context.Context, sq *sqlite.Store, n *labed2k.Net) error {
	var b strings.Builder
	for _, f := range n.Files {
		fmt.Fprintf(&b, "ed2k://|file|%s|%d|%s|/\n", f.Name, f.Size, hex.EncodeToString(f.Hash[:]))
	}
	data := []byte(b.String())
	res, err := watchlist.Parse(bytes.NewReader(data), watchlist.ParseOptions{File: "lab-ed2k.txt"})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	_, err = sq.ImportList(ctx, store.ListImport{Name: "lab-watchlist", Source: "vigil lab", Format: res.Format,
		SHA256: hex.EncodeToString(sum[:]), By: "vigil lab accuracy", Entries: res.Entries})
	return err
}

// addrAt is labed2k's address plan: host i (from 0) of a block of base.
func addrAt(base netip.Addr, block, i int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(block)<<16 + uint32(i) + 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// startClone starts a client on an address of its own that presents the
// user hash of client ed2kCloneVictim (a copied configuration, or a hash
// taken from a Kad entry), sharing a file the victim does not share,
// offered to the server and published in Kad like the others. It reports
// whether a Kad node confirmed the publication.
func startClone(ctx context.Context, n *labed2k.Net, base netip.Addr) (*labed2k.Client, bool, error) {
	victim := n.Clients[ed2kCloneVictim]
	var file *labed2k.File
	for _, f := range n.Files {
		if !slices.ContainsFunc(victim.Shares(), func(s labed2k.Share) bool { return s.File == f }) {
			file = f
			break
		}
	}
	if file == nil {
		return nil, false, errors.New("accuracy: the clone's victim shares every file")
	}
	addr := netip.AddrPortFrom(addrAt(base, 2, ed2kCloneHost), 4662)
	share := labed2k.Share{File: file}
	cl, err := labed2k.StartClient(labed2k.ClientConfig{UserHash: victim.UserHash(), Software: labed2k.AMule233, Addr: addr,
		Shares: []labed2k.Share{share}})
	if err != nil {
		return nil, false, fmt.Errorf("accuracy: user hash clone: %w", err)
	}
	fail := func(err error) (*labed2k.Client, bool, error) {
		cl.Close()
		return nil, false, fmt.Errorf("accuracy: user hash clone: %w", err)
	}
	if err := cl.Offer(ctx, n.Server.Addr()); err != nil {
		return fail(err)
	}
	got, err := cl.PublishKad(ctx, share, closestKad(n, file.Hash), 5*time.Second)
	if err != nil {
		return fail(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := n.Server.UserHash(file.Hash, addr); ok {
			break
		}
		if time.Now().After(deadline) {
			return fail(errors.New("the lab server did not register its offer"))
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return cl, got > 0, nil
}

// poisonKad publishes, to the Kad nodes closest to file 0, a source of
// that file whose UDP source address is forged: an address of the
// clients' block where nothing listens (a lab client started there and
// stopped before it publishes, so that the datagrams leave from that
// address). The Kad nodes store the address as a source, as aMule's do
// (the sender's address is the source's), and name it in their answers.
// It returns the address named.
func poisonKad(ctx context.Context, n *labed2k.Net, base netip.Addr, seed uint64) (netip.AddrPort, error) {
	addr := netip.AddrPortFrom(addrAt(base, 2, ed2kInnocentHost), 4662)
	sum := sha256.Sum256(fmt.Appendf(nil, "vigil accuracy: innocent %d", seed))
	share := labed2k.Share{File: n.Files[0]}
	cl, err := labed2k.StartClient(labed2k.ClientConfig{UserHash: [16]byte(sum[:16]), Software: labed2k.AMule233, Addr: addr,
		Shares: []labed2k.Share{share}})
	if err != nil {
		return addr, fmt.Errorf("accuracy: Kad poisoner: %w", err)
	}
	cl.Close()
	got, err := cl.PublishKad(ctx, share, closestKad(n, share.File.Hash), 5*time.Second)
	if err != nil {
		return addr, fmt.Errorf("accuracy: Kad poisoner: %w", err)
	}
	if got == 0 {
		return addr, errors.New("accuracy: Kad poisoner: no Kad node stored the forged source")
	}
	return addr, nil
}

// closestKad is the ten lab Kad nodes closest to a file: the publisher's
// lookup, done by the lab's oracle as labed2k does.
func closestKad(n *labed2k.Net, file [16]byte) []kadwire.Contact {
	nodes := make([]kadwire.Contact, 0, len(n.Kad))
	for _, k := range n.Kad {
		nodes = append(nodes, k.Contact())
	}
	id := kadwire.FileID(file)
	slices.SortFunc(nodes, func(a, b kadwire.Contact) int { return a.ID.Xor(id).Cmp(b.ID.Xor(id)) })
	return nodes[:min(10, len(nodes))]
}

// ed2kShown is what a strict reader takes from a client's own messages
// about a share: the level, and the parts counted (only in range, and a
// part map that breaks the format is never complete).
//
//   - honest, queue, corrupt_data (honest unless Vigil fetches a part):
//     complete for a whole file (a part map of count 0), partial with the
//     parts it holds otherwise.
//   - liar_spare_bits (the right count, every part and the spare bits set)
//     and liar_wrong_count (twice the count, every bit set): partial with
//     every part in range: malformed maps, never complete.
//   - wrong_file (its answers name another hash), bomb and oversize (a
//     packet the reader must refuse comes before any answer about the
//     file): announced; only the server and Kad name them.
func ed2kShown(b labed2k.Behaviour, complete bool, have, parts int) (observe.Level, int) {
	switch b {
	case labed2k.LiarSpareBits, labed2k.LiarWrongCount:
		return observe.Partial, parts
	case labed2k.WrongFile, labed2k.Bomb, labed2k.Oversize:
		return observe.Announced, 0
	}
	if complete {
		return observe.Complete, parts
	}
	return observe.Partial, have
}

// ed2kTruth is the eD2K lab's truth in the form Evaluate reads: one
// device per client (told apart by its first address), its stints (a
// mover's first address until moved, its second after), and per file
// what it showed and holds. InDHT says a Kad node confirmed the
// client's publication of the file (labed2k.StartNet fails otherwise),
// OnTracker that the client offered it to the lab server: the eD2K
// counterparts of the lab's DHT and tracker (methodRecall).
func ed2kTruth(n *labed2k.Net, clone *labed2k.Client, cloneKad bool, start, moved time.Time) lab.Truth {
	fileIndex := map[[16]byte]int{}
	for i, f := range n.Files {
		fileIndex[f.Hash] = i
	}
	item := func(tr labed2k.Truth, b labed2k.Behaviour, inKad bool) lab.TruthItem {
		parts := wire.Parts(tr.Size)
		shown, shownParts := ed2kShown(b, tr.Complete, tr.Parts, parts)
		return lab.TruthItem{Torrent: fileIndex[tr.File], Hashes: []string{hex.EncodeToString(tr.File[:])}, Watched: true,
			InDHT: inKad, OnTracker: true, Shown: shown, ShownPieces: shownParts, HeldPieces: tr.Parts, Pieces: parts}
	}
	var t lab.Truth
	byAddr := map[netip.AddrPort]int{}
	victim := ""
	for _, tr := range n.Truth() {
		i, ok := byAddr[tr.Addrs[0]]
		if !ok {
			i = len(t.Devices)
			byAddr[tr.Addrs[0]] = i
			d := lab.TruthDevice{Stints: []lab.Stint{{Addr: tr.Addrs[0], From: start}}}
			if len(tr.Addrs) > 1 && !moved.IsZero() {
				d.Stints[0].To = moved
				d.Stints = append(d.Stints, lab.Stint{Addr: tr.Addrs[1], From: moved})
			}
			t.Devices = append(t.Devices, d)
		}
		d := &t.Devices[i]
		d.Items = append(d.Items, item(tr, tr.Behaviour, true))
		switch {
		case tr.Behaviour != labed2k.Honest:
			d.Kind = string(tr.Behaviour)
		case len(tr.Addrs) > 1:
			d.Kind = KindED2KMover
		case !tr.Complete || d.Kind == KindED2KHonestPartial:
			d.Kind = KindED2KHonestPartial
		default:
			d.Kind = KindED2KHonestComplete
		}
		d.Name = fmt.Sprintf("%s-%d", d.Kind, i)
		if i == ed2kCloneVictim {
			victim = d.Name
		}
	}
	uh := clone.UserHash()
	cd := lab.TruthDevice{Name: KindED2KUserHashClone, Kind: KindED2KUserHashClone, Presents: hex.EncodeToString(uh[:]), Victim: victim,
		Stints: []lab.Stint{{Addr: clone.Addr(), From: start}}}
	for _, s := range clone.Shares() {
		tr := labed2k.Truth{UserHash: uh, File: s.File.Hash, Size: s.File.Size, Complete: true, Parts: wire.Parts(s.File.Size)}
		cd.Items = append(cd.Items, item(tr, labed2k.Honest, cloneKad))
	}
	t.Devices = append(t.Devices, cd)
	return t
}
