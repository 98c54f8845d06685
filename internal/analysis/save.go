package analysis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// activeDays are the UTC days on which p itself showed a file that is not
// held (quarantined): the score's days_active, like every other part,
// rests only on non-quarantined files.
func (e *Engine) activeDays(p *endpoint) []int32 {
	var out []int32
	for _, x := range p.fhDays {
		if n := len(out); (n == 0 || out[n-1] != x.day) && !e.held(e.itemList[x.item].hash) {
			out = append(out, x.day)
		}
	}
	return out
}

// ownInput is the score input of one endpoint alone: its first-hand
// facts, and the files it was only named with.
func (e *Engine) ownInput(p *endpoint) ScoreInput {
	in := ScoreInput{Days: float64(len(e.activeDays(p)))}
	var last int64
	for i := range p.files {
		f := &p.files[i]
		it := e.itemList[f.idx]
		if e.held(it.hash) {
			continue
		}
		if !f.fh {
			in.SecondHand = append(in.SecondHand, FileFacts{Severity: it.severity, Looking: !f.sharing, Confidence: 1})
			continue
		}
		in.Files = append(in.Files, FileFacts{Severity: it.severity, Level: f.fhLevel, Looking: !f.fhSharing, Offered: f.fhOffered, Confidence: 1})
		in.Sightings += float64(max(len(f.fhHours), 1))
		last = max(last, f.fhLast)
	}
	if last > 0 {
		in.LastSeen = time.Unix(0, last).UTC()
	}
	return in
}

// confidences says how surely each member is the target: 1 for the
// anchor, the member whose own score is highest (ties: lowest id); for
// the others, the highest product of link confidences along a path of
// active links from the anchor. A link never lends a level: it only says
// how much of a linked endpoint's own points count.
func (e *Engine) confidences(members []int32) (map[int32]float64, int32) {
	conf := map[int32]float64{}
	if len(members) == 1 {
		conf[members[0]] = 1
		return conf, members[0]
	}
	now := e.now()
	anchor, best := int32(-1), -1.0
	for _, m := range members {
		v := Score(e.ownInput(e.eps[m]), e.cfg.Weights, now).Total()
		if v > best || (v == best && m < anchor) {
			anchor, best = m, v
		}
	}
	conf[anchor] = 1
	// Relax along active links until nothing improves (confidences are at
	// most 1, so a path never gains by a cycle).
	frontier := []int32{anchor}
	for len(frontier) > 0 {
		var next []int32
		for _, m := range frontier {
			for _, k := range e.linksOf[m] {
				l := e.links[k]
				if l == nil || l.state != "active" {
					continue
				}
				o := k.a
				if o == m {
					o = k.b
				}
				if c := conf[m] * l.conf; c > conf[o] {
					conf[o] = c
					next = append(next, o)
				}
			}
		}
		frontier = next
	}
	return conf, anchor
}

// targetFile is one file's facts gathered across a target's members.
type targetFile struct {
	level            observe.Level // highest level an endpoint itself reached
	count            int
	hours            float64 // distinct first-hand clock hours, each endpoint's at its confidence
	fh               bool    // seen first-hand at an endpoint
	fhLast           int64   // last first-hand sighting
	secondConf       float64 // highest confidence of the endpoints it was only named at
	secondLooking    bool
	first, last      int64
	sharing, offered bool
	// the endpoint counted in the score: the highest confidence ×
	// (level weight + possession points) among the members
	best     float64
	bestFact FileFacts
}

// memberAgg is what a target's members say together about where and
// when it was seen; summarize gathers it in one pass over the members.
type memberAgg struct {
	homes                   []int64
	seq                     int64 // lowest home: the target's id
	first, last             int64
	agencyEp, anyEp, latest *endpoint
	placeEp                 *endpoint
	vpn, hosting            bool
	networks                []string
	agencies                map[string]struct{}
	days                    map[int32]float64 // active day -> highest member confidence
	files                   map[int32]*targetFile
}

// summarize computes the target made of members: it gathers the members'
// facts, turns them into a summary and score, and routes the row.
func (e *Engine) summarize(members []int32) TargetRow {
	// Every float below is summed in a fixed order (members by id, days
	// and files by key), never a map's: a sum's last digit depends on
	// its order, and a score must not differ between two runs.
	members = slices.Sorted(slices.Values(members))
	conf, _ := e.confidences(members)
	g := e.gatherMembers(members, conf)
	s := g.summary(len(members))
	in := ScoreInput{LastSeen: s.LastSeen}
	for _, d := range slices.Sorted(maps.Keys(g.days)) {
		in.Days += g.days[d]
	}
	e.summarizeFiles(&s, &in, g.files)
	shares := e.applyDecisions(&s, g.homes)
	in.Flags = s.Flags
	in.ConfirmedLeads = e.confirmedLeads(members)
	s.Parts = Score(in, e.cfg.Weights, e.now())
	s.Score = s.Parts.Total()
	return targetRow(g.seq, s, shares)
}

// gatherMembers walks the members once, recording each one's confidence
// in e.epConf and folding its endpoint and file facts into one memberAgg.
func (e *Engine) gatherMembers(members []int32, conf map[int32]float64) *memberAgg {
	g := &memberAgg{
		homes:    make([]int64, 0, len(members)),
		agencies: map[string]struct{}{},
		days:     map[int32]float64{},
		files:    map[int32]*targetFile{},
	}
	for _, m := range members {
		p := e.eps[m]
		c := conf[m]
		e.epConf[m] = c
		g.homes = append(g.homes, p.home)
		if g.seq == 0 || p.home < g.seq {
			g.seq = p.home
		}
		if g.first == 0 || p.first < g.first {
			g.first = p.first
		}
		if p.last > g.last {
			g.last = p.last
			g.latest = p
		}
		for _, d := range e.activeDays(p) {
			g.days[d] = max(g.days[d], c)
		}
		if p.agency != "" && (g.agencyEp == nil || p.agencyNS > g.agencyEp.agencyNS) {
			g.agencyEp = p
		}
		if p.anyAgency != "" && (g.anyEp == nil || p.anyAgencyNS > g.anyEp.anyAgencyNS) {
			g.anyEp = p
		}
		if p.placeNS > 0 && (g.placeEp == nil || p.placeNS > g.placeEp.placeNS) {
			g.placeEp = p
		}
		for _, a := range *p.agencies {
			g.agencies[a] = struct{}{}
		}
		g.vpn, g.hosting = g.vpn || p.vpn, g.hosting || p.hosting
		for _, n := range *p.networks {
			if !slices.Contains(g.networks, n) {
				g.networks = append(g.networks, n)
			}
		}
		e.addFiles(g.files, p, c)
	}
	return g
}

// addFiles folds the files of member p, seen at confidence c, into files.
// A file only named at p keeps the highest such confidence; a file p showed
// first-hand counts its hours at c and competes for the scored fact.
func (e *Engine) addFiles(files map[int32]*targetFile, p *endpoint, c float64) {
	w := &e.cfg.Weights
	for i := range p.files {
		f := &p.files[i]
		idx := f.idx
		a := files[idx]
		if a == nil {
			a = &targetFile{first: f.first, last: f.last, best: -1}
			files[idx] = a
		}
		a.level = max(a.level, f.level)
		a.count += f.count
		a.first, a.last = min(a.first, f.first), max(a.last, f.last)
		a.sharing = a.sharing || f.sharing
		a.offered = a.offered || f.offered
		if !f.fh {
			if c > a.secondConf {
				a.secondConf, a.secondLooking = c, !f.sharing
			}
			continue
		}
		a.fh = true
		a.fhLast = max(a.fhLast, f.fhLast)
		a.hours += c * float64(len(f.fhHours))
		lvl := min(f.fhLevel, observe.Verified)
		if v := c * (w.Level[lvl] + w.Possession[lvl]); v > a.best {
			a.best = v
			a.bestFact = FileFacts{Severity: e.itemList[idx].severity, Level: f.fhLevel, Looking: !f.fhSharing, Offered: f.fhOffered, Confidence: c}
		}
	}
}

// summary is the target's identity, time span, place and networks; the
// jurisdiction prefers the latest member with a place-derived agency over
// one with any agency at all.
func (g *memberAgg) summary(endpoints int) TargetSummary {
	s := TargetSummary{ID: TargetID(g.seq), Endpoints: endpoints, FirstSeen: time.Unix(0, g.first).UTC(), LastSeen: time.Unix(0, g.last).UTC(),
		VPN: g.vpn, Hosting: g.hosting}
	if g.latest != nil {
		s.Label = g.latest.key.String()
	}
	switch {
	case g.agencyEp != nil:
		s.Jurisdiction = g.agencyEp.agency
	case g.anyEp != nil:
		s.Jurisdiction = g.anyEp.anyAgency
	}
	if g.placeEp != nil {
		s.Country, s.Subdivision = g.placeEp.place.country, g.placeEp.place.sub
	}
	s.Agencies = slices.Sorted(maps.Keys(g.agencies))
	sort.Strings(g.networks)
	s.Networks = g.networks
	return s
}

// summarizeFiles fills the file parts of s and of the score input in.
// Every observation counts in s.Observations, but held (quarantined)
// files are left out of everything else, so nothing scored or shown rests
// on them.
func (e *Engine) summarizeFiles(s *TargetSummary, in *ScoreInput, files map[int32]*targetFile) {
	levels := map[observe.Level]int{}
	cats := map[string]struct{}{}
	looking := true
	var scoredLast int64
	for _, idx := range slices.Sorted(maps.Keys(files)) {
		a := files[idx]
		it := e.itemList[idx]
		s.Observations += a.count
		if e.held(it.hash) {
			continue
		}
		in.Observations += a.count
		if a.fh {
			in.Files = append(in.Files, a.bestFact)
			in.Sightings += max(a.hours, 1)
			scoredLast = max(scoredLast, a.fhLast)
		} else {
			in.SecondHand = append(in.SecondHand, FileFacts{Severity: it.severity, Looking: a.secondLooking, Confidence: a.secondConf})
		}
		levels[a.level]++
		s.MaxLevel = max(s.MaxLevel, a.level)
		s.MaxSeverity = max(s.MaxSeverity, it.severity)
		looking = looking && !a.sharing
		for _, m := range it.matches {
			if m.Category != "" {
				cats[m.Category] = struct{}{}
			}
		}
	}
	// Recency is scored on first-hand sightings only.
	if scoredLast > 0 {
		in.LastSeen = time.Unix(0, scoredLast).UTC()
	} else {
		in.LastSeen = time.Time{}
	}
	s.Files = len(in.Files) + len(in.SecondHand)
	s.Looking = looking && s.Files > 0
	for l := observe.Verified; l >= observe.Announced; l-- {
		if n := levels[l]; n > 0 {
			s.Levels = append(s.Levels, LevelCount{Level: l, Files: n})
		}
	}
	s.Categories = slices.Sorted(maps.Keys(cats))
}

// applyDecisions sets the flags, assignment and investigator that users
// recorded against any of the members' homes (the latest decision wins)
// and returns the shares granted on them, by agency.
func (e *Engine) applyDecisions(s *TargetSummary, homes []int64) map[string]Share {
	flags := map[string]bool{}
	shares := map[string]Share{}
	var assign, inv Decision
	for _, h := range homes {
		for f, on := range e.flags[h] {
			if on {
				flags[f] = true
			}
		}
		for a, sh := range e.shares[h] {
			shares[a] = sh
		}
		if d, ok := e.assigned[h]; ok && d.At.After(assign.At) {
			assign = d
		}
		if d, ok := e.investigator[h]; ok && d.At.After(inv.At) {
			inv = d
		}
	}
	s.Flags = slices.Sorted(maps.Keys(flags))
	s.Assigned = assign.Value
	s.Investigator = inv.Value
	return shares
}

// targetRow routes the summary: the assigned agency, else the
// jurisdiction, may read it, and so may every agency it was shared with.
func targetRow(seq int64, s TargetSummary, shares map[string]Share) TargetRow {
	row := TargetRow{Seq: seq, Summary: s}
	route := s.Jurisdiction
	if s.Assigned != "" {
		route = s.Assigned
	}
	if route != "" {
		row.Access = append(row.Access, route)
	}
	for _, a := range slices.Sorted(maps.Keys(shares)) {
		row.Shares = append(row.Shares, shares[a])
		if !slices.Contains(row.Access, a) {
			row.Access = append(row.Access, a)
		}
	}
	return row
}

func (e *Engine) endpointInfo(p *endpoint) EndpointInfo {
	in := EndpointInfo{IP: p.key.Addr(), Port: p.key.Port(), Gen: int(p.gen), Confidence: e.epConf[p.id], FirstHand: p.hasFH,
		Transport: p.transport, ASN: p.place.asn, Org: p.place.org,
		Country: p.place.country, Subdivision: p.place.sub, City: p.place.city, FirstSeen: time.Unix(0, p.first).UTC(), LastSeen: time.Unix(0, p.last).UTC(),
		Observations: p.count, VPN: p.vpn, Hosting: p.hosting, Agency: p.agency}
	if in.Agency == "" {
		in.Agency = p.anyAgency
	}
	return in
}

// maxResyncs bounds how often one save catches up with other processes'
// saves and tries again before it gives up (its changes stay pending).
const maxResyncs = 20

// save writes the dirt and pending records in one transaction; on error
// everything stays pending for the next save. When another process saved
// since this view last matched the store, it brings the view up to the
// store's (resync) and saves again.
func (e *Engine) save(ctx context.Context) error {
	return e.retry(ctx, e.saveOnce)
}

// retry calls write until it succeeds, fails otherwise than by ErrStale,
// or has been refused maxResyncs times; between two, the view catches up
// with the store's.
func (e *Engine) retry(ctx context.Context, write func(context.Context) error) error {
	for n := 0; ; n++ {
		err := write(ctx)
		var st *StaleError
		if err == nil || !errors.As(err, &st) || n == maxResyncs {
			return err
		}
		if err := e.resync(ctx, st); err != nil {
			return err
		}
	}
}

// resync brings the view up to the store's after another process saved
// (st): it processes the observations the other saved past its own
// watermark, applies the decisions stored since its last save, and
// forgets what it believed the store held (the access rows and merges it
// wrote last: the other may have rewritten them; and that the file rows
// it holds unsaved are new to the store), so that its next save writes
// everything it changed since its last save, at a watermark no lower
// than the store's. Alerts of observations the other has saved
// were raised and stored by it.
func (e *Engine) resync(ctx context.Context, st *StaleError) error {
	e.version, e.stored = st.Version, st.Watermark
	// What the other process's roll-ups count is not counted again.
	e.figuresWrittenTo(st.FiguresWatermark)
	clear(e.written)
	clear(e.mergedStored)
	if st.Watermark > e.watermark {
		err := e.b.AnalysisObservations(ctx, e.watermark, st.Watermark, func(seq int64, o *observe.Observation) error {
			if seq > e.watermark {
				e.observe(seq, o)
				e.watermark = seq
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("analysis: catching up with another process's save, %d to %d: %w", e.watermark, st.Watermark, err)
		}
	}
	// The other process may have written any file row this view holds
	// unsaved: none is New any more (an upsert is always right; a plain
	// INSERT of a stored row would fail and be upserted again).
	for k := range e.dirtyFiles {
		if f := e.eps[k.ep].file(k.item); f != nil {
			f.stored = true
		}
	}
	ds, err := e.b.AnalysisDecisions(ctx, e.lastDec)
	if err != nil {
		return fmt.Errorf("analysis: reading the decisions after %d: %w", e.lastDec, err)
	}
	for _, d := range ds {
		e.apply(d)
		e.lastDec = max(e.lastDec, d.ID)
	}
	var alerts []Alert
	var seqs []int64
	for i, a := range e.changes.Alerts {
		if s := e.alertSeqs[i]; s > st.Watermark {
			alerts, seqs = append(alerts, a), append(seqs, s)
		}
	}
	e.changes.Alerts, e.alertSeqs = alerts, seqs
	return nil
}

// write saves c at the view's version and watermark, and notes the
// version the store holds after it.
func (e *Engine) write(ctx context.Context, c *Changes) error {
	c.Version, c.Watermark = e.version, e.watermark
	if err := e.b.AnalysisSave(ctx, c); err != nil {
		return err
	}
	e.version++
	e.stored = max(e.stored, e.watermark)
	return nil
}

// writtenSig is what a save last wrote of a target's access rows and
// categories (sigOf), so that the next writes them again only
// when they changed (TargetRow.SameAccess, SameCategories).
type writtenSig struct{ access, categories string }

// sigOf is the writtenSig of a target's access list and categories. Each
// value is written with its length first: a watch-list's category may
// hold any character, a comma included ({"a","b"} and {"a,b"} must not
// read alike, or the second would never be written).
func sigOf(access, categories []string) writtenSig {
	return writtenSig{access: joinExact(access), categories: joinExact(categories)}
}

// joinExact joins vs so that no two lists join alike.
func joinExact(vs []string) string {
	var b []byte
	for _, v := range vs {
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return string(b)
}

// saveOnce writes the dirt and pending records in one transaction, if the
// store is at the view's version.
func (e *Engine) saveOnce(ctx context.Context) error {
	c := e.changes // copy: pending stays intact until the write succeeds
	roots := map[int32][]int32{}
	for id := range e.dirtyEps {
		r := e.uf.find(id)
		if _, ok := roots[r]; !ok {
			roots[r] = e.uf.members(r)
		}
	}
	merged := map[string]string{}
	written := map[string]writtenSig{}
	targetOf := make(map[int32]string, len(e.dirtyEps))
	c.Targets = slices.Grow(c.Targets, len(roots))
	for _, members := range roots {
		row := e.summarize(members)
		sig := sigOf(row.Access, row.Summary.Categories)
		if old, ok := e.written[row.Summary.ID]; ok {
			row.SameAccess, row.SameCategories = old.access == sig.access, old.categories == sig.categories
		}
		written[row.Summary.ID] = sig
		c.Targets = append(c.Targets, row)
		for _, m := range members {
			targetOf[m] = row.Summary.ID
			if h := e.eps[m].home; h != row.Seq {
				if id := TargetID(h); e.mergedStored[id] != row.Summary.ID {
					merged[id] = row.Summary.ID
				}
			}
		}
		if e.mergedStored[row.Summary.ID] != "" {
			merged[row.Summary.ID] = ""
		}
	}
	if len(merged) > 0 {
		c.Merged = merged
	}
	// Every member of a target written, not only those its observations
	// changed: a member's confidence follows the target's anchor (its
	// member of highest own score), which another member's observations
	// move. Written only where dirty, an endpoint row kept the
	// confidence of the last save that named it, and what a target's page
	// showed depended on how often the analysis saved
	// (TestCatchUpSameWhateverTheSaveSpan). A store leaves a row equal to
	// the stored one as it is.
	c.Endpoints = slices.Grow(c.Endpoints, len(targetOf))
	for _, members := range roots {
		for _, id := range members {
			p := e.eps[id]
			c.Endpoints = append(c.Endpoints, EndpointRow{ID: int64(id), Home: p.home, Target: targetOf[id], Info: e.endpointInfo(p), Networks: *p.networks})
		}
	}
	c.Files = slices.Grow(c.Files, len(e.dirtyFiles))
	for k := range e.dirtyFiles {
		p, it := e.eps[k.ep], e.itemList[k.item]
		f := p.file(k.item)
		intent := Looking
		if f.sharing {
			intent = Sharing
		}
		c.Files = append(c.Files, EndpointFileRow{Endpoint: int64(k.ep), New: !f.stored, File: FileInfo{
			Hash: it.hash, Kind: it.hash.Kind().String(), Hex: it.hash.Hex(), Matched: it.matches, Severity: it.severity,
			MaxLevel: f.level, Intent: intent.String(), FirstSeen: time.Unix(0, f.first).UTC(), LastSeen: time.Unix(0, f.last).UTC(),
			Observations: f.count, Quarantined: e.held(it.hash)}})
	}
	for k := range e.dirtyLinks {
		l := e.links[k]
		if l == nil {
			continue
		}
		a, b := e.eps[k.a].key.String(), e.eps[k.b].key.String()
		c.Links = append(c.Links, LinkRow{AID: int64(k.a), BID: int64(k.b), Link: Link{ID: l.id, A: a, B: b, EndpointA: a, EndpointB: b,
			Rule: k.rule, Evidence: k.ev, Reason: l.reason, Confidence: l.conf, Obs: l.obs, At: time.Unix(0, l.at).UTC(), State: l.state, Note: l.note}})
	}
	for k := range e.dirtyLeads {
		l := *e.leads[k]
		l.Seen = maps.Clone(l.Seen)
		c.Leads = append(c.Leads, l)
	}
	for k := range e.dirtyDaily {
		c.Daily = append(c.Daily, DailyRow{Day: k.day, Agency: k.agency, Network: k.network, Observations: e.daily[k]})
	}
	if c.NextSeq == 0 {
		c.NextSeq = e.nextSeq
	}
	figs := e.figureChanges(&c)
	empty := len(c.Targets) == 0 && len(c.Endpoints) == 0 && len(c.Files) == 0 && len(c.Links) == 0 && len(c.Leads) == 0 &&
		len(c.Daily) == 0 && len(c.Timeline) == 0 && len(c.Quarantine) == 0 && len(c.Alerts) == 0 && len(c.Decisions) == 0 && len(c.Merged) == 0 &&
		len(c.Figures) == 0 && c.FiguresWatermark == 0
	if empty && e.watermark <= e.stored {
		return nil
	}
	if err := e.write(ctx, &c); err != nil {
		return fmt.Errorf("analysis: saving %d targets, %d endpoints, %d files: %w", len(c.Targets), len(c.Endpoints), len(c.Files), err)
	}
	// A target merged into none is kept as no entry: a lookup reads ""
	// for either.
	for id, to := range merged {
		if to == "" {
			delete(e.mergedStored, id)
		} else {
			e.mergedStored[id] = to
		}
	}
	for _, t := range c.Targets {
		delete(e.mergedStored, t.Summary.ID)
	}
	// Most targets have the same few access lists and categories: one
	// copy of each is kept.
	for id, sig := range written {
		e.written[id] = writtenSig{access: e.intern(sig.access), categories: e.intern(sig.categories)}
	}
	for k := range e.dirtyFiles {
		if f := e.eps[k.ep].file(k.item); f != nil {
			f.stored = true
		}
	}
	for id, to := range merged {
		if to != "" {
			delete(e.written, id)
		}
	}
	e.lastSave, e.unsaved = time.Now(), 0
	if figs {
		e.figuresWrittenTo(c.FiguresWatermark)
		e.lastFigSave, e.figForce = e.lastSave, false
	}
	if e.cfg.OnAlert != nil {
		for _, a := range c.Alerts {
			e.cfg.OnAlert(a)
		}
	}
	e.resetDirt()
	return nil
}
