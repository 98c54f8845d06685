package spool

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A record damaged on disk in the segment the queue still writes to (a
// bad sector, a write that failed half-way and could not be cut back)
// stopped the drain for good: each pass read the damaged record, failed,
// said the bus was unreachable and tried again a second later, while new
// records piled up behind it until the queue was full. It must be
// skipped as in an older segment (counted, logged, the rest of its
// segment skipped), and the drain go on with what is written after.
func TestDamagedRecordInTheSegmentWrittenDoesNotStopTheDrain(t *testing.T) {
	dir := t.TempDir()
	up := &upstream{}
	up.down.Store(true)
	s, err := Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := publishAll(t, s, observations(10))
	seg := filepath.Join(dir, segName(s.wseg))
	fi, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	damaged := publishAll(t, s, observations(11)[10:])
	f, err := os.OpenFile(seg, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XX"), fi.Size()+headerLen+20); err != nil { // inside the 11th record
		t.Fatal(err)
	}
	f.Close()
	up.down.Store(false)
	stop := run(s)
	defer stop()
	waitFor(t, "the records before the damage", func() bool { return len(up.ids()) == len(before) })
	after := publishAll(t, s, observations(20)[11:])
	waitFor(t, "the records written after the damage", func() bool { return len(up.ids()) == len(before)+len(after) })
	got := up.ids()
	sameOrder(t, got[:len(before)], before)
	sameOrder(t, got[len(before):], after)
	for _, id := range got {
		if id == damaged[0] {
			t.Fatalf("the damaged record %s was published", id)
		}
	}
	if st := s.Stats(); st.Torn != 1 || !st.BusUp || st.Pending != 0 {
		t.Fatalf("stats %+v: want 1 torn, the bus up, nothing pending (the skipped record is not waiting)", st)
	}
	if ok, why := s.Health(); !ok || !strings.Contains(why, "1 torn") {
		t.Fatalf("health %v %q", ok, why)
	}
}
