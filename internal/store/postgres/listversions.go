package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// Read-only queries over a list's versions, for the web pages: what each
// import brought, and what changed between two versions.

// ListVersions returns the versions of list name, newest first;
// store.ErrNotFound if there is no such list.
func (s *Store) ListVersions(ctx context.Context, name string) ([]webviews.ListVersion, error) {
	var id int64
	err := s.db().QueryRowContext(ctx, `SELECT id FROM lists WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("list %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", name, err)
	}
	var out []webviews.ListVersion
	err = eachRow(ctx, s.db(), `SELECT number, label, imported_at, sha256, format, imported_by, entries, added, removed, changed
		FROM list_versions WHERE list_id = ? ORDER BY number DESC`, func(r pgx.Rows) error {
		var v webviews.ListVersion
		var at int64
		if err := r.Scan(&v.Number, &v.Label, &at, &v.SHA256, &v.Format, &v.By, &v.Entries, &v.Added, &v.Removed, &v.Changed); err != nil {
			return err
		}
		v.Imported = nsTime(at)
		out = append(out, v)
		return nil
	}, id)
	if err != nil {
		return nil, fmt.Errorf("list %q versions: %w", name, err)
	}
	return out, nil
}

// DiffListVersions returns what changed in list name from version from to
// version to (from < to; from 0 is the empty list before the first
// import), at most max entries of each kind (0: 200). It replays the
// list's history (entry_events) between the two versions: a hash added
// and removed again in between is not listed. store.ErrNotFound for an
// unknown list or version. It reads the list's whole history: a page an
// analyst opens, not a hot path.
func (s *Store) DiffListVersions(ctx context.Context, name string, from, to, max int) (webviews.ListDiff, error) {
	d := webviews.ListDiff{From: from, To: to}
	if max <= 0 {
		max = 200
	}
	if from < 0 || to < 0 || from >= to {
		return d, fmt.Errorf("list %q: diff from version %d to %d: want 0 <= from < to", name, from, to)
	}
	var id, cur int64
	err := s.db().QueryRowContext(ctx, `SELECT id, version FROM lists WHERE name = ?`, name).Scan(&id, &cur)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("list %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("list %q: %w", name, err)
	}
	if int64(to) > cur {
		return d, fmt.Errorf("list %q version %d: %w", name, to, store.ErrNotFound)
	}
	type state struct {
		kind     string
		sum      []byte
		category string
		first    string // first action in (from, to]
		last     string // last action
		changes  []string
	}
	byKey := map[string]*state{}
	var order []string
	err = eachRow(ctx, s.db(), `SELECT ev.kind, ev.hash, ev.action, ev.reason, COALESCE(e.category, '')
		FROM entry_events ev LEFT JOIN entries e ON e.list_id = ev.list_id AND e.kind = ev.kind AND e.hash = ev.hash
		WHERE ev.list_id = ? AND ev.version > ? AND ev.version <= ? AND ev.action IN ('added', 'changed', 'removed')
		ORDER BY ev.id`, func(r pgx.Rows) error {
		var kind, action, reason, cat string
		var sum []byte
		if err := r.Scan(&kind, &sum, &action, &reason, &cat); err != nil {
			return err
		}
		k := kind + ":" + string(sum)
		st := byKey[k]
		if st == nil {
			st = &state{kind: kind, sum: sum, category: cat, first: action}
			byKey[k] = st
			order = append(order, k)
		}
		st.last = action
		if action == "changed" && reason != "" {
			st.changes = append(st.changes, reason)
		}
		return nil
	}, id, from, to)
	if err != nil {
		return d, fmt.Errorf("list %q diff %d..%d: %w", name, from, to, err)
	}
	add := func(dst *[]webviews.ListChange, st *state, was string) error {
		if len(*dst) >= max {
			d.Truncated = true
			return nil
		}
		h, err := scanHash(st.kind, st.sum)
		if err != nil {
			return fmt.Errorf("list %q: %w", name, err)
		}
		*dst = append(*dst, webviews.ListChange{Hash: h, Category: st.category, Was: was})
		return nil
	}
	for _, k := range order {
		st := byKey[k]
		// An entry's first event in the range tells whether it was on the
		// list at from: "added" means it was not (new, or back on it).
		before := st.first != "added"
		after := st.last != "removed"
		var err error
		switch {
		case !before && after:
			err = add(&d.Added, st, "")
		case before && !after:
			err = add(&d.Removed, st, "")
		case before && after && (len(st.changes) > 0 || st.first == "removed"):
			was := "removed and added again"
			if len(st.changes) > 0 {
				was = st.changes[0]
				for _, c := range st.changes[1:] {
					was += "; " + c
				}
			}
			err = add(&d.Changed, st, was)
		}
		if err != nil {
			return d, err
		}
	}
	return d, nil
}
