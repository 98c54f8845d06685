package postgres

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// The figures' roll-ups (migration 0011): the SQLite store's
// (store/sqlite/figures.go), ported.

var _ figures.Store = (*Store)(nil)

// figuresLock is the second key of the transaction-scoped advisory lock
// (pg_advisory_xact_lock(int, int), the first being the schema's hash)
// under which a save adds to the roll-ups: a sketch is merged in Go, so
// two saves reading one roll-up at once would each lose the other's.
const figuresLock = 15

// saveFigures adds each roll-up delta to the stored roll-up of its key,
// and records the seq they count up to. It sends the statements queued so
// far, takes the figures' lock, reads the roll-ups the deltas add to
// (rowsChunk keys a query), and queues their new values.
func (x *saveTx) saveFigures(c *analysis.Changes) error {
	if len(c.Figures) > 0 {
		if err := x.flush(); err != nil {
			return err
		}
		if _, err := x.tx.Exec(x.ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema()), $1)`, figuresLock); err != nil {
			return fmt.Errorf("figures lock: %w", err)
		}
		stored := map[figures.Key]*figures.Rollup{}
		var err error
		chunks(len(c.Figures), func(lo, hi int) {
			if err == nil {
				err = x.readRollups(c.Figures[lo:hi], stored)
			}
		})
		if err != nil {
			return err
		}
		for i := range c.Figures {
			d := &c.Figures[i]
			if old := stored[d.Key]; old != nil {
				if err := old.Merge(d); err != nil {
					return err
				}
			} else {
				stored[d.Key] = d
			}
		}
		chunks(len(c.Figures), func(lo, hi int) {
			if err == nil {
				err = x.writeRollups(c.Figures[lo:hi], stored)
			}
		})
		if err != nil {
			return err
		}
	}
	if c.FiguresWatermark > 0 {
		x.exec(nil, `INSERT INTO analysis_state (key, value) VALUES ('figures_watermark', ?)
			ON CONFLICT (key) DO UPDATE SET value = GREATEST(analysis_state.value, excluded.value)`, c.FiguresWatermark)
	}
	return nil
}

// rollupKeys are the columns of the keys of ds, for unnest.
func rollupKeys(ds []figures.Rollup) (periods, dims []string, starts []int64, values []string) {
	for i := range ds {
		d := &ds[i]
		periods, dims, starts, values = append(periods, d.By), append(dims, d.Dim), append(starts, d.Start), append(values, d.Value)
	}
	return periods, dims, starts, values
}

// readRollups puts in stored the roll-ups kept under the keys of ds.
func (x *saveTx) readRollups(ds []figures.Rollup, stored map[figures.Key]*figures.Rollup) error {
	periods, dims, starts, values := rollupKeys(ds)
	return eachRow(x.ctx, sqlDB{x.tx}, `SELECT r.period, r.dim, r.start, r.value, r.observations, r.addresses, r.devices
		FROM figure_rollups r JOIN unnest(?::text[], ?::text[], ?::bigint[], ?::text[]) AS k (period, dim, start, value)
		ON r.period = k.period AND r.dim = k.dim AND r.start = k.start AND r.value = k.value`, func(r pgx.Rows) error {
		var k figures.Key
		var obs int64
		var a, dv []byte
		if err := r.Scan(&k.By, &k.Dim, &k.Start, &k.Value, &obs, &a, &dv); err != nil {
			return err
		}
		old, err := figures.DecodeRollup(k, obs, a, dv)
		if err != nil {
			return err
		}
		stored[k] = old
		return nil
	}, periods, dims, starts, values)
}

// writeRollups queues the upsert of the roll-ups in stored under the keys
// of ds, with their estimates.
func (x *saveTx) writeRollups(ds []figures.Rollup, stored map[figures.Key]*figures.Rollup) error {
	periods, dims, starts, values := rollupKeys(ds)
	obs := make([]int64, len(ds))
	uas, uds := make([]int64, len(ds)), make([]int64, len(ds))
	as, dvs := make([][]byte, len(ds)), make([][]byte, len(ds))
	for i := range ds {
		sum := stored[ds[i].Key]
		a, dv, err := sum.Encode()
		if err != nil {
			return fmt.Errorf("figure roll-up %s %s %q from day %d: %w", sum.By, sum.Dim, sum.Value, sum.Start, err)
		}
		n := sum.Count()
		obs[i], as[i], dvs[i], uas[i], uds[i] = sum.Observations, a, dv, n.Addresses, n.Devices
	}
	x.exec(func(err error) error { return fmt.Errorf("%d figure roll-ups: %w", len(ds), err) },
		`INSERT INTO figure_rollups (period, dim, start, value, observations, addresses, devices, unique_addresses, unique_devices)
		SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[], ?::text[], ?::bigint[], ?::bytea[], ?::bytea[], ?::bigint[], ?::bigint[])
		ON CONFLICT (period, dim, start, value) DO UPDATE SET observations = excluded.observations, addresses = excluded.addresses,
		devices = excluded.devices, unique_addresses = excluded.unique_addresses, unique_devices = excluded.unique_devices`,
		periods, dims, starts, values, obs, as, dvs, uas, uds)
	return nil
}

// FigureCounts implements figures.Store.
func (s *Store) FigureCounts(ctx context.Context, by, dim string, fromDay, toDay int64, fn func(*figures.Count) error) error {
	return eachRow(ctx, s.db(), `SELECT start, value, observations, unique_addresses, unique_devices FROM figure_rollups
		WHERE period = ? AND dim = ? AND start BETWEEN ? AND ?`,
		func(r pgx.Rows) error {
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
	err := eachRow(ctx, s.db(), `SELECT ip, port, first_ns, last_ns, target FROM analysis_endpoints WHERE last_ns >= ? AND first_ns < ?`,
		func(r pgx.Rows) error {
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
