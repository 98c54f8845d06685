package ingest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// An observation whose time cannot be when a sensor talked to its peer
// (before any peer-to-peer network existed, or ahead of ingest's own
// clock by more than the tolerance, read on the sensor's clock or as the
// reference time its clock offset gives) is not stored, so it never
// becomes an ISP row, a last_seen or a score input; it is counted and
// logged with its id and chain position, never its peer's address.
// Before, every time from 1677 to 2262 was stored as true.
func TestObservationWhoseTimeCannotBeTrueIsRefused(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(7, 7))
	mk := func(i int, at time.Time) observe.Observation {
		o := storetest.Observation(r, at, i)
		o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource = false, 0, 0, ""
		return o
	}
	good := []observe.Observation{
		mk(0, now.Add(-time.Hour)),
		mk(1, now.Add(9*time.Minute)), // a clock a little ahead
		mk(2, time.Date(2001, 7, 2, 0, 0, 0, 0, time.UTC)),
		mk(3, now),
	}
	good[3].ClockKnown, good[3].ClockOffset, good[3].ClockUncertainty, good[3].ClockSource = true, 2*time.Second, time.Millisecond, "ntp:127.0.0.1:123"
	bad := []observe.Observation{
		mk(10, time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)),
		mk(11, time.Date(1998, 12, 31, 23, 59, 59, 0, time.UTC)),
		mk(12, now.Add(11*time.Minute)),
		mk(13, time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC)),
		mk(14, now), // its offset says the reference time was a century later
	}
	bad[4].ClockKnown, bad[4].ClockOffset, bad[4].ClockUncertainty, bad[4].ClockSource = true, -100*365*24*time.Hour, time.Millisecond, "ntp:127.0.0.1:123"
	var obs []observe.Observation
	for i := range bad {
		if i < len(good) {
			obs = append(obs, good[i])
		}
		obs = append(obs, bad[i])
	}
	var logged bytes.Buffer
	m := NewMetrics()
	var analysed int
	st := openStore(t)
	stats, err := Run(ctx, inproc.NewSlice(obs), st, Config{BatchSize: 3, FlushEvery: time.Millisecond, Metrics: m,
		Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(&logged, nil)),
		OnCommit: func(b []observe.Observation) {
			for i := range b {
				if implausibleTime(&b[i], now, DefaultTimeAhead) != "" {
					t.Errorf("observation at %s handed to the analysis", b[i].Time)
				}
			}
			analysed += len(b)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if stats.TimeRefused != len(bad) || stats.Refused != 0 {
		t.Errorf("stats %+v: want %d refused for their time", stats, len(bad))
	}
	if got := value(t, m.TimeRefused); got != float64(len(bad)) {
		t.Errorf("vigil_ingest_time_refused_total %v, want %d", got, len(bad))
	}
	stored := map[string]bool{}
	if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error { stored[o.ID] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, o := range bad {
		if stored[o.ID] {
			t.Errorf("observation at %s (offset %v) stored", o.Time, o.ClockOffset)
		}
		if !strings.Contains(logged.String(), o.ID) {
			t.Errorf("refusal of %s not logged", o.ID)
		}
		if strings.Contains(logged.String(), o.Endpoint.IP.String()) {
			t.Errorf("the log names a refused observation's peer %s:\n%s", o.Endpoint.IP, logged.String())
		}
	}
	for _, o := range good {
		if !stored[o.ID] {
			t.Errorf("observation at %s (offset %v) not stored", o.Time, o.ClockOffset)
		}
	}
	if analysed != len(stored) {
		t.Errorf("%d handed to the analysis, %d stored", analysed, len(stored))
	}
}

// A file imported all or nothing (AllOrNothing) is not imported when
// one of its observations has a time that cannot be true: the error names
// it, and nothing is stored (leaving it out, the import would have said
// it stored them all).
func TestImplausibleTimeFailsAnAllOrNothingImport(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(8, 8))
	obs := []observe.Observation{storetest.Observation(r, now, 0), storetest.Observation(r, time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC), 1)}
	st := openStore(t)
	_, err := Run(ctx, inproc.NewSlice(obs), st, Config{BatchSize: 2, FlushEvery: time.Millisecond, AllOrNothing: true,
		Now: func() time.Time { return now }})
	if !errors.Is(err, ErrImplausibleTime) || !strings.Contains(err.Error(), obs[1].ID) {
		t.Fatalf("import with a 1970 time: %v, want ErrImplausibleTime naming %s", err, obs[1].ID)
	}
	n := 0
	if err := st.Observations(ctx, store.ObservationFilter{}, func(*observe.Observation) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("%d stored (%v), want none", n, err)
	}
}
