// Package audittest is the contract every store of the audit trail must
// keep (audit.Store with group commit, audit.BatchStore, and its signed
// checkpoints, audit.CheckpointStore): one suite a store runs in its own
// tests, so that the chain, the filters and the checkpoints behave alike
// whatever keeps them. How a store refuses to change or delete a record is
// its own (the SQLite store's triggers have their own tests); what the
// trail reads back is this suite's.
//
// It uses synthetic records only.
package audittest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
)

// Store is what the suite checks: the trail, appended to one record or
// one batch at a time, and its checkpoints.
type Store interface {
	audit.BatchStore
	audit.CheckpointStore
}

// Run runs the contract. open must return a new, empty store for t and
// close it when t ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st Store)
	}{
		{"ChainVerifiesAndRoundTrips", testChainVerifiesAndRoundTrips},
		{"EveryFieldRoundTrips", testEveryFieldRoundTrips},
		{"FilterPagesNewestFirst", testFilterPagesNewestFirst},
		{"FilterByEveryField", testFilterByEveryField},
		{"ConcurrentAppendsChain", testConcurrentAppendsChain},
		{"BatchChains", testBatchChains},
		{"ReaderErrorStopsTheRead", testReaderErrorStopsTheRead},
		{"CheckpointsRoundTripAndVerify", testCheckpointsRoundTripAndVerify},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// t0 is the first record's time; each record is a second later.
var t0 = time.Date(2026, 11, 3, 9, 0, 1, 123456789, time.UTC)

// fill appends n records through an audit.Log with a clock one second a
// record: actors user0..user2, objects target:0..n-1.
func fill(t *testing.T, st Store, n int) *audit.Log {
	t.Helper()
	clock := t0.Add(-time.Second)
	log := &audit.Log{Store: st, Now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	for i := range n {
		if _, err := log.Append(context.Background(), audit.Record{Actor: fmt.Sprintf("user%d", i%3), ActorAgency: "fr-a", Role: "investigator",
			Remote: "127.0.0.1:5000", Action: audit.ActionViewTarget, Object: fmt.Sprintf("target:%d", i), Purpose: "PV 2026/1",
			Detail: audit.Detail(map[string]int{"i": i})}); err != nil {
			t.Fatal(err)
		}
	}
	return log
}

func verify(t *testing.T, st Store, pub ed25519.PublicKey) audit.Report {
	t.Helper()
	cps, err := st.AuditCheckpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(context.Background(), st, cps, pub)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func records(t *testing.T, st Store, f audit.Filter) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := st.AuditRecords(context.Background(), f, func(r audit.Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func seqs(rs []audit.Record) string {
	var s []int64
	for _, r := range rs {
		s = append(s, r.Seq)
	}
	return fmt.Sprint(s)
}

func testChainVerifiesAndRoundTrips(t *testing.T, st Store) {
	fill(t, st, 10)
	rep := verify(t, st, nil)
	if rep.Broken != nil || rep.Records != 10 || rep.HeadSeq != 10 {
		t.Fatalf("report %+v", rep)
	}
	got := records(t, st, audit.Filter{Actor: "user1"})
	if len(got) != 3 || got[0].Seq != 2 || got[0].Time.Nanosecond() != 123456789 || string(got[0].Detail) != `{"i":1}` {
		t.Fatalf("filter by actor: %+v", got)
	}
}

// What Append returned is what the trail reads back, hash and all; the
// first record chains onto nothing.
func testEveryFieldRoundTrips(t *testing.T, st Store) {
	ctx := context.Background()
	log := &audit.Log{Store: st, Now: func() time.Time { return t0 }}
	var want []audit.Record
	for _, r := range []audit.Record{
		{Actor: "alice", ActorAgency: "fr-a", Role: "supervisor", Remote: "127.0.0.1:1", Action: audit.ActionSearch, Object: "search:x",
			Purpose: "PV 2026/7", Detail: audit.Detail(map[string]string{"q": "quoted \" and é"})},
		{Actor: "cli:analyst", Role: "cli", Remote: "cli", Action: audit.ActionViewTarget, Object: "target:T-1"}, // no detail
	} {
		got, err := log.Append(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, got)
	}
	read := records(t, st, audit.Filter{})
	if len(read) != 2 {
		t.Fatalf("read %d records, want 2", len(read))
	}
	for i := range read {
		if !read[i].Time.Equal(want[i].Time) {
			t.Fatalf("record %d time %v, want %v", i, read[i].Time, want[i].Time)
		}
		read[i].Time = want[i].Time
		if len(read[i].Detail) == 0 && len(want[i].Detail) == 0 {
			read[i].Detail = want[i].Detail
		}
		if !reflect.DeepEqual(read[i], want[i]) {
			t.Fatalf("record %d read back as\n%+v\nwant\n%+v", i, read[i], want[i])
		}
	}
	if len(read[0].PrevHash) != 0 || string(read[1].PrevHash) != string(read[0].Hash) || len(read[0].Hash) != audit.HashSize {
		t.Fatalf("chain: first prev %x, second prev %x, first hash %x", read[0].PrevHash, read[1].PrevHash, read[0].Hash)
	}
}

func testFilterPagesNewestFirst(t *testing.T, st Store) {
	fill(t, st, 10)
	if got := seqs(records(t, st, audit.Filter{Desc: true, Limit: 3, AfterSeq: 8})); got != "[7 6 5]" {
		t.Fatalf("page: %v", got)
	}
	if got := seqs(records(t, st, audit.Filter{Limit: 3, AfterSeq: 8})); got != "[9 10]" {
		t.Fatalf("page forward: %v", got)
	}
	since := t0.Add(4 * time.Second).Truncate(time.Second)
	if got := seqs(records(t, st, audit.Filter{Since: since, Until: since.Add(3 * time.Second)})); got != "[5 6 7]" {
		t.Fatalf("time range: %v", got)
	}
	if got := seqs(records(t, st, audit.Filter{Desc: true, Limit: 1})); got != "[10]" {
		t.Fatalf("newest: %v", got)
	}
}

func testFilterByEveryField(t *testing.T, st Store) {
	ctx := context.Background()
	log := &audit.Log{Store: st, Now: func() time.Time { return t0 }}
	for _, r := range []audit.Record{
		{Actor: "a", ActorAgency: "fr-a", Action: audit.ActionSearch, Object: "x"},
		{Actor: "b", ActorAgency: "fr-b", Action: audit.ActionSearch, Object: "y"},
		{Actor: "a", ActorAgency: "fr-a", Action: audit.ActionViewTarget, Object: "y"},
	} {
		if _, err := log.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		f    audit.Filter
		want string
	}{
		{audit.Filter{Actor: "a"}, "[1 3]"},
		{audit.Filter{ActorAgency: "fr-b"}, "[2]"},
		{audit.Filter{Action: audit.ActionSearch}, "[1 2]"},
		{audit.Filter{Object: "y"}, "[2 3]"},
		{audit.Filter{Actor: "a", Object: "y"}, "[3]"},
		{audit.Filter{Actor: "nobody"}, "[]"},
	} {
		if got := seqs(records(t, st, c.f)); got != c.want {
			t.Errorf("filter %+v: %s, want %s", c.f, got, c.want)
		}
	}
}

func testConcurrentAppendsChain(t *testing.T, st Store) {
	log := fill(t, st, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := log.Append(context.Background(), audit.Record{Actor: fmt.Sprint(g), Action: audit.ActionSearch, Object: fmt.Sprint(i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if rep := verify(t, st, nil); rep.Broken != nil || rep.Records != 160 {
		t.Fatalf("%+v %+v", rep, rep.Broken)
	}
}

// A batch is chained onto the trail and onto itself, in order, in one
// transaction; the chain verifies after it and after more single appends.
func testBatchChains(t *testing.T, st Store) {
	log := fill(t, st, 3)
	ctx := context.Background()
	var in []audit.Record
	for i := range 4 {
		in = append(in, audit.Record{Time: time.Date(2026, 11, 4, 0, 0, i, 0, time.UTC), Actor: "b", Action: audit.ActionSearch, Object: fmt.Sprint("batch", i)})
	}
	out, err := st.AppendAuditBatch(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range out {
		if r.Seq != int64(4+i) || r.Object != in[i].Object || len(r.Hash) != audit.HashSize {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i > 0 && string(r.PrevHash) != string(out[i-1].Hash) {
			t.Fatalf("record %d does not chain onto %d", i, i-1)
		}
	}
	if _, err := log.Append(ctx, audit.Record{Action: audit.ActionSearch, Object: "after"}); err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, st, nil); rep.Broken != nil || rep.Records != 8 {
		t.Fatalf("%+v %+v", rep, rep.Broken)
	}
	// An empty batch writes nothing.
	if out, err := st.AppendAuditBatch(ctx, nil); err != nil || len(out) != 0 {
		t.Fatalf("empty batch: %v %v", out, err)
	}
	if rep := verify(t, st, nil); rep.Records != 8 {
		t.Fatalf("%+v", rep)
	}
}

func testReaderErrorStopsTheRead(t *testing.T, st Store) {
	fill(t, st, 5)
	stop := errors.New("enough")
	n := 0
	err := st.AuditRecords(context.Background(), audit.Filter{}, func(audit.Record) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("AuditRecords returned %v after %d records, want the reader's error after 2", err, n)
	}
}

func testCheckpointsRoundTripAndVerify(t *testing.T, st Store) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := audit.MakeCheckpoint(ctx, st, st, key, t0); !errors.Is(err, audit.ErrEmpty) {
		t.Fatalf("checkpoint of an empty trail: %v, want audit.ErrEmpty", err)
	}
	log := fill(t, st, 6)
	made, err := audit.MakeCheckpoint(ctx, st, st, key, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(ctx, audit.Record{Actor: "a", Action: audit.ActionSearch}); err != nil {
		t.Fatal(err)
	}
	later, err := audit.MakeCheckpoint(ctx, st, st, key, t0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cps, err := st.AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || !reflect.DeepEqual(cps[0], made) || !reflect.DeepEqual(cps[1], later) {
		t.Fatalf("checkpoints read back as %+v\nwant %+v and %+v", cps, made, later)
	}
	if rep := verify(t, st, pub); rep.Broken != nil || rep.Checkpoints != 2 || rep.Records != 7 || !rep.Signed {
		t.Fatalf("verified with the key: %+v %+v", rep, rep.Broken)
	}
	// Another key's checkpoints do not verify.
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if rep := verify(t, st, other); rep.Broken == nil || rep.Broken.Kind != audit.BreakCheckpoint {
		t.Fatalf("other key: %+v", rep.Broken)
	}
}
