package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Attack: a legal hold placed while a purge transaction is under way (its
// rows chosen, not yet committed) returned success, then the purge
// committed and removed the held target's observations: a hold that said
// yes and did not protect. A hold must either wait for the purge under
// way, or be seen by it. The purge is held mid-transaction here by an
// uncommitted purge record of another observation (its INSERT waits).
func TestHoldPlacedDuringAPurgeProtects(t *testing.T) {
	for _, k := range []retention.Kind{retention.KindObservations, retention.KindTranscripts} {
		t.Run(string(k), func(t *testing.T) {
			ctx := context.Background()
			st := openContract(t, DefaultConfig())
			acfg := analysis.DefaultConfig()
			acfg.Now = func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }
			acfg.SaveInterval = 0
			e, err := analysis.New(ctx, st, acfg)
			if err != nil {
				t.Fatal(err)
			}
			r := rand.New(rand.NewPCG(17, 17))
			var obs []observe.Observation
			for i := range 2 {
				o := storetest.Observation(r, time.Date(2024, 1, 5+i, 0, 0, 0, 0, time.UTC), i+1)
				o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 20+i)), 51413
				o.Transcript = observe.Transcript{Bytes: []byte(fmt.Sprintf("synthetic transcript %d", i))}
				obs = append(obs, o)
			}
			if err := st.InsertObservations(ctx, obs); err != nil {
				t.Fatal(err)
			}
			if err := e.Add(ctx, obs); err != nil {
				t.Fatal(err)
			}
			if err := e.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			ts, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var held string
			for _, x := range ts {
				if x.Label == "192.0.2.20:51413" {
					held = x.ID
				}
			}
			blocker, err := st.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer blocker.Rollback(ctx)
			if _, err := blocker.Exec(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns) VALUES ($1, 0, 'observations', 0, 0)`, obs[1].ID); err != nil {
				t.Fatal(err)
			}
			now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			purged, placed := make(chan time.Time, 1), make(chan time.Time, 1)
			go func() {
				if _, err := st.PurgeChunk(ctx, k, now.AddDate(-1, 0, 0), 500, now); err != nil {
					t.Error(err)
				}
				purged <- time.Now()
			}()
			time.Sleep(300 * time.Millisecond) // the purge has chosen its rows and waits
			go func() {
				if _, err := st.AddHold(ctx, retention.Hold{Target: held, Reason: "held", By: "a", At: now}); err != nil {
					t.Error(err)
				}
				placed <- time.Now()
			}()
			time.Sleep(300 * time.Millisecond)
			if err := blocker.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			tp, th := <-purged, <-placed
			left := storetest.Export(t, st, store.ObservationFilter{})
			kept := false
			for _, o := range left {
				if o.ID == obs[0].ID && len(o.Transcript.Bytes) > 0 {
					kept = true
				}
			}
			if th.Before(tp) && !kept {
				t.Fatalf("the hold on %s was placed (%s) before the purge committed (%s), yet the purge removed its %s", held, th.Format(time.StampMicro), tp.Format(time.StampMicro), k)
			}
		})
	}
}
