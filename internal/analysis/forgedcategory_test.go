package analysis_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Attack (h-rev9): a file's severity was the highest of the matches any
// observation of it named, and an observation names its own matches (the
// sensor matched at the edge). Anyone who may publish on the bus sends,
// without a signature (stored unsigned_import) or with a broken one
// (signature_failed), an observation of a watched file under a graver
// category than its list gives ("1": severity 5, where its sensors said
// "0", non-pertinent), from an address of its own: every genuine target
// holding that file scored as if it held the gravest material. What no
// trusted sensor signed must not change the severity of a file a sensor
// did see; it still counts where nothing else names the file (an import).
func TestAttackUnsignedMatchesRaiseNoSeverity(t *testing.T) {
	for _, mark := range []string{observe.MarkUnsigned, observe.MarkSignatureFailed} {
		t.Run(mark, func(t *testing.T) {
			f := newFixture(t)
			f.now = t0.Add(time.Hour)
			e := f.engine()
			genuine := ob("192.0.2.60:7000", 1, observe.Complete, t0)
			genuine.Item.Matched = []observe.Match{{List: "national", Category: "0"}}
			f.ingest(e, genuine)
			before := targets(t, e, analysis.TargetQuery{})
			if len(before) != 1 {
				t.Fatalf("%d targets, want 1", len(before))
			}
			forged := ob("198.51.100.60:7001", 1, observe.Announced, t0.Add(time.Minute))
			forged.Item.Matched = []observe.Match{{List: "national", Category: "1"}}
			forged.Mark(mark)
			f.ingest(e, forged)
			// A target is scored again when it is next seen, and at
			// each Rescore (recency).
			if err := e.Rescore(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, x := range targets(t, e, analysis.TargetQuery{}) {
				if x.ID == before[0].ID && x.Score != before[0].Score {
					t.Fatalf("the genuine target's score went from %v to %v (%v) on a %s observation naming another category", before[0].Score, x.Score, x.Parts, mark)
				}
			}
			// Imported alone, a file keeps the severity its matches give.
			lone := ob("203.0.113.60:7002", 2, observe.Announced, t0.Add(2*time.Minute))
			lone.Mark(mark)
			f.ingest(e, lone)
			for _, x := range targets(t, e, analysis.TargetQuery{}) {
				if x.MaxSeverity == 5 {
					return
				}
			}
			t.Fatalf("no target of severity 5: a file named only by %s observations lost its matches' severity", mark)
		})
	}
}
