package pages

import (
	"context"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// placeCache knows where to draw a country or a French département: the
// coordinates the geo database gave an address placed there (the newest
// one seen). Targets keep their place as codes, not coordinates; the
// coordinates come from the observations this process sees (live batches,
// target timelines, the overview's newest rows) and from a bounded read of
// the newest stored observations when a place is missing. A place never
// seen with coordinates is listed but not drawn.
type placeCache struct {
	st Store

	mu     sync.Mutex
	points map[[2]string][2]float64
	missed bool // a place was asked for and not known since the last refresh
}

func newPlaceCache(st Store) *placeCache {
	return &placeCache{st: st, points: map[[2]string][2]float64{}}
}

func (c *placeCache) learn(country, sub string, lat, lon float64) {
	if country == "" || (lat == 0 && lon == 0) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{country, sub}
	if _, ok := c.points[k]; !ok && len(c.points) < 100000 {
		c.points[k] = [2]float64{lat, lon}
	}
}

func (c *placeCache) learnFrom(o *observe.Observation) {
	p := &o.Place
	if p.Country == "" || (p.Lat == 0 && p.Lon == 0) {
		return
	}
	c.learn(p.Country, "", p.Lat, p.Lon)
	if n := len(p.Subdivisions); n > 0 {
		c.learn(p.Country, p.Subdivisions[n-1], p.Lat, p.Lon)
	}
}

// point returns where to draw (country, sub); sub "" is the country.
func (c *placeCache) point(country, sub string) (lat, lon float64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.points[[2]string{country, sub}]
	if !ok {
		c.missed = true
	}
	return p[0], p[1], ok
}

// refresh reads the newest stored observations' places (time index,
// bounded) if a place was missing since the last call, or force.
func (c *placeCache) refresh(ctx context.Context, force bool) error {
	c.mu.Lock()
	need := c.missed || force
	c.missed = false
	c.mu.Unlock()
	if !need {
		return nil
	}
	pts, err := c.st.PlacePoints(ctx, 20000)
	if err != nil {
		return err
	}
	for _, p := range pts {
		c.learn(p.Country, p.Subdivision, p.Lat, p.Lon)
	}
	return nil
}

// run refreshes every period until ctx ends.
func (c *placeCache) run(ctx context.Context, period time.Duration, onErr func(error)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.refresh(ctx, false); err != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}
