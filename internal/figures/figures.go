// Package figures computes the office's figures: observations, unique
// addresses and unique devices by week or month, overall or by network,
// country, subdivision (département), category or possession level, with
// the change against the previous period, and the publishable form that
// suppresses every cell below a threshold.
//
// Short ranges are counted exactly from the observations (Store.FigureFacts).
// Long ranges are read from weekly and monthly roll-ups that the analysis maintains as it
// folds each observation in (Rollup, Accumulator): the observation counts
// there are exact sums, the unique addresses and devices HyperLogLog
// sketches (github.com/axiomhq/hyperloglog, precision 14: a standard error
// of about 0.8%), which merge across days without double counting. A
// Report says which method it used, and every row says whether its unique
// counts are estimates.
//
// It must never publish a suppressed cell, nor a change computed from one,
// and never present an estimate as exact. It does no I/O of its own.
package figures

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/axiomhq/hyperloglog"

	"github.com/vigil-oss/vigil/internal/observe"
)

// Dimensions a figure can be grouped by. All is the ungrouped total.
const (
	All         = ""
	Network     = "network"
	Country     = "country"
	Subdivision = "subdivision"
	Category    = "category"
	Level       = "level"
)

// Groups lists the dimensions a report can be grouped by, in the order
// --help names them.
var Groups = []string{Network, Country, Subdivision, Category, Level}

// dims is every dimension a roll-up is kept for.
var dims = append([]string{All}, Groups...)

// Fact is one observation as the figures see it: the analysis places it on
// an endpoint, whose target is its device.
type Fact struct {
	Time        time.Time
	Addr        netip.Addr // the IP address (IPv4 unmapped)
	Device      string     // the target the endpoint belongs to; "" when not known yet
	Network     string
	Country     string   // ISO 3166-1 alpha-2; "" when unplaced
	Subdivision string   // the most precise subdivision (département), "" when unknown
	Categories  []string // categories of the list entries the item matched
	Level       string   // possession level credited (observe's CreditedLevel)
	// TimeImplausible: the observation is marked time_implausible (its
	// time is not when its peer was seen): no figure counts it, as the
	// analysis's roll-ups do not.
	TimeImplausible bool
}

// FactOf is o as the figures count it, at addr (its endpoint's address,
// unmapped) and on device. Its level is the one the analysis credits it
// with (observe's CreditedLevel: at most announced when no sensor signed
// it or the peer answered for another item), never more than a target's
// file would show: a forged or stripped record raises no level's count.
func FactOf(o *observe.Observation, addr netip.Addr, device string) *Fact {
	// A place's text is a geo database's: written by observe.PlaceText,
	// as the analysis's roll-ups count it (docs/evidence.md, "Peer text").
	f := &Fact{Time: o.Time, Addr: addr, Device: device, Network: o.Network, Country: observe.PlaceText(o.Place.Country),
		Level: o.CreditedLevel().String(), TimeImplausible: o.HasMark(observe.MarkTimeImplausible)}
	if n := len(o.Place.Subdivisions); n > 0 {
		f.Subdivision = observe.PlaceText(o.Place.Subdivisions[n-1])
	}
	for _, m := range o.Item.Matched {
		f.Categories = append(f.Categories, m.Category)
	}
	return f
}

// Values returns the groups f counts in under dim: one value, but for
// Category, where an observation of an item on several lists counts once
// under each of their categories (so category rows do not add up to the
// total). An unknown value is "".
func (f *Fact) Values(dim string) []string {
	switch dim {
	case Network:
		return []string{f.Network}
	case Country:
		return []string{f.Country}
	case Subdivision:
		if f.Subdivision == "" {
			return []string{""}
		}
		return []string{f.Country + "/" + f.Subdivision}
	case Category:
		if len(f.Categories) == 0 {
			return []string{""}
		}
		out := slices.Clone(f.Categories)
		slices.Sort(out)
		return slices.Compact(out)
	case Level:
		return []string{f.Level}
	}
	return []string{""}
}

// Day is the UTC day of t, in days since 1970-01-01.
func Day(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - 86399) / 86400
	}
	return s / 86400
}

// PeriodStart is the first day of the week or month (by) of t.
func PeriodStart(by string, t time.Time) time.Time { return periodOf(by, t.UTC()).start }

// Key names one roll-up: a period (a week or a month, by its first day),
// a dimension and a value of it.
type Key struct {
	By    string // Week or Month
	Start int64  // the period's first day (Day)
	Dim   string
	Value string
}

// Keys returns the roll-ups f counts in: the total and one per value of
// each group, for its week and for its month. Roll-ups are kept by period
// rather than by day because a report's periods are whole: a year by
// month merges nothing, and a year by week 53 sketches a row.
func Keys(f *Fact) []Key {
	out := make([]Key, 0, 2*(len(dims)+1))
	for _, by := range []string{Week, Month} {
		start := Day(periodOf(by, f.Time.UTC()).start)
		for _, dim := range dims {
			for _, v := range f.Values(dim) {
				out = append(out, Key{By: by, Start: start, Dim: dim, Value: v})
			}
		}
	}
	return out
}

// Rollup is one period's figures under one key: observations (exact) and
// sketches of the addresses and devices seen.
type Rollup struct {
	Key
	Observations int64
	Addresses    *hyperloglog.Sketch
	Devices      *hyperloglog.Sketch
}

// Count is a roll-up as a report reads it: the observations and the
// estimates of its sketches, which the store computes as it writes them.
// A report's periods are whole weeks or months, so each of its cells is
// one roll-up: it reads these numbers and decodes no sketch.
type Count struct {
	Key
	Observations int64
	Addresses    int64 // estimated unique addresses
	Devices      int64 // estimated unique devices
}

// Count returns r's figures (the estimates may compact r's sketches).
func (r *Rollup) Count() Count {
	return Count{Key: r.Key, Observations: r.Observations, Addresses: int64(r.Addresses.Estimate()), Devices: int64(r.Devices.Estimate())}
}

// NewRollup returns an empty roll-up for k.
func NewRollup(k Key) *Rollup {
	return &Rollup{Key: k, Addresses: hyperloglog.New14(), Devices: hyperloglog.New14()}
}

// Merge adds o to r (the same key, or a wider one when summing days).
func (r *Rollup) Merge(o *Rollup) error {
	r.Observations += o.Observations
	if err := r.Addresses.Merge(o.Addresses); err != nil {
		return fmt.Errorf("figures: merging addresses of %s %s %q from day %d: %w", o.By, o.Dim, o.Value, o.Start, err)
	}
	if err := r.Devices.Merge(o.Devices); err != nil {
		return fmt.Errorf("figures: merging devices of %s %s %q from day %d: %w", o.By, o.Dim, o.Value, o.Start, err)
	}
	return nil
}

// Encode returns the sketches' stored forms.
func (r *Rollup) Encode() (addresses, devices []byte, err error) {
	if addresses, err = r.Addresses.MarshalBinary(); err != nil {
		return nil, nil, err
	}
	if devices, err = r.Devices.MarshalBinary(); err != nil {
		return nil, nil, err
	}
	return addresses, devices, nil
}

// DecodeRollup makes a roll-up from its stored form.
func DecodeRollup(k Key, observations int64, addresses, devices []byte) (*Rollup, error) {
	r := &Rollup{Key: k, Observations: observations, Addresses: &hyperloglog.Sketch{}, Devices: &hyperloglog.Sketch{}}
	if err := r.Addresses.UnmarshalBinary(addresses); err != nil {
		return nil, fmt.Errorf("figures: roll-up %s %s %q from day %d: addresses: %w", k.By, k.Dim, k.Value, k.Start, err)
	}
	if err := r.Devices.UnmarshalBinary(devices); err != nil {
		return nil, fmt.Errorf("figures: roll-up %s %s %q from day %d: devices: %w", k.By, k.Dim, k.Value, k.Start, err)
	}
	return r, nil
}

// Accumulator gathers the roll-up deltas of a batch of observations; a
// store adds each delta to the roll-up it keeps under the same key.
// Inserting the same address or device twice changes nothing, so a batch
// whose write failed can be gathered again and retried.
type Accumulator struct {
	rows map[Key]*Rollup
}

func (a *Accumulator) row(k Key) *Rollup {
	if a.rows == nil {
		a.rows = map[Key]*Rollup{}
	}
	r := a.rows[k]
	if r == nil {
		r = NewRollup(k)
		a.rows[k] = r
	}
	return r
}

// Add counts f in each of its roll-ups: one observation, its address and,
// when known, its device.
func (a *Accumulator) Add(f *Fact) {
	keys := Keys(f)
	a.Count(keys, 1)
	a.See(keys, f.Addr, f.Device)
}

// Count adds n observations to the roll-ups keys (Keys of their fact).
func (a *Accumulator) Count(keys []Key, n int64) {
	for _, k := range keys {
		a.row(k).Observations += n
	}
}

// See counts an address and, unless "", a device in the roll-ups keys,
// for a caller that gathers a batch's observations first (the analysis
// counts each distinct fact, address and device of a batch once, and
// knows an observation's device only at the end of the batch).
func (a *Accumulator) See(keys []Key, addr netip.Addr, device string) {
	b := addr.Unmap().AsSlice()
	for _, k := range keys {
		r := a.row(k)
		r.Addresses.Insert(b)
		if device != "" {
			r.Devices.Insert([]byte(device))
		}
	}
}

// SeeAll counts addresses and devices (but "") in the roll-up k, as See
// counts one of each in each of its keys. A sketch holds the set of what
// it saw, so repeats add nothing; a caller that gathers each roll-up's
// addresses and devices without repeats inserts each once (one inserted
// again after the sketch merged it into its sparse list costs a merge).
func (a *Accumulator) SeeAll(k Key, addrs []netip.Addr, devices []string) {
	r := a.row(k)
	for _, addr := range addrs {
		r.Addresses.Insert(addr.Unmap().AsSlice())
	}
	for _, d := range devices {
		if d != "" {
			r.Devices.Insert([]byte(d))
		}
	}
}

// Len is the number of roll-ups gathered.
func (a *Accumulator) Len() int { return len(a.rows) }

// Rollups returns the deltas gathered, by period, dimension and value.
func (a *Accumulator) Rollups() []Rollup {
	out := make([]Rollup, 0, len(a.rows))
	for _, r := range a.rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(x, y Rollup) int {
		return cmp.Or(cmp.Compare(x.By, y.By), cmp.Compare(x.Start, y.Start), cmp.Compare(x.Dim, y.Dim), cmp.Compare(x.Value, y.Value))
	})
	return out
}
