package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory BatchStore that chains as a real store does.
// hold, if set, is received from before each batch is written (so that a
// test can let appends queue up behind a batch in progress).
type memStore struct {
	mu      sync.Mutex
	recs    []Record
	batches []int // size of each committed batch, in order
	hold    chan struct{}
	holding int    // callers waiting on hold; guarded by mu
	bad     string // a record with this Object makes its batch fail
	panics  string // a record with this Object makes the store panic
}

func (m *memStore) AppendAudit(ctx context.Context, r Record) (Record, error) {
	out, err := m.AppendAuditBatch(ctx, []Record{r})
	if err != nil {
		return Record{}, err
	}
	return out[0], nil
}

func (m *memStore) AppendAuditBatch(_ context.Context, rs []Record) ([]Record, error) {
	if m.hold != nil {
		m.mu.Lock()
		m.holding++
		m.mu.Unlock()
		<-m.hold
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rs {
		if m.bad != "" && r.Object == m.bad {
			return nil, errors.New("refused")
		}
		if m.panics != "" && r.Object == m.panics {
			panic("store bug")
		}
	}
	out := make([]Record, len(rs))
	for i, r := range rs {
		r.Seq, r.PrevHash = int64(len(m.recs))+1, []byte{}
		if len(m.recs) > 0 {
			r.PrevHash = m.recs[len(m.recs)-1].Hash
		}
		Seal(&r)
		m.recs = append(m.recs, r)
		out[i] = r
	}
	m.batches = append(m.batches, len(rs))
	return out, nil
}

func (m *memStore) AuditRecords(_ context.Context, _ Filter, fn func(Record) error) error {
	m.mu.Lock()
	recs := append([]Record(nil), m.recs...)
	m.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) has(seq int64, object string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return seq >= 1 && int(seq) <= len(m.recs) && m.recs[seq-1].Object == object
}

func (l *Log) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// Appends that arrive while a batch is being written are committed
// together in the next one; each Append returns its own record, already
// stored, and the chain verifies.
func TestLogGroupsConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	st := &memStore{hold: make(chan struct{})}
	l := &Log{Store: st}
	const n = 40
	type res struct {
		obj string
		r   Record
		err error
	}
	results := make(chan res, n)
	appendOne := func(i int) {
		obj := fmt.Sprintf("target:%d", i)
		r, err := l.Append(ctx, Record{Actor: "a", Action: ActionViewTarget, Object: obj})
		if err == nil && !st.has(r.Seq, obj) {
			err = fmt.Errorf("Append of %s returned seq %d before it was stored", obj, r.Seq)
		}
		results <- res{obj, r, err}
	}
	go appendOne(0) // the writer: held inside the store
	for l.queued() != 0 || !func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.writing }() {
		runtime.Gosched() // until the first append is inside its batch
	}
	for i := 1; i < n; i++ {
		go appendOne(i)
	}
	for l.queued() != n-1 {
		runtime.Gosched()
	}
	close(st.hold) // let every batch through
	seen := map[int64]bool{}
	for range n {
		x := <-results
		if x.err != nil {
			t.Fatal(x.err)
		}
		if x.r.Object != x.obj || seen[x.r.Seq] {
			t.Fatalf("Append of %s answered %+v", x.obj, x.r)
		}
		seen[x.r.Seq] = true
	}
	if len(st.batches) != 2 || st.batches[0] != 1 || st.batches[1] != n-1 {
		t.Fatalf("batches %v, want [1 %d]", st.batches, n-1)
	}
	rep, err := Verify(ctx, st, nil, nil)
	if err != nil || rep.Broken != nil || rep.Records != n {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// The trail's times follow its sequence numbers.
	for i := 1; i < len(st.recs); i++ {
		if st.recs[i].Time.Before(st.recs[i-1].Time) {
			t.Fatalf("record %d at %v, before record %d at %v", st.recs[i].Seq, st.recs[i].Time, st.recs[i-1].Seq, st.recs[i-1].Time)
		}
	}
}

// A record the store refuses fails its own Append only: the batch is
// retried one record at a time.
func TestLogGroupFailureIsPerRecord(t *testing.T) {
	ctx := context.Background()
	st := &memStore{hold: make(chan struct{}), bad: "target:bad"}
	l := &Log{Store: st}
	errs := make(chan error, 3)
	go func() { _, err := l.Append(ctx, Record{Action: ActionSearch, Object: "first"}); errs <- err }()
	for !func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.writing && len(l.queue) == 0 }() {
		runtime.Gosched()
	}
	go func() { _, err := l.Append(ctx, Record{Action: ActionSearch, Object: "target:bad"}); errs <- err }()
	go func() { _, err := l.Append(ctx, Record{Action: ActionSearch, Object: "target:good"}); errs <- err }()
	for l.queued() != 2 {
		runtime.Gosched()
	}
	close(st.hold)
	failed := 0
	for range 3 {
		if err := <-errs; err != nil {
			failed++
		}
	}
	if failed != 1 || len(st.recs) != 2 || st.recs[1].Object != "target:good" {
		t.Fatalf("%d failed, stored %+v", failed, st.recs)
	}
}

// MaxBatch 1 writes one transaction per record, even when every record
// arrives while another is being written (and would be grouped with them).
func TestLogMaxBatchOne(t *testing.T) {
	const n = 20
	st := &memStore{hold: make(chan struct{})}
	l := &Log{Store: st, MaxBatch: 1}
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := l.Append(context.Background(), Record{Action: ActionSearch, Object: fmt.Sprint(i)})
			errs <- err
		}()
	}
	// Every append is either inside the held store or queued behind it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st.mu.Lock()
		holding := st.holding
		st.mu.Unlock()
		if holding+l.queued() == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s, %d appends in the store and %d queued, want %d in all", holding, l.queued(), n)
		}
		runtime.Gosched()
	}
	close(st.hold)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if len(st.batches) != n || slices.Max(st.batches) != 1 {
		t.Fatalf("batches %v, want %d of one record", st.batches, n)
	}
}

// A store that panics fails the appends of that batch and leaves the log
// working: the next append is written.
func TestLogSurvivesAStorePanic(t *testing.T) {
	st := &memStore{panics: "boom"}
	l := &Log{Store: st}
	ctx := context.Background()
	if _, err := l.Append(ctx, Record{Action: ActionSearch, Object: "boom"}); err == nil {
		t.Fatal("the append of a panicking store succeeded")
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, Record{Action: ActionSearch, Object: "after"})
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(st.recs) != 1 || st.recs[0].Object != "after" {
		t.Fatalf("stored %+v", st.recs)
	}
}
