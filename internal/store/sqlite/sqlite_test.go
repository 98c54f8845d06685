package sqlite

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/alerts/alertstest"
	"github.com/vigil-oss/vigil/internal/analysis/analysistest"
	"github.com/vigil-oss/vigil/internal/casework/casetest"
	"github.com/vigil-oss/vigil/internal/figures/figurestest"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

func openTemp(t *testing.T, cfg Config) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.db")
	st, err := Open(context.Background(), path, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st, _ := openTemp(t, DefaultConfig())
		return st
	})
}

// A chunk of one row exercises the power-of-two remainder path on every
// batch; the contract must hold with it too.
// The SQLite store keeps the analysis's contract too.
func TestAnalysisContract(t *testing.T) {
	analysistest.Run(t, func(t *testing.T) analysistest.Store {
		st, _ := openTemp(t, DefaultConfig())
		return st
	})
}

// The SQLite store keeps the figures' contract.
func TestFiguresContract(t *testing.T) {
	figurestest.Run(t, func(t *testing.T) figurestest.Store {
		st, _ := openTemp(t, DefaultConfig())
		return st
	})
}

// The SQLite store keeps the claims' contract, two handles on one file
// standing for two services' processes.
func TestClaimsContract(t *testing.T) {
	casetest.Run(t, func(t *testing.T) (casetest.Store, casetest.Store) {
		a, path := openTemp(t, DefaultConfig())
		b, err := Open(context.Background(), path, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return a, b
	})
}

func TestContractWithSmallChunks(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ObservationChunk = 3
	storetest.Run(t, func(t *testing.T) store.Store {
		st, _ := openTemp(t, cfg)
		return st
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	h := hashkind.MustNew(hashkind.SHA1, []byte("synthetic-001.bin..."))
	if _, err := st.ImportList(ctx, store.ListImport{Name: "national", Entries: []watchlist.Entry{{Hash: h, Category: "1", Size: -1}}}); err != nil {
		t.Fatal(err)
	}
	o := storetest.Observation(rand.New(rand.NewPCG(1, 1)), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), 1)
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	again, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		t.Fatalf("reopening %s: %v", path, err)
	}
	defer again.Close()
	recs, err := again.Lookup(ctx, h)
	if err != nil || len(recs) != 1 || recs[0].Entry.Category != "1" {
		t.Fatalf("Lookup after reopening = %+v, %v; want the entry", recs, err)
	}
	var got []observe.Observation
	if err := again.Observations(ctx, store.ObservationFilter{}, func(x *observe.Observation) error {
		got = append(got, *x)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Equal(&o) {
		t.Fatalf("observations after reopening = %+v, want %+v", got, o)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	future := SchemaVersion() + 1
	if _, err := st.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from-the-future.sql', 0)`, future); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err := Open(ctx, path, DefaultConfig())
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a file at schema %d: %v, want ErrSchemaTooNew", future, err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file", err)
	}
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	st.Close()
	again, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	var n, maxV int
	if err := again.db.QueryRowContext(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	if n != SchemaVersion() || maxV != SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, maxV, SchemaVersion())
	}
}

func TestOpenSetsWALAndForeignKeys(t *testing.T) {
	st, _ := openTemp(t, DefaultConfig())
	ctx := context.Background()
	var mode string
	var fk, sync int
	if err := st.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := st.db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := st.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || fk != 1 || sync != 1 {
		t.Fatalf("journal_mode %q, foreign_keys %d, synchronous %d; want wal, 1, 1 (NORMAL)", mode, fk, sync)
	}
}

func TestOpenRefusesNonDatabaseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte(strings.Repeat("synthetic text, not a database\n", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Open(context.Background(), path, DefaultConfig())
	if err == nil {
		st.Close()
		t.Fatalf("Open of a text file succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file", err)
	}
}

func TestOpenRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
	}{
		{"synchronous", func(c *Config) { c.Synchronous = "SOMETIMES" }},
		{"chunk-too-big", func(c *Config) { c.ObservationChunk = maxChunk + 1 }},
		{"one-conn", func(c *Config) { c.MaxOpenConns = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			if st, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), cfg); err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

func TestMigrationFilesAreNumberedWithoutGaps(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 || !strings.HasPrefix(ms[0].Name, "0001_") {
		t.Fatalf("migrations = %+v, want 0001_... first", ms)
	}
}

func TestLogStoreContract(t *testing.T) {
	storetest.RunLogStore(t, func(t *testing.T) storetest.LogStore {
		st, _ := openTemp(t, DefaultConfig())
		return st
	})
}

// A redelivered batch adds nothing, and the count says so; a batch half
// new adds its new half.
func TestInsertCountsWhatIsNew(t *testing.T) {
	st, _ := openTemp(t, DefaultConfig())
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for i := range 300 {
		obs = append(obs, storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i))
	}
	for _, c := range []struct {
		name string
		obs  []observe.Observation
		want int
	}{
		{"new", obs[:200], 200},
		{"redelivered", obs[:200], 0},
		{"half new", obs[100:300], 100},
	} {
		n, err := st.InsertObservationsCounted(ctx, c.obs)
		if err != nil {
			t.Fatal(err)
		}
		if n != c.want {
			t.Errorf("%s: %d added, want %d", c.name, n, c.want)
		}
	}
	rows := 0
	if err := st.Observations(ctx, store.ObservationFilter{}, func(*observe.Observation) error { rows++; return nil }); err != nil {
		t.Fatal(err)
	}
	if rows != 300 {
		t.Fatalf("%d rows, want 300", rows)
	}
}

// The SQLite store keeps the alerts' contract, two handles on one file
// standing for two processes.
func TestAlertsContract(t *testing.T) {
	alertstest.Run(t, func(t *testing.T) (alertstest.Store, alertstest.Store) {
		a, path := openTemp(t, DefaultConfig())
		b, err := Open(context.Background(), path, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return a, b
	})
}
