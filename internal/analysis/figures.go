package analysis

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/observe"
)

// figProfile is what the figures group an observation by: its day and
// each dimension's value (categories joined by "\x00"). A batch's
// observations fold into few profiles, each with the endpoints seen.
type figProfile struct {
	day                                int64
	network, country, sub, level, cats string
}

// figEntry is one observation the stored roll-ups do not count yet.
type figEntry struct {
	seq  int64
	prof int32 // in Engine.figProfList
	ep   int32
}

// figure counts o (seq), just folded into p, for the figures' roll-ups,
// at the level the analysis credits it with (observe's CreditedLevel, as
// figures.FactOf counts it for exact figures).
// Its address is p's, its device p's target, known once the batch's links
// are: figureChanges makes the roll-ups at save. Each observation keeps
// its seq until the roll-ups are written, so that a process that finds
// another's roll-ups ahead of its own (resync) drops what they count.
func (e *Engine) figure(seq int64, o *observe.Observation, p *endpoint) {
	k := figProfile{day: figures.Day(o.Time), network: o.Network, country: observe.PlaceText(o.Place.Country),
		sub: lastSubdivision(&o.Place), level: o.CreditedLevel().String()}
	switch len(o.Item.Matched) {
	case 0:
	case 1:
		k.cats = o.Item.Matched[0].Category
	default:
		cs := make([]string, len(o.Item.Matched))
		for i, m := range o.Item.Matched {
			cs[i] = m.Category
		}
		k.cats = strings.Join(cs, "\x00")
	}
	i, ok := e.figProfs[k]
	if !ok {
		i = int32(len(e.figProfList))
		e.figProfs[k] = i
		e.figProfList = append(e.figProfList, k)
	}
	e.figLog = append(e.figLog, figEntry{seq: seq, prof: i, ep: p.id})
}

// figuresWrittenTo drops what roll-ups written up to seq wm count (by
// this process at save, or by another: resync).
func (e *Engine) figuresWrittenTo(wm int64) {
	if wm <= e.figWM {
		return
	}
	e.figWM = wm
	e.figLog = slices.DeleteFunc(e.figLog, func(f figEntry) bool { return f.seq <= wm })
	if len(e.figLog) == 0 {
		// Let go of the array too: it held every observation since the
		// last write (a catch-up's, up to FiguresInterval's worth).
		e.figLog, e.figProfs, e.figProfList = nil, map[figProfile]int32{}, nil
	}
}

// figureChanges puts in c, when they are due (Config.FiguresInterval),
// the roll-up deltas of the observations since they were last written,
// each endpoint's device being the target it belongs to now, and the seq
// they count up to; it reports whether it did. It builds them afresh from
// the profiles, so a save that failed builds them again.
func (e *Engine) figureChanges(c *Changes) bool {
	if len(e.figLog) > 0 && !e.figForce && e.cfg.FiguresInterval > 0 && time.Since(e.lastFigSave) < e.cfg.FiguresInterval {
		return false
	}
	if len(e.figLog) > 0 {
		type figAgg struct {
			n   int64
			eps map[int32]struct{}
		}
		by := map[int32]*figAgg{}
		for _, f := range e.figLog {
			a := by[f.prof]
			if a == nil {
				a = &figAgg{eps: map[int32]struct{}{}}
				by[f.prof] = a
			}
			a.n++
			a.eps[f.ep] = struct{}{}
		}
		var acc figures.Accumulator
		// Each roll-up sees each of its endpoints once, however many of
		// the batch's profiles share it (a week's total, a network's): a
		// sketch's state is the set of what it saw, and one endpoint
		// inserted again after its sketch folded it in would cost a merge
		// of the sketch's sparse list, not change the set.
		keyed := map[figures.Key][]int32{}
		for prof, a := range by {
			k := e.figProfList[prof]
			f := figures.Fact{Time: time.Unix(k.day*86400, 0).UTC(), Network: k.network, Country: k.country, Subdivision: k.sub, Level: k.level}
			if k.cats != "" {
				f.Categories = strings.Split(k.cats, "\x00")
			}
			keys := figures.Keys(&f)
			acc.Count(keys, a.n)
			for _, key := range keys {
				eps := keyed[key]
				for ep := range a.eps {
					eps = append(eps, ep)
				}
				keyed[key] = eps
			}
		}
		target := map[int32]string{} // by component root
		addr := map[int32]netip.Addr{}
		var addrs []netip.Addr
		var devices []string
		for key, eps := range keyed {
			slices.Sort(eps)
			addrs, devices = addrs[:0], devices[:0]
			for _, ep := range slices.Compact(eps) {
				a, ok := addr[ep]
				if !ok {
					a = e.eps[ep].key.Addr().Unmap()
					addr[ep] = a
				}
				addrs = append(addrs, a)
				devices = append(devices, e.targetOf(ep, target))
			}
			slices.SortFunc(addrs, netip.Addr.Compare)
			slices.Sort(devices)
			acc.SeeAll(key, slices.Compact(addrs), slices.Compact(devices))
		}
		c.Figures = acc.Rollups()
	}
	if e.watermark > e.figWM {
		c.FiguresWatermark = e.watermark
	}
	return true
}

// targetOf is the id of the target endpoint ep belongs to now (its
// component's lowest home), cached by component root.
func (e *Engine) targetOf(ep int32, cache map[int32]string) string {
	r := e.uf.find(ep)
	if id, ok := cache[r]; ok {
		return id
	}
	home := int64(-1)
	for _, m := range e.uf.members(r) {
		if h := e.eps[m].home; home < 0 || h < home {
			home = h
		}
	}
	id := TargetID(home)
	cache[r] = id
	return id
}
