// Package figurestest is the contract of figures.Store: one suite a store
// runs in its own tests. It stores synthetic observations, drives the real
// analysis Engine over them (which keeps the roll-ups), and compares every
// figure of figures.Compute, exact and estimated, with counts the suite
// makes itself from the observations it generated.
//
// It uses synthetic observations only (documentation addresses, hashes of
// counters); it must never hold real data.
package figurestest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// Store is what the suite checks: the figures' reads, and the analysis
// and observations they are derived from.
type Store interface {
	figures.Store
	analysis.Views
	store.Store
}

// Run runs the contract. open must return a new, empty store for t and
// close it when t ends.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("ExactFiguresEqualIndependentCounts", func(t *testing.T) { testExact(t, open(t)) })
	t.Run("EstimatesAreCloseAndObservationsExact", func(t *testing.T) { testEstimates(t, open(t)) })
	t.Run("MinCellSuppressesEverySmallCell", func(t *testing.T) { testMinCell(t, open(t)) })
}

// t0 is a Monday: the synthetic observations span twelve weeks from it.
var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

const spanDays = 84

// device is one synthetic device: one endpoint, seen every 8 hours or so
// (never silent for the analysis's 24-hour window) between two days.
type device struct {
	ep          netip.AddrPort
	network     string
	country     string
	sub         []string
	first, last int // days after t0
}

var networks = []string{observe.NetBitTorrent, observe.NetED2K, observe.NetGnutella}

func devices() []device {
	r := rand.New(rand.NewPCG(15, 15))
	var out []device
	for i := range 30 {
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)})
		if i >= 27 { // three devices behind the address of another (carrier-grade NAT)
			ip = netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i - 27)})
		}
		d := device{ep: netip.AddrPortFrom(ip, uint16(6881+i)), network: networks[i%3], country: "FR",
			sub: []string{"Île-de-France", []string{"75", "78", "91"}[i%3]}}
		if i%5 == 4 {
			d.country, d.sub = "DE", nil
		}
		d.first = r.IntN(spanDays - 5)
		d.last = min(spanDays-1, d.first+2+r.IntN(40))
		out = append(out, d)
	}
	return out
}

// observations are the devices' sightings, in time order, each with the
// device it came from.
func observations(devs []device) ([]observe.Observation, []int) {
	var obs []observe.Observation
	var from []int
	for h := 0; h < spanDays*24; h += 8 {
		for i, d := range devs {
			if h/24 < d.first || h/24 > d.last {
				continue
			}
			n := len(obs)
			at := t0.Add(time.Duration(h)*time.Hour + time.Duration(i)*time.Minute)
			matched := [][]observe.Match{{{List: "national", Category: "1"}}, {{List: "national", Category: "1"}, {List: "regional", Category: "2"}},
				{{List: "regional", Category: "2"}}}[n%3]
			b := make([]byte, 20)
			b[0], b[1], b[2] = 0xF1, byte(i), byte(n%4)
			obs = append(obs, observe.Observation{
				ID: observe.NewID(at), Sensor: observe.Sensor{ID: "lab-1"}, Network: d.network, Method: observe.MethodPeerProbe, Time: at,
				Item:         observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, b), Matched: matched},
				Endpoint:     observe.Endpoint{IP: d.ep.Addr(), Port: d.ep.Port(), Transport: "tcp"},
				Possession:   observe.Possession{Level: []observe.Level{observe.Acknowledged, observe.Partial, observe.Complete}[n%3], PiecesHave: -1, PiecesTotal: -1},
				Place:        observe.Place{Country: d.country, Subdivisions: d.sub},
				Jurisdiction: observe.Jurisdiction{Agency: "fr-test", Rule: "test"},
			})
			if n%7 == 5 {
				// What no sensor signed, or an exchange about another
				// item: the figures count it at announced at most.
				obs[n].Mark([]string{observe.MarkUnsigned, observe.MarkSignatureFailed, observe.MarkInfohashMismatch}[(n/7)%3])
			}
			from = append(from, i)
		}
	}
	return obs, from
}

// load stores the observations a day at a time, feeding each batch to a
// first engine that writes its changes after each but the figures never,
// and stops without a flush; then a second engine starts over the store
// (its replay must add those observations to the roll-ups) and flushes,
// and a third starts (whose replay must count nothing twice).
func load(t *testing.T, st Store) ([]observe.Observation, []int, []device) {
	t.Helper()
	ctx := context.Background()
	devs := devices()
	obs, from := observations(devs)
	cfg := analysis.DefaultConfig()
	cfg.Now = func() time.Time { return t0.AddDate(0, 0, spanDays) }
	cfg.SaveInterval = 0
	cfg.FiguresInterval = time.Hour
	e, err := analysis.New(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(obs); {
		j := i
		for j < len(obs) && figures.Day(obs[j].Time) == figures.Day(obs[i].Time) {
			j++
		}
		if err := st.InsertObservations(ctx, obs[i:j]); err != nil {
			t.Fatal(err)
		}
		if err := e.Add(ctx, obs[i:j]); err != nil {
			t.Fatal(err)
		}
		i = j
	}
	if w := e.Watermark(); w != int64(len(obs)) {
		t.Fatalf("first engine's watermark %d, want %d", w, len(obs))
	}
	for range 2 {
		e2, err := analysis.New(ctx, st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e2.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return obs, from, devs
}

// counts is the suite's own count of one period and group.
type counts struct {
	obs          int64
	addrs, devs  map[netip.Addr]bool
	devIdx       map[int]bool
	nAddr, nDevs int64
}

// expect counts the observations in [from, to) by period and group,
// independently of the figures package: the group's values from the
// synthetic device and the observation, periods from the calendar.
func expect(obs []observe.Observation, from []int, devs []device, by, group string, since, until time.Time) map[[2]string]*counts {
	out := map[[2]string]*counts{}
	for i, o := range obs {
		if o.Time.Before(since) || !o.Time.Before(until) {
			continue
		}
		d := devs[from[i]]
		var label string
		if by == figures.Month {
			label = o.Time.Format("2006-01")
		} else {
			y, w := o.Time.ISOWeek()
			label = fmt.Sprintf("%d-W%02d", y, w)
		}
		var values []string
		switch group {
		case figures.All:
			values = []string{""}
		case figures.Network:
			values = []string{d.network}
		case figures.Country:
			values = []string{d.country}
		case figures.Subdivision:
			values = []string{""}
			if d.sub != nil {
				values = []string{d.country + "/" + d.sub[1]}
			}
		case figures.Category:
			seen := map[string]bool{}
			for _, m := range o.Item.Matched {
				if !seen[m.Category] {
					seen[m.Category] = true
					values = append(values, m.Category)
				}
			}
		case figures.Level:
			// Counted at the level the analysis credits: a record that
			// no sensor signed, or of an exchange about another item,
			// raises no level (rule 3).
			l := o.Possession.Level
			for _, m := range o.Marks {
				if m == observe.MarkUnsigned || m == observe.MarkSignatureFailed || m == observe.MarkInfohashMismatch {
					l = min(l, observe.Announced)
				}
			}
			values = []string{l.String()}
		}
		for _, v := range values {
			c := out[[2]string{label, v}]
			if c == nil {
				c = &counts{addrs: map[netip.Addr]bool{}, devIdx: map[int]bool{}}
				out[[2]string{label, v}] = c
			}
			c.obs++
			c.addrs[d.ep.Addr()] = true
			c.devIdx[from[i]] = true
			c.nAddr, c.nDevs = int64(len(c.addrs)), int64(len(c.devIdx))
		}
	}
	return out
}

func compute(t *testing.T, st Store, q figures.Query) *figures.Report {
	t.Helper()
	rep, err := figures.Compute(context.Background(), st, q)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func testExact(t *testing.T, st Store) {
	obs, from, devs := load(t, st)
	// Weeks 3 and 4, with week 2 as the first one's previous period: exact.
	q := figures.Query{By: figures.Week, From: t0.AddDate(0, 0, 16), To: t0.AddDate(0, 0, 22)}
	for _, by := range []string{figures.Week, figures.Month} {
		for _, g := range append([]string{figures.All}, figures.Groups...) {
			q.By, q.Group = by, g
			q.ExactDays = 0
			since, until := t0.AddDate(0, 0, 14), t0.AddDate(0, 0, 28)
			if by == figures.Month { // the whole span, counted exactly on demand
				q.From, q.To, q.ExactDays = t0, t0.AddDate(0, 0, spanDays-1), 1000
				since, until = time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
			}
			rep := compute(t, st, q)
			if rep.Method != figures.MethodExact || rep.Estimated {
				t.Fatalf("%s/%q: method %s, estimated %v: want exact", by, g, rep.Method, rep.Estimated)
			}
			want := expect(obs, from, devs, by, g, since, until)
			checkRows(t, fmt.Sprintf("%s/%q", by, g), rep, want, 0)
		}
	}
}

// checkRows compares every row with the suite's counts, the uniques
// within tol (a fraction; 0: exactly), and every change with the one
// computed from the previous period's counts.
func checkRows(t *testing.T, name string, rep *figures.Report, want map[[2]string]*counts, tol float64) {
	t.Helper()
	seen := 0
	prevOf := map[string]string{}
	for i, r := range rep.Rows {
		if i > 0 && rep.Rows[i-1].Period != r.Period {
			prevOf[r.Period] = rep.Rows[i-1].Period
		}
	}
	for _, r := range rep.Rows {
		w := want[[2]string{r.Period, r.Group}]
		if w == nil {
			if *r.Observations != 0 {
				t.Errorf("%s: row %s %q has %d observations, want none", name, r.Period, r.Group, *r.Observations)
			}
			continue
		}
		seen++
		if *r.Observations != w.obs {
			t.Errorf("%s: %s %q observations %d, want %d", name, r.Period, r.Group, *r.Observations, w.obs)
		}
		near := func(what string, got, want int64) {
			if d := math.Abs(float64(got - want)); d > tol*float64(want) {
				t.Errorf("%s: %s %q %s %d, want %d (tolerance %.0f%%)", name, r.Period, r.Group, what, got, want, tol*100)
			}
		}
		near("unique addresses", *r.UniqueAddresses, w.nAddr)
		near("unique devices", *r.UniqueDevices, w.nDevs)
		if p := want[[2]string{prevOf[r.Period], r.Group}]; tol == 0 && p != nil && prevOf[r.Period] != "" {
			wantCh := math.Round(float64(w.obs-p.obs)/float64(p.obs)*1000) / 10
			if r.ObservationsChange == nil || *r.ObservationsChange != wantCh {
				t.Errorf("%s: %s %q observations change %v, want %.1f", name, r.Period, r.Group, figures.Pct(r.ObservationsChange), wantCh)
			}
		}
	}
	inRange := 0
	for k := range want {
		for _, r := range rep.Rows {
			if r.Period == k[0] && r.Group == k[1] {
				inRange++
				break
			}
		}
	}
	if seen != inRange || seen == 0 {
		t.Errorf("%s: %d rows matched the suite's counts, of %d counted in range", name, seen, inRange)
	}
}

func testEstimates(t *testing.T, st Store) {
	obs, from, devs := load(t, st)
	for _, g := range append([]string{figures.All}, figures.Groups...) {
		q := figures.Query{By: figures.Week, Group: g, From: t0, To: t0.AddDate(0, 0, spanDays-1), ExactDays: -1}
		rep := compute(t, st, q)
		if rep.Method != figures.MethodHyperLogLog || !rep.Estimated || !rep.Rows[0].Estimated {
			t.Fatalf("%q: method %s, estimated %v: want hyperloglog estimates, said so", g, rep.Method, rep.Estimated)
		}
		want := expect(obs, from, devs, figures.Week, g, t0.AddDate(0, 0, -7), t0.AddDate(0, 0, spanDays))
		checkRows(t, fmt.Sprintf("estimate/%q", g), rep, want, 0.02)
	}
}

func testMinCell(t *testing.T, st Store) {
	obs, from, devs := load(t, st)
	const k = 6
	q := figures.Query{By: figures.Week, Group: figures.Subdivision, From: t0, To: t0.AddDate(0, 0, spanDays-1), MinCell: k, ExactDays: 1000}
	rep := compute(t, st, q)
	want := expect(obs, from, devs, figures.Week, figures.Subdivision, t0, t0.AddDate(0, 0, spanDays))
	suppressed := 0
	cellsOf := func(r figures.Row) []struct {
		name string
		got  *int64
		want int64
	} {
		w := want[[2]string{r.Period, r.Group}]
		return []struct {
			name string
			got  *int64
			want int64
		}{{"observations", r.Observations, w.obs}, {"unique_addresses", r.UniqueAddresses, w.nAddr}, {"unique_devices", r.UniqueDevices, w.nDevs}}
	}
	// A figure below k left out alone in its period and measure takes a
	// second one with it (the groups add up to the total): one a period
	// and measure; and alone in its country (whose figure is its
	// départements' sum), a second one of that country. A second taken
	// in another country takes a third there, for the same reason.
	country := func(g string) string { c, _, _ := strings.Cut(g, "/"); return c }
	low, lowIn, second, secondIn, cellsIn := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	for _, r := range rep.Rows {
		for _, c := range cellsOf(r) {
			pc := r.Period + "/" + c.name + "/" + country(r.Group)
			cellsIn[pc]++
			if c.want < k {
				low[r.Period+"/"+c.name]++
				lowIn[pc]++
			}
		}
	}
	for _, r := range rep.Rows {
		for _, c := range cellsOf(r) {
			pm := r.Period + "/" + c.name
			pc := pm + "/" + country(r.Group)
			switch {
			case c.want < k && c.got != nil:
				t.Errorf("%s %q %s = %d published, below the threshold %d", r.Period, r.Group, c.name, *c.got, k)
			case c.want < k:
				suppressed++
			case c.got == nil && lowIn[pc] == 1 && cellsIn[pc] > 1 && secondIn[pc] == 0:
				secondIn[pc]++
				suppressed++
			case c.got == nil && low[pm] == 1 && second[pm] == 0:
				second[pm]++
				secondIn[pc]++
				suppressed++
			case c.got == nil && lowIn[pc] == 0 && secondIn[pc] == 1:
				secondIn[pc]++
				suppressed++
			case c.got == nil || *c.got != c.want:
				t.Errorf("%s %q %s = %s, want %d", r.Period, r.Group, c.name, figures.Int(c.got), c.want)
			}
		}
		if r.UniqueDevices == nil && r.UniqueDevicesChange != nil {
			t.Errorf("%s %q: a change published beside a suppressed figure", r.Period, r.Group)
		}
	}
	if suppressed == 0 || rep.SuppressedCells != suppressed {
		t.Errorf("report says %d cells suppressed, the suite counts %d (want some)", rep.SuppressedCells, suppressed)
	}
}
