package postgres

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// A row stored before migration 0006 held clock_offset_ns and no
// uncertainty, and its sensor measured nothing: after the migration it
// reads as an unknown offset (never the number the column held), with no
// build.
func TestMigration0006ReadsOldRowsAsUnknownClock(t *testing.T) {
	levelZeroTiles(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(4, 4))
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for i := range 8 {
		obs = append(obs, storetest.Observation(r, at.Add(time.Duration(i)*time.Minute), i))
	}
	if !obs[1].ClockKnown || obs[1].Sensor.Commit == "" {
		t.Fatalf("synthetic observation 1: %+v, want a measured offset and a build", obs[1])
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	// The schema as migration 0005 left it (0007 to 0011 undone too:
	// migrations apply from the highest version recorded).
	for _, q := range append(undo0015[:len(undo0015):len(undo0015)],
		`DROP TABLE figure_rollups`,                                                         // 0010's
		`DROP TABLE alert_rules, alert_state, alerts, alert_deliveries`,                     // 0014's
		`DROP TABLE operation_targets, operations`,                                          // 0013's
		`DROP TABLE claims, claim_records, handoff_proposals, case_steps, case_subscribers`, // 0011's
		`DROP TABLE evidence_log, evidence_checkpoints`,
		`DROP FUNCTION vigil_evidence_append_only`,
		`ALTER TABLE leads DROP COLUMN searched, DROP COLUMN keywords, DROP COLUMN networks, DROP COLUMN sources`,
		`ALTER TABLE observations DROP COLUMN clock_uncertainty_ns, DROP COLUMN build_commit, DROP COLUMN build_modified,
			DROP COLUMN sensor_config`,
		`UPDATE observations SET clock_offset_ns = 1500000`,
		`DELETE FROM schema_migrations WHERE version >= 6`,
	) {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got := storetest.Export(t, again, store.ObservationFilter{})
	if len(got) != len(obs) {
		t.Fatalf("%d observations after the migration, want %d", len(got), len(obs))
	}
	for i, o := range got {
		if o.ClockKnown || o.ClockOffset != 0 || o.ClockUncertainty != 0 || o.ClockSource != obs[i].ClockSource {
			t.Fatalf("observation %d: clock known=%v %v ± %v %q, want unknown from %q", i, o.ClockKnown, o.ClockOffset,
				o.ClockUncertainty, o.ClockSource, obs[i].ClockSource)
		}
		if o.Sensor.Commit != "" || o.Sensor.Modified || o.Sensor.Config != "" {
			t.Fatalf("observation %d: sensor %+v, want no build", i, o.Sensor)
		}
	}
}
