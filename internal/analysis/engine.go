package analysis

import (
	"context"
	"fmt"
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

	storedEps map[string]EndpointID
	eps       []*endpoint // by id; eps[0] unused
	epByKey   map[netip.AddrPort]int32
	homeEp    map[int64]int32 // endpoint born with each target number
	items     map[hashkind.Hash]*item
	itemList  []*item
	idents    map[identKey]*ident
	links     map[linkKey]*link
	linkIDs   map[string]int64
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

	mergedStored map[string]string
	written      map[string]string // target id -> access and categories last written
	lastSave     time.Time

	// dirt
	dirtyEps   map[int32]bool
	dirtyFiles map[fileKey]bool
	dirtyDaily map[dailyKey]bool
	dirtyLinks map[linkKey]bool
	dirtyLeads map[string]bool
	pending    Changes
	lastStamp  time.Time
}

type dailyKey struct {
	day             int64
	agency, network string
}

type fileKey struct{ ep, item int32 }

type endpoint struct {
	id          int32
	key         netip.AddrPort
	home        int64
	first, last int64
	count       int
	transport   string
	files       map[int32]*fileAgg
	days        map[int32]struct{}
	agency      string // of the most recent non-VPN observation
	agencyNS    int64
	anyAgency   string // of the most recent observation
	anyAgencyNS int64
	agencies    map[string]struct{}
	place       observe.Place
	placeNS     int64
	vpn         bool
	hosting     bool
	networks    []string
	overlaps    map[int32]linkKey // overlap-rule links, by the other endpoint
}

type fileAgg struct {
	level       observe.Level
	count       int
	first, last int64
	sharing     bool
	offered     bool
	lastHour    int64 // hour+1 of the last counted sighting, for quarantine
	hours       int   // distinct clock hours it was seen in: independent sightings
}

type item struct {
	idx      int32
	hash     hashkind.Hash
	matches  []observe.Match
	severity int
	eps      map[int32]struct{}
	hours    map[int64]int
	first    int64 // hour of the first sighting
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
		watermark: snap.Watermark, nextSeq: max(snap.NextSeq, 1),
		storedEps: snap.Endpoints, eps: []*endpoint{nil},
		epByKey: map[netip.AddrPort]int32{}, homeEp: map[int64]int32{}, items: map[hashkind.Hash]*item{},
		idents: map[identKey]*ident{}, links: map[linkKey]*link{}, linkIDs: map[string]int64{},
		blocked: map[string]Decision{},
		flags:   map[int64]map[string]bool{}, shares: map[int64]map[string]Share{},
		assigned: map[int64]Decision{}, investigator: map[int64]Decision{},
		quarantine: map[hashkind.Hash]*QuarantineRecord{}, leads: map[string]*LeadState{},
		leadsByEp: map[netip.AddrPort]map[string]bool{}, daily: map[dailyKey]int{},
		mergedStored: snap.MergedInto, written: map[string]string{},
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
		for k := range l.Seen {
			if ap, err := netip.ParseAddrPort(k); err == nil {
				e.leadOn(ap, l.Key)
			}
		}
	}
	for _, d := range snap.Decisions {
		e.apply(d)
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
	// Links or holds the replay found that the tables lack (rules changed).
	if err := e.save(ctx, 0); err != nil {
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
	e.pending = Changes{}
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
func (e *Engine) Add(ctx context.Context, batch []observe.Observation) error {
	if len(batch) == 0 {
		return nil
	}
	ids := make([]string, len(batch))
	for i := range batch {
		ids[i] = batch[i].ID
	}
	seqs, _, err := e.b.AnalysisSeqs(ctx, ids)
	if err != nil {
		return fmt.Errorf("analysis: looking up %d observation ids: %w", len(ids), err)
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
		}
		e.observe(s, &batch[i])
		e.watermark = s
	}
	if time.Since(e.lastSave) < e.cfg.SaveInterval {
		return nil
	}
	return e.save(ctx, e.watermark)
}

// Flush writes what Add has not written yet (call it on shutdown, or
// before reading targets that must include the last batch).
func (e *Engine) Flush(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.save(ctx, e.watermark)
}

// CatchUp processes every observation stored after the watermark (those
// another process wrote, e.g. `vigil observations import`).
func (e *Engine) CatchUp(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.catchUpLocked(ctx, 0); err != nil {
		return err
	}
	return e.save(ctx, e.watermark)
}

// catchUpLocked reads observations in (watermark, upTo] (upTo 0: all),
// saving every SaveEvery.
func (e *Engine) catchUpLocked(ctx context.Context, upTo int64) error {
	n := 0
	err := e.b.AnalysisObservations(ctx, e.watermark, upTo, func(seq int64, o *observe.Observation) error {
		e.observe(seq, o)
		e.watermark = seq
		if n++; n%e.cfg.SaveEvery == 0 {
			// WAL: a write on another connection does not disturb this read.
			return e.save(ctx, seq)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("analysis: catching up after %d: %w", e.watermark, err)
	}
	if e.cfg.Log != nil && n > 0 {
		e.cfg.Log.Info("analysis caught up", "observations", n, "watermark", e.watermark)
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
	return e.save(ctx, 0)
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
	for _, m := range o.Item.Matched {
		if !slices.Contains(it.matches, m) {
			it.matches = append(it.matches, m)
			it.severity = max(it.severity, e.cfg.Severity(m.List, m.Category))
		}
	}
	return it
}

func (e *Engine) endpoint(o *observe.Observation) *endpoint {
	ap := netip.AddrPortFrom(o.Endpoint.IP.Unmap(), o.Endpoint.Port)
	if id, ok := e.epByKey[ap]; ok {
		return e.eps[id]
	}
	id := int32(len(e.eps))
	p := &endpoint{id: id, key: ap, files: map[int32]*fileAgg{}, days: map[int32]struct{}{}, agencies: map[string]struct{}{}, transport: o.Endpoint.Transport}
	if s, ok := e.storedEps[ap.String()]; ok && s.ID == int64(id) {
		p.home = s.Home
	} else {
		if ok {
			// Stored under another id (endpoints came in a different
			// order): keep its home, the target id it was given.
			p.home = s.Home
		} else {
			p.home = e.nextSeq
			e.nextSeq++
			e.pending.NextSeq = e.nextSeq
		}
	}
	e.eps = append(e.eps, p)
	e.epByKey[ap] = id
	e.homeEp[p.home] = id
	e.uf.add()
	return p
}

// observe folds one observation into the state.
func (e *Engine) observe(seq int64, o *observe.Observation) {
	t := o.Time.UnixNano()
	p := e.endpoint(o)
	it := e.item(o)
	if p.count == 0 || t < p.first {
		p.first = t
	}
	if t > p.last {
		p.last = t
		p.transport = o.Endpoint.Transport
	}
	p.count++
	p.days[int32(o.Time.Unix()/86400)] = struct{}{}
	if a := o.Jurisdiction.Agency; a != "" {
		p.agencies[a] = struct{}{}
		if t >= p.anyAgencyNS {
			p.anyAgency, p.anyAgencyNS = a, t
		}
		if !o.Place.VPN && t >= p.agencyNS {
			p.agency, p.agencyNS = a, t
		}
	}
	if o.Place.Found() && t >= p.placeNS {
		p.place, p.placeNS = o.Place, t
	}
	p.vpn = p.vpn || o.Place.VPN
	p.hosting = p.hosting || o.Place.Hosting
	if !slices.Contains(p.networks, o.Network) {
		p.networks = append(p.networks, o.Network)
	}
	intent := Intent(o)
	f := p.files[it.idx]
	newFile := f == nil
	if newFile {
		f = &fileAgg{first: t, last: t}
		p.files[it.idx] = f
		it.eps[p.id] = struct{}{}
	}
	f.count++
	f.first, f.last = min(f.first, t), max(f.last, t)
	f.level = max(f.level, o.Possession.Level)
	if intent == Sharing {
		f.sharing = true
		if o.Possession.Level >= observe.Acknowledged {
			f.offered = true
		}
	}
	e.markEp(p.id)
	if !e.loading {
		e.dirtyFiles[fileKey{p.id, it.idx}] = true
		e.pending.Timeline = append(e.pending.Timeline, TimelineRef{Endpoint: int64(p.id), TimeNS: t, Seq: seq})
	}
	dk := dailyKey{o.Time.Unix() / 86400, o.Jurisdiction.Agency, o.Network}
	e.daily[dk]++
	if !e.loading {
		e.dirtyDaily[dk] = true
	}
	e.countHour(it, p, f, o.Time)
	e.linkIdentifiers(p, o)
	if len(p.overlaps) > 0 {
		e.recheckOverlaps(p)
	}
	if newFile {
		e.linkOverlap(p, it)
	}
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

// TargetID is a target's id from its number: "T-" and base 32, upper case.
func TargetID(seq int64) string { return "T-" + strings.ToUpper(strconv.FormatInt(seq, 32)) }

// ParseTargetID returns the number of a target id.
func ParseTargetID(id string) (int64, bool) {
	s, ok := strings.CutPrefix(strings.ToUpper(id), "T-")
	if !ok || s == "" || len(s) > 12 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.ToLower(s), 32, 64)
	return n, err == nil && n > 0
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
