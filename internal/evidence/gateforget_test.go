package evidence_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestGateForgottenChainCoversNoForgery: once a chain is forgotten
// (idle for HeadWait), what the gate learnt of its covered positions is
// gone. A hub that then puts a forged observation at an old position of
// it (a genuine one with a field changed, its chain fields kept; or a
// copy of the head with a field changed) must still not pass it as
// sensor evidence: with Stored (linked to what is stored after it, which
// does not link) and without (nothing covers it within HeadWait). A
// genuine one delivered again still passes with Stored.
func TestGateForgottenChainCoversNoForgery(t *testing.T) {
	obs := signed(t, sample(4))
	stored := map[uint64][]byte{}
	for _, o := range obs {
		stored[o.Chain.Seq] = o.Chain.Prev
	}
	withStored := evidence.DefaultGateConfig()
	withStored.Stored = func(_ string, seq uint64) ([]byte, []byte, bool) {
		p, ok := stored[seq]
		return p, sensorKey.Public().(ed25519.PublicKey), ok
	}
	for name, cfg := range map[string]evidence.GateConfig{"with Stored": withStored, "without Stored": evidence.DefaultGateConfig()} {
		t.Run(name, func(t *testing.T) {
			g := evidence.NewGate(cfg)
			now := time.Now()
			for i, o := range obs {
				for _, r := range g.Add(o, i, now) {
					if r.Failed != "" {
						t.Fatalf("genuine %s failed: %s", r.Obs.ID, r.Failed)
					}
				}
			}
			later := now.Add(cfg.HeadWait + time.Second)
			g.Expire(later, false)
			if g.Chains() != 0 {
				t.Fatalf("chains remembered after HeadWait idle: %d", g.Chains())
			}
			forged := obs[1]
			forged.Endpoint.Port++
			head := obs[3]
			head.Endpoint.Port++
			fate := map[int]string{} // by tag
			take := func(rs []evidence.Released) {
				for _, r := range rs {
					for _, tag := range r.Tags {
						fate[tag] = r.Failed
					}
				}
			}
			take(g.Add(forged, 10, later))
			take(g.Add(head, 11, later))
			for _, step := range []time.Duration{time.Minute, 2 * time.Hour} {
				take(g.Expire(later.Add(step), false))
			}
			// (Alone: a forgery held at the position after it makes the
			// run asked about end there, and the genuine one fail too.)
			replay := obs[2]
			if cfg.Stored != nil {
				at := later.Add(3 * time.Hour)
				take(g.Add(replay, 12, at))
				take(g.Expire(at.Add(time.Minute), false))
			}
			if g.Held() != 0 {
				t.Fatalf("%d still held", g.Held())
			}
			for tag, o := range map[int]observe.Observation{10: forged, 11: head} {
				if why, ok := fate[tag]; !ok || why == "" {
					t.Errorf("forged seq %d at a forgotten chain: released %v, failed %q; want failed", o.Chain.Seq, ok, why)
				}
			}
			if cfg.Stored != nil {
				if why, ok := fate[12]; !ok || why != "" {
					t.Errorf("genuine seq %d delivered again: released %v, failed %q; want covered", replay.Chain.Seq, ok, why)
				}
			}
		})
	}
}
