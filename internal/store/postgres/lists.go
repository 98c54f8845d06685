package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// maxSamples bounds the hashes an ImportReport lists as added or removed.
const maxSamples = 200

// hashKey identifies an entry within a list.
type hashKey struct {
	kind hashkind.Kind
	sum  [32]byte
}

func keyOf(h hashkind.Hash) hashKey {
	k := hashKey{kind: h.Kind()}
	copy(k.sum[:], h.Bytes())
	return k
}

// errText is why PostgreSQL's text type cannot hold s (it takes neither a
// NUL byte nor bytes that are not UTF-8 in a UTF-8 database), or nil.
// SQLite stores such strings; here they are refused by name before
// anything is written, rather than failing a COPY halfway.
func errText(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("holds a NUL byte, which PostgreSQL text cannot store")
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8, which PostgreSQL text cannot store")
	}
	return nil
}

// checkText returns an error naming the first field whose value PostgreSQL
// text cannot hold. fields alternate name, value.
func checkText(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if err := errText(fields[i+1]); err != nil {
			return fmt.Errorf("%s %q %w", fields[i], fields[i+1], err)
		}
	}
	return nil
}

func boolCol(p *bool) any {
	if p == nil {
		return nil
	}
	return *p
}

// extraCol is the json column value of an entry's extra fields: NULL when
// there are none.
func extraCol(m map[string]string) (any, error) {
	b, err := rowcodec.ExtraJSON(m)
	if b == nil || err != nil {
		return nil, err
	}
	return string(b), nil
}

const entryCols = `e.kind, e.hash, e.category, e.severity, e.note, e.name, e.size, e.series,
	e.victim_identified, e.offender_identified, e.extra`

// scanEntry reads entryCols (and any extra destinations after them).
func scanEntry(r pgx.Row, e *watchlist.Entry, more ...any) error {
	var (
		kind  string
		sum   []byte
		extra []byte
	)
	dest := append([]any{&kind, &sum, &e.Category, &e.Severity, &e.Note, &e.Name, &e.Size, &e.Series,
		&e.VictimIdentified, &e.OffenderIdentified, &extra}, more...)
	if err := r.Scan(dest...); err != nil {
		return err
	}
	k, err := hashkind.ParseKind(kind)
	if err != nil {
		return err
	}
	if e.Hash, err = hashkind.New(k, sum); err != nil {
		return err
	}
	if extra != nil {
		if err := json.Unmarshal(extra, &e.Extra); err != nil {
			return fmt.Errorf("entry %s: extra: %w", e.Hash.Hex(), err)
		}
	}
	return nil
}

// current is an entry row of the list being imported.
type current struct {
	id     int64
	active bool // in the list's current version
	digest [sha256.Size]byte
	seen   bool // in the import
}

// update is an entry row an import rewrites: changed, or back on the list.
type update struct {
	id    int64
	e     *watchlist.Entry
	extra any
	back  bool // it had been removed
}

// ImportList stores a new version of a list in one transaction. An entry
// whose hash has no known kind, or a hash given twice with different
// attributes, fails the whole import, as does a string PostgreSQL text
// cannot hold. Identical content (whatever the file's checksum) reports
// Unchanged and writes nothing but a new Source. A list cannot switch
// between negative and positive.
//
// Imports of one list are serialised by a lock on its row; new entries and
// the history go in by COPY, so that a list of millions imports in one
// pass rather than a round trip per entry.
func (s *Store) ImportList(ctx context.Context, imp store.ListImport) (store.ImportReport, error) {
	rep := store.ImportReport{List: imp.Name}
	if strings.TrimSpace(imp.Name) == "" {
		return rep, errors.New("import: the list has no name")
	}
	var out store.ImportReport
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = s.importList(ctx, tx, imp)
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("list %q: %w", imp.Name, err)
	}
	return out, nil
}

func (s *Store) importList(ctx context.Context, tx pgx.Tx, imp store.ListImport) (store.ImportReport, error) {
	rep := store.ImportReport{List: imp.Name}
	if err := checkText("name", imp.Name, "source", imp.Source, "version", imp.Version, "format", string(imp.Format),
		"sha256", imp.SHA256, "by", imp.By); err != nil {
		return rep, fmt.Errorf("import: %w", err)
	}
	now := s.cfg.Now().UTC().UnixNano()

	var (
		listID   int64
		ver      int
		negative bool
		isNew    bool
	)
	err := tx.QueryRow(ctx, `INSERT INTO lists (name, source, negative) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id`,
		imp.Name, imp.Source, imp.Negative).Scan(&listID)
	switch {
	case err == nil:
		isNew, negative = true, imp.Negative
	case errors.Is(err, pgx.ErrNoRows):
		// The list exists: lock its row so that imports and SetDisabled
		// of this list run one after another.
		if err := tx.QueryRow(ctx, `SELECT id, version, negative FROM lists WHERE name = $1 FOR UPDATE`, imp.Name).Scan(&listID, &ver, &negative); err != nil {
			return rep, err
		}
	default:
		return rep, err
	}
	if negative != imp.Negative {
		kind := map[bool]string{true: "negative (known-benign)", false: "positive"}
		return rep, fmt.Errorf("the list is %s and this import says %s; a list cannot change sides: import it under another name",
			kind[negative], kind[imp.Negative])
	}
	rep.Version = ver

	// Every row the list ever had, so that a re-added hash reuses its row
	// (and keeps its disabled state and history).
	rows := map[hashKey]*current{}
	r, err := tx.Query(ctx, `SELECT `+entryCols+`, e.id, e.last_version IS NULL FROM entries e WHERE e.list_id = $1`, listID)
	if err != nil {
		return rep, err
	}
	for r.Next() {
		var e watchlist.Entry
		c := &current{}
		if err := scanEntry(r, &e, &c.id, &c.active); err != nil {
			r.Close()
			return rep, err
		}
		c.digest = rowcodec.EntryDigest(&e)
		rows[keyOf(e.Hash)] = c
	}
	r.Close()
	if err := r.Err(); err != nil {
		return rep, err
	}

	newVer := ver + 1
	var (
		inserts  [][]any // new entries rows, for COPY
		updates  []update
		events   [][]any // entry_events rows, for COPY, in the order the SQLite store writes them
		distinct int
	)
	event := func(h hashkind.Hash, action, reason string) {
		events = append(events, []any{h.Kind().String(), h.Bytes(), listID, newVer, action, now, imp.By, reason})
	}
	// Reasons for changed entries need the old values: their events are
	// filled in once those are read, below.
	changedEvent := map[int64]int{}              // entry id → index in events
	changedEntry := map[int64]*watchlist.Entry{} // entry id → its new values
	for i := range imp.Entries {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
		}
		e := &imp.Entries[i]
		if !e.Hash.Kind().Valid() {
			return rep, fmt.Errorf("entry %d%s: no hash of a known kind", i+1, where(e.Pos))
		}
		k, d := keyOf(e.Hash), rowcodec.EntryDigest(e)
		c := rows[k]
		if c != nil && c.seen {
			if c.digest == d {
				continue // the same entry twice: keep it once
			}
			return rep, fmt.Errorf("entry %d%s: %s %s is given twice with different attributes", i+1, where(e.Pos), e.Hash.Kind(), e.Hash.Hex())
		}
		distinct++
		extra, err := extraCol(e.Extra)
		if err != nil {
			return rep, fmt.Errorf("entry %d%s: %w", i+1, where(e.Pos), err)
		}
		if c == nil || !c.active || c.digest != d {
			if err := checkText("category", e.Category, "note", e.Note, "name", e.Name, "series", e.Series); err != nil {
				return rep, fmt.Errorf("entry %d%s: %s %s: %w", i+1, where(e.Pos), e.Hash.Kind(), e.Hash.Hex(), err)
			}
		}
		switch {
		case c == nil:
			inserts = append(inserts, []any{listID, e.Hash.Kind().String(), e.Hash.Bytes(), e.Category, e.Severity, e.Note,
				e.Name, e.Size, e.Series, boolCol(e.VictimIdentified), boolCol(e.OffenderIdentified), extra, newVer})
			c = &current{active: true}
			rows[k] = c
			rep.Added++
			if len(rep.AddedHashes) < maxSamples {
				rep.AddedHashes = append(rep.AddedHashes, e.Hash)
			}
			event(e.Hash, "added", "")
		case !c.active:
			updates = append(updates, update{id: c.id, e: e, extra: extra, back: true})
			rep.Added++
			if len(rep.AddedHashes) < maxSamples {
				rep.AddedHashes = append(rep.AddedHashes, e.Hash)
			}
			event(e.Hash, "added", "back on the list")
		case c.digest != d:
			updates = append(updates, update{id: c.id, e: e, extra: extra})
			rep.Changed++
			changedEvent[c.id], changedEntry[c.id] = len(events), e
			event(e.Hash, "changed", "")
		}
		c.seen, c.digest = true, d
	}

	// What the current version had and the import does not: removed, in
	// hash order so that the samples and the history read the same each time.
	var gone []hashKey
	for k, c := range rows {
		if c.active && !c.seen {
			gone = append(gone, k)
		}
	}
	sort.Slice(gone, func(i, j int) bool {
		if gone[i].kind != gone[j].kind {
			return gone[i].kind < gone[j].kind
		}
		return bytes.Compare(gone[i].sum[:], gone[j].sum[:]) < 0
	})
	goneIDs := make([]int64, 0, len(gone))
	for _, k := range gone {
		h := hashkind.MustNew(k.kind, k.sum[:k.kind.Size()])
		goneIDs = append(goneIDs, rows[k].id)
		event(h, "removed", "")
		rep.Removed++
		if len(rep.RemovedHashes) < maxSamples {
			rep.RemovedHashes = append(rep.RemovedHashes, h)
		}
	}

	if !isNew && rep.Added+rep.Removed+rep.Changed == 0 {
		if imp.Source != "" {
			if _, err := tx.Exec(ctx, `UPDATE lists SET source = $1 WHERE id = $2`, imp.Source, listID); err != nil {
				return rep, err
			}
		}
		return store.ImportReport{List: imp.Name, Version: ver, Unchanged: true}, nil
	}

	if len(changedEvent) > 0 {
		ids := make([]int64, 0, len(changedEvent))
		for id := range changedEvent {
			ids = append(ids, id)
		}
		r, err := tx.Query(ctx, `SELECT `+entryCols+`, e.id FROM entries e WHERE e.id = ANY($1)`, ids)
		if err != nil {
			return rep, err
		}
		for r.Next() {
			var old watchlist.Entry
			var id int64
			if err := scanEntry(r, &old, &id); err != nil {
				r.Close()
				return rep, err
			}
			events[changedEvent[id]][7] = rowcodec.DescribeChange(&old, changedEntry[id])
		}
		r.Close()
		if err := r.Err(); err != nil {
			return rep, err
		}
	}
	if len(inserts) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entries"}, []string{"list_id", "kind", "hash", "category", "severity", "note",
			"name", "size", "series", "victim_identified", "offender_identified", "extra", "first_version"}, pgx.CopyFromRows(inserts)); err != nil {
			return rep, fmt.Errorf("new entries: %w", err)
		}
	}
	if len(updates) > 0 {
		b := &pgx.Batch{}
		for _, u := range updates {
			e := u.e
			b.Queue(`UPDATE entries SET category = $1, severity = $2, note = $3, name = $4, size = $5, series = $6,
				victim_identified = $7, offender_identified = $8, extra = $9, last_version = NULL WHERE id = $10`,
				e.Category, e.Severity, e.Note, e.Name, e.Size, e.Series, boolCol(e.VictimIdentified), boolCol(e.OffenderIdentified), u.extra, u.id)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return rep, fmt.Errorf("changed entries: %w", err)
		}
	}
	if len(goneIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE entries SET last_version = $1 WHERE id = ANY($2)`, ver, goneIDs); err != nil {
			return rep, fmt.Errorf("removed entries: %w", err)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entry_events"}, []string{"kind", "hash", "list_id", "version", "action", "at", "who", "reason"},
		pgx.CopyFromRows(events)); err != nil {
		return rep, fmt.Errorf("history: %w", err)
	}

	label := imp.Version
	if label == "" {
		label = strconv.Itoa(newVer)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO list_versions (list_id, number, label, imported_at, sha256, format, imported_by,
		entries, added, removed, changed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		listID, newVer, label, now, imp.SHA256, string(imp.Format), imp.By, distinct, rep.Added, rep.Removed, rep.Changed); err != nil {
		return rep, err
	}
	if _, err := tx.Exec(ctx, `UPDATE lists SET version = $1, source = CASE WHEN $2 = '' THEN source ELSE $2 END,
		active_entries = $3,
		disabled_entries = (SELECT count(*) FROM entries WHERE list_id = $4 AND last_version IS NULL AND disabled)
		WHERE id = $4`, newVer, imp.Source, distinct, listID); err != nil {
		return rep, err
	}
	rep.Version = newVer
	return rep, nil
}

func where(p watchlist.Pos) string {
	switch {
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf(" (%s line %d)", p.File, p.Line)
	case p.File != "" && p.Path != "":
		return fmt.Sprintf(" (%s %s)", p.File, p.Path)
	case p.File != "":
		return " (" + p.File + ")"
	}
	return ""
}

// listCols reads a list with its current version.
const listCols = `l.id, l.name, l.source, l.negative, l.active_entries, l.disabled_entries,
	COALESCE(v.label, ''), COALESCE(v.format, ''), COALESCE(v.imported_at, 0), COALESCE(v.sha256, '')`

const listFrom = `lists l LEFT JOIN list_versions v ON v.list_id = l.id AND v.number = l.version`

// listDest returns scan destinations for listCols into l; finish converts
// what needs converting once scanned.
func listDest(l *watchlist.List, id *int64) (dest []any, finish func()) {
	var at int64
	var format string
	return []any{id, &l.Name, &l.Source, &l.Negative, &l.Entries, &l.Disabled, &l.Version, &format, &at, &l.SHA256},
		func() {
			l.Format = watchlist.Format(format)
			if at != 0 {
				l.Imported = time.Unix(0, at).UTC()
			}
		}
}

func (s *Store) allLists(ctx context.Context) ([]watchlist.List, []int64, error) {
	r, err := s.pool.Query(ctx, `SELECT `+listCols+` FROM `+listFrom+` ORDER BY l.name`)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var out []watchlist.List
	var ids []int64
	for r.Next() {
		var l watchlist.List
		var id int64
		dest, finish := listDest(&l, &id)
		if err := r.Scan(dest...); err != nil {
			return nil, nil, err
		}
		finish()
		out = append(out, l)
		ids = append(ids, id)
	}
	return out, ids, r.Err()
}

// Lists returns every list with its current version, by name.
func (s *Store) Lists(ctx context.Context) ([]watchlist.List, error) {
	ls, _, err := s.allLists(ctx)
	return ls, err
}

// Lookup returns every current entry for h, on any list (disabled ones
// too, marked so), with its trust: the distinct organisations that
// confirmed h and the other positive lists that hold it enabled.
func (s *Store) Lookup(ctx context.Context, h hashkind.Hash) ([]store.EntryRecord, error) {
	if !h.Kind().Valid() {
		return nil, fmt.Errorf("lookup: no hash of a known kind")
	}
	r, err := s.pool.Query(ctx, `SELECT `+entryCols+`, e.disabled, e.disabled_reason, `+listCols+`
		FROM entries e JOIN lists l ON l.id = e.list_id
		LEFT JOIN list_versions v ON v.list_id = l.id AND v.number = l.version
		WHERE e.hash = $1 AND e.kind = $2 AND e.last_version IS NULL ORDER BY l.name`, h.Bytes(), h.Kind().String())
	if err != nil {
		return nil, err
	}
	var out []store.EntryRecord
	for r.Next() {
		var rec store.EntryRecord
		var listID int64
		dest, finish := listDest(&rec.List, &listID)
		if err := scanEntry(r, &rec.Entry, append([]any{&rec.Disabled, &rec.Reason}, dest...)...); err != nil {
			r.Close()
			return nil, err
		}
		finish()
		out = append(out, rec)
	}
	r.Close()
	if err := r.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	orgs, err := s.confirmingOrgs(ctx, h)
	if err != nil {
		return nil, err
	}
	rowcodec.FillTrust(out, orgs)
	return out, nil
}

func (s *Store) confirmingOrgs(ctx context.Context, h hashkind.Hash) ([]string, error) {
	r, err := s.pool.Query(ctx, `SELECT DISTINCT org FROM confirmations WHERE hash = $1 AND kind = $2 ORDER BY org`,
		h.Bytes(), h.Kind().String())
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var org string
		if err := r.Scan(&org); err != nil {
			return nil, err
		}
		out = append(out, org)
	}
	return out, r.Err()
}

// ActiveEntries calls fn for every enabled entry of every list's current
// version, list by list in name order.
func (s *Store) ActiveEntries(ctx context.Context, fn func(list *watchlist.List, e *watchlist.Entry) error) error {
	ls, ids, err := s.allLists(ctx)
	if err != nil {
		return err
	}
	for i := range ls {
		if err := s.entries(ctx, ids[i], true, func(e *watchlist.Entry) error { return fn(&ls[i], e) }); err != nil {
			return fmt.Errorf("list %q: %w", ls[i].Name, err)
		}
	}
	return nil
}

func (s *Store) entries(ctx context.Context, listID int64, enabledOnly bool, fn func(e *watchlist.Entry) error) error {
	q := `SELECT ` + entryCols + ` FROM entries e WHERE e.list_id = $1 AND e.last_version IS NULL`
	if enabledOnly {
		q += ` AND NOT e.disabled`
	}
	r, err := s.pool.Query(ctx, q+` ORDER BY e.id`, listID)
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() {
		var e watchlist.Entry
		if err := scanEntry(r, &e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return r.Err()
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// listID returns a list's id and current version; lock takes its row lock
// (in a transaction).
func listID(ctx context.Context, q queryRower, name string, lock bool) (int64, int, error) {
	var id int64
	var ver int
	sql := `SELECT id, version FROM lists WHERE name = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	err := q.QueryRow(ctx, sql, name).Scan(&id, &ver)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, fmt.Errorf("list %q: %w", name, store.ErrNotFound)
	}
	return id, ver, err
}

// ListEntries calls fn for every entry of a list's current version,
// disabled ones included.
func (s *Store) ListEntries(ctx context.Context, list string, fn func(e *watchlist.Entry) error) error {
	id, _, err := listID(ctx, s.pool, list, false)
	if err != nil {
		return err
	}
	if err := s.entries(ctx, id, false, fn); err != nil {
		return fmt.Errorf("list %q: %w", list, err)
	}
	return nil
}

// SetDisabled disables or re-enables an entry of a list's current version
// and records why. Setting the state it already has changes nothing.
func (s *Store) SetDisabled(ctx context.Context, list string, h hashkind.Hash, disabled bool, by, reason string) error {
	if err := checkText("by", by, "reason", reason); err != nil {
		return fmt.Errorf("list %q: %s %s: %w", list, h.Kind(), h.Hex(), err)
	}
	return s.writeTx(ctx, func(tx pgx.Tx) error {
		lid, ver, err := listID(ctx, tx, list, true)
		if err != nil {
			return err
		}
		var id int64
		var was bool
		err = tx.QueryRow(ctx, `SELECT id, disabled FROM entries WHERE list_id = $1 AND kind = $2 AND hash = $3 AND last_version IS NULL`,
			lid, h.Kind().String(), h.Bytes()).Scan(&id, &was)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("list %q: %s %s: %w", list, h.Kind(), h.Hex(), store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if was == disabled {
			return nil
		}
		action, delta := "enabled", -1
		if disabled {
			action, delta = "disabled", 1
		}
		if _, err := tx.Exec(ctx, `UPDATE entries SET disabled = $1, disabled_reason = $2 WHERE id = $3`, disabled, reason, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE lists SET disabled_entries = disabled_entries + $1 WHERE id = $2`, delta, lid); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO entry_events (kind, hash, list_id, version, action, at, who, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			h.Kind().String(), h.Bytes(), lid, ver, action, s.cfg.Now().UTC().UnixNano(), by, reason)
		return err
	})
}

// Confirm records that c's organisation independently confirmed h. The
// hash must be, or have been, on some list.
func (s *Store) Confirm(ctx context.Context, h hashkind.Hash, c store.Confirmation) error {
	if strings.TrimSpace(c.Org) == "" || strings.TrimSpace(c.By) == "" {
		return fmt.Errorf("confirm %s %s: who and their organisation are required", h.Kind(), h.Hex())
	}
	if err := checkText("by", c.By, "org", c.Org, "note", c.Note); err != nil {
		return fmt.Errorf("confirm %s %s: %w", h.Kind(), h.Hex(), err)
	}
	at := c.Time
	if at.IsZero() {
		at = s.cfg.Now()
	}
	return s.writeTx(ctx, func(tx pgx.Tx) error {
		var listed bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM entries WHERE hash = $1 AND kind = $2)`, h.Bytes(), h.Kind().String()).Scan(&listed); err != nil {
			return err
		}
		if !listed {
			return fmt.Errorf("confirm %s %s: on no list: %w", h.Kind(), h.Hex(), store.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO confirmations (kind, hash, who, org, note, at) VALUES ($1, $2, $3, $4, $5, $6)`,
			h.Kind().String(), h.Bytes(), c.By, c.Org, c.Note, at.UTC().UnixNano()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO entry_events (kind, hash, list_id, version, action, at, who, reason) VALUES ($1, $2, NULL, 0, 'confirmed', $3, $4, $5)`,
			h.Kind().String(), h.Bytes(), at.UTC().UnixNano(), c.By+" ("+c.Org+")", c.Note)
		return err
	})
}

// History returns h's events on every list, and its confirmations, oldest
// first.
func (s *Store) History(ctx context.Context, h hashkind.Hash) ([]store.EntryEvent, error) {
	r, err := s.pool.Query(ctx, `SELECT ev.at, ev.action, ev.who, ev.reason, COALESCE(l.name, ''), ev.version
		FROM entry_events ev LEFT JOIN lists l ON l.id = ev.list_id
		WHERE ev.hash = $1 AND ev.kind = $2 ORDER BY ev.at, ev.id`, h.Bytes(), h.Kind().String())
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []store.EntryEvent
	for r.Next() {
		var ev store.EntryEvent
		var at int64
		if err := r.Scan(&at, &ev.Action, &ev.By, &ev.Reason, &ev.List, &ev.Ver); err != nil {
			return nil, err
		}
		ev.Time = time.Unix(0, at).UTC()
		out = append(out, ev)
	}
	return out, r.Err()
}
