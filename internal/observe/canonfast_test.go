package observe

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// millisRef is Millis as first written (fmt and strings): appendMillis
// must write the same bytes for every duration.
func millisRef(d time.Duration) string {
	ns := int64(d)
	u := uint64(ns)
	sign := ""
	if ns < 0 {
		u, sign = -u, "-"
	}
	s := sign + strconv.FormatUint(u/1e6, 10)
	if f := u % 1e6; f != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", f), "0")
	}
	return s
}

func TestAppendMillisIsMillis(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ds := []time.Duration{0, 1, -1, 999999, 1000000, -1000000, 1500000, 100, 10, 120000, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for range 100000 {
		ds = append(ds, time.Duration(r.Int64()), time.Duration(r.Int64N(1e10)-5e9), time.Duration(r.Int64N(2e6)-1e6))
	}
	for _, d := range ds {
		if got, want := string(appendMillis(nil, d)), millisRef(d); got != want {
			t.Fatalf("%d ns: %s, want %s", int64(d), got, want)
		}
	}
}

// appendTime writes what AppendFormat(timeLayout) writes of the time in
// UTC, for any year.
func TestAppendTimeIsTheLayout(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	loc := time.FixedZone("x", -5*3600-30*60)
	ts := []time.Time{{}, time.Unix(0, 0), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 18, 0, 0, 5, loc)}
	for range 100000 {
		ts = append(ts, time.Unix(r.Int64N(1<<37)-1<<36, r.Int64N(1e9)).In(loc), time.Unix(r.Int64N(4e9), r.Int64N(1e9)))
	}
	for _, tm := range ts {
		if got, want := string(appendTime(nil, tm)), tm.UTC().Format(timeLayout); got != want {
			t.Fatalf("%v: %s, want %s", tm, got, want)
		}
	}
}
