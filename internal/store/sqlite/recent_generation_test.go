package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// One IP:port, two subscribers two days apart: two endpoints, two
// targets, routed to two agencies. The overview's recent observations
// must list each observation once, under the target of its own
// generation, and only to the agency that may see that target.
func TestRecentObservationsFollowTheGeneration(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
	t0 := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	old := windowObs("192.0.2.20:51413", 1, t0)
	old.Jurisdiction.Agency = "fr-a"
	cur := windowObs("192.0.2.20:51413", 2, t0.Add(48*time.Hour))
	cur.Jurisdiction.Agency = "fr-b"
	if err := st.InsertObservations(ctx, []observe.Observation{old, cur}); err != nil {
		t.Fatal(err)
	}
	cfg := analysis.DefaultConfig()
	cfg.SaveInterval = 0
	eng, err := analysis.New(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := st.RecentObservations(ctx, analysis.AllAgencies, 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, r := range rs {
		if prev, ok := seen[r.ID]; ok {
			t.Errorf("observation %s listed twice, under %s and %s", r.ID, prev, r.Target)
		}
		seen[r.ID] = r.Target
	}
	if seen[old.ID] == seen[cur.ID] {
		t.Errorf("both subscribers' observations under %s", seen[old.ID])
	}
	rs, err = st.RecentObservations(ctx, analysis.Scope{Agencies: []string{"fr-b"}}, 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.ID == old.ID {
			t.Errorf("agency fr-b sees the earlier subscriber's observation (target %s, routed to fr-a)", r.Target)
		}
	}
}
