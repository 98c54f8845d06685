package spool

import (
	"errors"
	"testing"
)

// faultyFile fails its next Write after writing half of what it was
// given (a disk that fills, or fails, mid-record), and its next Truncate:
// the half record stays on disk.
type faultyFile struct {
	segmentFile
	failWrite, failTruncate bool
}

var errInjected = errors.New("injected disk fault (test)")

func (f *faultyFile) Write(p []byte) (int, error) {
	if !f.failWrite {
		return f.segmentFile.Write(p)
	}
	f.failWrite = false
	n, _ := f.segmentFile.Write(p[:len(p)/2])
	return n, errInjected
}

func (f *faultyFile) Truncate(size int64) error {
	if !f.failTruncate {
		return f.segmentFile.Truncate(size)
	}
	f.failTruncate = false
	return errInjected
}

// A record whose write failed half-way, and which could not be cut back
// (Truncate failing too), left half a record in the segment, and the
// queue appended the next records after it: the drain, finding the
// damage, skipped the rest of the segment, and with it every record
// written after the fault, queued and counted as such but never
// published. The queue must never append after a tail it does not know:
// it goes on in a new segment. The half record is skipped and counted
// (torn), the failed observations are the caller's error, not queued.
func TestFailedWriteThatCannotBeCutBackIsNotWrittenAfter(t *testing.T) {
	dir := t.TempDir()
	up := &upstream{}
	up.down.Store(true)
	s, err := Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before, after := aroundAFaultNotCutBack(t, s)
	if st := s.Stats(); st.Queued != 20 || st.Pending != 20 {
		t.Fatalf("stats %+v: want 20 queued and pending (the failed batch is not)", st)
	}
	up.down.Store(false)
	stop := run(s)
	defer stop()
	waitFor(t, "the records before and after the fault", func() bool { return len(up.ids()) >= len(before)+len(after) })
	got := up.ids()
	sameOrder(t, got[:len(before)], before)
	sameOrder(t, got[len(before):], after)
	if st := s.Stats(); st.Torn != 1 || st.Pending != 0 || st.Published != 20 {
		t.Fatalf("stats %+v: want the half record counted torn, 20 published, nothing pending", st)
	}
}

// The same fault, then the sensor stops before anything is drained: the
// queue opened again publishes every record written before and after the
// part record, which it skips and counts.
func TestFailedWriteThatCannotBeCutBackSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(testConfig(dir), &upstream{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, after := aroundAFaultNotCutBack(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	up := &upstream{}
	s, err = Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	drainAll(t, s)
	got := up.ids()
	sameOrder(t, got, append(before, after...))
	if st := s.Stats(); st.Torn != 1 {
		t.Fatalf("stats %+v: want the part record counted torn", st)
	}
}

// aroundAFaultNotCutBack queues 10 observations, then has the next 10
// fail to write with a write that cannot be cut back (the file's write
// and truncate both failing), then queues 10 more: it returns the ids of
// the first and last 10.
func aroundAFaultNotCutBack(t *testing.T, s *Spool) (before, after []string) {
	t.Helper()
	obs := observations(30)
	before = publishAll(t, s, obs[:10])
	s.mu.Lock()
	s.wf = &faultyFile{segmentFile: s.wf, failWrite: true, failTruncate: true}
	s.mu.Unlock()
	if err := s.PublishBatch(t.Context(), obs[10:20]); !errors.Is(err, errInjected) {
		t.Fatalf("batch written on a failing disk: %v, want the fault", err)
	}
	return before, publishAll(t, s, obs[20:])
}
