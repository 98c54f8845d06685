package analysis

import (
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

// figAgg is one profile's observations in the batch.
type figAgg struct {
	n   int64
	eps map[int32]struct{}
}

// figure counts o, just folded into p, for the figures' roll-ups. Its
// address is p's, its device p's target, known once the batch's links
// are: figureChanges makes the roll-ups at save.
func (e *Engine) figure(o *observe.Observation, p *endpoint) {
	k := figProfile{day: figures.Day(o.Time), network: o.Network, country: o.Place.Country, level: o.Possession.Level.String()}
	if n := len(o.Place.Subdivisions); n > 0 {
		k.sub = o.Place.Subdivisions[n-1]
	}
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
	a := e.figObs[k]
	if a == nil {
		a = &figAgg{eps: map[int32]struct{}{}}
		e.figObs[k] = a
	}
	a.n++
	a.eps[p.id] = struct{}{}
}

// figureChanges puts in c, when they are due (Config.FiguresInterval),
// the roll-up deltas of the observations since they were last written,
// each endpoint's device being the target it belongs to now, and the seq
// they count up to; it reports whether it did. It builds them afresh from
// the profiles, so a save that failed builds them again.
func (e *Engine) figureChanges(c *Changes) bool {
	if len(e.figObs) > 0 && !e.figForce && e.cfg.FiguresInterval > 0 && time.Since(e.lastFigSave) < e.cfg.FiguresInterval {
		return false
	}
	if len(e.figObs) > 0 {
		var acc figures.Accumulator
		target := map[int32]string{} // by component root
		for k, a := range e.figObs {
			f := figures.Fact{Time: time.Unix(k.day*86400, 0).UTC(), Network: k.network, Country: k.country, Subdivision: k.sub, Level: k.level}
			if k.cats != "" {
				f.Categories = strings.Split(k.cats, "\x00")
			}
			keys := figures.Keys(&f)
			acc.Count(keys, a.n)
			for ep := range a.eps {
				acc.See(keys, e.eps[ep].key.Addr(), e.targetOf(ep, target))
			}
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
