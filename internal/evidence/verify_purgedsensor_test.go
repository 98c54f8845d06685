package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// TestVerifyChainWhoseFirstObservationWasPurged: a store records a chain
// whose first observation retention purged before its sensor was kept
// (PostgreSQL migration 0016) under the sensor name sqlite.PurgedSensor,
// and keys.json lists the key with it. The chain's other observations,
// signed and checked, are still their sensor's evidence: 'vigil verify'
// must not fail them for naming their own sensor.
func TestVerifyChainWhoseFirstObservationWasPurged(t *testing.T) {
	if sqlite.PurgedSensor != verify.PurgedSensor {
		t.Fatalf("the store names a purged chain's sensor %q, verify knows %q", sqlite.PurgedSensor, verify.PurgedSensor)
	}
	ctx := context.Background()
	obs := sample(4)
	for i := range obs {
		obs[i].Sensor.ID = "sensor-a"
	}
	path := filepath.Join(t.TempDir(), "vigil.db")
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.InsertObservations(ctx, signed(t, obs)); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE sensor_chains SET sensor = ?`, sqlite.PurgedSensor); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
	for _, o := range obs {
		f.ids = append(f.ids, o.ID)
	}
	f.checkpoint(t)
	b := f.bundle(t, f.ids)
	if rep := check(t, b); !rep.OK() {
		t.Fatalf("a chain whose first observation was purged: %v", rep.Problems)
	}
}
