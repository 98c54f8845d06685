// Package audit is Vigil's audit trail: who did what, when, from where and
// why. Every view of a target, export, search, login and change is one
// Record, appended to a hash chain: each record's hash covers all its fields
// and the previous record's hash, so that a changed, deleted or inserted
// record breaks the chain at the first place it touched, and Verify names it.
//
// The trail is append-only. Stores enforce it (the SQLite store refuses
// UPDATE and DELETE on the table with triggers) and serialise appends, so
// that two writers never chain onto the same record.
//
// What a bare hash chain cannot show: someone with write access to the file
// who drops the append-only triggers can cut records off the end of the
// chain, or rewrite the chain from some point on and recompute every later
// hash. Signed checkpoints close that gap up to the last checkpoint: Vigil
// signs the head of the chain (sequence number and hash) with an ed25519 key
// held outside the store (Checkpoint), and Verify with the public key
// proves that every checkpointed record is still there, unchanged. Records
// after the last checkpoint are protected by the chain alone.
//
// This package must never offer a way to change or remove a record, and
// never let an export through without a stated purpose (RequirePurpose).
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Actions. Handlers may use others; these are the ones Vigil writes.
const (
	ActionLogin        = "login"
	ActionLoginFailed  = "login_failed"
	ActionLocked       = "locked" // an account was locked after repeated failures
	ActionLogout       = "logout"
	ActionViewTarget   = "view_target"
	ActionListTargets  = "list_targets"
	ActionSearch       = "search"
	ActionExport       = "export"
	ActionChange       = "change" // a change of data: detail says what
	ActionDenied       = "denied" // a request refused for lack of right or need to know
	ActionUserAdd      = "user_add"
	ActionUserPasswd   = "user_passwd"
	ActionUserDisable  = "user_disable"
	ActionUserLink     = "user_link"
	ActionAgencyAdd    = "agency_add"
	ActionTokenCreate  = "token_create"
	ActionTokenRevoke  = "token_revoke"
	ActionReadAudit    = "read_audit"
	ActionVerifyAudit  = "verify_audit"
	ActionCheckpoint   = "checkpoint"
	ActionOIDCRefused  = "oidc_refused"
	ActionSessionEnded = "session_revoked"
	// The live feed (internal/web): a subscription, each batch of events
	// delivered (the record names every target and endpoint of the batch
	// and is written before the batch is sent), and the stream's end.
	ActionLiveSubscribe = "live_subscribe"
	ActionLiveDeliver   = "live_deliver"
	ActionLiveEnd       = "live_end"
	// ActionViewList is a read of watch-lists (pages, CLI export).
	ActionViewList = "view_list"
	// ActionPlatformCheck is a platform's check of addresses (POST
	// /api/v1/check): the record names each address, port and time
	// asked, the purpose, and for each one seen the sighting and the
	// reference given.
	ActionPlatformCheck = "platform_check"
)

// Record is one entry of the trail. Seq, PrevHash and Hash are set by the
// store when it appends; Time by the Log.
type Record struct {
	Seq         int64           `json:"seq"`
	Time        time.Time       `json:"time"`         // UTC, nanoseconds
	Actor       string          `json:"actor"`        // user name, "cli:<os user>", or "anonymous"
	ActorAgency string          `json:"actor_agency"` // the actor's agency id, if any
	Role        string          `json:"role"`         // the actor's role at the time
	Remote      string          `json:"remote"`       // client address (IP:port), or "cli"
	Action      string          `json:"action"`
	Object      string          `json:"object"`  // what was acted on, e.g. "target:42", "user:alice"
	Purpose     string          `json:"purpose"` // the stated purpose: a case number
	Detail      json.RawMessage `json:"detail,omitempty"`
	PrevHash    []byte          `json:"prev_hash"`
	Hash        []byte          `json:"hash"`
}

// HashSize is the size of a record hash (SHA-256).
const HashSize = sha256.Size

// hashDomain separates audit hashes from any other SHA-256 in Vigil.
const hashDomain = "vigil-audit-v1\x00"

// ComputeHash returns the hash of r: SHA-256 over a domain tag and every
// field except Hash, each length-prefixed (8 bytes, big-endian), so that no
// two different records encode to the same bytes. Time counts as Unix
// nanoseconds.
func ComputeHash(r *Record) []byte {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	putInt := func(v int64) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(v))
		put(b[:])
	}
	putInt(r.Seq)
	putInt(r.Time.UnixNano())
	for _, s := range []string{r.Actor, r.ActorAgency, r.Role, r.Remote, r.Action, r.Object, r.Purpose} {
		put([]byte(s))
	}
	put(r.Detail)
	put(r.PrevHash)
	return h.Sum(nil)
}

// Seal sets r.Hash from the other fields. A store calls it once it has set
// Seq and PrevHash.
func Seal(r *Record) { r.Hash = ComputeHash(r) }

// Filter selects records for an auditor. Zero fields do not filter.
type Filter struct {
	Actor       string
	ActorAgency string // only records of actors of this agency (a supervisor's view)
	Action      string
	Object      string
	Since       time.Time // inclusive
	Until       time.Time // exclusive
	AfterSeq    int64     // paging: records with Seq > AfterSeq (ascending) or < AfterSeq (Desc, if > 0)
	Limit       int       // 0: no limit
	Desc        bool      // newest first
}

// Store keeps the trail. Implementations must serialise AppendAudit: read
// the last record, set r.Seq to its Seq+1 (1 for the first), r.PrevHash to
// its Hash (empty for the first), call Seal and insert, all in one
// transaction.
type Store interface {
	AppendAudit(ctx context.Context, r Record) (Record, error)
	// AuditRecords calls fn for each record matching f, in Seq order
	// (descending with f.Desc). It stops at fn's first error and returns it.
	AuditRecords(ctx context.Context, f Filter, fn func(Record) error) error
}

// BatchStore is a Store that can append several records in one
// transaction: AppendAuditBatch chains rs onto the last record and onto
// each other, in order, seals each and inserts them all or none. It
// returns them as stored.
type BatchStore interface {
	Store
	AppendAuditBatch(ctx context.Context, rs []Record) ([]Record, error)
}

// DefaultMaxBatch is how many records a Log commits together at most.
const DefaultMaxBatch = 256

// Log appends records with the time taken from its clock.
//
// Over a BatchStore, concurrent appends are committed together (group
// commit): the first caller writes its record and every record queued
// behind it in one transaction while the next ones queue, and so on.
// Each Append still returns only once its own record is committed (or
// has failed), so a caller never serves what it could not audit and a
// crash loses no record whose Append returned. A failed batch is retried
// one record at a time, so that one bad record fails only its own Append.
type Log struct {
	Store Store
	Now   func() time.Time // nil: time.Now
	// MaxBatch bounds a group commit (0: DefaultMaxBatch; 1: one
	// transaction per record).
	MaxBatch int

	mu      sync.Mutex
	queue   []*pendingAppend // waiting for a writer; guarded by mu
	writing bool             // a caller is writing a batch; guarded by mu
}

// pendingAppend is one caller's record in the group-commit queue.
type pendingAppend struct {
	rec  Record
	out  Record
	err  error
	lead bool          // woken to write the next batch rather than with its result
	done chan struct{} // closed when out and err are set, or when lead is
}

// Append stamps r with the time and appends it.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	if r.Action == "" {
		return Record{}, errors.New("audit: a record needs an action")
	}
	if len(r.Detail) > 0 && !json.Valid(r.Detail) {
		return Record{}, fmt.Errorf("audit %s: detail is not valid JSON", r.Action)
	}
	var out Record
	var err error
	if bs, ok := l.Store.(BatchStore); ok && l.MaxBatch != 1 {
		out, err = l.appendGrouped(ctx, bs, r, now)
	} else {
		r.Time = now().UTC()
		out, err = l.Store.AppendAudit(ctx, r)
	}
	if err != nil {
		return Record{}, fmt.Errorf("audit %s %s: %w", r.Action, r.Object, err)
	}
	return out, nil
}

// appendGrouped queues r and waits until it is committed. The caller
// that finds no writer at work becomes the writer: it commits the queue
// (itself first) in one transaction, answers the callers of that batch,
// and hands the writer's role to the first caller queued meanwhile.
func (l *Log) appendGrouped(ctx context.Context, bs BatchStore, r Record, now func() time.Time) (Record, error) {
	p := &pendingAppend{rec: r, done: make(chan struct{})}
	l.mu.Lock()
	// Stamped in queue order, so that the trail's times follow its
	// sequence numbers (two callers stamped outside the lock could queue
	// in the other order).
	p.rec.Time = now().UTC()
	if n := len(l.queue); n > 0 && p.rec.Time.Before(l.queue[n-1].rec.Time) {
		p.rec.Time = l.queue[n-1].rec.Time
	}
	l.queue = append(l.queue, p)
	if l.writing {
		l.mu.Unlock()
		<-p.done // not abandoned on ctx: the record may be in a transaction already
		if !p.lead {
			return p.out, p.err
		}
		l.mu.Lock()
	} else {
		l.writing = true
	}
	// p writes: it is the head of the queue.
	maxBatch := l.MaxBatch
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	n := min(len(l.queue), maxBatch)
	batch := l.queue[:n:n]
	l.queue = l.queue[n:]
	l.mu.Unlock()

	l.writeBatchSafe(context.WithoutCancel(ctx), bs, batch)
	for _, q := range batch[1:] {
		close(q.done)
	}
	l.mu.Lock()
	if len(l.queue) > 0 {
		next := l.queue[0]
		next.lead = true
		close(next.done)
	} else {
		l.writing = false
	}
	l.mu.Unlock()
	return p.out, p.err
}

// writeBatchSafe is writeBatch turning a panic of the store into an error
// for the records not yet answered, so that the writer's role is always
// handed on (a stuck queue would hang every later audited request).
func (l *Log) writeBatchSafe(ctx context.Context, bs BatchStore, batch []*pendingAppend) {
	defer func() {
		if v := recover(); v != nil {
			for _, q := range batch {
				if q.err == nil && q.out.Seq == 0 {
					q.err = fmt.Errorf("the audit store panicked: %v", v)
				}
			}
		}
	}()
	l.writeBatch(ctx, bs, batch)
}

// writeBatch commits batch in one transaction; if that fails, one record
// at a time.
func (l *Log) writeBatch(ctx context.Context, bs BatchStore, batch []*pendingAppend) {
	recs := make([]Record, len(batch))
	for i, q := range batch {
		recs[i] = q.rec
	}
	out, err := bs.AppendAuditBatch(ctx, recs)
	if err == nil && len(out) != len(batch) {
		// Not retried: what the store holds is unknown.
		for _, q := range batch {
			q.err = fmt.Errorf("the store answered %d records for a batch of %d", len(out), len(batch))
		}
		return
	}
	if err == nil {
		for i, q := range batch {
			q.out = out[i]
		}
		return
	}
	if len(batch) == 1 {
		batch[0].err = err
		return
	}
	for _, q := range batch {
		q.out, q.err = bs.AppendAudit(ctx, q.rec)
	}
}

// ErrNoPurpose is returned by RequirePurpose when no case number was given.
var ErrNoPurpose = errors.New("a purpose (case number) is required")

// PurposeError says why a stated purpose was refused. It wraps ErrNoPurpose.
type PurposeError struct {
	Purpose string
	Reason  string
}

func (e *PurposeError) Error() string {
	if e.Purpose == "" {
		return ErrNoPurpose.Error()
	}
	return fmt.Sprintf("purpose %q: %s", e.Purpose, e.Reason)
}

func (e *PurposeError) Unwrap() error { return ErrNoPurpose }

// MaxPurpose is the longest purpose accepted, in bytes.
const MaxPurpose = 128

// RequirePurpose checks the purpose stated for an export (a case number,
// e.g. "PV 2026/00123"): present, at most MaxPurpose bytes, printable, no
// control characters. It returns it trimmed. Handlers refuse the export on
// error (errors.Is(err, ErrNoPurpose)) and audit the refusal.
func RequirePurpose(purpose string) (string, error) {
	p := strings.TrimSpace(purpose)
	if p == "" {
		return "", &PurposeError{}
	}
	if len(p) > MaxPurpose {
		return "", &PurposeError{Purpose: p[:MaxPurpose] + "...", Reason: fmt.Sprintf("longer than %d bytes", MaxPurpose)}
	}
	for _, c := range p {
		if !unicode.IsPrint(c) {
			return "", &PurposeError{Purpose: p, Reason: fmt.Sprintf("contains the non-printable character %U", c)}
		}
	}
	if len([]rune(p)) < 3 {
		return "", &PurposeError{Purpose: p, Reason: "too short to be a case number"}
	}
	return p, nil
}
