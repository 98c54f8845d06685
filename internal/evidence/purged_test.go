package evidence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
)

// After a retention purge of one observation of a signed batch: the log
// still verifies; a bundle that lists the purged observation proves its
// leaf in purged.json and verify says it was purged; a bundle that needs
// the batch says exactly why it cannot be written; a forged purged leaf
// fails.
func TestPurgedObservationsInABundle(t *testing.T) {
	ctx := context.Background()
	obs := signed(t, sample(8))
	f := newFixture(t, obs)
	if err := f.st.AnalysisSave(ctx, &analysis.Changes{Watermark: 100}); err != nil {
		t.Fatal(err)
	}
	oldest := obs[0].Time
	for _, o := range obs {
		if o.Time.Before(oldest) {
			oldest = o.Time
		}
	}
	at := oldest.AddDate(3, 0, 0)
	got, err := f.st.PurgeChunk(ctx, retention.KindObservations, oldest.Add(time.Nanosecond), 10, at)
	if err != nil || got.N != 1 {
		t.Fatalf("purge: %+v, %v", got, err)
	}
	var gone string
	for _, o := range obs {
		if o.Time.Equal(oldest) {
			gone = o.ID
		}
	}
	f.checkpoint(t) // checks the leaves against the root: none was removed
	var same, other []string
	for i, o := range obs {
		switch {
		case o.ID == gone:
		case o.Chain.Seq <= 4:
			same = append(same, obs[i].ID)
		default:
			other = append(other, obs[i].ID)
		}
	}
	var buf bytes.Buffer
	err = evidence.WriteBundle(ctx, &buf, f.st, f.key, evidence.Export{Target: "T", IDs: same[:1], Now: at})
	if !errors.Is(err, evidence.ErrBatchPurged) {
		t.Fatalf("a bundle needing the purged observation's batch: %v, want ErrBatchPurged", err)
	}
	buf.Reset()
	exp := evidence.Export{Target: "T-LAB-1", IDs: other, Now: at, Links: json.RawMessage(`[]`), Annex: json.RawMessage(`[]`),
		Purged: []evidence.PurgedObservation{{ID: gone, What: "observations", Time: oldest, At: at}}}
	if err := evidence.WriteBundle(ctx, &buf, f.st, f.key, exp); err != nil {
		t.Fatal(err)
	}
	rep := check(t, buf.Bytes())
	if !rep.OK() || rep.Purged != 1 || rep.Proofs != len(other) {
		t.Fatalf("report %+v", rep)
	}
	// A forged leaf in purged.json fails, naming the file.
	names, files := unzip(t, buf.Bytes())
	var p verify.Purged
	if err := json.Unmarshal(files[verify.FilePurged], &p); err != nil {
		t.Fatal(err)
	}
	p.Entries[0].Leaf[0] ^= 1
	files[verify.FilePurged], _ = json.Marshal(p)
	rep = check(t, resign(t, f.key, names, files))
	if rep.OK() || rep.Purged != 0 {
		t.Fatalf("a forged purged leaf checks: %+v", rep)
	}
	failsOn(t, "forged purged leaf", rep, verify.FilePurged)
	// Attack: purged.json names an observation the bundle holds as
	// purged (to cast doubt on it, or to hide a row behind a leaf that
	// does check), or counts one purged leaf twice: both fail.
	for name, forge := range map[string]func(p *verify.Purged){
		"an observation of the bundle claimed purged": func(p *verify.Purged) { p.Entries[0].ID = other[0] },
		"one purged leaf listed twice": func(p *verify.Purged) {
			twin := p.Entries[0]
			twin.ID = "00000000-0000-7000-8000-000000000001"
			p.Entries = append(p.Entries, twin)
		},
	} {
		_, files := unzip(t, buf.Bytes())
		var p verify.Purged
		if err := json.Unmarshal(files[verify.FilePurged], &p); err != nil {
			t.Fatal(err)
		}
		forge(&p)
		files[verify.FilePurged], _ = json.Marshal(p)
		rep = check(t, resign(t, f.key, names, files))
		if rep.OK() {
			t.Fatalf("%s: verify accepts it: %+v", name, rep)
		}
		failsOn(t, name, rep, verify.FilePurged)
	}
}

// Attack (court): a legal hold keeps a target's observations, but a
// sensor signs its observations in batches that mix targets; once the
// other members of a held observation's batch were purged, the batch's
// signature could no longer be checked and the held target's bundle could
// not be written at all (ErrBatchPurged). A hold must keep what its
// evidence needs: the purge spares every member of a held observation's
// signed batch.
func TestAHeldTargetsBundleSurvivesThePurgeOfItsBatchMates(t *testing.T) {
	ctx := context.Background()
	obs := signed(t, sample(8))
	f := newFixture(t, obs)
	cfg := analysis.DefaultConfig()
	cfg.Now = func() time.Time { return t0.Add(24 * time.Hour) }
	cfg.SaveInterval = 0
	e, err := analysis.New(ctx, f.st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	label := netip.AddrPortFrom(obs[0].Endpoint.IP, obs[0].Endpoint.Port).String()
	ts, _, err := f.st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var held string
	for _, x := range ts {
		if x.Label == label {
			held = x.ID
		}
	}
	if held == "" {
		t.Fatalf("no target at %s among %d", label, len(ts))
	}
	at := t0.AddDate(3, 0, 0)
	if _, err := f.st.AddHold(ctx, retention.Hold{Target: held, Reason: "court case", By: "analyst", At: at}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []retention.Kind{retention.KindTranscripts, retention.KindObservations} {
		for {
			got, err := f.st.PurgeChunk(ctx, k, at, 100, at)
			if err != nil {
				t.Fatal(err)
			}
			if got.N == 0 {
				break
			}
		}
	}
	f.checkpoint(t)
	var buf bytes.Buffer
	err = evidence.WriteBundle(ctx, &buf, f.st, f.key, evidence.Export{Target: held, IDs: []string{obs[0].ID}, Now: at,
		Links: json.RawMessage(`[]`), Annex: json.RawMessage(`[]`)})
	if err != nil {
		t.Fatalf("the held target's bundle after a purge of others: %v", err)
	}
	if rep := check(t, buf.Bytes()); !rep.OK() || rep.Signed != 1 {
		t.Fatalf("the held target's bundle: %+v", rep)
	}
}

// purgeFirst marks obs[i] (before signing) the oldest, and returns the
// signed observations in a fixture with it purged under retention.
func purgeFirst(t *testing.T, idx ...int) (*fixture, []observe.Observation, time.Time) {
	t.Helper()
	ctx := context.Background()
	raw := sample(8)
	for _, i := range idx {
		raw[i].Time = t0.Add(-time.Hour - time.Duration(i)*time.Second)
	}
	obs := signed(t, raw)
	f := newFixture(t, obs)
	if err := f.st.AnalysisSave(ctx, &analysis.Changes{Watermark: 100}); err != nil {
		t.Fatal(err)
	}
	at := t0.AddDate(3, 0, 0)
	got, err := f.st.PurgeChunk(ctx, retention.KindObservations, t0.Add(-time.Minute), 10, at)
	if err != nil || got.N != int64(len(idx)) {
		t.Fatalf("purge: %+v, %v; want %d purged", got, err, len(idx))
	}
	return f, obs, at
}

// A sensor batch whose signed head was purged under retention cannot be
// checked: a bundle needing it says so (ErrBatchPurged), not that the
// head was never stored (ErrNotFound), be it the chain's last batch or
// not; the other batch is unaffected.
func TestABatchWhoseHeadWasPurged(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		head, ask int // indexes in publish order: seqs head+1, ask+1
	}{
		{"the last batch's head", 7, 5},
		{"an earlier batch's head", 3, 1},
	} {
		f, obs, at := purgeFirst(t, c.head)
		f.checkpoint(t)
		if obs[c.head].Chain.Seq != uint64(c.head+1) || obs[c.head].Chain.BatchSig == nil {
			t.Fatalf("%s: obs %d is seq %d, signed head %v", c.name, c.head, obs[c.head].Chain.Seq, obs[c.head].Chain.BatchSig != nil)
		}
		var buf bytes.Buffer
		err := evidence.WriteBundle(ctx, &buf, f.st, f.key, evidence.Export{Target: "T", IDs: []string{obs[c.ask].ID}, Now: at,
			Links: json.RawMessage(`[]`), Annex: json.RawMessage(`[]`)})
		if !errors.Is(err, evidence.ErrBatchPurged) {
			t.Fatalf("%s purged: a bundle needing its batch: %v, want ErrBatchPurged", c.name, err)
		}
	}
}

// After retention purged a batch's signed head, the batch that follows
// it is whole: a bundle needing it is written and verifies (the store
// knows where the purged batch ended, its head's purge record says it
// was a head), while a bundle needing the purged batch still stops with
// ErrBatchPurged. Both the last batch's head and the first's, as in
// TestABatchWhoseHeadWasPurged; here the first, whose next batch is whole.
func TestTheBatchAfterAPurgedHeadIsWhole(t *testing.T) {
	ctx := context.Background()
	f, obs, at := purgeFirst(t, 3) // seq 4: the first batch's (seqs 1-4) head
	f.checkpoint(t)
	if obs[3].Chain.Seq != 4 || obs[3].Chain.BatchSig == nil || obs[7].Chain.BatchSig == nil {
		t.Fatalf("want batches 1-4 and 5-8: obs 3 is seq %d, signed head %v", obs[3].Chain.Seq, obs[3].Chain.BatchSig != nil)
	}
	for _, i := range []int{4, 5, 7} {
		var buf bytes.Buffer
		if err := evidence.WriteBundle(ctx, &buf, f.st, f.key, evidence.Export{Target: "T", IDs: []string{obs[i].ID}, Now: at,
			Links: json.RawMessage(`[]`), Annex: json.RawMessage(`[]`)}); err != nil {
			t.Fatalf("seq %d, in the batch after the purged head: %v", obs[i].Chain.Seq, err)
		}
		rep := check(t, buf.Bytes())
		if !rep.OK() || rep.Batches != 1 || rep.Signed != 1 {
			t.Fatalf("seq %d's bundle: %+v", obs[i].Chain.Seq, rep)
		}
	}
	for _, i := range []int{0, 2} {
		err := evidence.WriteBundle(ctx, io.Discard, f.st, f.key, evidence.Export{Target: "T", IDs: []string{obs[i].ID}, Now: at,
			Links: json.RawMessage(`[]`), Annex: json.RawMessage(`[]`)})
		if !errors.Is(err, evidence.ErrBatchPurged) {
			t.Fatalf("seq %d, in the batch whose head was purged: %v, want ErrBatchPurged", obs[i].Chain.Seq, err)
		}
	}
}

// A legal hold keeps the signed batch of a held observation, and no more:
// when the batch before it lost its signed head to an earlier purge, the
// hold does not reach back over that batch's remaining observations (the
// purge record of the head says where the held batch starts), which a
// later purge removes; the held target's bundle is still written and
// verifies.
func TestAHoldDoesNotKeepTheBatchBeforeAPurgedHead(t *testing.T) {
	ctx := context.Background()
	raw := sample(8)
	raw[3].Time = t0.Add(-time.Hour) // seq 4: the first batch's head, the oldest
	obs := signed(t, raw)
	f := newFixture(t, obs)
	cfg := analysis.DefaultConfig()
	cfg.Now = func() time.Time { return t0.Add(24 * time.Hour) }
	cfg.SaveInterval = 0
	e, err := analysis.New(ctx, f.st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	at := t0.AddDate(3, 0, 0)
	if got, err := f.st.PurgeChunk(ctx, retention.KindObservations, t0.Add(-time.Minute), 10, at); err != nil || got.N != 1 {
		t.Fatalf("purge of the head: %+v, %v", got, err)
	}
	label := netip.AddrPortFrom(obs[4].Endpoint.IP, obs[4].Endpoint.Port).String()
	ts, _, err := f.st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var held string
	for _, x := range ts {
		if x.Label == label {
			held = x.ID
		}
	}
	if held == "" {
		t.Fatalf("no target at %s among %d", label, len(ts))
	}
	for i, o := range obs {
		if i != 4 && o.Endpoint == obs[4].Endpoint {
			t.Fatalf("obs %d shares the held endpoint", i)
		}
	}
	if _, err := f.st.AddHold(ctx, retention.Hold{Target: held, Reason: "court case", By: "analyst", At: at}); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := f.st.PurgeChunk(ctx, retention.KindObservations, at, 100, at)
		if err != nil {
			t.Fatal(err)
		}
		if got.N == 0 {
			break
		}
	}
	var ids []string
	for _, o := range obs {
		ids = append(ids, o.ID)
	}
	purged, err := f.st.PurgedObservations(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range obs {
		if _, gone := purged[o.ID]; gone != (o.Chain.Seq <= 4) {
			t.Errorf("seq %d (obs %d): purged %v, want %v (the held batch is seqs 5 to 8)", o.Chain.Seq, i, gone, o.Chain.Seq <= 4)
		}
	}
	f.checkpoint(t)
	var buf bytes.Buffer
	if err := evidence.WriteBundle(ctx, &buf, f.st, f.key, evidence.Export{Target: held, IDs: []string{obs[4].ID}, Now: at,
		Links: json.RawMessage(`[]`), Annex: json.RawMessage(`[]`)}); err != nil {
		t.Fatalf("the held target's bundle: %v", err)
	}
	if rep := check(t, buf.Bytes()); !rep.OK() || rep.Signed != 1 {
		t.Fatalf("the held target's bundle: %+v", rep)
	}
}
