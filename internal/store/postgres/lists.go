package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

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

// ImportList stores a new version of a list in one transaction, as
// store.PlanImport decides it (which entries are new, changed, back or
// removed; what fails the import), and refuses a string PostgreSQL text
// cannot hold. Identical content (whatever the file's checksum) reports
// Unchanged and writes nothing but a new Source.
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

// checkEntryText refuses an entry whose text PostgreSQL cannot hold.
func checkEntryText(e *watchlist.Entry) error {
	return checkText("category", e.Category, "note", e.Note, "name", e.Name, "series", e.Series)
}

// importList reads what the plan needs, plans the import and applies it.
func (s *Store) importList(ctx context.Context, tx pgx.Tx, imp store.ListImport) (store.ImportReport, error) {
	if err := checkText("name", imp.Name, "source", imp.Source, "version", imp.Version, "format", string(imp.Format),
		"sha256", imp.SHA256, "by", imp.By); err != nil {
		return store.ImportReport{}, fmt.Errorf("import: %w", err)
	}
	listID, state, err := importTarget(ctx, tx, imp)
	if err != nil {
		return store.ImportReport{}, err
	}
	stored, err := storedEntries(ctx, tx, listID)
	if err != nil {
		return store.ImportReport{}, err
	}
	plan, err := store.PlanImport(imp, state, stored, store.PlanOptions{Check: checkEntryText})
	if err != nil {
		return store.ImportReport{}, err
	}
	if plan.Report.Unchanged {
		if imp.Source != "" {
			_, err = tx.Exec(ctx, `UPDATE lists SET source = $1 WHERE id = $2`, imp.Source, listID)
		}
		return plan.Report, err
	}
	if err := s.applyImport(ctx, tx, listID, state.Version, imp, &plan); err != nil {
		return store.ImportReport{}, err
	}
	return plan.Report, nil
}

// importTarget returns the id and state of the list imp imports into,
// creating the list if it is new, else locking its row so that imports
// and SetDisabled of this list run one after another.
func importTarget(ctx context.Context, tx pgx.Tx, imp store.ListImport) (int64, store.ListState, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO lists (name, source, negative) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING id`,
		imp.Name, imp.Source, imp.Negative).Scan(&id)
	if !errors.Is(err, pgx.ErrNoRows) {
		return id, store.ListState{}, err
	}
	st := store.ListState{Exists: true}
	err = tx.QueryRow(ctx, `SELECT id, version, negative FROM lists WHERE name = $1 FOR UPDATE`, imp.Name).Scan(&id, &st.Version, &st.Negative)
	return id, st, err
}

// storedEntries returns every row the list ever had, so that a re-added
// hash reuses its row (and keeps its disabled state and history).
func storedEntries(ctx context.Context, tx pgx.Tx, listID int64) ([]store.StoredEntry, error) {
	r, err := tx.Query(ctx, `SELECT `+entryCols+`, e.id, e.last_version IS NULL FROM entries e WHERE e.list_id = $1`, listID)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []store.StoredEntry
	for r.Next() {
		var e watchlist.Entry
		var se store.StoredEntry
		if err := scanEntry(r, &e, &se.Row, &se.Active); err != nil {
			return nil, err
		}
		se.Hash, se.Digest = e.Hash, store.EntryDigest(&e)
		out = append(out, se)
	}
	return out, r.Err()
}

// applyImport writes plan: the new rows and the history by COPY, in the
// plan's order (ids follow it), the rewritten rows in one batch, then the
// new version and the list's counts. ver is the version the import
// replaces.
func (s *Store) applyImport(ctx context.Context, tx pgx.Tx, listID int64, ver int, imp store.ListImport, plan *store.ImportPlan) error {
	if err := describeChanges(ctx, tx, plan); err != nil {
		return err
	}
	if err := writeEntries(ctx, tx, listID, ver, plan); err != nil {
		return err
	}
	now := s.cfg.Now().UTC().UnixNano()
	events := make([][]any, len(plan.Events))
	for i, ev := range plan.Events {
		events[i] = []any{ev.Hash.Kind().String(), ev.Hash.Bytes(), listID, plan.Version, ev.Action, now, imp.By, ev.Reason}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entry_events"}, []string{"kind", "hash", "list_id", "version", "action", "at", "who", "reason"},
		pgx.CopyFromRows(events)); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	rep := &plan.Report
	if _, err := tx.Exec(ctx, `INSERT INTO list_versions (list_id, number, label, imported_at, sha256, format, imported_by,
		entries, added, removed, changed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		listID, plan.Version, plan.Label, now, imp.SHA256, string(imp.Format), imp.By, plan.Entries, rep.Added, rep.Removed, rep.Changed); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE lists SET version = $1, source = CASE WHEN $2 = '' THEN source ELSE $2 END,
		active_entries = $3,
		disabled_entries = (SELECT count(*) FROM entries WHERE list_id = $4 AND last_version IS NULL AND disabled)
		WHERE id = $4`, plan.Version, imp.Source, plan.Entries, listID)
	return err
}

// describeChanges reads the old values of the rows the plan changes, in
// one query, and has the plan describe each change.
func describeChanges(ctx context.Context, tx pgx.Tx, plan *store.ImportPlan) error {
	ids := plan.ChangedRows()
	if len(ids) == 0 {
		return nil
	}
	r, err := tx.Query(ctx, `SELECT `+entryCols+`, e.id FROM entries e WHERE e.id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	defer r.Close()
	old := make(map[int64]*watchlist.Entry, len(ids))
	for r.Next() {
		var e watchlist.Entry
		var id int64
		if err := scanEntry(r, &e, &id); err != nil {
			return err
		}
		old[id] = &e
	}
	if err := r.Err(); err != nil {
		return err
	}
	plan.Describe(old)
	return nil
}

// writeEntries writes the plan's new rows (COPY), rewritten rows (one
// batch) and removed rows (one update). ver is the version the import
// replaces: the last that held a removed row.
func writeEntries(ctx context.Context, tx pgx.Tx, listID int64, ver int, plan *store.ImportPlan) error {
	if len(plan.Insert) > 0 {
		rows := make([][]any, 0, len(plan.Insert))
		for _, e := range plan.Insert {
			extra, err := extraCol(e.Extra)
			if err != nil {
				return fmt.Errorf("entry %s %s: %w", e.Hash.Kind(), e.Hash.Hex(), err)
			}
			rows = append(rows, []any{listID, e.Hash.Kind().String(), e.Hash.Bytes(), e.Category, e.Severity, e.Note,
				e.Name, e.Size, e.Series, boolCol(e.VictimIdentified), boolCol(e.OffenderIdentified), extra, plan.Version})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"entries"}, []string{"list_id", "kind", "hash", "category", "severity", "note",
			"name", "size", "series", "victim_identified", "offender_identified", "extra", "first_version"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("new entries: %w", err)
		}
	}
	if len(plan.Update) > 0 {
		b := &pgx.Batch{}
		for _, u := range plan.Update {
			e := u.Entry
			extra, err := extraCol(e.Extra)
			if err != nil {
				return fmt.Errorf("entry %s %s: %w", e.Hash.Kind(), e.Hash.Hex(), err)
			}
			b.Queue(`UPDATE entries SET category = $1, severity = $2, note = $3, name = $4, size = $5, series = $6,
				victim_identified = $7, offender_identified = $8, extra = $9, last_version = NULL WHERE id = $10`,
				e.Category, e.Severity, e.Note, e.Name, e.Size, e.Series, boolCol(e.VictimIdentified), boolCol(e.OffenderIdentified), extra, u.Row)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("changed entries: %w", err)
		}
	}
	if len(plan.Remove) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE entries SET last_version = $1 WHERE id = ANY($2)`, ver, plan.Remove); err != nil {
			return fmt.Errorf("removed entries: %w", err)
		}
	}
	return nil
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
