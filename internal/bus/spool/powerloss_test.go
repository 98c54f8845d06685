package spool

import (
	"os"
	"path/filepath"
	"testing"
)

// A power loss after the cursor was saved (rename: metadata the file
// system may commit first) but before the segment's last records reached
// the disk (fsynced every --queue-sync) leaves the cursor past the end of
// its segment. Those records were published: the cursor moves past a
// record only once NATS acknowledged it. Before, the queue refused to
// open ("the queue was changed by hand") and the sensor did not start
// again until someone edited the cursor; it must open, publish nothing
// again, and go on.
func TestQueueOpensWithItsCursorPastItsSegmentsEnd(t *testing.T) {
	dir, up, c := drainedAndClosed(t)
	seg := filepath.Join(dir, segName(c.Seg))
	if err := os.Truncate(seg, c.Off/2); err != nil { // the tail lost, maybe mid-record
		t.Fatal(err)
	}
	sent := len(up.ids())
	s, err := Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatalf("after a power loss left the cursor past its segment's end: %v", err)
	}
	if st := s.Stats(); st.Pending != 0 {
		t.Fatalf("%d pending after the power loss, want 0: they were published", st.Pending)
	}
	more := publishAll(t, s, observations(310)[300:])
	drainAll(t, s)
	s.Close()
	sameOrder(t, up.ids()[sent:], more)
}

// The cursor moved back to its segment's end at open is saved then: a
// crash before the next save (the bus still away, fewer than saveEvery
// published) would otherwise leave on disk the cursor past the old end,
// which the records written since reach, and the next open would start
// there, skipping the unpublished records before it (or cutting the
// segment where it lands mid-record). Seen failing first: 300 written,
// fewer published.
func TestCursorMovedToItsSegmentsEndIsSavedAtOnce(t *testing.T) {
	dir, up, c := drainedAndClosed(t)
	if err := os.Truncate(filepath.Join(dir, segName(c.Seg)), c.Off/2); err != nil {
		t.Fatal(err)
	}
	sent := len(up.ids())
	up.down.Store(true)
	s, err := Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	more := publishAll(t, s, observations(600)[300:])
	s.release() // a crash: nothing saved by Close
	up.down.Store(false)
	s, err = Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Pending != len(more) || st.Torn != 0 {
		t.Errorf("after the crash: %d pending, %d torn; want %d, 0", st.Pending, st.Torn, len(more))
	}
	drainAll(t, s)
	s.Close()
	sameOrder(t, up.ids()[sent:], more)
}

// A cursor whose segment is gone altogether (a power loss that lost the
// segment's directory entry after the cursor's rename reached the disk)
// starts the segment made again at its beginning: before, the cursor kept
// its offset in the new, empty segment, and the records written there
// up to that offset were never published (nor any after it, the offset
// falling mid-record). Seen failing first.
func TestCursorOfALostSegmentStartsAtItsBeginning(t *testing.T) {
	dir, up, c := drainedAndClosed(t)
	if err := os.Remove(filepath.Join(dir, segName(c.Seg))); err != nil {
		t.Fatal(err)
	}
	sent := len(up.ids())
	s, err := Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	more := publishAll(t, s, observations(600)[300:])
	drainAll(t, s)
	s.Close()
	sameOrder(t, up.ids()[sent:], more)
}

// drainedAndClosed writes 300 observations to a new queue, drains them
// to an upstream and closes the queue: its folder, the upstream and the
// cursor saved, one past the records drained.
func drainedAndClosed(t *testing.T) (string, *upstream, cursor) {
	t.Helper()
	dir := t.TempDir()
	up := &upstream{}
	s, err := Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	publishAll(t, s, observations(300))
	drainAll(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := loadCursor(dir)
	if err != nil || c.Off == 0 {
		t.Fatalf("cursor %+v, %v: want one past the records drained", c, err)
	}
	return dir, up, c
}

// drainAll runs s until nothing is pending.
func drainAll(t *testing.T, s *Spool) {
	t.Helper()
	stop := run(s)
	waitFor(t, "the drain", func() bool { return s.Stats().Pending == 0 })
	stop()
}
