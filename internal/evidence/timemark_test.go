package evidence_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// TestSignedBatchWithAnImplausibleTimeVerifiesWhole: ingest marks an
// observation time_implausible after its sensor signed it (a time it
// found impossible: docs/evidence.md, "Times that cannot be true"), in
// the middle of one signed batch and at the head of the next. Both are
// stored and every bundle of the two batches is whole: each observation
// checks against its sensor's signature ('vigil verify'), the mark
// travels in the line, and the log's leaf covers it. Before, ingest left
// such an observation out, and a bundle of its batch failed
// (ErrBatchIncomplete); a mark counted in the sensor's hash would break
// the signature instead.
func TestSignedBatchWithAnImplausibleTimeVerifiesWhole(t *testing.T) {
	in := sample(8)
	in[1].Time = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC) // read on a clock that was wrong
	in[7].Time = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	obs := signed(t, in) // batches of seqs 1-4 and 5-8
	if obs[7].Chain.Seq != 8 || obs[7].Chain.BatchSig == nil {
		t.Fatalf("seq %d is not a signed head", obs[7].Chain.Seq)
	}
	for _, i := range []int{1, 7} {
		obs[i].Mark(observe.MarkTimeImplausible) // as ingest does
	}
	f := newFixture(t, obs)
	f.checkpoint(t)
	b := f.bundle(t, []string{f.ids[0], f.ids[1], f.ids[4], f.ids[7]})
	rep := check(t, b)
	if !rep.OK() || rep.Signed != 4 || rep.Batches != 2 || len(rep.Gaps) != 0 {
		t.Fatalf("report %+v, problems %v; want 4 signed in 2 whole batches", rep, rep.Problems)
	}
	_, files := unzip(t, b)
	n := 0
	for name, data := range files {
		if strings.HasSuffix(name, ".jsonl") {
			n += strings.Count(string(data), `"time_implausible"`)
		}
	}
	if n != 2 {
		t.Fatalf("%d lines of the bundle carry the mark, want 2", n)
	}
}
