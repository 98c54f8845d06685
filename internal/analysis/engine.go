package analysis

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Engine keeps devices, targets, quarantine and leads up to date as
// observations arrive. It is safe for concurrent use.
type Engine struct {
	mu  sync.Mutex
	b   Backend
	cfg Config

	watermark int64
	nextSeq   int64
	loading   bool // replaying what the tables already reflect: mark no dirt

	// The store's analysis as this view last saw it (Changes.Version):
	// a save at another version finds that another process saved since,
	// and the view catches up before it saves again (resync).
	version int64
	stored  int64 // the store's watermark then
	lastDec int64 // number of the last decision applied
	seq     int64 // seq of the observation being folded (alertSeqs)
	// alertSeqs: the seq of the observation behind each pending alert,
	// so that one another process already saved is not raised twice.
	alertSeqs []int64

	storedEps map[string]EndpointID
	eps       []*endpoint                // by id; eps[0] unused
	epByKey   map[netip.AddrPort][]int32 // every generation of an IP:port, oldest first
	linksOf   map[int32][]linkKey        // links by endpoint
	epConf    map[int32]float64          // confidence each endpoint belongs to its target (summarize)
	pending   map[netip.AddrPort][]pendingObs
	nPending  int
	nSuspect  int             // leads of keyword searches alone (suspectOnly)
	dropped   map[string]int  // observations left out of the analysis, by reason
	homeEp    map[int64]int32 // endpoint born with each target number
	items     map[hashkind.Hash]*item
	itemList  []*item
	idents    map[identKey]*ident
	claims    map[netip.AddrPort]*claim // listen ports declared in DHT announces, by the IP:port declared
	links     map[linkKey]*link
	linkIDs   map[string]int64
	oddIDs    map[*obsRef]string   // observation ids not in canonical form, by the span field keeping them (obsRef)
	places    map[epPlace]*epPlace // endpoints' places, one copy each (placeOf)
	strs      map[string]string    // endpoints' agencies, networks and transports, one copy each (intern)
	lists     map[string]*[]string // endpoints' lists of agencies and networks, one copy each (listWith)
	nextLink  int64
	blocked   map[string]Decision // rule|evidence rejected by an analyst
	uf        unionFind

	flags        map[int64]map[string]bool
	shares       map[int64]map[string]Share
	assigned     map[int64]Decision
	investigator map[int64]Decision

	quarantine map[hashkind.Hash]*QuarantineRecord
	leads      map[string]*LeadState
	leadsByEp  map[netip.AddrPort]map[string]bool

	daily map[dailyKey]int

	// The figures' roll-ups (figures.go): the observations not yet in the
	// stored roll-ups, each with its seq, profile (interned) and endpoint
	// (their devices are known at save), the last seq whose observations
	// the stored roll-ups count, and whether the observation being
	// processed counts in them.
	figLog      []figEntry
	figProfs    map[figProfile]int32
	figProfList []figProfile
	figWM       int64
	figCount    bool
	figForce    bool      // the next save writes the roll-ups whatever the interval
	lastFigSave time.Time // when they were last written

	mergedStored map[string]string     // target id -> the target it was merged into, as stored (none: no entry)
	written      map[string]writtenSig // target id -> access and categories last written
	lastSave     time.Time
	unsaved      int // observations Add processed since the last save

	// dirt
	dirtyEps   map[int32]bool
	dirtyFiles map[fileKey]bool
	dirtyDaily map[dailyKey]bool
	dirtyLinks map[linkKey]bool
	dirtyLeads map[string]bool
	changes    Changes
	lastStamp  time.Time
}

// pendingObs is a third party's sighting of a non-public address, held
// until a first-hand contact at that address within the window confirms
// it (or forever left out).
type pendingObs struct {
	seq int64
	o   observe.Observation
}

// Bounds on the sightings held for confirmation.
const (
	maxPendingPerAddr = 32
	maxPending        = 1 << 16
)

// Reasons an observation is left out of the analysis (Engine.Dropped).
const (
	DropNonPublicUnconfirmed = "non_public_third_party" // a third party named a non-public address never confirmed first-hand
	DropSuspectLeadsFull     = "suspect_leads_full"     // a keyword search's file, with MaxSuspectLeads leads of searches alone held
	DropDeploymentAddress    = "deployment_address"     // the endpoint is one of the deployment's own addresses (Config.Own): a fellow sensor
	DropTimeImplausible      = "time_implausible"       // marked time_implausible: when it was seen is unknown
)

type dailyKey struct {
	day             int64
	agency, network string
}

type fileKey struct{ ep, item int32 }

type endpoint struct {
	id          int32
	gen         int32 // generation of the IP:port: 0 first, then one per silence longer than the window
	key         netip.AddrPort
	home        int64
	hasFH       bool // a first-hand contact was seen
	vpn         bool
	hosting     bool
	fhFirst     int64 // span of the first-hand contacts
	fhLast      int64
	first, last int64
	count       int
	transport   string
	files       []fileAgg // by item index (file, addFile)
	agency      string    // of the most recent non-VPN observation
	agencyNS    int64
	anyAgency   string // of the most recent observation
	anyAgencyNS int64
	// agencies: every agency its observations were routed to, once each
	// (mostly one); networks: every network it was seen on. Lists are
	// shared by the endpoints that have the same (Engine.listWith).
	agencies  *[]string
	networks  *[]string
	place     *epPlace // noPlace until placed
	placeNS   int64
	overlaps  map[int32]linkKey  // overlap-rule links, by the other endpoint
	fhDays    []dayFile          // UTC days with a first-hand observation, each with the files seen that day (the score's days_active), by day and file
	probes    *probeSpan         // span of the first-hand peer_probe contacts, nil when none (announce_listen_port joins only such endpoints)
	lastIdent [identSlots]*ident // the ident of each identifier in bytes seen here last (identOf)
}

// fileAgg is what an endpoint showed of one file (item idx). An
// endpoint keeps its files in a slice sorted by item (endpoint.file): a
// map and a pointer to each took about twice the bytes.
type fileAgg struct {
	idx         int32
	level       observe.Level
	count       int
	first, last int64
	sharing     bool
	offered     bool
	// stored: the store holds this file's row, as far as this engine
	// knows (replayed at load, or written by one of its saves); a save
	// marks the others EndpointFileRow.New.
	stored bool
	// First-hand facts only (observe.Observation.FirstHand): the score's
	// files, possession, sharing, repetition and recency rest on these.
	fh        bool          // seen first-hand at least once
	fhLevel   observe.Level // highest level of a first-hand observation
	fhOffered bool          // offered first-hand (sharing, level acknowledged or more)
	fhSharing bool          // a first-hand observation was sharing
	// fhHours are the distinct clock hours (since the Unix epoch) of its
	// first-hand sightings, sorted: repetition counts distinct hours,
	// whatever the order observations arrive in (a late one of an hour
	// already counted adds nothing).
	fhHours []int32
	fhLast  int64 // time of the last first-hand sighting
}

type item struct {
	idx      int32
	hash     hashkind.Hash
	matches  []observe.Match
	severity int
	// signed: an observation no mark says is unsigned or forged named
	// it; matches and severity are then theirs alone (item).
	signed bool
	eps    map[int32]struct{}
	hours  map[int64]int
	first  int64 // hour of the first sighting
}

// New returns an Engine on b with its state rebuilt: decisions loaded and
// the observations up to the stored watermark replayed (without writes).
// Call CatchUp afterwards to process observations stored since.
func New(ctx context.Context, b Backend, cfg Config) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	snap, err := b.AnalysisLoad(ctx)
	if err != nil {
		return nil, fmt.Errorf("analysis: loading state: %w", err)
	}
	e := &Engine{
		b: b, cfg: cfg,
		watermark: snap.Watermark, nextSeq: max(snap.NextSeq, 1), version: snap.Version, stored: snap.Watermark,
		storedEps: snap.Endpoints, eps: []*endpoint{nil},
		epByKey: map[netip.AddrPort][]int32{}, linksOf: map[int32][]linkKey{}, epConf: map[int32]float64{},
		pending: map[netip.AddrPort][]pendingObs{}, dropped: map[string]int{}, homeEp: map[int64]int32{}, items: map[hashkind.Hash]*item{},
		idents: map[identKey]*ident{}, claims: map[netip.AddrPort]*claim{}, links: map[linkKey]*link{}, linkIDs: map[string]int64{},
		blocked: map[string]Decision{},
		flags:   map[int64]map[string]bool{}, shares: map[int64]map[string]Share{},
		assigned: map[int64]Decision{}, investigator: map[int64]Decision{},
		quarantine: map[hashkind.Hash]*QuarantineRecord{}, leads: map[string]*LeadState{},
		leadsByEp: map[netip.AddrPort]map[string]bool{}, daily: map[dailyKey]int{},
		mergedStored: snap.MergedInto, written: map[string]writtenSig{},
		figWM: snap.FiguresWatermark, figProfs: map[figProfile]int32{}, lastFigSave: time.Now(),
	}
	if e.storedEps == nil {
		e.storedEps = map[string]EndpointID{}
	}
	if e.mergedStored == nil {
		e.mergedStored = map[string]string{}
	}
	e.uf.add() // slot 0, as eps[0]
	e.resetDirt()
	for _, id := range snap.LinkIDs {
		e.nextLink = max(e.nextLink, id)
	}
	e.nextLink++
	if snap.LinkIDs != nil {
		e.linkIDs = snap.LinkIDs
	}
	for _, q := range snap.Quarantine {
		q := q
		e.quarantine[q.Hash] = &q
	}
	for i := range snap.Leads {
		l := snap.Leads[i]
		e.leads[l.Key] = &l
		if l.suspectOnly() {
			e.nSuspect++
		}
		for k := range l.Seen {
			if ap, err := netip.ParseAddrPort(k); err == nil {
				e.leadOn(ap, l.Key)
			}
		}
	}
	for _, d := range snap.Decisions {
		e.apply(d)
		e.lastDec = max(e.lastDec, d.ID)
	}
	if e.watermark > 0 {
		e.loading = true
		err := b.AnalysisObservations(ctx, 0, e.watermark, func(seq int64, o *observe.Observation) error {
			e.observe(seq, o)
			return nil
		})
		e.loading = false
		if err != nil {
			return nil, fmt.Errorf("analysis: replaying observations up to %d: %w", e.watermark, err)
		}
	}
	// Links or holds the replay found that the tables lack (rules changed),
	// and what the replay added to the figures.
	e.figForce = true
	if err := e.save(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Engine) resetDirt() {
	e.dirtyEps = map[int32]bool{}
	e.dirtyFiles = map[fileKey]bool{}
	e.dirtyDaily = map[dailyKey]bool{}
	e.dirtyLinks = map[linkKey]bool{}
	e.dirtyLeads = map[string]bool{}
	e.changes = Changes{}
	e.alertSeqs = nil
}

// Watermark returns the seq of the last observation processed.
func (e *Engine) Watermark() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.watermark
}

// Add processes a batch that ingest has just committed (call it from
// ingest's OnCommit). Observations already processed are skipped; any
// stored since the watermark that the batch lacks (written by another
// process) are read from the store first, so the watermark never skips.
// It is Seqs then AddSeqs.
func (e *Engine) Add(ctx context.Context, batch []observe.Observation) error {
	seqs, err := e.Seqs(ctx, batch)
	if err != nil {
		return err
	}
	return e.AddSeqs(ctx, batch, seqs)
}

// Seqs looks up the seqs the store gave a committed batch's observations
// (0: not stored), for AddSeqs. It reads only the store, not the
// engine's state: a caller may look up the next batch's while AddSeqs
// processes one (a round trip to the database a batch, beside the
// analysis's own work).
func (e *Engine) Seqs(ctx context.Context, batch []observe.Observation) ([]int64, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	ids := make([]string, len(batch))
	for i := range batch {
		ids[i] = batch[i].ID
	}
	seqs, _, err := e.b.AnalysisSeqs(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("analysis: looking up %d observation ids: %w", len(ids), err)
	}
	return seqs, nil
}

// AddSeqs is Add with the batch's seqs already looked up (Seqs: one for
// each of the batch's observations, in its order). As in Add, the seqs
// decide the order processed and the watermark what is new.
func (e *Engine) AddSeqs(ctx context.Context, batch []observe.Observation, seqs []int64) error {
	if len(batch) == 0 {
		return nil
	}
	if len(seqs) != len(batch) {
		return fmt.Errorf("analysis: %d seqs for a batch of %d observations", len(seqs), len(batch))
	}
	order := make([]int, 0, len(batch))
	for i, s := range seqs {
		if s > 0 {
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool { return seqs[order[a]] < seqs[order[b]] })
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, i := range order {
		s := seqs[i]
		if s <= e.watermark {
			continue
		}
		if s > e.watermark+1 {
			if err := e.catchUpLocked(ctx, s-1); err != nil {
				return err
			}
			if s <= e.watermark {
				continue // a save on the way caught up past it (resync)
			}
		}
		e.observe(s, &batch[i])
		e.watermark = s
		e.unsaved++
	}
	if !e.saveDue() {
		return nil
	}
	return e.save(ctx)
}

// saveDue says whether Add saves now: every SaveInterval, or while the
// caller is behind (Config.Behind) every SaveEvery observations or
// BehindInterval.
func (e *Engine) saveDue() bool {
	since := time.Since(e.lastSave)
	if e.cfg.Behind != nil && e.cfg.Behind() {
		return e.spanFull(e.unsaved) || since >= max(e.cfg.BehindInterval, e.cfg.SaveInterval)
	}
	return since >= e.cfg.SaveInterval
}

// Flush writes what Add has not written yet (call it on shutdown, or
// before reading targets that must include the last batch).
func (e *Engine) Flush(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.figForce = true
	return e.save(ctx)
}

// CatchUp processes every observation stored after the watermark (those
// another process wrote, e.g. `vigil observations import`). When it read
// any, the figures' roll-ups are written at once; otherwise they are
// written when due (Config.FiguresInterval), as Add's saves write them:
// an ingest's poll, which finds its own process's observations already
// read, does not rewrite every roll-up at each poll.
func (e *Engine) CatchUp(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	before := e.watermark
	if err := e.catchUpLocked(ctx, 0); err != nil {
		return err
	}
	if e.watermark != before {
		e.figForce = true
	}
	return e.save(ctx)
}

// spanFull says whether the changes of a backlog (unsaved observations
// since the last save) are to be saved now: SaveEvery observations, or
// SaveRows endpoints waiting to be written.
func (e *Engine) spanFull(unsaved int) bool {
	return unsaved >= e.cfg.SaveEvery || len(e.dirtyEps) >= e.cfg.SaveRows
}

// catchUpLocked reads observations in (watermark, upTo] (upTo 0: all),
// saving when a span is full (spanFull).
func (e *Engine) catchUpLocked(ctx context.Context, upTo int64) error {
	n, span := 0, 0
	err := e.b.AnalysisObservations(ctx, e.watermark, upTo, func(seq int64, o *observe.Observation) error {
		if seq <= e.watermark {
			return nil // a save on the way caught up past it (resync)
		}
		e.observe(seq, o)
		e.watermark = seq
		n++
		if span++; e.spanFull(span) {
			span = 0
			// WAL: a write on another connection does not disturb this read.
			return e.save(ctx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("analysis: catching up after %d: %w", e.watermark, err)
	}
	if e.cfg.Log != nil && n > 0 {
		e.cfg.Log.Info("analysis caught up", "observations", n, "watermark", e.watermark,
			"held_unconfirmed", e.nPending, "dropped_unconfirmed", e.dropped[DropNonPublicUnconfirmed],
			"deployment_address", e.dropped[DropDeploymentAddress])
	}
	return nil
}

// Rescore recomputes and writes every target (recency decays with time:
// run it daily).
func (e *Engine) Rescore(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := 1; id < len(e.eps); id++ {
		e.dirtyEps[int32(id)] = true
	}
	return e.save(ctx)
}

// Run catches up every poll and rescores every rescore interval until ctx
// ends (for a process that did not ingest the observations itself).
func (e *Engine) Run(ctx context.Context, poll, rescore time.Duration) error {
	pt := time.NewTicker(poll)
	defer pt.Stop()
	rt := time.NewTicker(rescore)
	defer rt.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-pt.C:
			if err := e.CatchUp(ctx); err != nil {
				return err
			}
		case <-rt.C:
			if err := e.Rescore(ctx); err != nil {
				return err
			}
		}
	}
}

func (e *Engine) item(o *observe.Observation) *item {
	it := e.items[o.Item.Hash]
	if it == nil {
		it = &item{idx: int32(len(e.itemList)), hash: o.Item.Hash, eps: map[int32]struct{}{}, hours: map[int64]int{}, first: o.Time.UnixNano() / int64(time.Hour)}
		e.items[o.Item.Hash] = it
		e.itemList = append(e.itemList, it)
	}
	// The matches an observation names are its sensor's word, which a
	// publisher on the bus can write too: what no sensor signed
	// (unsigned_import, signature_failed) names the file's matches only
	// while nothing signed names the file, so that it cannot raise the
	// severity of a file a sensor saw (and with it every target holding
	// it). The outcome does not depend on the order of arrival.
	if weak := o.HasMark(observe.MarkUnsigned) || o.HasMark(observe.MarkSignatureFailed); weak && it.signed {
		return it
	} else if !weak && !it.signed {
		it.signed, it.matches, it.severity = true, nil, 0
	}
	for _, m := range o.Item.Matched {
		if !slices.Contains(it.matches, m) {
			it.matches = append(it.matches, m)
			it.severity = max(it.severity, e.cfg.Severity(m.List, m.Category))
		}
	}
	return it
}

// EndpointKey is the stored key of an endpoint: "ip:port" for the first
// generation of an IP:port, "ip:port#n" for the n-th after it.
func EndpointKey(ap netip.AddrPort, gen int) string {
	if gen == 0 {
		return ap.String()
	}
	return ap.String() + "#" + strconv.Itoa(gen)
}

// nonPublic reports whether o's address names no subscriber on its own:
// marked so by the sensor, or private, loopback, link-local, multicast,
// unspecified or in the shared carrier-grade NAT space.
func nonPublic(o *observe.Observation) bool {
	if o.HasMark(observe.MarkNonPublicAddress) {
		return true
	}
	ip := o.Endpoint.IP.Unmap()
	return !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || cgnat.Contains(ip)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// endpoint returns the endpoint o belongs to: the generation of its IP:port
// whose span, widened by the window, holds o's time; a new generation when
// none does. A third party's sighting of a non-public address joins only a
// generation with a first-hand contact within the window of it, and never
// makes one: two homes' 192.168.1.20:51413 named by PEX are not one
// endpoint. It returns nil for such a sighting with no confirmation yet.
func (e *Engine) endpoint(o *observe.Observation) *endpoint {
	ap := groupKey(o)
	t := o.Time.UnixNano()
	w := int64(e.cfg.EndpointWindow)
	thirdParty := !o.FirstHand()
	unconfirmed := thirdParty && nonPublic(o)
	gens := e.epByKey[ap]
	// Only the generations next to t in time can take it (the one whose
	// span holds t, or the last before it and the first after it), so
	// that no span is stretched over another's.
	var before, after *endpoint
	for _, id := range gens {
		p := e.eps[id]
		if p.last < t && (before == nil || p.last > before.last) {
			before = p
		}
		if p.first > t && (after == nil || p.first < after.first) {
			after = p
		}
	}
	// The generation whose span holds t, else the nearest within the
	// window: generations' spans stay disjoint, whatever the order in
	// which observations arrive.
	var best *endpoint
	var bestGap int64
	for _, id := range gens {
		p := e.eps[id]
		inside := p.first <= t && t <= p.last
		if !inside && p != before && p != after {
			continue
		}
		lo, hi := p.first, p.last
		switch {
		case unconfirmed:
			if !p.hasFH {
				continue
			}
			lo, hi = p.fhFirst, p.fhLast
		case thirdParty && p.hasFH && !inside:
			// A third party's claim outside the span is measured from
			// the endpoint's own contacts: claims are often stale (a
			// tracker's list, a DHT node's store, a lying node), and a
			// chain of them must not carry an IP:port's endpoint over to
			// the next subscriber the address is given to.
			lo, hi = p.fhFirst, p.fhLast
		}
		g := max(lo-t, t-hi, 0)
		if g <= w && (best == nil || g < bestGap) {
			best, bestGap = p, g
		}
	}
	if best != nil {
		return best
	}
	if unconfirmed {
		return nil
	}
	id := int32(len(e.eps))
	gen := len(gens)
	p := &endpoint{id: id, key: ap, gen: int32(gen), transport: e.intern(o.Endpoint.Transport), place: noPlace, agencies: noList, networks: noList}
	if s, ok := e.storedEps[EndpointKey(ap, gen)]; ok {
		// Keep the target number it was given, even when endpoints come
		// in a different order and it gets another id. The snapshot may
		// hold endpoints another process made after its watermark (it is
		// read table by table while others save): numbers go on after
		// theirs, as in that process.
		p.home = s.Home
		e.nextSeq = max(e.nextSeq, s.Home+1)
	} else {
		p.home = e.nextSeq
		e.nextSeq++
		e.changes.NextSeq = e.nextSeq
	}
	e.eps = append(e.eps, p)
	e.epByKey[ap] = append(gens, id)
	e.homeEp[p.home] = id
	e.uf.add()
	return p
}

// groupKey is the IP:port an observation is grouped under: its own
// endpoint, for a DHT announce the UDP source it was sent from. The port
// an announce declares (Client.ListenPort) never groups it: behind
// carrier-grade NAT another subscriber of the same address may be the one
// listening there. An announce joins the endpoint probed at the declared
// port only through an announce_listen_port link (linkDeclared).
func groupKey(o *observe.Observation) netip.AddrPort {
	return netip.AddrPortFrom(o.Endpoint.IP.Unmap(), o.Endpoint.Port)
}

// latestEp is the newest generation of an IP:port.
func (e *Engine) latestEp(ap netip.AddrPort) (int32, bool) {
	g := e.epByKey[ap]
	if len(g) == 0 {
		return 0, false
	}
	return g[len(g)-1], true
}

// Dropped returns how many observations were left out of the analysis, by
// reason (DropNonPublicUnconfirmed), and how many are still held for a
// first-hand confirmation.
func (e *Engine) Dropped() (map[string]int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.dropped), e.nPending
}

// hold keeps a third party's sighting of a non-public address until a
// first-hand contact at that address confirms it, within bounds.
func (e *Engine) hold(seq int64, o *observe.Observation) {
	ap := groupKey(o)
	q := e.pending[ap]
	if len(q) >= maxPendingPerAddr || e.nPending >= maxPending {
		e.dropped[DropNonPublicUnconfirmed]++
		return
	}
	c := *o
	c.Marks = slices.Clone(o.Marks)
	e.pending[ap] = append(q, pendingObs{seq: seq, o: c})
	e.nPending++
}

// confirm folds the held sightings of p's address that its first-hand
// span, widened by the window, now covers.
func (e *Engine) confirm(p *endpoint) {
	q := e.pending[p.key]
	if len(q) == 0 {
		return
	}
	w := int64(e.cfg.EndpointWindow)
	kept := q[:0]
	var fold []pendingObs
	for _, x := range q {
		if t := x.o.Time.UnixNano(); t >= p.fhFirst-w && t <= p.fhLast+w {
			fold = append(fold, x)
		} else {
			kept = append(kept, x)
		}
	}
	e.nPending -= len(fold)
	if len(kept) == 0 {
		delete(e.pending, p.key)
	} else {
		e.pending[p.key] = kept
	}
	for i := range fold {
		e.fold(fold[i].seq, &fold[i].o, p)
	}
}

// observe folds one observation into the state.
func (e *Engine) observe(seq int64, o *observe.Observation) {
	if o.HasMark(observe.MarkTimeImplausible) {
		// Its time is not when its peer was seen (docs/evidence.md,
		// "Times that cannot be true"): nothing placed in time (a
		// target, last_seen, the timeline, a score, quarantine hours,
		// a link, the roll-ups) may rest on it. The watermark passes it.
		e.dropped[DropTimeImplausible]++
		return
	}
	if e.cfg.Own.Contains(netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)) {
		// A fellow sensor of the deployment: stored (it is in its
		// sensor's signed chain), never a suspect.
		e.dropped[DropDeploymentAddress]++
		return
	}
	// The roll-ups count only what the stored ones lack: at a replay (a
	// store made before them; a crash between two writes cannot: the
	// roll-ups are written with the watermark), and when catching up with
	// another process whose roll-ups are ahead (resync).
	e.figCount = seq > e.figWM
	p := e.endpoint(o)
	if p == nil {
		e.hold(seq, o)
		return
	}
	e.fold(seq, o, p)
	if o.FirstHand() {
		e.confirm(p)
	}
}

// fold adds o to endpoint p.
func (e *Engine) fold(seq int64, o *observe.Observation, p *endpoint) {
	e.seq = seq
	t := o.Time.UnixNano()
	firstHand := o.FirstHand()
	// A probe in which the peer answered for another item
	// (infohash_mismatch, stored by older sensors) shows the endpoint
	// talking, not holding this item: the file is not first-hand.
	itemFH := firstHand && !o.HasMark(observe.MarkInfohashMismatch)
	if firstHand {
		if !p.hasFH || t < p.fhFirst {
			p.fhFirst = t
		}
		if !p.hasFH || t > p.fhLast {
			p.fhLast = t
		}
		p.hasFH = true
		if o.Method == observe.MethodPeerProbe {
			e.widenProbes(p, t, o.ID)
		}
	}
	it := e.item(o)
	if itemFH {
		p.addFHDay(int32(o.Time.Unix()/86400), it.idx)
	}
	if p.count == 0 || t < p.first {
		p.first = t
	}
	if t > p.last {
		p.last = t
		if p.transport != o.Endpoint.Transport {
			p.transport = e.intern(o.Endpoint.Transport)
		}
	}
	p.count++
	if a := o.Jurisdiction.Agency; a != "" {
		if !slices.Contains(*p.agencies, a) {
			p.agencies = e.listWith(p.agencies, a)
		}
		if t >= p.anyAgencyNS {
			if p.anyAgency != a {
				p.anyAgency = e.intern(a)
			}
			p.anyAgencyNS = t
		}
		if !o.Place.VPN && t >= p.agencyNS {
			if p.agency != a {
				p.agency = e.intern(a)
			}
			p.agencyNS = t
		}
	}
	if o.Place.Found() && t >= p.placeNS {
		p.place, p.placeNS = e.placeOf(&o.Place), t
	}
	p.vpn = p.vpn || o.Place.VPN
	p.hosting = p.hosting || o.Place.Hosting
	if !slices.Contains(*p.networks, o.Network) {
		p.networks = e.listWith(p.networks, o.Network)
	}
	intent := Intent(o)
	f := p.file(it.idx)
	newFile := f == nil
	if newFile {
		f = p.addFile(fileAgg{idx: it.idx, first: t, last: t, stored: e.loading})
		it.eps[p.id] = struct{}{}
	}
	f.count++
	f.first, f.last = min(f.first, t), max(f.last, t)
	// A record no sensor signed (a signature that does not check, or
	// none: an import, or one stripped on the bus, which a forger can do
	// as easily as forge one), or an exchange about another item, shows
	// that the record exists, never a level; a malformed bitfield
	// recorded complete (older sensors) counts as the sensor records it
	// now (observe's CreditedLevel and CountedLevel: the figures count
	// levels by the same rule).
	level := observe.CountedLevel(o.Possession, o.Marks)
	f.level = max(f.level, o.CreditedLevel())
	if intent == Sharing {
		f.sharing = true
		if level >= observe.Acknowledged {
			f.offered = true
		}
	}
	newFH := itemFH && !f.fh // the endpoint itself showed this file for the first time
	if itemFH {
		f.fh = true
		f.fhLevel = max(f.fhLevel, level)
		f.fhLast = max(f.fhLast, t)
		if intent == Sharing {
			f.fhSharing = true
			if level >= observe.Acknowledged {
				f.fhOffered = true
			}
		}
		if f.addHour(int32(t / int64(time.Hour))) {
			// A burst counts endpoints that showed the file themselves,
			// once in each hour: a forged DHT reply, tracker answer or
			// PEX list naming many addresses must not get a watched
			// hash held (and unscored).
			e.countHour(it, o.Time)
		}
	}
	e.markEp(p.id)
	if !e.loading {
		e.dirtyFiles[fileKey{p.id, it.idx}] = true
		e.changes.Timeline = append(e.changes.Timeline, TimelineRef{Endpoint: int64(p.id), TimeNS: t, Seq: seq})
	}
	dk := dailyKey{o.Time.Unix() / 86400, o.Jurisdiction.Agency, o.Network}
	e.daily[dk]++
	if !e.loading {
		e.dirtyDaily[dk] = true
	}
	if e.figCount {
		e.figure(seq, o, p)
	}
	e.linkIdentifiers(p, o)
	e.linkDeclared(p, o)
	// The overlap rule rests on first-hand files and spans only: what a
	// third party said of the endpoint links nothing.
	if itemFH && len(p.overlaps) > 0 {
		e.recheckOverlaps(p)
	}
	if newFH {
		e.linkOverlap(p, it)
	}
}

// dayFile is a UTC day with a first-hand observation and a file (item
// index) seen first-hand that day. An endpoint keeps them sorted by day,
// then file: a day and a slice of its files took about three times the
// bytes.
type dayFile struct {
	day, item int32
}

func (a dayFile) cmp(b dayFile) int {
	return cmp.Or(cmp.Compare(a.day, b.day), cmp.Compare(a.item, b.item))
}

// addFHDay records that p showed file idx first-hand on UTC day d.
// Observations mostly arrive in time order: the common case appends or
// finds d last.
func (p *endpoint) addFHDay(d, idx int32) {
	x := dayFile{d, idx}
	n := len(p.fhDays)
	if n == 0 || p.fhDays[n-1].cmp(x) < 0 {
		p.fhDays = append(p.fhDays, x)
		return
	}
	if i, found := slices.BinarySearchFunc(p.fhDays, x, dayFile.cmp); !found {
		p.fhDays = slices.Insert(p.fhDays, i, x)
	}
}

// file is p's file of item idx, nil if none. The pointer holds until
// p's next addFile.
func (p *endpoint) file(idx int32) *fileAgg {
	if i, ok := slices.BinarySearchFunc(p.files, idx, func(f fileAgg, idx int32) int { return cmp.Compare(f.idx, idx) }); ok {
		return &p.files[i]
	}
	return nil
}

// addFile adds f (a file p does not have) to p and returns where it is
// kept.
func (p *endpoint) addFile(f fileAgg) *fileAgg {
	i, _ := slices.BinarySearchFunc(p.files, f.idx, func(f fileAgg, idx int32) int { return cmp.Compare(f.idx, idx) })
	p.files = slices.Insert(p.files, i, f)
	return &p.files[i]
}

// addHour records a first-hand sighting in clock hour h. Observations
// mostly arrive in time order: the common case appends or finds h last.
func (f *fileAgg) addHour(h int32) (added bool) {
	n := len(f.fhHours)
	if n == 0 || f.fhHours[n-1] < h {
		f.fhHours = append(f.fhHours, h)
		return true
	}
	i, found := slices.BinarySearch(f.fhHours, h)
	if !found {
		f.fhHours = slices.Insert(f.fhHours, i, h)
	}
	return !found
}

func (e *Engine) markEp(id int32) {
	if !e.loading {
		e.dirtyEps[id] = true
	}
}

func (e *Engine) leadOn(ap netip.AddrPort, key string) {
	m := e.leadsByEp[ap]
	if m == nil {
		m = map[string]bool{}
		e.leadsByEp[ap] = m
	}
	m[key] = true
}

// TargetID is a target's id from its number, made to be read aloud on
// the phone to another service: digits only, "T-", the number in six
// digits (more once it passes 999999), "-", and two check digits (ISO
// 7064 MOD 97-10 of the number, as in an IBAN): T-000042-69. A misheard
// or mistyped digit, or two swapped, fails the check instead of naming
// another target. Zero-padded, ids of up to 999999 sort as their numbers.
func TargetID(seq int64) string {
	return fmt.Sprintf("T-%06d-%02d", seq, targetCheck(seq))
}

// targetCheck is the MOD 97-10 check of n: (n·100 + check) mod 97 = 1.
func targetCheck(n int64) int64 { return 98 - (n%97)*100%97 }

// ParseTargetID returns the number of a target id. It reads the current
// form (T-000042-69, case and surrounding space ignored, padding
// optional: T-42-69) and checks its check digits, and the legacy form of
// stores made before the digits-only ids ("T-" and up to five base-32
// characters, T-1, T-A, T-10 = 32), so that an id written in an old note
// or audit record still resolves. The two forms cannot be confused: only
// the current one has a second hyphen.
func ParseTargetID(id string) (int64, bool) {
	s, ok := strings.CutPrefix(strings.ToUpper(strings.TrimSpace(id)), "T-")
	if !ok || s == "" {
		return 0, false
	}
	if num, chk, ok := strings.Cut(s, "-"); ok {
		if len(num) == 0 || len(num) > 18 || len(chk) != 2 || !allDigits(num) || !allDigits(chk) {
			return 0, false
		}
		n, err := strconv.ParseInt(num, 10, 64)
		c, _ := strconv.ParseInt(chk, 10, 64)
		return n, err == nil && n > 0 && c == targetCheck(n)
	}
	return ParseLegacyTargetID(id)
}

// ParseLegacyTargetID reads only the legacy base-32 form (T-1 … T-V,
// T-10): the number, or false.
func ParseLegacyTargetID(id string) (int64, bool) {
	s, ok := strings.CutPrefix(strings.ToUpper(strings.TrimSpace(id)), "T-")
	if !ok || s == "" || len(s) > 5 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.ToLower(s), 32, 64)
	return n, err == nil && n > 0
}

// CanonicalTargetID returns id in the current form (a legacy or unpadded
// id of the same number included), or false when id is not a target id.
func CanonicalTargetID(id string) (string, bool) {
	n, ok := ParseTargetID(id)
	if !ok {
		return "", false
	}
	return TargetID(n), true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (e *Engine) now() time.Time {
	t := e.cfg.Now().UTC()
	return t
}

// Targets returns a page of targets within q.Scope, and how many match.
func (e *Engine) Targets(ctx context.Context, q TargetQuery) ([]TargetSummary, int, error) {
	return e.b.Targets(ctx, q)
}

// Target returns a target's page, or ErrNotFound when it does not exist or
// is outside scope.
func (e *Engine) Target(ctx context.Context, id string, scope Scope) (*TargetDetail, error) {
	return e.b.Target(ctx, id, scope)
}

// Stats returns the overview's figures within scope.
func (e *Engine) Stats(ctx context.Context, scope Scope, since time.Time) (*Stats, error) {
	return e.b.Stats(ctx, scope, since)
}

// Leads returns leads for review.
func (e *Engine) Leads(ctx context.Context, q LeadQuery) ([]Lead, int, error) {
	return e.b.Leads(ctx, q)
}

// Quarantined returns every quarantine record.
func (e *Engine) Quarantined(ctx context.Context) ([]QuarantineRecord, error) {
	return e.b.Quarantined(ctx)
}

// Alerts returns the alerts raised since a time.
func (e *Engine) Alerts(ctx context.Context, since time.Time) ([]Alert, error) {
	return e.b.Alerts(ctx, since)
}
