package spool

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// upstream is a bus that can be cut off; it keeps what it accepted, in
// order.
type upstream struct {
	down  atomic.Bool
	mu    sync.Mutex
	got   []string
	limit int // if positive, the bus fails once it holds this many
}

var errDown = errors.New("bus unreachable (test)")

func (u *upstream) Publish(ctx context.Context, o observe.Observation) error {
	if u.down.Load() {
		return errDown
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.limit > 0 && len(u.got) >= u.limit {
		return errDown
	}
	u.got = append(u.got, o.ID)
	return nil
}

func (u *upstream) ids() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.got...)
}

func testConfig(dir string) Config {
	c := DefaultConfig(dir)
	c.RetryEvery, c.SyncEvery, c.CloseDrain = 10*time.Millisecond, 10*time.Millisecond, time.Second
	return c
}

func observations(n int) []observe.Observation {
	r := rand.New(rand.NewPCG(3, 4))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	out := make([]observe.Observation, n)
	for i := range out {
		out[i] = storetest.Observation(r, at.Add(time.Duration(i)*time.Millisecond), i)
	}
	return out
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run starts s.Run and returns a function that stops it and waits.
func run(s *Spool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	return func() { cancel(); <-done }
}

func publishAll(t *testing.T, s *Spool, obs []observe.Observation) []string {
	t.Helper()
	var ids []string
	for _, o := range obs {
		if err := s.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	return ids
}

func sameOrder(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("bus got %d observations, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("bus got %s at %d, want %s: out of order", got[i], i, want[i])
		}
	}
}

// A sensor cut off from the bus keeps observing into the queue; the
// health says so; when the bus returns the queue drains in order.
func TestQueueDrainsInOrderWhenTheBusReturns(t *testing.T) {
	up := &upstream{}
	up.down.Store(true)
	cfg := testConfig(t.TempDir())
	cfg.SegmentBytes = 4 << 10 // several segments
	s, err := Open(cfg, up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stop := run(s)
	defer stop()
	want := publishAll(t, s, observations(300))
	waitFor(t, "a failed publish", func() bool { return !s.Stats().BusUp })
	if ok, why := s.Health(); ok || !strings.Contains(why, "bus unreachable") {
		t.Fatalf("health while cut off: %v %q", ok, why)
	}
	if st := s.Stats(); st.Pending != 300 || st.Queued != 300 || st.Published != 0 {
		t.Fatalf("while cut off: %+v", st)
	}
	up.down.Store(false)
	waitFor(t, "the drain", func() bool { return s.Stats().Pending == 0 })
	sameOrder(t, up.ids(), want)
	st := s.Stats()
	if !st.BusUp || st.Published != 300 || st.Dropped != 0 {
		t.Fatalf("after the drain: %+v", st)
	}
	if st.Bytes > cfg.SegmentBytes+4<<10 {
		t.Fatalf("drained segments not deleted: %d bytes on disk", st.Bytes)
	}
	if ok, why := s.Health(); !ok {
		t.Fatalf("health after the drain: %q", why)
	}
}

// A full queue refuses new observations with ErrFull and counts them; it
// never drops what it holds.
func TestFullQueueDropsNewObservationsAndCountsThem(t *testing.T) {
	up := &upstream{}
	up.down.Store(true)
	cfg := testConfig(t.TempDir())
	cfg.MaxBytes = 8 << 10
	s, err := Open(cfg, up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var kept []string
	dropped := 0
	for _, o := range observations(200) {
		switch err := s.Publish(context.Background(), o); {
		case errors.Is(err, ErrFull):
			dropped++
		case err != nil:
			t.Fatal(err)
		default:
			kept = append(kept, o.ID)
		}
	}
	st := s.Stats()
	if dropped == 0 || st.Dropped != uint64(dropped) || st.Pending != len(kept) || st.Bytes > cfg.MaxBytes {
		t.Fatalf("dropped %d, stats %+v", dropped, st)
	}
	if ok, why := s.Health(); ok || !strings.Contains(why, "dropped") {
		t.Fatalf("health of a queue that dropped: %v %q", ok, why)
	}
	up.down.Store(false)
	stop := run(s)
	defer stop()
	waitFor(t, "the drain", func() bool { return s.Stats().Pending == 0 })
	sameOrder(t, up.ids(), kept)
}

// A record cut short by a crash is detected when the queue opens, cut off
// and counted; every whole record before it is published, and new ones
// after it.
func TestTornLastRecordIsSkippedAndCounted(t *testing.T) {
	dir := t.TempDir()
	up := &upstream{}
	up.down.Store(true)
	s, err := Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	obs := observations(21)
	want := publishAll(t, s, obs[:20])
	s.release() // a crash: nothing synced or saved by Close
	segs, err := segments(dir)
	if err != nil || len(segs) != 1 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	path := filepath.Join(dir, segName(segs[0]))
	payload, _ := encode(&obs[20])
	rec := appendRecord(nil, payload)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(rec[:len(rec)/2]); err != nil { // the write the crash cut
		t.Fatal(err)
	}
	f.Close()

	up.down.Store(false)
	s, err = Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Torn != 1 || st.Pending != 20 {
		t.Fatalf("after reopening: %+v", st)
	}
	want = append(want, publishAll(t, s, observations(25)[21:])...)
	stop := run(s)
	defer stop()
	waitFor(t, "the drain", func() bool { return s.Stats().Pending == 0 })
	sameOrder(t, up.ids(), want)
}

// A queue closed with records left publishes exactly those when it is
// opened again; one that crashed publishes them at least once, in order.
func TestReopenedQueueResumesAtItsCursor(t *testing.T) {
	for _, crash := range []bool{false, true} {
		dir := t.TempDir()
		up := &upstream{}
		s, err := Open(testConfig(dir), up, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := publishAll(t, s, observations(600))
		up.mu.Lock()
		up.limit = 400
		up.mu.Unlock()
		if crash {
			// Killed mid-drain: no Run to stop, nothing saved on the way out.
			if err := s.drain(context.Background()); !errors.Is(err, errDown) {
				t.Fatalf("drain: %v", err)
			}
			s.release()
		} else {
			stop := run(s)
			waitFor(t, "a partial drain", func() bool { return len(up.ids()) == 400 })
			stop()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		sent := len(up.ids())
		up.mu.Lock()
		up.limit = 0
		up.mu.Unlock()
		up.down.Store(false)
		if s, err = Open(testConfig(dir), up, nil); err != nil {
			t.Fatal(err)
		}
		stop := run(s)
		waitFor(t, "the drain", func() bool { return s.Stats().Pending == 0 })
		stop()
		s.Close()
		got := up.ids()
		if !crash {
			sameOrder(t, got, want)
			continue
		}
		// After a crash the records drained since the cursor was saved go
		// again: the bus and the store recognise them by id.
		again := len(got) - len(want)
		if again <= 0 || again > saveEvery {
			t.Fatalf("crash: %d published again (sent %d before), want 0..%d", again, sent, saveEvery)
		}
		sameOrder(t, append(got[:sent:sent], got[sent+again:]...), want)
	}
}

// Two processes never share one queue directory.
func TestQueueDirectoryIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testConfig(dir), &upstream{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(testConfig(dir), &upstream{}, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
}

// A queue directory whose segment numbers have a gap (a segment removed by
// hand, or files dropped in by someone else) still drains every segment,
// in order, instead of retrying forever to open the missing one; a file
// whose name is a number written otherwise than the queue writes it
// ("7.seg") is not a segment and does not stop the queue from opening.
func TestQueueDrainsAcrossAGapInItsSegments(t *testing.T) {
	dir := t.TempDir()
	obs := observations(6)
	var want []string
	for i, n := range []uint64{3, 9} {
		var b []byte
		for _, o := range obs[i*3 : i*3+3] {
			p, err := encode(&o)
			if err != nil {
				t.Fatal(err)
			}
			b = appendRecord(b, p)
			want = append(want, o.ID)
		}
		if err := os.WriteFile(filepath.Join(dir, segName(n)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "7.seg"), []byte("not a segment"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := &upstream{}
	s, err := Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Pending != 6 {
		t.Fatalf("after opening: %+v, want 6 pending", st)
	}
	stop := run(s)
	defer stop()
	waitFor(t, "the drain", func() bool { return len(up.ids()) == 6 })
	sameOrder(t, up.ids(), want)
}

// When the next segment cannot be created (a full disk, no inode left:
// here a directory in its place), the observation is refused, and once it
// can be created again the queue takes and drains observations again: a
// failed roll must not leave the queue writing to a closed file forever.
func TestQueueRecoversFromASegmentItCouldNotCreate(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.SegmentBytes = 1
	up := &upstream{}
	up.down.Store(true)
	s, err := Open(cfg, up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	obs := observations(3)
	want := publishAll(t, s, obs[:1])
	blocker := filepath.Join(dir, segName(s.wseg+1))
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(context.Background(), obs[1]); err == nil {
		t.Fatal("publish with no segment to write to: no error")
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	want = append(want, publishAll(t, s, obs[2:])...)
	up.down.Store(false)
	stop := run(s)
	defer stop()
	waitFor(t, "the drain", func() bool { return s.Stats().Pending == 0 })
	sameOrder(t, up.ids(), want)
}

// A queue directory that others may write to (--queue-dir /tmp/q made
// 0777, or someone else's) is refused: anyone could plant segments that
// the sensor would publish as its own, or a symbolic link at cursor.tmp
// or lock that it would write through.
func TestQueueRefusesADirectoryOthersMayWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	s, err := Open(testConfig(dir), &upstream{}, nil)
	if err == nil {
		s.Close()
		t.Fatal("a queue directory writable by anyone was accepted")
	}
	if !strings.Contains(err.Error(), "others may write") {
		t.Fatalf("error %q does not say why", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lock")); err == nil {
		t.Fatal("a lock file was made in the refused directory")
	}
}
