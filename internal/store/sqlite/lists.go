package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

func boolCol(p *bool) any {
	switch {
	case p == nil:
		return nil
	case *p:
		return 1
	default:
		return 0
	}
}

func extraCol(m map[string]string) (any, error) {
	b, err := rowcodec.ExtraJSON(m)
	if b == nil || err != nil {
		return nil, err
	}
	return string(b), nil
}

const entryCols = `e.kind, e.hash, e.category, e.severity, e.note, e.name, e.size, e.series,
	e.victim_identified, e.offender_identified, e.extra`

type scanner interface{ Scan(dest ...any) error }

// scanEntry reads entryCols (and any extra destinations after them).
func scanEntry(r scanner, e *watchlist.Entry, more ...any) error {
	var (
		kind           string
		sum            []byte
		victim, offend sql.NullBool
		extra          sql.NullString
	)
	dest := append([]any{&kind, &sum, &e.Category, &e.Severity, &e.Note, &e.Name, &e.Size, &e.Series,
		&victim, &offend, &extra}, more...)
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
	if victim.Valid {
		v := victim.Bool
		e.VictimIdentified = &v
	}
	if offend.Valid {
		v := offend.Bool
		e.OffenderIdentified = &v
	}
	if extra.Valid {
		if err := json.Unmarshal([]byte(extra.String), &e.Extra); err != nil {
			return fmt.Errorf("entry %s: extra: %w", e.Hash.Hex(), err)
		}
	}
	return nil
}

// ImportList stores a new version of a list in one transaction, as
// store.PlanImport decides it (which entries are new, changed, back or
// removed; what fails the import). Identical content (whatever the file's
// checksum) reports Unchanged and writes nothing but a new Source.
func (s *Store) ImportList(ctx context.Context, imp store.ListImport) (store.ImportReport, error) {
	rep := store.ImportReport{List: imp.Name}
	if strings.TrimSpace(imp.Name) == "" {
		return rep, errors.New("import: the list has no name")
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		rep, err = s.importList(ctx, tx, imp)
		return err
	})
	if err != nil {
		return store.ImportReport{List: imp.Name}, fmt.Errorf("list %q: %w", imp.Name, err)
	}
	return rep, nil
}

// importList reads what the plan needs, plans the import and applies it.
func (s *Store) importList(ctx context.Context, tx *sql.Tx, imp store.ListImport) (store.ImportReport, error) {
	listID, state, err := importTarget(ctx, tx, imp)
	if err != nil {
		return store.ImportReport{}, err
	}
	stored, err := storedEntries(ctx, tx, listID)
	if err != nil {
		return store.ImportReport{}, err
	}
	plan, err := store.PlanImport(imp, state, stored, store.PlanOptions{})
	if err != nil {
		return store.ImportReport{}, err
	}
	if plan.Report.Unchanged {
		if imp.Source != "" {
			_, err = tx.ExecContext(ctx, `UPDATE lists SET source = ? WHERE id = ?`, imp.Source, listID)
		}
		return plan.Report, err
	}
	if err := s.applyImport(ctx, tx, listID, state.Version, imp, &plan); err != nil {
		return store.ImportReport{}, err
	}
	return plan.Report, nil
}

// importTarget returns the id and state of the list imp imports into,
// creating the list if it is new.
func importTarget(ctx context.Context, tx *sql.Tx, imp store.ListImport) (int64, store.ListState, error) {
	st := store.ListState{Exists: true}
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id, version, negative FROM lists WHERE name = ?`, imp.Name).Scan(&id, &st.Version, &st.Negative)
	if !errors.Is(err, sql.ErrNoRows) {
		return id, st, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO lists (name, source, negative) VALUES (?, ?, ?)`, imp.Name, imp.Source, imp.Negative)
	if err != nil {
		return 0, st, err
	}
	id, err = res.LastInsertId()
	return id, store.ListState{}, err
}

// storedEntries returns every row the list ever had, so that a re-added
// hash reuses its row (and keeps its disabled state and history).
func storedEntries(ctx context.Context, tx *sql.Tx, listID int64) ([]store.StoredEntry, error) {
	var out []store.StoredEntry
	err := eachRow(ctx, tx, `SELECT `+entryCols+`, e.id, e.last_version IS NULL FROM entries e WHERE e.list_id = ?`, func(r *sql.Rows) error {
		var e watchlist.Entry
		var se store.StoredEntry
		if err := scanEntry(r, &e, &se.Row, &se.Active); err != nil {
			return err
		}
		se.Hash, se.Digest = e.Hash, store.EntryDigest(&e)
		out = append(out, se)
		return nil
	}, listID)
	return out, err
}

// applyImport writes plan: the rows in the plan's order (entry and event
// ids follow it), then the new version and the list's counts. ver is the
// version the import replaces.
func (s *Store) applyImport(ctx context.Context, tx *sql.Tx, listID int64, ver int, imp store.ListImport, plan *store.ImportPlan) error {
	// The reasons of changes need the values before the import.
	old := map[int64]*watchlist.Entry{}
	for _, id := range plan.ChangedRows() {
		var e watchlist.Entry
		if err := scanEntry(tx.QueryRowContext(ctx, `SELECT `+entryCols+` FROM entries e WHERE e.id = ?`, id), &e); err != nil {
			return err
		}
		old[id] = &e
	}
	plan.Describe(old)
	if err := writeEntries(ctx, tx, listID, ver, plan); err != nil {
		return err
	}
	now := s.cfg.Now().UTC().UnixNano()
	insertEvent, err := tx.PrepareContext(ctx, `INSERT INTO entry_events (kind, hash, list_id, version, action, at, who, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insertEvent.Close()
	for _, ev := range plan.Events {
		if _, err := insertEvent.ExecContext(ctx, ev.Hash.Kind().String(), ev.Hash.Bytes(), listID, plan.Version, ev.Action, now, imp.By, ev.Reason); err != nil {
			return err
		}
	}
	rep := &plan.Report
	if _, err := tx.ExecContext(ctx, `INSERT INTO list_versions (list_id, number, label, imported_at, sha256, format, imported_by,
		entries, added, removed, changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		listID, plan.Version, plan.Label, now, imp.SHA256, string(imp.Format), imp.By, plan.Entries, rep.Added, rep.Removed, rep.Changed); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE lists SET version = ?, source = CASE WHEN ? = '' THEN source ELSE ? END,
		active_entries = ?,
		disabled_entries = (SELECT count(*) FROM entries WHERE list_id = ? AND last_version IS NULL AND disabled = 1)
		WHERE id = ?`, plan.Version, imp.Source, imp.Source, plan.Entries, listID, listID)
	return err
}

// writeEntries writes the plan's new, rewritten and removed rows. ver is
// the version the import replaces: the last that held a removed row.
func writeEntries(ctx context.Context, tx *sql.Tx, listID int64, ver int, plan *store.ImportPlan) error {
	insertEntry, err := tx.PrepareContext(ctx, `INSERT INTO entries (list_id, kind, hash, category, severity, note, name, size, series,
		victim_identified, offender_identified, extra, first_version, last_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`)
	if err != nil {
		return err
	}
	defer insertEntry.Close()
	for _, e := range plan.Insert {
		extra, err := extraCol(e.Extra)
		if err == nil {
			_, err = insertEntry.ExecContext(ctx, listID, e.Hash.Kind().String(), e.Hash.Bytes(), e.Category, e.Severity, e.Note,
				e.Name, e.Size, e.Series, boolCol(e.VictimIdentified), boolCol(e.OffenderIdentified), extra, plan.Version)
		}
		if err != nil {
			return fmt.Errorf("entry %s %s: %w", e.Hash.Kind(), e.Hash.Hex(), err)
		}
	}
	updateEntry, err := tx.PrepareContext(ctx, `UPDATE entries SET category = ?, severity = ?, note = ?, name = ?, size = ?, series = ?,
		victim_identified = ?, offender_identified = ?, extra = ?, last_version = NULL WHERE id = ?`)
	if err != nil {
		return err
	}
	defer updateEntry.Close()
	for _, u := range plan.Update {
		e := u.Entry
		extra, err := extraCol(e.Extra)
		if err == nil {
			_, err = updateEntry.ExecContext(ctx, e.Category, e.Severity, e.Note, e.Name, e.Size, e.Series,
				boolCol(e.VictimIdentified), boolCol(e.OffenderIdentified), extra, u.Row)
		}
		if err != nil {
			return fmt.Errorf("entry %s %s: %w", e.Hash.Kind(), e.Hash.Hex(), err)
		}
	}
	removeEntry, err := tx.PrepareContext(ctx, `UPDATE entries SET last_version = ? WHERE id = ?`)
	if err != nil {
		return err
	}
	defer removeEntry.Close()
	for _, id := range plan.Remove {
		if _, err := removeEntry.ExecContext(ctx, ver, id); err != nil {
			return err
		}
	}
	return nil
}

// listCols reads a list with its current version.
const listCols = `l.id, l.name, l.source, l.negative, l.active_entries, l.disabled_entries,
	COALESCE(v.label, ''), COALESCE(v.format, ''), COALESCE(v.imported_at, 0), COALESCE(v.sha256, '')`

const listFrom = `lists l LEFT JOIN list_versions v ON v.list_id = l.id AND v.number = l.version`

func scanList(r scanner, l *watchlist.List) (int64, error) {
	var id, at int64
	var format string
	if err := r.Scan(&id, &l.Name, &l.Source, &l.Negative, &l.Entries, &l.Disabled, &l.Version, &format, &at, &l.SHA256); err != nil {
		return 0, err
	}
	l.Format = watchlist.Format(format)
	if at != 0 {
		l.Imported = time.Unix(0, at).UTC()
	}
	return id, nil
}

// Lists returns every list with its current version, by name.
func (s *Store) Lists(ctx context.Context) ([]watchlist.List, error) {
	r, err := s.db.QueryContext(ctx, `SELECT `+listCols+` FROM `+listFrom+` ORDER BY l.name`)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []watchlist.List
	for r.Next() {
		var l watchlist.List
		if _, err := scanList(r, &l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, r.Err()
}

// Lookup returns every current entry for h, on any list (disabled ones
// too, marked so), with its trust: the distinct organisations that
// confirmed h and the other positive lists that hold it enabled.
func (s *Store) Lookup(ctx context.Context, h hashkind.Hash) ([]store.EntryRecord, error) {
	if !h.Kind().Valid() {
		return nil, fmt.Errorf("lookup: no hash of a known kind")
	}
	r, err := s.db.QueryContext(ctx, `SELECT `+entryCols+`, e.disabled, e.disabled_reason, `+listCols+`
		FROM entries e JOIN lists l ON l.id = e.list_id
		LEFT JOIN list_versions v ON v.list_id = l.id AND v.number = l.version
		WHERE e.hash = ? AND e.kind = ? AND e.last_version IS NULL ORDER BY l.name`, h.Bytes(), h.Kind().String())
	if err != nil {
		return nil, err
	}
	var out []store.EntryRecord
	for r.Next() {
		var rec store.EntryRecord
		var listID, at int64
		var format string
		l := &rec.List
		if err := scanEntry(r, &rec.Entry, &rec.Disabled, &rec.Reason, &listID, &l.Name, &l.Source, &l.Negative, &l.Entries,
			&l.Disabled, &l.Version, &format, &at, &l.SHA256); err != nil {
			r.Close()
			return nil, err
		}
		l.Format = watchlist.Format(format)
		if at != 0 {
			l.Imported = time.Unix(0, at).UTC()
		}
		out = append(out, rec)
	}
	if err := r.Close(); err != nil {
		return nil, err
	}
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
	r, err := s.db.QueryContext(ctx, `SELECT DISTINCT org FROM confirmations WHERE hash = ? AND kind = ? ORDER BY org`,
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
	r, err := s.db.QueryContext(ctx, `SELECT `+listCols+` FROM `+listFrom+` ORDER BY l.name`)
	if err != nil {
		return err
	}
	type listRow struct {
		id int64
		l  watchlist.List
	}
	var lists []listRow
	for r.Next() {
		var lr listRow
		if lr.id, err = scanList(r, &lr.l); err != nil {
			r.Close()
			return err
		}
		lists = append(lists, lr)
	}
	if err := r.Close(); err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return err
	}
	for i := range lists {
		if err := s.entries(ctx, lists[i].id, true, func(e *watchlist.Entry) error { return fn(&lists[i].l, e) }); err != nil {
			return fmt.Errorf("list %q: %w", lists[i].l.Name, err)
		}
	}
	return nil
}

func (s *Store) entries(ctx context.Context, listID int64, enabledOnly bool, fn func(e *watchlist.Entry) error) error {
	q := `SELECT ` + entryCols + ` FROM entries e WHERE e.list_id = ? AND e.last_version IS NULL`
	if enabledOnly {
		q += ` AND e.disabled = 0`
	}
	r, err := s.db.QueryContext(ctx, q+` ORDER BY e.id`, listID)
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

func (s *Store) listID(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (int64, int, error) {
	var id int64
	var ver int
	err := q.QueryRowContext(ctx, `SELECT id, version FROM lists WHERE name = ?`, name).Scan(&id, &ver)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("list %q: %w", name, store.ErrNotFound)
	}
	return id, ver, err
}

// ListEntries calls fn for every entry of a list's current version,
// disabled ones included.
func (s *Store) ListEntries(ctx context.Context, list string, fn func(e *watchlist.Entry) error) error {
	id, _, err := s.listID(ctx, s.db, list)
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
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		listID, ver, err := s.listID(ctx, tx, list)
		if err != nil {
			return err
		}
		var id int64
		var was bool
		err = tx.QueryRowContext(ctx, `SELECT id, disabled FROM entries WHERE list_id = ? AND kind = ? AND hash = ? AND last_version IS NULL`,
			listID, h.Kind().String(), h.Bytes()).Scan(&id, &was)
		if errors.Is(err, sql.ErrNoRows) {
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
		if _, err := tx.ExecContext(ctx, `UPDATE entries SET disabled = ?, disabled_reason = ? WHERE id = ?`, disabled, reason, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE lists SET disabled_entries = disabled_entries + ? WHERE id = ?`, delta, listID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO entry_events (kind, hash, list_id, version, action, at, who, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			h.Kind().String(), h.Bytes(), listID, ver, action, s.cfg.Now().UTC().UnixNano(), by, reason)
		return err
	})
}

// Confirm records that c's organisation independently confirmed h. The
// hash must be, or have been, on some list.
func (s *Store) Confirm(ctx context.Context, h hashkind.Hash, c store.Confirmation) error {
	if strings.TrimSpace(c.Org) == "" || strings.TrimSpace(c.By) == "" {
		return fmt.Errorf("confirm %s %s: who and their organisation are required", h.Kind(), h.Hex())
	}
	at := c.Time
	if at.IsZero() {
		at = s.cfg.Now()
	}
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM entries WHERE hash = ? AND kind = ?`, h.Bytes(), h.Kind().String()).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("confirm %s %s: on no list: %w", h.Kind(), h.Hex(), store.ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO confirmations (kind, hash, who, org, note, at) VALUES (?, ?, ?, ?, ?, ?)`,
			h.Kind().String(), h.Bytes(), c.By, c.Org, c.Note, at.UTC().UnixNano()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO entry_events (kind, hash, list_id, version, action, at, who, reason) VALUES (?, ?, NULL, 0, 'confirmed', ?, ?, ?)`,
			h.Kind().String(), h.Bytes(), at.UTC().UnixNano(), c.By+" ("+c.Org+")", c.Note)
		return err
	})
}

// History returns h's events on every list, and its confirmations, oldest
// first.
func (s *Store) History(ctx context.Context, h hashkind.Hash) ([]store.EntryEvent, error) {
	r, err := s.db.QueryContext(ctx, `SELECT ev.at, ev.action, ev.who, ev.reason, COALESCE(l.name, ''), ev.version
		FROM entry_events ev LEFT JOIN lists l ON l.id = ev.list_id
		WHERE ev.hash = ? AND ev.kind = ? ORDER BY ev.at, ev.id`, h.Bytes(), h.Kind().String())
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
