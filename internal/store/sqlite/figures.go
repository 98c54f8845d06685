package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

var _ figures.Store = (*Store)(nil)

// saveFigures adds each roll-up delta to the stored roll-up of its key,
// and records the seq they count up to.
func (x *saveTx) saveFigures(c *analysis.Changes) error {
	for i := range c.Figures {
		d := &c.Figures[i]
		var obs int64
		var a, dv []byte
		err := x.tx.QueryRowContext(x.ctx, `SELECT observations, addresses, devices FROM figure_rollups WHERE period = ? AND dim = ? AND start = ? AND value = ?`,
			d.By, d.Dim, d.Start, d.Value).Scan(&obs, &a, &dv)
		sum := d
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			old, err := figures.DecodeRollup(d.Key, obs, a, dv)
			if err != nil {
				return err
			}
			if err := old.Merge(d); err != nil {
				return err
			}
			sum = old
		}
		a, dv, err = sum.Encode()
		if err != nil {
			return err
		}
		n := sum.Count()
		if _, err := x.exec(`INSERT OR REPLACE INTO figure_rollups (period, dim, start, value, observations, addresses, devices, unique_addresses, unique_devices)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, d.By, d.Dim, d.Start, d.Value, sum.Observations, a, dv, n.Addresses, n.Devices); err != nil {
			return fmt.Errorf("figure roll-up %s %s %q from day %d: %w", d.By, d.Dim, d.Value, d.Start, err)
		}
	}
	if c.FiguresWatermark > 0 {
		if _, err := x.exec(`INSERT INTO analysis_state (key, value) VALUES ('figures_watermark', ?)
			ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)`, c.FiguresWatermark); err != nil {
			return err
		}
	}
	return nil
}

// FigureCounts implements figures.Store.
func (s *Store) FigureCounts(ctx context.Context, by, dim string, fromDay, toDay int64, fn func(*figures.Count) error) error {
	return eachRow(ctx, s.db, `SELECT start, value, observations, unique_addresses, unique_devices FROM figure_rollups
		WHERE period = ? AND dim = ? AND start BETWEEN ? AND ?`,
		func(r *sql.Rows) error {
			c := figures.Count{Key: figures.Key{By: by, Dim: dim}}
			if err := r.Scan(&c.Start, &c.Value, &c.Observations, &c.Addresses, &c.Devices); err != nil {
				return err
			}
			return fn(&c)
		}, by, dim, fromDay, toDay)
}

// window is one generation of an endpoint: its span and its target.
type window struct {
	first, last int64
	target      string
}

// FigureFacts implements figures.Store: the observations in [since,
// until) that fall in the span of one of the analysis's endpoints (one
// generation of an IP:port), with that endpoint's target.
func (s *Store) FigureFacts(ctx context.Context, since, until time.Time, fn func(*figures.Fact) error) error {
	wins := map[netip.AddrPort][]window{}
	err := eachRow(ctx, s.db, `SELECT ip, port, first_ns, last_ns, target FROM analysis_endpoints WHERE last_ns >= ? AND first_ns < ?`,
		func(r *sql.Rows) error {
			var ip, target string
			var port, first, last int64
			if err := r.Scan(&ip, &port, &first, &last, &target); err != nil {
				return err
			}
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return fmt.Errorf("analysis_endpoints %s: %w", ip, err)
			}
			k := netip.AddrPortFrom(a.Unmap(), uint16(port))
			wins[k] = append(wins[k], window{first, last, target})
			return nil
		}, since.UnixNano(), until.UnixNano())
	if err != nil {
		return err
	}
	return s.Observations(ctx, store.ObservationFilter{Since: since, Until: until}, func(o *observe.Observation) error {
		k := netip.AddrPortFrom(o.Endpoint.IP.Unmap(), o.Endpoint.Port)
		t := o.Time.UnixNano()
		for _, w := range wins[k] {
			if t >= w.first && t <= w.last {
				return fn(figures.FactOf(o, k.Addr(), w.target))
			}
		}
		return nil
	})
}
