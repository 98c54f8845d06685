// Package postgres is the server-side store, for deployments that outgrow
// one SQLite file: everything store/sqlite keeps (watch-lists with their
// history, confirmations and observations; the analysis's tables and
// the figures' roll-ups; claims, hand-off proposals and case progress;
// agencies, accounts, sessions and tokens; the audit trail and its
// checkpoints; the pages' reads), in a PostgreSQL schema, through a pgx
// connection pool. Both run the same contract suites.
//
// Observations are written with COPY into a per-connection staging table
// and moved into place by one INSERT ... SELECT ... ON CONFLICT DO NOTHING,
// so that a redelivered batch never duplicates evidence. Like the SQLite
// store, it must never lose or rewrite an observation once committed, and
// never let a failed import leave half a list.
//
// Behind a pooler in transaction mode (PgBouncer), add
// default_query_exec_mode=exec to the DSN: pgx otherwise keeps prepared
// statements per server connection. The staging table is created in each
// writing transaction and needs no session state.
//
// seq, the observations' arrival number, is assigned when a row is
// inserted, not when its transaction commits: with concurrent writers a
// reader may see seq 11 before seq 10. It orders ties; it is not a cursor
// for readers. The analysis reads it as one (its watermark): that is exact
// while one process writes observations at a time (one ingest), as
// Vigil's pipeline does.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// Insert methods for Config.InsertMethod.
const (
	// InsertCopy streams a batch with COPY into a temporary staging table,
	// then moves it with one INSERT ... SELECT ... ON CONFLICT DO NOTHING.
	InsertCopy = "copy"
	// InsertValues sends multi-row INSERT ... VALUES statements of
	// Config.ValuesChunk rows each.
	InsertValues = "values"
)

// Config sets how the store connects and writes.
type Config struct {
	// NoEvidenceLog stores observations without appending their leaves
	// to the evidence log. For benchmarks that measure the log's cost
	// only: a store that skips the log holds observations no bundle can
	// prove.
	NoEvidenceLog bool
	// Schema is the PostgreSQL schema that holds Vigil's tables; Open
	// creates it. Lower-case letters, digits and '_', starting with a
	// letter or '_'. Several stores (tests, say) can share a database in
	// schemas of their own.
	Schema string
	// MaxConns bounds the pool's connections (at least 2): the ingest
	// writers, the web UI and exports share them.
	MaxConns int32
	// InsertMethod is InsertCopy (default) or InsertValues.
	InsertMethod string
	// ValuesChunk is how many observations go in one multi-row INSERT
	// with InsertValues (at most 2,114: PostgreSQL's 65,535 parameters /
	// 31 columns).
	ValuesChunk int
	// Now is the clock for import, history and migration times.
	Now func() time.Time
}

// DefaultConfig returns settings for a single national server.
func DefaultConfig() Config {
	return Config{
		Schema:       "vigil",
		MaxConns:     8,
		InsertMethod: InsertCopy,
		ValuesChunk:  1000,
		Now:          time.Now,
	}
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c *Config) validate() error {
	if !schemaName.MatchString(c.Schema) || strings.HasPrefix(c.Schema, "pg_") {
		return fmt.Errorf("postgres: Schema %q: want lower-case letters, digits and '_' (at most 63, not starting with a digit or pg_)", c.Schema)
	}
	if c.MaxConns < 2 {
		return fmt.Errorf("postgres: MaxConns %d: want at least 2", c.MaxConns)
	}
	switch c.InsertMethod {
	case InsertCopy, InsertValues:
	default:
		return fmt.Errorf("postgres: InsertMethod %q: want %q or %q", c.InsertMethod, InsertCopy, InsertValues)
	}
	if c.ValuesChunk < 1 || c.ValuesChunk > maxChunk {
		return fmt.Errorf("postgres: ValuesChunk %d: want 1..%d", c.ValuesChunk, maxChunk)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// ErrSchemaTooNew is returned when the schema was written by a newer Vigil
// whose migrations this binary does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this program")

// Store is the PostgreSQL store. It is safe for concurrent use, by several
// processes too.
type Store struct {
	pool   *pgxpool.Pool
	cfg    Config
	schema string // quoted, for SQL text

	mu    sync.Mutex
	items map[hashKey]int64 // items (id) by hash, all committed; guarded by mu
	// chains is sensor_chains (id) by chain and key (chainKey), all
	// committed; guarded by mu.
	chains map[string]int64
	// dicts is each dictionary's ids (dict.go) by appendKey of the row's
	// values, all committed; guarded by mu.
	dicts [numDicts]map[string]int64
	// tileLevel is the level of the nodes the evidence log's new blocks
	// keep (evidencetiles.go): tileLevel, or 0 (the leaves themselves) in
	// the tests that compare the two.
	tileLevel uint
	// tilesFrom is evidence_tiles' first leaf's first (tilesStart), once
	// known; 0 before.
	tilesFrom atomic.Int64
	// olderTo is evidence_older_end's leaves plus one (olderEnd), once
	// read; 0 before.
	olderTo atomic.Int64
	// afterInsert, when set, runs after every committed batch of
	// observations: the tests' compaction (VIGIL_TEST_PG_COMPACT), so that
	// the contract suites read observations from blocks. Nil in a
	// deployment.
	afterInsert func(ctx context.Context) error
}

// openTileLevel is the level of the nodes the evidence log's new blocks
// keep in the stores Open opens: tileLevel; the tests that take a store
// back before migration 0021 set it to 0 (the leaves themselves).
var openTileLevel uint = tileLevel

// The PostgreSQL store keeps every contract the SQLite store keeps, and
// runs each one's suite in its tests: storetest (watch-lists and
// observations), analysistest (analysis.Views: the analysis's tables,
// migration 0004), accesstest (access.Store) and audittest (the audit
// trail and its checkpoints, migration 0005). webviews.Store, the pages'
// reads, has no suite of its own: TestParityWithSQLite compares its
// answers with the SQLite store's over the same observations. The
// evidence log (store.LogStore, storetest.RunLogStore; migration 0008) too,
// the figures (figures.Store, figurestest; migration 0011) and the
// casework (casework.Store, ProposalStore and CaseStore, casetest;
// migration 0012, claims.go).
var (
	_ store.Store           = (*Store)(nil)
	_ analysis.Views        = (*Store)(nil)
	_ webviews.Store        = (*Store)(nil)
	_ access.Store          = (*Store)(nil)
	_ audit.BatchStore      = (*Store)(nil)
	_ audit.CheckpointStore = (*Store)(nil)
	_ store.LogStore        = (*Store)(nil)
)

// Open connects to the database named by dsn (a postgres:// URL or
// key=value string, as libpq takes), creates cfg.Schema if need be and
// brings it up to date.
func Open(ctx context.Context, dsn string, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx redacts a password in the message
	}
	where := fmt.Sprintf("postgres %s:%d/%s schema %s", pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database, cfg.Schema)
	schema := pgx.Identifier{cfg.Schema}.Sanitize()
	pc.MaxConns = cfg.MaxConns
	// Unqualified names resolve in Vigil's schema (and temporary tables
	// in pg_temp, which PostgreSQL searches first).
	pc.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	s := &Store{pool: pool, cfg: cfg, schema: schema, items: map[hashKey]int64{}, chains: map[string]int64{}, tileLevel: openTileLevel}
	for k := range s.dicts {
		s.dicts[k] = map[string]int64{}
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return s, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration = rowcodec.Migration

// migrations returns the embedded migrations in order (rowcodec.Migrations).
func migrations() ([]migration, error) { return rowcodec.Migrations(migrationFS, "migrations") }

// SchemaVersion is the schema version this binary writes.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		panic(err) // the embedded files are fixed at build time; a test checks them
	}
	return len(ms)
}

// lockKey is the advisory lock that serialises migrations of one schema
// across every process that opens it.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("vigil migrate " + schema))
	return int64(h.Sum64())
}

// migrate applies the missing migrations in one transaction, under a
// transaction-scoped advisory lock: a second process starting at the same
// moment waits, then finds the schema up to date. DDL is transactional in
// PostgreSQL, so a failed migration leaves the schema as it was.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(s.cfg.Schema)); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+s.schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.schema+`.schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at bigint NOT NULL
		)`); err != nil {
			return fmt.Errorf("schema_migrations: %w", err)
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+s.schema+`.schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("schema_migrations: %w", err)
		}
		if have > len(ms) {
			return fmt.Errorf("%w: the schema is at version %d, this Vigil knows up to %d; use a newer Vigil", ErrSchemaTooNew, have, len(ms))
		}
		if have == len(ms) {
			return nil
		}
		if _, err := tx.Exec(ctx, `SET LOCAL search_path TO `+s.schema); err != nil {
			return err
		}
		for _, m := range ms[have:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, s.cfg.Now().UnixNano()); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// writeTx runs fn in one read-committed transaction, committed if fn
// returns nil and rolled back otherwise.
func (s *Store) writeTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}
