package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/figures"
)

// A year of 100 million observations, as roll-ups: 273,973 a day, from
// 60,000 addresses and 50,000 devices a day drawn from a year's pools of
// 3 and 2.5 million, on 3 networks (60/30/10%), in 20 countries (70% FR),
// 96 départements, 4 categories and 5 levels. The roll-ups (by week and by
// month) are written directly, as the analysis would have left them.
const (
	benchYearObs      = 100_000_000
	benchDayAddresses = 60_000
	benchDayDevices   = 50_000
	benchAddressPool  = 3_000_000
	benchDevicePool   = 2_500_000
)

var benchYear struct {
	once sync.Once
	path string
	err  error
}

// splitmix is a stand-in for the sketch's hash of an address or device id.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// benchGroup is the value of dim for item i of a day (an address or a
// device), so that each group's sketch holds its share of the day's.
func benchGroup(dim string, i uint64) string {
	h := splitmix(i ^ uint64(len(dim))<<56)
	switch dim {
	case figures.Network:
		switch p := h % 10; {
		case p < 6:
			return "bittorrent"
		case p < 9:
			return "ed2k"
		}
		return "gnutella"
	case figures.Country:
		if h%10 < 7 {
			return "FR"
		}
		return fmt.Sprintf("C%02d", h%19)
	case figures.Subdivision:
		return fmt.Sprintf("FR/%02d", 1+h%96)
	case figures.Category:
		return fmt.Sprint(1 + h%4)
	case figures.Level:
		return []string{"announced", "acknowledged", "partial", "complete", "verified"}[h%5]
	}
	return ""
}

func buildBenchYear(b *testing.B) string {
	benchYear.once.Do(func() {
		// VIGIL_FIGURES_BENCH_DB keeps the year's store between runs (it
		// takes a minute or two to build): built there when missing.
		if p := os.Getenv("VIGIL_FIGURES_BENCH_DB"); p != "" {
			benchYear.path = p
			if _, err := os.Stat(p); err == nil {
				return
			}
		} else {
			dir, err := os.MkdirTemp("", "vigil-figures-bench")
			if err != nil {
				benchYear.err = err
				return
			}
			benchYear.path = filepath.Join(dir, "vigil.db")
		}
		ctx := context.Background()
		st, err := Open(ctx, benchYear.path, DefaultConfig())
		if err != nil {
			benchYear.err = err
			return
		}
		defer st.Close()
		r := rand.New(rand.NewPCG(100, 365))
		jan1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		perDay := int64(benchYearObs / 365)
		rows := map[figures.Key]*figures.Rollup{}
		for d := range 365 {
			at := jan1.AddDate(0, 0, d)
			keys := func(dim, v string) []*figures.Rollup {
				var out []*figures.Rollup
				for _, by := range []string{figures.Week, figures.Month} {
					k := figures.Key{By: by, Start: figures.Day(figures.PeriodStart(by, at)), Dim: dim, Value: v}
					if rows[k] == nil {
						rows[k] = figures.NewRollup(k)
					}
					out = append(out, rows[k])
				}
				return out
			}
			for dim, n := range map[string]int64{figures.All: 1, figures.Network: 3, figures.Country: 20, figures.Subdivision: 96, figures.Category: 4, figures.Level: 5} {
				for j := range n { // observations: the day's split evenly enough
					v := ""
					if dim != figures.All {
						v = benchGroup(dim, uint64(j)*7919)
					}
					for _, ru := range keys(dim, v) {
						ru.Observations += perDay / n
					}
				}
			}
			for _, pool := range []struct {
				perDay, size int
				devices      bool
			}{{benchDayAddresses, benchAddressPool, false}, {benchDayDevices, benchDevicePool, true}} {
				for range pool.perDay {
					x := r.Uint64N(uint64(pool.size))
					if pool.devices {
						x |= 1 << 40
					}
					for _, dim := range append([]string{figures.All}, figures.Groups...) {
						if dim == figures.Subdivision && benchGroup(figures.Country, x) != "FR" {
							continue
						}
						for _, ru := range keys(dim, benchGroup(dim, x)) {
							if pool.devices {
								ru.Devices.InsertHash(splitmix(x))
							} else {
								ru.Addresses.InsertHash(splitmix(x))
							}
						}
					}
				}
			}
		}
		c := &analysis.Changes{}
		for _, ru := range rows {
			c.Figures = append(c.Figures, *ru)
		}
		if err := st.AnalysisSave(ctx, c); err != nil {
			benchYear.err = err
		}
	})
	if benchYear.err != nil {
		b.Fatal(benchYear.err)
	}
	return benchYear.path
}

// BenchmarkFiguresYear computes a year's report from the roll-ups of 100
// million observations (target: under 1 s), against the same report over
// one month as a baseline, in the same run.
func BenchmarkFiguresYear(b *testing.B) {
	path := buildBenchYear(b)
	ctx := context.Background()
	st, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	from, to := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		by, dim  string
		from, to time.Time
	}{
		{"baseline-one-month", figures.Month, figures.All, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)},
		{"year-by-month", figures.Month, figures.All, from, to},
		{"year-by-week", figures.Week, figures.All, from, to},
		{"year-by-month-network", figures.Month, figures.Network, from, to},
		{"year-by-month-country", figures.Month, figures.Country, from, to},
		{"year-by-month-subdivision", figures.Month, figures.Subdivision, from, to},
		{"year-by-week-level", figures.Week, figures.Level, from, to},
	} {
		b.Run(c.name, func(b *testing.B) {
			var rows int
			var obs int64
			for b.Loop() {
				rep, err := figures.Compute(ctx, st, figures.Query{By: c.by, Group: c.dim, From: c.from, To: c.to, ExactDays: -1})
				if err != nil {
					b.Fatal(err)
				}
				rows, obs = len(rep.Rows), 0
				for _, r := range rep.Rows {
					obs += *r.Observations
				}
			}
			b.ReportMetric(float64(rows), "rows")
			b.ReportMetric(float64(obs), "observations")
		})
	}
}

// BenchmarkFiguresSave adds one batch's roll-up deltas (every group value
// of one week and month, 500 addresses and devices each) to the year's
// roll-ups: what each of the analysis's saves adds to its transaction.
func BenchmarkFiguresSave(b *testing.B) {
	path := buildBenchYear(b)
	ctx := context.Background()
	st, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2025, 6, 11, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		var acc figures.Accumulator
		for i := range 500 {
			x := r.Uint64N(benchAddressPool)
			f := figures.Fact{Time: at, Network: benchGroup(figures.Network, x), Country: "FR", Subdivision: benchGroup(figures.Subdivision, x)[3:],
				Categories: []string{benchGroup(figures.Category, x)}, Level: benchGroup(figures.Level, x),
				Addr: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), Device: fmt.Sprint(x)}
			acc.Add(&f)
		}
		if err := st.AnalysisSave(ctx, &analysis.Changes{Figures: acc.Rollups()}); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(acc.Len()), "rollups")
	}
}
