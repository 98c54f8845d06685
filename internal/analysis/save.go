package analysis

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// summarize computes the target made of members.
func (e *Engine) summarize(members []int32) TargetRow {
	type agg struct {
		level            observe.Level
		count, hours     int
		first, last      int64
		sharing, offered bool
	}
	files := map[int32]*agg{}
	days := map[int32]struct{}{}
	homes := make([]int64, 0, len(members))
	var (
		seq                     int64
		first, last             int64
		obs                     int
		agencyEp, anyEp, latest *endpoint
		placeEp                 *endpoint
		vpn, hosting            bool
		networks                []string
		agencies                = map[string]struct{}{}
	)
	for _, m := range members {
		p := e.eps[m]
		homes = append(homes, p.home)
		if seq == 0 || p.home < seq {
			seq = p.home
		}
		if first == 0 || p.first < first {
			first = p.first
		}
		if p.last > last {
			last = p.last
			latest = p
		}
		for d := range p.days {
			days[d] = struct{}{}
		}
		if p.agency != "" && (agencyEp == nil || p.agencyNS > agencyEp.agencyNS) {
			agencyEp = p
		}
		if p.anyAgency != "" && (anyEp == nil || p.anyAgencyNS > anyEp.anyAgencyNS) {
			anyEp = p
		}
		if p.placeNS > 0 && (placeEp == nil || p.placeNS > placeEp.placeNS) {
			placeEp = p
		}
		for a := range p.agencies {
			agencies[a] = struct{}{}
		}
		vpn, hosting = vpn || p.vpn, hosting || p.hosting
		for _, n := range p.networks {
			if !slices.Contains(networks, n) {
				networks = append(networks, n)
			}
		}
		for idx, f := range p.files {
			a := files[idx]
			if a == nil {
				a = &agg{first: f.first, last: f.last}
				files[idx] = a
			}
			a.level = max(a.level, f.level)
			a.count += f.count
			a.hours += f.hours
			a.first, a.last = min(a.first, f.first), max(a.last, f.last)
			a.sharing = a.sharing || f.sharing
			a.offered = a.offered || f.offered
		}
	}
	s := TargetSummary{ID: TargetID(seq), Endpoints: len(members), FirstSeen: time.Unix(0, first).UTC(), LastSeen: time.Unix(0, last).UTC(),
		VPN: vpn, Hosting: hosting}
	if latest != nil {
		s.Label = latest.key.String()
	}
	switch {
	case agencyEp != nil:
		s.Jurisdiction = agencyEp.agency
	case anyEp != nil:
		s.Jurisdiction = anyEp.anyAgency
	}
	if placeEp != nil {
		s.Country = placeEp.place.Country
		if n := len(placeEp.place.Subdivisions); n > 0 {
			s.Subdivision = placeEp.place.Subdivisions[n-1]
		}
	}
	s.Agencies = slices.Sorted(maps.Keys(agencies))
	sort.Strings(networks)
	s.Networks = networks
	in := ScoreInput{Days: len(days), LastSeen: s.LastSeen}
	levels := map[observe.Level]int{}
	cats := map[string]struct{}{}
	looking := true
	var scoredLast int64
	for idx, a := range files {
		it := e.itemList[idx]
		s.Observations += a.count
		if e.held(it.hash) {
			continue
		}
		in.Files = append(in.Files, FileFacts{Severity: it.severity, Level: a.level, Looking: !a.sharing, Offered: a.offered})
		in.Observations += a.count
		in.Sightings += max(a.hours, 1)
		scoredLast = max(scoredLast, a.last)
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
	obs = s.Observations
	_ = obs
	if scoredLast > 0 {
		in.LastSeen = time.Unix(0, scoredLast).UTC()
	} else {
		in.LastSeen = time.Time{}
	}
	s.Files = len(in.Files)
	s.Looking = looking && s.Files > 0
	for l := observe.Verified; l >= observe.Announced; l-- {
		if n := levels[l]; n > 0 {
			s.Levels = append(s.Levels, LevelCount{Level: l, Files: n})
		}
	}
	s.Categories = slices.Sorted(maps.Keys(cats))
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
	in.Flags = s.Flags
	in.ConfirmedLeads = e.confirmedLeads(members)
	s.Parts = Score(in, e.cfg.Weights, e.now())
	s.Score = s.Parts.Total()
	s.Assigned = assign.Value
	s.Investigator = inv.Value
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
	in := EndpointInfo{IP: p.key.Addr(), Port: p.key.Port(), Transport: p.transport, ASN: p.place.ASN, Org: p.place.Org,
		Country: p.place.Country, City: p.place.City, FirstSeen: time.Unix(0, p.first).UTC(), LastSeen: time.Unix(0, p.last).UTC(),
		Observations: p.count, VPN: p.vpn, Hosting: p.hosting, Agency: p.agency}
	if in.Agency == "" {
		in.Agency = p.anyAgency
	}
	if n := len(p.place.Subdivisions); n > 0 {
		in.Subdivision = p.place.Subdivisions[n-1]
	}
	return in
}

// save writes the dirt and pending records in one transaction; on error
// everything stays pending for the next save.
func (e *Engine) save(ctx context.Context, watermark int64) error {
	c := e.pending // copy: pending stays intact until the write succeeds
	c.Watermark = watermark
	roots := map[int32][]int32{}
	for id := range e.dirtyEps {
		r := e.uf.find(id)
		if _, ok := roots[r]; !ok {
			roots[r] = e.uf.members(r)
		}
	}
	merged := map[string]string{}
	written := map[string]string{}
	targetOf := map[int32]string{}
	for _, members := range roots {
		row := e.summarize(members)
		sig := strings.Join(row.Access, ",") + "|" + strings.Join(row.Summary.Categories, ",")
		row.Same = e.written[row.Summary.ID] == sig
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
	for id := range e.dirtyEps {
		p := e.eps[id]
		c.Endpoints = append(c.Endpoints, EndpointRow{ID: int64(id), Home: p.home, Target: targetOf[id], Info: e.endpointInfo(p), Networks: p.networks})
	}
	for k := range e.dirtyFiles {
		p, it := e.eps[k.ep], e.itemList[k.item]
		f := p.files[k.item]
		intent := Looking
		if f.sharing {
			intent = Sharing
		}
		c.Files = append(c.Files, EndpointFileRow{Endpoint: int64(k.ep), File: FileInfo{
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
	empty := len(c.Targets) == 0 && len(c.Endpoints) == 0 && len(c.Files) == 0 && len(c.Links) == 0 && len(c.Leads) == 0 &&
		len(c.Daily) == 0 && len(c.Timeline) == 0 && len(c.Quarantine) == 0 && len(c.Alerts) == 0 && len(c.Decisions) == 0 && len(c.Merged) == 0
	if empty && watermark == 0 {
		return nil
	}
	if err := e.b.AnalysisSave(ctx, &c); err != nil {
		return fmt.Errorf("analysis: saving %d targets, %d endpoints, %d files: %w", len(c.Targets), len(c.Endpoints), len(c.Files), err)
	}
	for id, to := range merged {
		e.mergedStored[id] = to
	}
	for _, t := range c.Targets {
		e.mergedStored[t.Summary.ID] = ""
	}
	for id, sig := range written {
		e.written[id] = sig
	}
	for id, to := range merged {
		if to != "" {
			delete(e.written, id)
		}
	}
	e.lastSave = time.Now()
	if e.cfg.OnAlert != nil {
		for _, a := range c.Alerts {
			e.cfg.OnAlert(a)
		}
	}
	e.resetDirt()
	return nil
}
