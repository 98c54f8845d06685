package analysis

import (
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/observe"
)

// figure counts o, just folded into p, in the figures' roll-ups. Its
// device is p's target, known once the batch's links are: figureChanges
// adds it at save.
func (e *Engine) figure(o *observe.Observation, p *endpoint) {
	f := figures.FactOf(o, p.key.Addr(), "")
	e.figs.Add(f)
	for _, k := range figures.Keys(f) {
		m := e.figEps[k]
		if m == nil {
			m = map[int32]struct{}{}
			e.figEps[k] = m
		}
		m[p.id] = struct{}{}
	}
}

// figureChanges puts the batch's roll-up deltas in c, each endpoint's
// device being the target it belongs to now, and the seq they count up to.
// Adding a device twice changes nothing, so a save that failed gathers
// them again.
func (e *Engine) figureChanges(c *Changes) {
	if e.figs.Len() > 0 {
		target := map[int32]string{} // by component root
		for k, eps := range e.figEps {
			for ep := range eps {
				r := e.uf.find(ep)
				id, ok := target[r]
				if !ok {
					home := int64(-1)
					for _, m := range e.uf.members(r) {
						if h := e.eps[m].home; home < 0 || h < home {
							home = h
						}
					}
					id = TargetID(home)
					target[r] = id
				}
				e.figs.AddDevice(k, id)
			}
		}
		c.Figures = e.figs.Rollups()
	}
	if e.watermark > e.figWM {
		c.FiguresWatermark = e.watermark
	}
}
