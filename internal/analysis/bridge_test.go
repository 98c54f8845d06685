package analysis_test

import (
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// A tracker (or a lying DHT node, or PEX) keeps naming a public IP:port
// every 20 hours for two weeks after its subscriber was probed. The
// address is then reassigned and the sensor probes the new subscriber
// there. Third-party claims, stale by nature, must not carry the first
// subscriber's endpoint over to the second.
func TestAttackThirdPartyClaimsBridgeAReassignedAddress(t *testing.T) {
	f := newFixture(t)
	f.now = t0.AddDate(0, 0, 20)
	e := f.engine()
	obs := []observe.Observation{ob("192.0.2.20:51413", 1, observe.Complete, t0)}
	for h := 20; h <= 14*24; h += 20 {
		obs = append(obs, thirdParty(ob("192.0.2.20:51413", 1, observe.Announced, t0.Add(time.Duration(h)*time.Hour)), observe.MethodTracker))
	}
	obs = append(obs, ob("192.0.2.20:51413", 2, observe.Acknowledged, t0.Add(330*time.Hour)))
	f.ingest(e, obs...)
	ts := targets(t, e, analysis.TargetQuery{})
	for _, x := range ts {
		if x.MaxLevel == observe.Complete && x.LastSeen.After(t0.Add(325*time.Hour)) {
			t.Fatalf("the new subscriber's probe joined the old endpoint through third-party claims: %+v", x)
		}
	}
	// The claims within the window of the first subscriber's probe are
	// its; the later ones and the new probe make another target.
	if len(ts) != 2 {
		t.Fatalf("%d targets, want 2: %+v", len(ts), ts)
	}
}
