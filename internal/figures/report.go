package figures

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Store is what the figures read from a store. Stores that keep the
// analysis implement it (the SQLite store does) and run figurestest.
type Store interface {
	// FigureCounts calls fn for each roll-up of the periods by (Week or
	// Month) and dimension dim whose first day is in [fromDay, toDay], in
	// any order, with the estimates of its sketches as last written.
	FigureCounts(ctx context.Context, by, dim string, fromDay, toDay int64, fn func(*Count) error) error
	// FigureFacts calls fn for each observation in [since, until) that the
	// analysis placed on an endpoint, with that endpoint's target today as
	// its device.
	FigureFacts(ctx context.Context, since, until time.Time, fn func(*Fact) error) error
}

// Periods a report is cut into.
const (
	Week  = "week"  // ISO 8601 weeks, Monday to Sunday, labelled 2026-W05
	Month = "month" // calendar months, labelled 2026-01
)

// DefaultExactDays is the longest span (the range with its previous
// period) counted exactly from the observations; longer spans are read
// from the roll-ups.
const DefaultExactDays = 62

// Methods a report's unique counts come from.
const (
	MethodExact       = "exact"
	MethodHyperLogLog = "hyperloglog"
)

// ErrQuery is wrapped by every refusal of a query.
var ErrQuery = errors.New("figures: bad query")

// Query is what a report covers. From and To are UTC days; the range is
// widened to whole periods (From down to its period's first day, To up to
// its period's last).
type Query struct {
	By        string // Week or Month
	Group     string // All or one of Groups
	From, To  time.Time
	MinCell   int // a cell below this is suppressed (0, 1: none)
	ExactDays int // 0: DefaultExactDays; <0: always the roll-ups
}

// Validate says what is wrong with q.
func (q *Query) Validate() error {
	if q.By != Week && q.By != Month {
		return fmt.Errorf("%w: period %q: want %s or %s", ErrQuery, q.By, Week, Month)
	}
	if q.Group != All && !slices.Contains(Groups, q.Group) {
		return fmt.Errorf("%w: group %q: want one of %v", ErrQuery, q.Group, Groups)
	}
	if q.To.Before(q.From) {
		return fmt.Errorf("%w: to %s is before from %s", ErrQuery, q.To.Format(time.DateOnly), q.From.Format(time.DateOnly))
	}
	if q.MinCell < 0 {
		return fmt.Errorf("%w: min-cell %d is negative", ErrQuery, q.MinCell)
	}
	return nil
}

// Row is one period (and group) of a report. A nil figure was suppressed
// (it is below the report's MinCell, or a change computed from one that
// is); a nil change also means no previous figure to compare with.
type Row struct {
	Period          string `json:"period"`
	Group           string `json:"group,omitempty"`
	Observations    *int64 `json:"observations"`
	UniqueAddresses *int64 `json:"unique_addresses"`
	UniqueDevices   *int64 `json:"unique_devices"`
	// Changes against the previous period of the same group, in percent.
	ObservationsChange    *float64 `json:"observations_change_pct"`
	UniqueAddressesChange *float64 `json:"unique_addresses_change_pct"`
	UniqueDevicesChange   *float64 `json:"unique_devices_change_pct"`
	// Estimated: the unique counts are HyperLogLog estimates.
	Estimated bool `json:"estimated"`
	// Suppressed names the cells left out because they are below MinCell.
	Suppressed []string `json:"suppressed,omitempty"`
}

// Report is the figures of a Query.
type Report struct {
	By    string `json:"by"`
	Group string `json:"group,omitempty"`
	From  string `json:"from"` // first day of the first period
	To    string `json:"to"`   // last day of the last period
	// Method is MethodExact or MethodHyperLogLog (the unique counts are
	// then estimates; the observations are exact in both).
	Method          string `json:"method"`
	Estimated       bool   `json:"estimated"`
	Note            string `json:"note"`
	MinCell         int    `json:"min_cell,omitempty"`
	SuppressedCells int    `json:"suppressed_cells"`
	Rows            []Row  `json:"rows"`
}

// period is one week or month: its first day and the next period's.
type period struct {
	start, end time.Time
	label      string
}

func periodOf(by string, t time.Time) period {
	t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if by == Month {
		s := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return period{s, s.AddDate(0, 1, 0), s.Format("2006-01")}
	}
	s := t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
	y, w := s.ISOWeek()
	return period{s, s.AddDate(0, 0, 7), fmt.Sprintf("%04d-W%02d", y, w)}
}

// cell is one period and group being counted.
type cell struct {
	obs    int64
	addrs  map[netip16]struct{}
	devs   map[string]struct{}
	parts  []*Rollup
	nA, nD int64
}

type netip16 = [16]byte

type cellKey struct {
	period string
	group  string
}

// Compute returns the report of q over s.
func Compute(ctx context.Context, s Store, q Query) (*Report, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	first, last := periodOf(q.By, q.From), periodOf(q.By, q.To)
	prev := periodOf(q.By, first.start.AddDate(0, 0, -1))
	var periods []period
	for p := first; !p.start.After(last.start); p = periodOf(q.By, p.end) {
		periods = append(periods, p)
	}
	exactDays := q.ExactDays
	if exactDays == 0 {
		exactDays = DefaultExactDays
	}
	exact := last.end.Sub(prev.start) <= time.Duration(exactDays)*24*time.Hour
	cells := map[cellKey]*cell{}
	get := func(k cellKey) *cell {
		c := cells[k]
		if c == nil {
			c = &cell{}
			cells[k] = c
		}
		return c
	}
	rep := &Report{By: q.By, Group: q.Group, From: first.start.Format(time.DateOnly),
		To: last.end.AddDate(0, 0, -1).Format(time.DateOnly), MinCell: q.MinCell}
	if exact {
		rep.Method = MethodExact
		rep.Note = "exact counts from the observations the analysis placed on an endpoint; a device is a target as linked today"
		err := s.FigureFacts(ctx, prev.start, last.end, func(f *Fact) error {
			if f.TimeImplausible {
				return nil // its time places it in no period
			}
			p := periodOf(q.By, f.Time.UTC()).label
			for _, v := range f.Values(q.Group) {
				c := get(cellKey{p, v})
				if c.addrs == nil {
					c.addrs, c.devs = map[netip16]struct{}{}, map[string]struct{}{}
				}
				c.obs++
				c.addrs[f.Addr.Unmap().As16()] = struct{}{}
				if f.Device != "" {
					c.devs[f.Device] = struct{}{}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, c := range cells {
			c.nA, c.nD = int64(len(c.addrs)), int64(len(c.devs))
		}
	} else {
		rep.Method, rep.Estimated = MethodHyperLogLog, true
		rep.Note = "observations are exact; unique addresses and devices are HyperLogLog estimates from weekly and monthly roll-ups (standard error about 0.8%); a device is the target its endpoint belonged to when the analysis wrote the observation's batch, so a target linked to another later counts once for each"
		err := s.FigureCounts(ctx, q.By, q.Group, Day(prev.start), Day(last.start), func(r *Count) error {
			k := cellKey{periodOf(q.By, time.Unix(r.Start*86400, 0).UTC()).label, r.Value}
			if cells[k] != nil {
				return fmt.Errorf("figures: two roll-ups of %s %s %q from day %d", r.By, r.Dim, r.Value, r.Start)
			}
			cells[k] = &cell{obs: r.Observations, nA: r.Addresses, nD: r.Devices}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	rep.Rows = rows(q, periods, prev, cells, rep.Estimated)
	suppress(rep, q, q.MinCell, cells, periods, prev)
	return rep, nil
}

// rows lays the cells out: every period when ungrouped, the groups seen
// in each period when grouped (most observations first).
func rows(q Query, periods []period, prev period, cells map[cellKey]*cell, estimated bool) []Row {
	var out []Row
	before := prev
	for _, p := range periods {
		var groups []string
		if q.Group == All {
			groups = []string{""}
		} else {
			for k := range cells {
				if k.period == p.label {
					groups = append(groups, k.group)
				}
			}
			slices.SortFunc(groups, func(a, b string) int {
				if c := cmp.Compare(cells[cellKey{p.label, b}].obs, cells[cellKey{p.label, a}].obs); c != 0 {
					return c
				}
				return cmp.Compare(a, b)
			})
		}
		for _, g := range groups {
			c := cells[cellKey{p.label, g}]
			if c == nil {
				c = &cell{}
			}
			r := Row{Period: p.label, Group: g, Estimated: estimated,
				Observations: ptr(c.obs), UniqueAddresses: ptr(c.nA), UniqueDevices: ptr(c.nD)}
			if pc := cells[cellKey{before.label, g}]; pc != nil {
				r.ObservationsChange = change(c.obs, pc.obs)
				r.UniqueAddressesChange = change(c.nA, pc.nA)
				r.UniqueDevicesChange = change(c.nD, pc.nD)
			}
			out = append(out, r)
		}
		before = p
	}
	return out
}

// measures are the figures of a cell, in the order of a row's columns.
var measures = []struct {
	name string
	of   func(*cell) int64
}{
	{"observations", func(c *cell) int64 { return c.obs }},
	{"unique_addresses", func(c *cell) int64 { return c.nA }},
	{"unique_devices", func(c *cell) int64 { return c.nD }},
}

// hiddenCells decides which figures a report with min leaves out: every
// figure below min and, when grouped, in each period and measure where
// that leaves a single group's figure out, the other group with the
// fewest observations too (the groups of a period add up to its total,
// which the ungrouped report shows: one figure left out alone is that
// total minus the others). The second is chosen by observations, exact
// in both methods, so that an exact report and an estimated one of the
// same period hide the same cells: chosen by an estimate, two close cells
// could swap, each report showing the one the other hides.
func hiddenCells(q Query, min int, cells map[cellKey]*cell) map[cellKey][3]bool {
	hidden := map[cellKey][3]bool{}
	for k, c := range cells {
		var h [3]bool
		for i, m := range measures {
			h[i] = m.of(c) < int64(min)
		}
		hidden[k] = h
	}
	if q.Group == All {
		return hidden
	}
	byPeriod := map[string][]cellKey{}
	for k := range cells {
		byPeriod[k.period] = append(byPeriod[k.period], k)
	}
	for _, keys := range byPeriod {
		slices.SortFunc(keys, func(a, b cellKey) int { return cmp.Compare(a.group, b.group) })
		// By département, a country's départements add up to its figure
		// (the report by country shows it): the same rule holds within
		// each country, and the period's second cell is taken, when it
		// can be, in a country with another département to hide with.
		countries := map[string][]cellKey{}
		if q.Group == Subdivision {
			for _, k := range keys {
				c, _, _ := strings.Cut(k.group, "/")
				countries[c] = append(countries[c], k)
			}
		}
		shared := func(k cellKey) bool {
			c, _, _ := strings.Cut(k.group, "/")
			return len(countries[c]) > 1
		}
		for i := range measures {
			for changed := true; changed; {
				changed = false
				for _, ks := range countries {
					changed = complement(ks, i, hidden, cells, nil) || changed
				}
				var prefer func(cellKey) bool
				if q.Group == Subdivision {
					prefer = shared
				}
				changed = complement(keys, i, hidden, cells, prefer) || changed
			}
		}
	}
	return hidden
}

// complement hides, where keys (cells that add up to a figure shown
// elsewhere) have a single figure of measure i left out, the other with
// the fewest observations too (among those prefer likes, when any); it
// reports whether it hid one.
func complement(keys []cellKey, i int, hidden map[cellKey][3]bool, cells map[cellKey]*cell, prefer func(cellKey) bool) bool {
	var n int
	var smallest, liked *cellKey
	for j, k := range keys {
		if hidden[k][i] {
			n++
			continue
		}
		if smallest == nil || cells[k].obs < cells[*smallest].obs {
			smallest = &keys[j]
		}
		if prefer != nil && prefer(k) && (liked == nil || cells[k].obs < cells[*liked].obs) {
			liked = &keys[j]
		}
	}
	if liked != nil {
		smallest = liked
	}
	if n != 1 || smallest == nil {
		return false
	}
	h := hidden[*smallest]
	h[i] = true
	hidden[*smallest] = h
	return true
}

// suppress blanks every figure hiddenCells leaves out, and every change
// computed from one (this period's or the previous one's), and counts
// them.
func suppress(rep *Report, q Query, min int, cells map[cellKey]*cell, periods []period, prev period) {
	if min <= 1 {
		return
	}
	rep.Note += fmt.Sprintf("; every figure below %d is suppressed (k-anonymity), and every change computed from one", min)
	if q.Group != All {
		rep.Note += "; where that would leave a single group's figure of a period out, the other group's with the fewest observations is left out too, so that no figure left out is the total minus the others"
	}
	if q.Group == Subdivision {
		rep.Note += "; the same within each country, whose figure is its départements' sum"
	}
	hidden := hiddenCells(q, min, cells)
	prevLabel := map[string]string{}
	before := prev.label
	for _, p := range periods {
		prevLabel[p.label] = before
		before = p.label
	}
	for i := range rep.Rows {
		r := &rep.Rows[i]
		cur := hidden[cellKey{r.Period, r.Group}]
		ph, hasPrev := hidden[cellKey{prevLabel[r.Period], r.Group}]
		for j, f := range []struct {
			v  **int64
			ch **float64
		}{
			{&r.Observations, &r.ObservationsChange},
			{&r.UniqueAddresses, &r.UniqueAddressesChange},
			{&r.UniqueDevices, &r.UniqueDevicesChange},
		} {
			if cur[j] || (*f.v != nil && **f.v < int64(min)) {
				*f.v, *f.ch = nil, nil
				r.Suppressed = append(r.Suppressed, measures[j].name)
				rep.SuppressedCells++
			} else if hasPrev && ph[j] {
				*f.ch = nil
			}
		}
	}
}

func ptr(v int64) *int64 { return &v }

// change is cur against prev in percent, to one decimal; nil when prev is 0.
func change(cur, prev int64) *float64 {
	if prev == 0 {
		return nil
	}
	v := math.Round(float64(cur-prev)/float64(prev)*1000) / 10
	return &v
}
