package evidence_test

import (
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestGateAddRefDetach: the gate holds AddRef's observations in place
// only until Detach. What it releases is what was added, covered as
// AddTo covers it, whether released in the pass that added it or after
// the caller wrote over its observations (Detach copied those still
// held); and a forgery added in place is failed as AddTo fails it.
func TestGateAddRefDetach(t *testing.T) {
	obs := signed(t, sample(12)) // batches of 4: heads at seqs 4, 8 and 12
	want := clone(obs)
	g := evidence.NewGate(evidence.DefaultGateConfig())
	now := time.Now()
	var rel []evidence.Released
	pass := func(part []observe.Observation, first int) {
		buf := clone(part) // the caller's array, as a fetched batch
		for i := range buf {
			rel = g.AddRef(rel, &buf[i], first+i, now)
		}
		g.Detach()
		for i := range buf { // the caller reuses its array
			buf[i] = observe.Observation{ID: "written over"}
		}
	}
	pass(obs[:6], 0) // seqs 1-4 covered, 5 and 6 held across the Detach
	if len(rel) != 4 || g.Held() != 2 {
		t.Fatalf("first pass: released %d, held %d; want 4 and 2", len(rel), g.Held())
	}
	forged := clone(obs[9:10])
	forged[0].Endpoint.Port++                 // changed after signing
	rel = g.AddRef(rel, &forged[0], 100, now) // held beside the genuine one to come
	g.Detach()
	forged[0] = observe.Observation{ID: "written over"}
	pass(obs[6:], 6) // 7, 8 (head) cover 5-8; 9-12 covered by the head at 12
	if len(rel) != len(obs) {
		t.Fatalf("released %d; want %d", len(rel), len(obs))
	}
	for i, r := range rel {
		if r.Failed != "" || len(r.Tags) != 1 || r.Tags[0] != i || !r.Obs.Equal(&want[i]) {
			t.Fatalf("release %d: tags %v failed %q, the same as added: %v; want covered, tag %d, the same", i, r.Tags, r.Failed, r.Obs.Equal(&want[i]), i)
		}
	}
	rest := g.Expire(now.Add(time.Hour), true)
	if len(rest) != 1 || rest[0].Failed == "" || rest[0].Tags[0] != 100 || rest[0].Obs.ID != want[9].ID || rest[0].Obs.Endpoint.Port != want[9].Endpoint.Port+1 {
		t.Fatalf("expired %+v; want the forgery, failed, as added", rest)
	}
	if g.Held() != 0 {
		t.Fatalf("held %d after expiring all", g.Held())
	}
}
