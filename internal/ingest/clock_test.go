package ingest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// An observation whose time cannot be when a sensor talked to its peer
// (before any peer-to-peer network existed, or ahead of ingest's own
// clock by more than the tolerance, read on the sensor's clock or, when
// its clock offset is known, as the reference time that offset gives) is
// stored marked time_implausible, never dropped: it is evidence, and the
// one who reads it must know its time is not to be relied on. It is
// counted and logged with its id and chain position, never its peer's
// address. A sensor's clock fast by more than the tolerance whose offset
// it measured is not implausible: time − offset is the reference time.
// Before, such observations were refused: left out of their batches,
// acknowledged, and gone.
func TestObservationWhoseTimeCannotBeTrueIsKeptMarked(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(7, 7))
	mk := func(i int, at time.Time) observe.Observation {
		o := storetest.Observation(r, at, i)
		o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource = false, 0, 0, ""
		return o
	}
	known := func(o *observe.Observation, offset time.Duration) {
		o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource = true, offset, time.Millisecond, "ntp:127.0.0.1:123"
	}
	good := []observe.Observation{
		mk(0, now.Add(-time.Hour)),
		mk(1, now.Add(9*time.Minute)), // a clock a little ahead
		mk(2, time.Date(2001, 7, 2, 0, 0, 0, 0, time.UTC)),
		mk(3, now),
		mk(4, now.Add(30*time.Minute)), // a sensor's clock 30 minutes fast, and measured so
	}
	known(&good[3], 2*time.Second)
	known(&good[4], 30*time.Minute)
	bad := []observe.Observation{
		mk(10, time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)),
		mk(11, time.Date(1998, 12, 31, 23, 59, 59, 0, time.UTC)),
		mk(12, now.Add(11*time.Minute)),
		mk(13, time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC)),
		mk(14, now), // its offset says the reference time was a century later
	}
	known(&bad[4], -100*365*24*time.Hour)
	var obs []observe.Observation
	for i := range bad {
		obs = append(obs, good[i], bad[i])
	}
	var logged bytes.Buffer
	m := NewMetrics()
	analysed := map[string]bool{}
	st := openStore(t)
	stats, err := Run(ctx, inproc.NewSlice(obs), st, Config{BatchSize: 3, FlushEvery: time.Millisecond, Metrics: m,
		Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(&logged, nil)),
		OnCommit: func(b []observe.Observation) {
			for i := range b {
				analysed[b[i].ID] = b[i].HasMark(observe.MarkTimeImplausible)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if stats.TimeImplausible != len(bad) || stats.Refused != 0 || stats.Committed != len(obs) {
		t.Errorf("stats %+v: want %d committed, %d of them marked for their time", stats, len(obs), len(bad))
	}
	if got := value(t, m.TimeImplausible); got != float64(len(bad)) {
		t.Errorf("vigil_ingest_time_implausible_total %v, want %d", got, len(bad))
	}
	stored := map[string]*observe.Observation{}
	if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error { c := *o; stored[o.ID] = &c; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, o := range bad {
		s := stored[o.ID]
		if s == nil || !s.HasMark(observe.MarkTimeImplausible) || !s.Time.Equal(o.Time) {
			t.Errorf("observation at %s (offset %v): stored %v, want it stored marked, its time as read", o.Time, o.ClockOffset, s != nil)
			continue
		}
		if !analysed[o.ID] {
			t.Errorf("observation at %s handed to the analysis unmarked", o.Time)
		}
		if !strings.Contains(logged.String(), o.ID) {
			t.Errorf("marking of %s not logged", o.ID)
		}
		if strings.Contains(logged.String(), o.Endpoint.IP.String()) {
			t.Errorf("the log names a marked observation's peer %s:\n%s", o.Endpoint.IP, logged.String())
		}
	}
	for _, o := range good {
		if s := stored[o.ID]; s == nil || s.HasMark(observe.MarkTimeImplausible) {
			t.Errorf("observation at %s (offset %v): stored %v, want it stored unmarked", o.Time, o.ClockOffset, s != nil)
		}
	}
}

// An ingest whose clock is set back by a day (a mistake, or an NTP
// attack on its host) finds every observation a day ahead of it: it
// marks and keeps them all, never drops one. Before, it refused every
// observation that came, for as long as its clock was wrong.
func TestIngestClockSetBackMarksEverythingAndDropsNothing(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(9, 1))
	real := time.Now()
	var obs []observe.Observation
	for i := range 7 {
		o := storetest.Observation(r, real.Add(-time.Duration(i)*time.Minute), i)
		o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource = i%2 == 0, 0, 0, ""
		obs = append(obs, o)
	}
	st := openStore(t)
	stats, err := Run(ctx, inproc.NewSlice(obs), st, Config{BatchSize: 4, FlushEvery: time.Millisecond,
		Now: func() time.Time { return time.Now().Add(-24 * time.Hour) }, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		if !o.HasMark(observe.MarkTimeImplausible) {
			t.Errorf("observation %s stored unmarked", o.ID)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != len(obs) || stats.TimeImplausible != len(obs) {
		t.Fatalf("%d stored, %d marked (%+v), want all %d", n, stats.TimeImplausible, stats, len(obs))
	}
}

// A file imported all or nothing (AllOrNothing) with an observation whose
// time cannot be true is imported whole, that one marked, as from a bus:
// the file is evidence too. Before, the import failed.
func TestImplausibleTimeIsMarkedInAnAllOrNothingImport(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(8, 8))
	obs := []observe.Observation{storetest.Observation(r, now, 0), storetest.Observation(r, time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC), 1)}
	st := openStore(t)
	_, err := Run(ctx, inproc.NewSlice(obs), st, Config{BatchSize: 2, FlushEvery: time.Millisecond, AllOrNothing: true,
		Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("import with a 1970 time: %v", err)
	}
	marked := map[string]bool{}
	if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		marked[o.ID] = o.HasMark(observe.MarkTimeImplausible)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(marked) != 2 || marked[obs[0].ID] || !marked[obs[1].ID] {
		t.Fatalf("stored %v, want both, the 1970 one marked", marked)
	}
}

// A signed observation ingest marks for its time, in the middle of one
// signed batch and as the signed head of the next, passes the gate and
// is stored with the rest: every position of both batches is there, its
// chain checks as stored (ingest's check, 'vigil verify'), and each row
// read back hashes to its leaf in the log (which covers the mark). Before,
// both were left out: the first batch lacked a position and the second
// its head, so none of the 8 could be bundled.
func TestSignedObservationMarkedForItsTimeKeepsItsBatchWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &collected{}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
	s := evidence.NewBatchSigner(c, key, evidence.SignerConfig{BatchSize: 4, Interval: time.Hour})
	const n = 8
	for i := range n {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i)
		o.Place, o.Jurisdiction, o.Chain = observe.Place{}, observe.Jurisdiction{}, observe.Chain{}
		o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource = false, 0, 0, ""
		switch i {
		case 1:
			o.Time = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
		case 7: // the second batch's signed head
			o.Time = at.Add(2 * time.Hour)
		}
		if err := s.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.obs) != n || len(c.obs[7].Chain.BatchSig) == 0 {
		t.Fatalf("signer published %d observations; the last signed %v", len(c.obs), len(c.obs[7].Chain.BatchSig) > 0)
	}
	st := openStore(t)
	cfg := DefaultConfig()
	cfg.FlushEvery = time.Millisecond
	cfg.Gate = evidence.NewGate(evidence.DefaultGateConfig())
	cfg.Now = func() time.Time { return at.Add(time.Minute) }
	cfg.Log = slog.New(slog.DiscardHandler)
	var failed []error
	cfg.OnGate = func(_ int, f []error) { failed = append(failed, f...) }
	steps := []*scriptedBatch{{obs: c.obs[:n/2]}, {obs: c.obs[n/2:]}}
	stats, err := Run(context.Background(), &scripted{steps: steps}, st, cfg)
	if err != nil || stats.Committed != n || stats.TimeImplausible != 2 || len(failed) != 0 {
		t.Fatalf("Run: %+v, %v, gate failures %v; want %d committed, 2 marked, none failed", stats, err, failed, n)
	}
	marked := 0
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		if o.HasMark(observe.MarkSignatureFailed) || !o.Signed() {
			t.Errorf("seq %d stored unsigned (%v)", o.Chain.Seq, o.Marks)
		}
		if o.HasMark(observe.MarkTimeImplausible) {
			marked++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if marked != 2 {
		t.Fatalf("%d stored marked, want 2", marked)
	}
	checkLeaves(t, st, n)
}

// An ingest mark that arrives from a bus was not set by a sensor (none
// sets one) nor covered by its signature: someone on the way added it, to
// hide a genuine observation from the analysis while its signature still
// checks. Ingest removes it, counts and logs that, and judges the time
// itself: a good time is stored unmarked, a bad one marked. A file
// imported keeps its marks (KeepIngestMarks).
func TestIngestMarkArrivingFromTheBusIsJudgedAgain(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(8, 8))
	forged := storetest.Observation(r, now.Add(-time.Hour), 0)
	forged.Marks = append(forged.Marks, observe.MarkTimeImplausible) // added on the way
	slices.Sort(forged.Marks)
	bad := storetest.Observation(r, now.Add(time.Hour), 1)
	bad.ClockKnown, bad.ClockOffset, bad.ClockUncertainty, bad.ClockSource = false, 0, 0, ""
	bad.Mark(observe.MarkTimeImplausible)
	for _, keep := range []bool{false, true} {
		var logged bytes.Buffer
		m := NewMetrics()
		st := openStore(t)
		stats, err := Run(ctx, inproc.NewSlice([]observe.Observation{forged, bad}), st, Config{BatchSize: 2, FlushEvery: time.Millisecond,
			Metrics: m, Now: func() time.Time { return now }, Log: slog.New(slog.NewTextHandler(&logged, nil)), KeepIngestMarks: keep})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
			got[o.ID] = o.HasMark(observe.MarkTimeImplausible)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[forged.ID] != keep || !got[bad.ID] {
			t.Errorf("keep %v: stored marked %v; want the forged mark kept only on import, the bad time marked either way", keep, got)
		}
		removed := value(t, m.IngestMarksRemoved)
		if want := map[bool]float64{false: 2, true: 0}[keep]; removed != want {
			t.Errorf("keep %v: %v marks removed, want %v", keep, removed, want)
		}
		if want := map[bool]int{false: 1, true: 0}[keep]; stats.TimeImplausible != want {
			t.Errorf("keep %v: %d judged implausible here, want %d", keep, stats.TimeImplausible, want)
		}
		if !keep && !strings.Contains(logged.String(), "arrived with an ingest's mark") {
			t.Errorf("the removal was not logged:\n%s", logged.String())
		}
	}
}
