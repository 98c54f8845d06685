// Package sqlite is the embedded store: one SQLite file in WAL mode holding
// watch-lists with their history, confirmations and observations. It is the
// default; store/postgres serves larger deployments, and both pass
// store/storetest.
//
// It uses modernc.org/sqlite (pure Go), never a cgo SQLite: a second C
// SQLite in the binary clashes with one that other dependencies link.
// It must never lose or rewrite an observation once committed, and never
// let a failed import leave half a list.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

// Config sets how the file is opened.
type Config struct {
	// NoEvidenceLog stores observations without appending their leaves
	// to the evidence log (internal/evidence). For benchmarks that
	// measure the log's cost only: a store that skips the log holds
	// observations no bundle can prove.
	NoEvidenceLog bool
	// BusyTimeout is how long a statement waits for another process's
	// lock on the file before failing.
	BusyTimeout time.Duration
	// Synchronous is SQLite's synchronous setting: "NORMAL" (default) in
	// WAL mode survives a crash of Vigil but may lose the last commits on
	// a power cut; "FULL" survives that too, at a cost on every commit.
	Synchronous string
	// CacheKiB is SQLite's page cache per connection, in KiB.
	CacheKiB int
	// MmapBytes is how much of the file readers map into memory
	// (SQLite's mmap_size). 0 (the default) turns it off: at 10 million
	// observations it made no measurable difference to the pages
	// (docs/benchmarks.md), and an I/O error under mmap is a crash, not an
	// error.
	MmapBytes int64
	// PageSize is the page size of a new file, in bytes (a power of two
	// from 512 to 65536). An existing file keeps its own. 4 KiB: the
	// pages read rows at random (a target, its endpoints, its timeline),
	// and every commit (each audited read commits its record) makes the
	// other connections read their pages again, so each random row costs
	// a page read; at 16 KiB the pages under load took twice the time,
	// for no gain in insert speed (docs/benchmarks.md).
	PageSize int
	// CheckpointPages is how many pages the write-ahead log may hold
	// before SQLite copies them into the file. Pages rewritten between
	// checkpoints (index pages, mostly) are copied once.
	CheckpointPages int
	// BackgroundCheckpoint copies the log into the file on a goroutine of
	// its own after each batch of observations, so that an insert does not
	// wait for it; SQLite's own checkpoint at CheckpointPages*4 remains as
	// a backstop when the goroutine falls behind.
	BackgroundCheckpoint bool
	// MaxOpenConns bounds connections (at least 2): one is kept for
	// writing observations, the others serve everything else.
	MaxOpenConns int
	// ObservationChunk is how many observations go in one multi-row
	// INSERT statement (at most 1,638: SQLite's 32,766 parameters / 20).
	ObservationChunk int
	// Now is the clock for import and history times.
	Now func() time.Time
}

// DefaultConfig returns settings for a single-host deployment.
func DefaultConfig() Config {
	return Config{
		BusyTimeout:          10 * time.Second,
		Synchronous:          "NORMAL",
		CacheKiB:             32 << 10,
		MmapBytes:            0,
		PageSize:             4 << 10,
		CheckpointPages:      4096,
		BackgroundCheckpoint: true,
		MaxOpenConns:         8,
		ObservationChunk:     1000,
		Now:                  time.Now,
	}
}

func (c *Config) validate() error {
	switch strings.ToUpper(c.Synchronous) {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return fmt.Errorf("sqlite: Synchronous %q: want NORMAL or FULL", c.Synchronous)
	}
	if c.BusyTimeout < 0 || c.CacheKiB < 0 || c.CheckpointPages < 0 || c.MaxOpenConns < 2 {
		return fmt.Errorf("sqlite: BusyTimeout, CacheKiB, CheckpointPages must not be negative and MaxOpenConns must be at least 2")
	}
	if c.PageSize < 512 || c.PageSize > 65536 || c.PageSize&(c.PageSize-1) != 0 {
		return fmt.Errorf("sqlite: PageSize %d: want a power of two from 512 to 65536", c.PageSize)
	}
	if c.ObservationChunk < 1 || c.ObservationChunk > maxChunk {
		return fmt.Errorf("sqlite: ObservationChunk %d: want 1..%d", c.ObservationChunk, maxChunk)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// ErrSchemaTooNew is returned when the file was written by a newer Vigil
// whose schema this binary does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this program")

// Store is the SQLite store. It is safe for concurrent use.
type Store struct {
	db   *readDB
	path string
	cfg  Config
	// wmu serialises this process's writers, so that they queue here
	// rather than spin on SQLite's busy handler.
	wmu sync.Mutex

	obs    obsWriter          // guarded by wmu
	items  map[hashKey]int64  // items (id) by hash; guarded by wmu
	facets map[facetKey]int64 // facets (id); guarded by wmu
	places map[string]int64   // places (id) by their JSON; guarded by wmu
	chains map[chainKey]int64 // sensor_chains (id); guarded by wmu

	// The background checkpointer: woken by kick, stopped by stop, and
	// waited for by Close through done.
	kick chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if need be) the store file at path and brings its
// schema up to date.
func Open(ctx context.Context, path string, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: %q: want the path of a file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	// The store holds suspects' addresses and password hashes: a new file
	// is private to Vigil's user (SQLite gives its -wal and -shm files the
	// database file's mode). An existing file keeps the mode its owner
	// gave it.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("sqlite %s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(cfg.BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	auto := cfg.CheckpointPages
	if cfg.BackgroundCheckpoint {
		auto *= 4
	}
	q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(auto)+")")
	q.Add("_pragma", "synchronous("+strings.ToUpper(cfg.Synchronous)+")")
	q.Add("_pragma", "cache_size(-"+strconv.Itoa(cfg.CacheKiB)+")")
	q.Add("_pragma", "temp_store(MEMORY)")
	if cfg.MmapBytes > 0 {
		q.Add("_pragma", "mmap_size("+strconv.FormatInt(cfg.MmapBytes, 10)+")")
	}
	// Every transaction takes the write lock at BEGIN: a read that later
	// writes cannot then fail on a lock upgrade halfway through.
	q.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: abs}).String() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxOpenConns)
	s := &Store{db: newReadDB(db), path: path, cfg: cfg, items: map[hashKey]int64{}, facets: map[facetKey]int64{}, places: map[string]int64{}, chains: map[chainKey]int64{}}
	// The page size must be set before the file turns to WAL, and WAL is
	// then a property of the file that every later connection sees.
	var mode string
	if _, err := db.ExecContext(ctx, "PRAGMA page_size = "+strconv.Itoa(cfg.PageSize)); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: journal mode is %q, want wal", path, mode)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	s.obs = obsWriter{conn: conn, stmts: map[string]driver.Stmt{}}
	if cfg.BackgroundCheckpoint {
		cctx, stop := context.WithCancel(context.Background())
		s.kick, s.stop, s.done = make(chan struct{}, 1), stop, make(chan struct{})
		go s.checkpointer(cctx)
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
		<-s.done
		s.stop = nil
	}
	s.wmu.Lock()
	err := s.obs.close()
	s.wmu.Unlock()
	return errors.Join(err, s.db.Close())
}

// checkpointer copies the log into the file whenever it is kicked (after
// each batch of observations). A failed checkpoint is not an
// error for anyone: the data is safe in the log, and SQLite's own
// checkpoint takes over.
func (s *Store) checkpointer(ctx context.Context) {
	defer close(s.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		// PASSIVE never blocks the writer or readers; it copies what it can.
		var busy, logPages, copied int
		_ = s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &copied)
	}
}

// kickCheckpoint wakes the checkpointer without waiting for it.
func (s *Store) kickCheckpoint() {
	if s.kick == nil {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
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

// noForeignKeys is the line a migration carries when it must run with
// foreign keys off: it rebuilds a table that others reference (SQLite's
// way to change a CHECK constraint), whose DROP would otherwise delete,
// or fail on, the rows that reference it. PRAGMA foreign_keys is a no-op
// inside a transaction, so such a migration runs on one connection with
// them off, and PRAGMA foreign_key_check must find no violation before
// it commits.
const noForeignKeys = "-- vigil: foreign_keys off"

// applyMigration runs m and records it, in one transaction.
func (s *Store) applyMigration(ctx context.Context, m migration) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if strings.Contains(m.SQL, noForeignKeys) {
		if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
			return err
		}
		defer func() {
			if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); err != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // never give the pool a connection without them
			}
		}()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if strings.Contains(m.SQL, noForeignKeys) {
		var table string
		var parent string
		switch err := tx.QueryRowContext(ctx, `SELECT "table", parent FROM pragma_foreign_key_check`).Scan(&table, &parent); {
		case err == nil:
			return fmt.Errorf("a row of %s references a missing row of %s", table, parent)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, s.cfg.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("schema_migrations: %w", err)
	}
	var have int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("schema_migrations: %w", err)
	}
	if have > len(ms) {
		return fmt.Errorf("%w: the file is at schema version %d, this Vigil knows up to %d; use a newer Vigil", ErrSchemaTooNew, have, len(ms))
	}
	for _, m := range ms[have:] {
		if err := s.applyMigration(ctx, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// writeTx runs fn in one write transaction, committed if fn returns nil.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.txLocked(ctx, fn)
}

// txLocked is writeTx for a caller that holds wmu.
func (s *Store) txLocked(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
