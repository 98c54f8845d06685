// Package store defines the contract of the watch-list and observation
// store (Store, checked by storetest) and decides, once for every backend,
// what an import of a list does (PlanImport). Backends live in
// sub-packages: sqlite, the embedded default, and postgres. What other
// parts keep in a store is defined by them, beside their own contract
// suites: analysis.Views, access.Store, audit.Store and webviews.Store (the
// pages); a backend implements those it keeps.
//
// A store imports no protocol code: sensors hand it observe.Observation
// values, never their wire types. This package does no I/O of its own.
package store

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// ErrNotFound is returned when a named list, entry or record does not
// exist. It is agency.ErrNotFound.
var ErrNotFound = agency.ErrNotFound

// ListImport is one import of a list file (or several files as one list).
type ListImport struct {
	Name     string
	Source   string
	Version  string // publisher's version label; empty: numbered automatically
	Format   watchlist.Format
	Negative bool   // a known-benign list
	SHA256   string // hex SHA-256 over the imported bytes
	By       string // who imported it
	Entries  []watchlist.Entry
}

// ImportReport says what an import changed. Re-importing the same content
// changes nothing and reports Unchanged.
type ImportReport struct {
	List      string
	Version   int  // internal version number after the import
	Unchanged bool // nothing changed: same content as the current version
	Added     int
	Removed   int
	Changed   int // same hash, different category, severity or note
	// Samples of what changed, at most a few hundred each, for the report.
	AddedHashes   []hashkind.Hash
	RemovedHashes []hashkind.Hash
}

// Confirmation is one independent confirmation that a hash is what a list
// says it is.
type Confirmation struct {
	By   string // person
	Org  string // their organisation; trust counts distinct organisations
	Note string
	Time time.Time
}

// Trust sums up the confirmations of a hash: explicit ones and the other
// (non-negative) lists that hold it.
type Trust struct {
	Confirmations int      // distinct organisations and lists confirming
	From          []string // their names
}

// EntryEvent is one line of an entry's history: added, changed, removed by
// a new version, disabled, enabled.
type EntryEvent struct {
	Time   time.Time
	Action string // "added", "changed", "removed", "disabled", "enabled", "confirmed"
	By     string
	Reason string
	List   string
	Ver    int
}

// EntryRecord is a stored entry with its list and state.
type EntryRecord struct {
	List     watchlist.List
	Entry    watchlist.Entry
	Disabled bool
	Reason   string // why disabled
	Trust    Trust
}

// ObservationFilter selects observations for export.
type ObservationFilter struct {
	Since time.Time // inclusive; zero: from the start
	Until time.Time // exclusive; zero: no end
}

// Store keeps watch-lists, with their history, and observations. Every
// backend implements it and passes storetest.
type Store interface {
	// ImportList stores a new version of a list atomically: either the
	// whole import lands or nothing changes.
	ImportList(ctx context.Context, imp ListImport) (ImportReport, error)
	// Lists returns every list with its current version.
	Lists(ctx context.Context) ([]watchlist.List, error)
	// Lookup returns every current entry, on any list, for a hash.
	Lookup(ctx context.Context, h hashkind.Hash) ([]EntryRecord, error)
	// ActiveEntries calls fn for every current, enabled entry of every list;
	// it is what the matcher is built from.
	ActiveEntries(ctx context.Context, fn func(list *watchlist.List, e *watchlist.Entry) error) error
	// ListEntries calls fn for every current entry of one list (for export).
	ListEntries(ctx context.Context, list string, fn func(e *watchlist.Entry) error) error
	// SetDisabled disables (or re-enables) one entry of one list, with a
	// reason kept in its history; the list is not re-imported.
	SetDisabled(ctx context.Context, list string, h hashkind.Hash, disabled bool, by, reason string) error
	// Confirm records an independent confirmation of a hash.
	Confirm(ctx context.Context, h hashkind.Hash, c Confirmation) error
	// History returns an entry's history across lists, oldest first.
	History(ctx context.Context, h hashkind.Hash) ([]EntryEvent, error)

	// InsertObservations appends observations in one transaction. An
	// observation whose id the store already holds is skipped (a bus
	// that redelivers after a crash must not duplicate evidence).
	InsertObservations(ctx context.Context, obs []observe.Observation) error
	// Observations calls fn for each observation matching f, in time order.
	Observations(ctx context.Context, f ObservationFilter, fn func(o *observe.Observation) error) error
	// ObservationsOfAddress calls fn for each observation whose endpoint
	// address is exactly one of addrs (as stored: an IPv4 address and its
	// IPv4-mapped form are two addresses, and one with a zone matches
	// none of addrs, which carry none) with since <= time < until, in
	// time order. It is the platforms' check (POST /api/v1/check), which
	// decides from what it is given what may be said: the store decides
	// nothing.
	ObservationsOfAddress(ctx context.Context, addrs []netip.Addr, since, until time.Time, fn func(o *observe.Observation) error) error

	Close() error
}

// RefusedError is InsertObservations' error for a batch that holds an
// observation this store can never hold (it wraps observe.ErrInvalid:
// PostgreSQL's text takes no NUL byte and only UTF-8, where the bus and
// observe.Validate take any string). Nothing of the batch was written;
// the batch without observation Index (of the slice given) may be
// stored. Ingest does so, counting the observation refused
// (vigil_ingest_refused_total), rather than fail the batch at every
// redelivery.
type RefusedError struct {
	Index int
	Err   error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// ChainGapError is a LogStore's ChainObservations error for a position of
// a sensor's chain, between the first and head asked for, that the store
// does not hold in that chain: an observation it refused (RefusedError),
// one that never reached it, one ingest stored marked signature_failed,
// without its chain fields, or one deleted after it was stored (the
// observations are not append-only; the evidence log is).
type ChainGapError struct {
	Chain string
	Seq   uint64
}

func (e *ChainGapError) Error() string {
	return fmt.Sprintf("chain %s: seq %d missing from the store", e.Chain, e.Seq)
}

// NewCounter is a Store that can say how many of the observations it was
// given were new: the rest had ids it already held (a redelivery). Ingest
// counts them (vigil_ingest_duplicates_total); a Store without it is
// taken to have stored all. Both backends implement it. A wrapper that
// embeds a store and changes InsertObservations must change this too:
// ingest calls this one where it exists.
type NewCounter interface {
	// InsertObservationsCounted is InsertObservations, returning how many
	// observations it added.
	InsertObservationsCounted(ctx context.Context, obs []observe.Observation) (added int, err error)
}
