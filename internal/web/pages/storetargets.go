package pages

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// storeTargets answers Targets from the store.
// Every read passes the viewer's scope to the store, which applies it in
// SQL (target_access); nothing here filters after the fact.
type storeTargets struct {
	st     Store
	places *placeCache
	now    func() time.Time

	// window is the analysis's endpoint window (0: its default): an
	// observation after a longer silence is not given an earlier
	// generation's target.
	window time.Duration

	ovTTL     time.Duration
	overviews *memo // *Overview by scope and since
	counts    *memo // int by scope and filters
}

// pageTimeline is how many of a target's newest observations its page
// lists (the page says how many there are in all; the ISP request
// reads every one).
const pageTimeline = 200

// viewScope is u's scope; no user sees nothing.
func viewScope(u *User) Scope {
	if u == nil {
		return Scope{}
	}
	return u.Scope
}

// List implements Targets.
func (t *storeTargets) List(ctx context.Context, u *User, q TargetQuery) (TargetPage, error) {
	scope := viewScope(u)
	if q.Search != "" {
		// A search names one target, address or file: its few matches are
		// listed whatever the other filters say.
		list, err := t.st.SearchTargets(ctx, q.Search, scope, 200)
		if err != nil {
			return TargetPage{}, err
		}
		pg := TargetPage{Total: len(list)}
		if q.Offset < len(list) {
			for _, s := range list[q.Offset:min(len(list), q.Offset+q.Limit)] {
				pg.Targets = append(pg.Targets, summaryOf(&s))
			}
		}
		return pg, nil
	}
	aq := analysis.TargetQuery{Scope: scope, Jurisdiction: q.Jurisdiction, Network: q.Network, MinScore: q.MinScore,
		MinLevel: q.MinLevel, Since: q.From, Until: q.Until, Limit: q.Limit, Offset: q.Offset}
	if q.VPN == "yes" || q.VPN == "no" {
		vpn := q.VPN == "yes"
		aq.VPN = &vpn
	}
	// The store sorts score and last seen descending, first seen
	// ascending. The other direction reads the same order from the far
	// end: the page [total-offset-limit, total-offset), reversed.
	storeDesc := true
	switch q.Sort {
	case SortLast:
		aq.Sort = "last_seen"
	case SortFirst:
		aq.Sort, storeDesc = "first_seen", false
	default:
		aq.Sort = "score"
	}
	total, err := t.count(ctx, aq)
	if err != nil {
		return TargetPage{}, err
	}
	reverse := q.Asc == storeDesc
	if reverse {
		end := total - q.Offset
		if end <= 0 {
			return TargetPage{Total: total}, nil
		}
		aq.Offset = max(0, end-q.Limit)
		aq.Limit = end - aq.Offset
	}
	list, _, err := t.st.WebTargets(ctx, aq, false)
	if err != nil {
		return TargetPage{}, err
	}
	pg := TargetPage{Total: total, Targets: make([]TargetSummary, 0, len(list))}
	for i := range list {
		pg.Targets = append(pg.Targets, summaryOf(&list[i]))
	}
	if reverse {
		for i, j := 0, len(pg.Targets)-1; i < j; i, j = i+1, j-1 {
			pg.Targets[i], pg.Targets[j] = pg.Targets[j], pg.Targets[i]
		}
	}
	return pg, nil
}

// count is how many targets q matches. Without filters it is the store's
// maintained count (exact, a few rows read). With filters it is counted
// by a pass over the matching targets, and the answer is kept countTTL
// per scope and filters: a list's total may lag its rows by that much.
func (t *storeTargets) count(ctx context.Context, q analysis.TargetQuery) (int, error) {
	if q.Jurisdiction == "" && q.Network == "" && q.MinScore == 0 && q.MinLevel == 0 && q.VPN == nil && q.Since.IsZero() &&
		q.Until.IsZero() && q.Category == "" && q.MinSeverity == 0 && q.MinFiles == 0 && len(q.Flags) == 0 {
		return t.st.CountTargets(ctx, q.Scope)
	}
	vpn := ""
	if q.VPN != nil {
		vpn = fmt.Sprint(*q.VPN)
	}
	key := fmt.Sprintf("%v|%s|%q|%q|%g|%d|%s|%d|%d|%q|%d|%d|%q", q.Scope.All, strings.Join(q.Scope.Agencies, ","), q.Jurisdiction,
		q.Network, q.MinScore, q.MinLevel, vpn, q.Since.UnixNano(), q.Until.UnixNano(), q.Category, q.MinSeverity, q.MinFiles, q.Flags)
	v, err := t.counts.get(ctx, key, t.now(), func(ctx context.Context) (any, error) {
		probe := q
		probe.Limit, probe.Offset, probe.Sort = 1, 0, "score"
		_, n, err := t.st.WebTargets(ctx, probe, true)
		return n, err
	})
	if err != nil {
		return 0, err
	}
	return v.(int), nil
}

func summaryOf(s *analysis.TargetSummary) TargetSummary {
	ag := s.Jurisdiction
	if s.Assigned != "" {
		ag = s.Assigned
	}
	return TargetSummary{ID: s.ID, Jurisdiction: ag, Score: s.Score, Level: s.MaxLevel, Files: s.Files, Endpoints: s.Endpoints,
		Networks: s.Networks, Country: s.Country, Subdivision: s.Subdivision, VPN: s.VPN || s.Hosting,
		FirstSeen: s.FirstSeen, LastSeen: s.LastSeen}
}

// detail reads a target for u with up to limit timeline entries, telling a
// target outside the scope (ErrDenied) from a missing one
// (ErrNotFound). The page answers both alike; the difference is only
// for the audit trail.
func (t *storeTargets) detail(ctx context.Context, u *User, id string, limit int) (*analysis.TargetDetail, error) {
	scope := viewScope(u)
	d, err := t.st.TargetWithTimeline(ctx, id, scope, limit)
	if err == nil {
		// A rejected or withdrawn link's far end is another target's
		// endpoint: shown only to those who may see that target.
		if err := webviews.WithholdLinkEnds(ctx, t.st, d, scope, t.window); err != nil {
			return nil, fmt.Errorf("target %s: links: %w", id, err)
		}
		return d, nil
	}
	if !errors.Is(err, analysis.ErrNotFound) {
		return nil, err
	}
	if !scope.All {
		if _, _, aerr := t.st.TargetAgencies(ctx, id); aerr == nil {
			return nil, fmt.Errorf("target %s: %w", id, ErrDenied)
		}
	}
	return nil, fmt.Errorf("target %s: %w", id, ErrNotFound)
}

// Get implements Targets.
func (t *storeTargets) Get(ctx context.Context, u *User, id string) (*TargetDetail, error) {
	d, err := t.detail(ctx, u, id, pageTimeline)
	if err != nil {
		return nil, err
	}
	out := t.detailOf(ctx, d)
	// Who holds it: shown to every agency that may see the target, so
	// that none acts on it without calling the holder. Read after the
	// target, within the same authorised and audited view.
	// A claim taken on an id the analysis merged into this target holds
	// the person too (casework.Claims.Merged).
	cfg := casework.DefaultConfig()
	cl, st, err := cfg.HolderOf(ctx, t.st, t.now(), d.ID, d.MergedFrom)
	if err != nil {
		return nil, fmt.Errorf("target %s: claim: %w", d.ID, err)
	}
	if cl != nil {
		out.Claim = &ClaimInfo{Agency: cl.Agency, By: cl.By, Contact: cl.Contact, Since: cl.Since,
			LapsesAt: cfg.LapsesAt(*cl), Lapsing: st == casework.Lapsing}
	}
	if out.HandOff, err = t.pendingHandOff(ctx, u, d.ID); err != nil {
		return nil, fmt.Errorf("target %s: hand-off proposal: %w", d.ID, err)
	}
	return out, nil
}

// pendingHandOff returns the pending hand-off proposal of target when the
// viewer's agency is the one it is from or to (or national): another
// agency that may see the target is not told of it.
func (t *storeTargets) pendingHandOff(ctx context.Context, u *User, target string) (*HandOffInfo, error) {
	ps, err := t.st.Proposals(ctx, casework.Pending)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.Target != target || !(u.Scope.Allows(p.From) || u.Scope.Allows(p.To)) {
			continue
		}
		return &HandOffInfo{From: p.From, To: p.To, Reason: p.Reason, At: p.At}, nil
	}
	return nil, nil
}

// partWhy says what each score part counts (docs/scoring.md), for a
// reader without the pages' catalog (which names and explains each part
// in the viewer's language, keys "part.NAME" and "part.NAME.why").
var partWhy = map[string]string{
	analysis.PartFiles:         "distinct watched files, each weighted by its severity and the highest level reached for it",
	analysis.PartPossession:    "per file, the level the endpoint itself showed (nothing for announced)",
	analysis.PartDays:          "distinct UTC days active after the first",
	analysis.PartRepetition:    "repeated sightings of the same files (log2 of observations per file)",
	analysis.PartRecency:       "recent activity, halving with time since last seen",
	analysis.PartSharing:       "files the endpoint itself offered (acknowledged or more)",
	analysis.PartNewMaterial:   "confirmed associated files seen with the target",
	analysis.PartKnownOffender: "analyst flag: known offender",
	analysis.PartChildAccess:   "analyst flag: access to children",
}

// HighScore is the least score of the overview's "highest scores of the
// week": above what one announced file of the gravest category scores
// (1.25, docs/scoring.md), so that a list of announcements alone does not
// fill it.
const HighScore = 2.0

func (t *storeTargets) detailOf(ctx context.Context, d *analysis.TargetDetail) *TargetDetail {
	out := &TargetDetail{TargetSummary: summaryOf(&d.TargetSummary), ObservationsTotal: d.Observations}
	epLevel := map[netip.AddrPort]observe.Level{}
	type placeKey struct{ country, sub string }
	coords := map[placeKey][2]float64{}
	for i := range d.Timeline {
		e := &d.Timeline[i]
		r := ObservationRow{ID: e.ID, Time: e.Time.UTC(), Network: e.Network, Method: e.Method, Level: e.Level,
			PiecesHave: e.PiecesHave, PiecesTotal: e.PiecesTotal, Item: e.Kind + ":" + e.Hash, Lists: e.Matched,
			Transport: e.Transport, Client: ClientName(e.Client, e.ClientVersion), Sensor: e.Sensor,
			Country: e.Place.Country, VPN: e.Place.VPN || e.Place.Hosting, Agency: e.Agency, Target: d.ID,
			Marks: e.Marks, FirstHand: e.FirstHand}
		if ap, err := netip.ParseAddrPort(e.Endpoint); err == nil {
			r.Endpoint = ap
			epLevel[ap] = max(epLevel[ap], e.Level)
		}
		sub := ""
		if n := len(e.Place.Subdivisions); n > 0 {
			sub = e.Place.Subdivisions[n-1]
		}
		r.Subdivision = sub
		if e.Place.Lat != 0 || e.Place.Lon != 0 {
			for _, k := range []placeKey{{e.Place.Country, sub}, {e.Place.Country, ""}} {
				if _, ok := coords[k]; !ok {
					coords[k] = [2]float64{e.Place.Lat, e.Place.Lon}
					t.places.learn(k.country, k.sub, e.Place.Lat, e.Place.Lon)
				}
			}
		}
		out.Observations = append(out.Observations, r)
	}
	// Each endpoint's own highest level, from its files (the timeline is
	// cut at the newest entries, and an announce's entry carries its UDP
	// source port rather than the endpoint's listening port).
	ownLevel := map[string]observe.Level{}
	for _, f := range d.Files {
		for _, at := range f.At {
			ownLevel[at.Endpoint] = max(ownLevel[at.Endpoint], at.Level)
		}
	}
	places := map[placeKey]*PlaceCount{}
	var order []placeKey
	for _, e := range d.Endpoints {
		ap := netip.AddrPortFrom(e.IP, e.Port)
		if l, ok := ownLevel[analysis.EndpointKey(ap, e.Gen)]; ok {
			epLevel[ap] = l
		}
		place := e.Subdivision
		if place == "" {
			place = e.City
		}
		out.Addresses = append(out.Addresses, EndpointRow{Addr: ap, Transport: e.Transport, ASN: e.ASN, Org: e.Org,
			Country: e.Country, Place: place, VPN: e.VPN, Hosting: e.Hosting, Level: epLevel[ap], Count: e.Observations,
			FirstSeen: e.FirstSeen, LastSeen: e.LastSeen})
		if e.Country == "" {
			continue
		}
		k := placeKey{e.Country, e.Subdivision}
		if places[k] == nil {
			key := e.Subdivision
			if key == "" {
				key = e.Country
			}
			p := &PlaceCount{Key: key, Country: e.Country}
			if c, ok := coords[k]; ok {
				p.Lat, p.Lon = c[0], c[1]
			} else if lat, lon, ok := t.places.point(e.Country, e.Subdivision); ok {
				p.Lat, p.Lon = lat, lon
			}
			places[k] = p
			order = append(order, k)
		}
		places[k].Count += e.Observations
	}
	for _, k := range order {
		out.Places = append(out.Places, *places[k])
	}
	for _, l := range d.Links {
		strength := "weak"
		switch {
		case l.Confidence >= 0.9:
			strength = "strong"
		case l.Confidence >= 0.6:
			strength = "medium"
		}
		if l.State != "active" {
			strength = l.State
		}
		out.Devices = append(out.Devices, DeviceLink{Device: l.EndpointA + " ↔ " + l.EndpointB, Rule: l.Rule,
			Evidence: visibleText(l.Evidence, maxShownText), Reason: visibleText(l.Reason, maxShownText), Strength: strength, Confidence: l.Confidence, Seen: len(l.Obs),
			Endpoints: webviews.LinkAddresses(&l)})
	}
	// The name a list gives each of the first 50 files, if any: one
	// query over the hash index.
	named := make([]hashkind.Hash, 0, min(len(d.Files), 50))
	for _, f := range d.Files[:min(len(d.Files), 50)] {
		named = append(named, f.Hash)
	}
	fileNames, err := t.st.EntryNames(ctx, named)
	if err != nil {
		fileNames = nil // the page goes without names
	}
	for i, f := range d.Files {
		r := FileRow{Item: f.Kind + ":" + f.Hex, Lists: f.Matched, Level: f.MaxLevel, Count: f.Observations,
			FirstSeen: f.FirstSeen, LastSeen: f.LastSeen}
		if i < 50 {
			r.Name = fileNames[f.Hash]
		}
		r.Quarantined, r.LookedFor = f.Quarantined, f.Intent == "looking"
		r.Marks, r.MarksComplete = f.Marks, f.MarksComplete
		if len(f.At) > 1 {
			// Each endpoint's own level: a link lends none.
			for _, x := range f.At {
				r.At = append(r.At, LevelAt{Endpoint: x.Endpoint, Level: x.Level, Marks: x.Marks})
			}
		}
		out.FileRows = append(out.FileRows, r)
	}
	names := make([]string, 0, len(d.Parts))
	for n := range d.Parts {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return d.Parts[names[i]] > d.Parts[names[j]] })
	for _, n := range names {
		why := partWhy[n]
		if why == "" {
			why = "see docs/scoring.md"
		}
		out.ScoreParts = append(out.ScoreParts, ScorePart{Name: n, Value: d.Parts[n], Why: why})
	}
	for _, l := range d.Leads {
		note := fmt.Sprintf("%s; seen %d times with %d watched item(s) in %d torrent(s)", l.State, l.Count, len(l.Watched), len(l.Torrents))
		out.Associated = append(out.Associated, AssociatedFile{Item: visibleText(l.Key, maxShownText), Name: visibleText(l.Path, maxShownText), Peers: l.Endpoints,
			State: l.State, Seen: l.Count, Watched: len(l.Watched), Torrents: len(l.Torrents), Note: note})
	}
	return out
}

// Overview implements Targets. Its figures come from one pass over the
// live targets in scope and the per-day counts (no scan of the
// observations), the newest high-score targets from the ranked index, and
// the newest observations from the time index. An answer is kept for
// ovTTL per scope: the figures of the week do not need to be fresher than
// that, and the page's live rows arrive through the hub.
func (t *storeTargets) Overview(ctx context.Context, u *User, since time.Time) (*Overview, error) {
	scope := viewScope(u)
	if t.ovTTL <= 0 {
		ov, err := t.overview(ctx, scope, since)
		if err != nil {
			return nil, err
		}
		return t.filterNow(ctx, scope, ov)
	}
	key := fmt.Sprintf("%v|%s|%d", scope.All, strings.Join(scope.Agencies, ","), since.Unix())
	v, err := t.overviews.get(ctx, key, t.now(), func(ctx context.Context) (any, error) { return t.overview(ctx, scope, since) })
	if err != nil {
		return nil, err
	}
	// A kept answer's rows are decided again for now: a hand-off within
	// the keeping time takes the target's rows off the old agency's page.
	return t.filterNow(ctx, scope, v.(*Overview))
}

func (t *storeTargets) overview(ctx context.Context, scope analysis.Scope, since time.Time) (*Overview, error) {
	st, err := t.st.Overview(ctx, scope, since)
	if err != nil {
		return nil, err
	}
	ov := &Overview{Since: since, Targets: st.Targets, Devices: st.Devices}
	for k, n := range st.ByAgency {
		ov.ByAgency = append(ov.ByAgency, Count{Key: k, Count: n})
	}
	sort.Slice(ov.ByAgency, func(i, j int) bool {
		return ov.ByAgency[i].Count > ov.ByAgency[j].Count || ov.ByAgency[i].Count == ov.ByAgency[j].Count && ov.ByAgency[i].Key < ov.ByAgency[j].Key
	})
	for k, n := range st.ByNetwork {
		ov.ByNetwork = append(ov.ByNetwork, Count{Key: k, Count: n})
	}
	sort.Slice(ov.ByNetwork, func(i, j int) bool { return ov.ByNetwork[i].Key < ov.ByNetwork[j].Key })
	for l := observe.Announced; l <= observe.Verified; l++ {
		if n := st.ByLevel[l]; n > 0 {
			ov.ByLevel = append(ov.ByLevel, LevelCount{Level: l, Count: n})
		}
	}
	recent, err := t.st.RecentObservations(ctx, scope, 30, 5000)
	if err != nil {
		return nil, err
	}
	for i := range recent {
		o := &recent[i].Observation
		t.places.learnFrom(o)
		r := RowFromObservation(o)
		r.Target = recent[i].Target
		ov.Recent = append(ov.Recent, r)
	}
	byCountry := map[string]*PlaceCount{}
	for _, p := range st.Places {
		if p.Country == "" {
			continue
		}
		c := byCountry[p.Country]
		if c == nil {
			c = &PlaceCount{Key: p.Country, Country: p.Country}
			c.Lat, c.Lon, _ = t.places.point(p.Country, "")
			byCountry[p.Country] = c
		}
		c.Count += p.Observations
		if p.Country == "FR" && p.Subdivision != "" {
			s := PlaceCount{Key: p.Subdivision, Country: "FR", Count: p.Observations}
			s.Lat, s.Lon, _ = t.places.point("FR", p.Subdivision)
			ov.BySubdivision = append(ov.BySubdivision, s)
		}
	}
	for _, c := range byCountry {
		ov.ByCountry = append(ov.ByCountry, *c)
	}
	sort.Slice(ov.BySubdivision, func(i, j int) bool { return ov.BySubdivision[i].Key < ov.BySubdivision[j].Key })
	sort.Slice(ov.ByCountry, func(i, j int) bool {
		return ov.ByCountry[i].Count > ov.ByCountry[j].Count || ov.ByCountry[i].Count == ov.ByCountry[j].Count && ov.ByCountry[i].Key < ov.ByCountry[j].Key
	})
	end := t.now().UTC().Truncate(24 * time.Hour)
	for d := since.UTC().Truncate(24 * time.Hour); !d.After(end); d = d.AddDate(0, 0, 1) {
		day := d.Unix() / 86400
		n := st.Observations[day]
		ov.Observations += n
		ov.Trend = append(ov.Trend, DayCount{Day: d, Observations: n, Targets: st.NewByDay[day]})
	}
	// The highest scores among the targets seen since, in score order
	// (ties: the most recently seen first), none below HighScore.
	ov.HighScore = HighScore
	high, _, err := t.st.WebTargets(ctx, analysis.TargetQuery{Scope: scope, Since: since, MinScore: HighScore, Sort: "score", Limit: 10}, false)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(high, func(i, j int) bool {
		if high[i].Score != high[j].Score {
			return high[i].Score > high[j].Score
		}
		return high[i].LastSeen.After(high[j].LastSeen)
	})
	for i := range high {
		ov.NewestHigh = append(ov.NewestHigh, summaryOf(&high[i]))
	}
	return ov, nil
}
