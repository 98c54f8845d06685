package store

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// An import of a list is decided once, here, by PlanImport: which entries
// are new, changed, back on the list or removed, what the history says and
// what the report counts. It reads nothing and writes nothing. A store
// reads what PlanImport needs (the list's state and every row the list
// ever had), calls it, and applies the plan in one transaction.

// maxSamples bounds the hashes an ImportReport lists as added or removed.
const maxSamples = 200

// History actions an import writes.
const (
	ActionAdded   = "added"
	ActionChanged = "changed"
	ActionRemoved = "removed"
)

// ReasonBack is the history's reason for an entry a list had removed and
// holds again.
const ReasonBack = "back on the list"

// ListState is what a store holds of a list when an import of it begins.
type ListState struct {
	Exists   bool // false: the import creates the list
	Version  int  // the current version's number (0 before the first import)
	Negative bool // a known-benign list
}

// StoredEntry is one row a list holds or once held.
type StoredEntry struct {
	Row    int64 // the store's id of the row
	Hash   hashkind.Hash
	Active bool              // in the current version (false: removed by an earlier one)
	Digest [sha256.Size]byte // EntryDigest of the values stored
}

// PlanOptions are a store's limits on what it can hold.
type PlanOptions struct {
	// Check, if set, refuses an entry the store cannot hold (PostgreSQL's
	// text takes no NUL byte). It is called, in the import's order, for
	// each entry the import writes (new, changed or back on the list); its
	// error fails the import, named with the entry's place in the file.
	Check func(e *watchlist.Entry) error
}

// ImportPlan is what one import of a list does. A store applies it in one
// transaction: the inserts in order (entry ids follow the import's
// order), the updates, the removals, the history in order (its ids are the
// order History and diffs read it in), a new version row and the list's
// counts. An Unchanged report writes nothing but a new Source.
type ImportPlan struct {
	// Report is what the import reports. With Report.Unchanged the
	// content is the current version's and the rest of the plan is empty.
	Report  ImportReport
	Version int    // the new version's number
	Label   string // the new version's label: the import's, else the number
	Entries int    // distinct entries in the new version

	Insert []*watchlist.Entry // new rows, first in this version
	Update []EntryUpdate      // rows given new values and put back in the current version
	Remove []int64            // rows leaving the list: their last version is the previous one
	Events []PlannedEvent     // the history this version writes, in order
}

// EntryUpdate is a stored row an import rewrites: its values changed, or
// it had been removed and is back.
type EntryUpdate struct {
	Row   int64
	Entry *watchlist.Entry
}

// PlannedEvent is one line of history an import writes (at the new
// version, by the importer).
type PlannedEvent struct {
	Hash   hashkind.Hash
	Action string // ActionAdded, ActionChanged or ActionRemoved
	// Reason is ReasonBack for an entry back on the list, and for a
	// change what changed, once Describe has read the old values.
	Reason string

	row   int64            // a change's row
	entry *watchlist.Entry // a change's new values
}

// ChangedRows returns the rows whose values the import changes: Describe
// needs their values as stored before it.
func (p *ImportPlan) ChangedRows() []int64 {
	var out []int64
	for i := range p.Events {
		if p.Events[i].Action == ActionChanged {
			out = append(out, p.Events[i].row)
		}
	}
	return out
}

// Describe sets the reason of each change from the row's values before
// the import (old, by row id): what DescribeChange says of them.
func (p *ImportPlan) Describe(old map[int64]*watchlist.Entry) {
	for i := range p.Events {
		ev := &p.Events[i]
		if o := old[ev.row]; ev.Action == ActionChanged && o != nil {
			ev.Reason = DescribeChange(o, ev.entry)
		}
	}
}

// planRow is a stored row while an import is planned, or a new one.
type planRow struct {
	row    int64
	active bool
	digest [sha256.Size]byte
	seen   bool // in the import
}

// PlanImport decides an import of list imp whose stored state is list and
// stored (every row the list ever had; nothing for a new list). An entry
// whose hash has no known kind, or a hash given twice with different
// attributes, fails the whole import; the same entry twice counts once.
// One digest under two kinds is two entries. Identical content, whatever
// the file's checksum, order or label, is Unchanged. A list cannot switch
// between negative and positive: that would turn known-benign hashes into
// matches, or the reverse, without anyone re-reading the list.
func PlanImport(imp ListImport, list ListState, stored []StoredEntry, opt PlanOptions) (ImportPlan, error) {
	p := ImportPlan{Report: ImportReport{List: imp.Name, Version: list.Version}, Version: list.Version + 1}
	if list.Exists && list.Negative != imp.Negative {
		side := map[bool]string{true: "negative (known-benign)", false: "positive"}
		return ImportPlan{}, fmt.Errorf("the list is %s and this import says %s; a list cannot change sides: import it under another name",
			side[list.Negative], side[imp.Negative])
	}
	// Every row the list ever had, so that a re-added hash reuses its row
	// (and keeps its disabled state and history).
	rows := make(map[hashkind.Hash]*planRow, len(stored))
	for i := range stored {
		s := &stored[i]
		rows[s.Hash] = &planRow{row: s.Row, active: s.Active, digest: s.Digest}
	}
	for i := range imp.Entries {
		if err := p.plan(&imp.Entries[i], i, rows, opt); err != nil {
			return ImportPlan{}, err
		}
	}
	p.planRemovals(rows)

	rep := &p.Report
	if list.Exists && rep.Added+rep.Removed+rep.Changed == 0 {
		return ImportPlan{Report: ImportReport{List: imp.Name, Version: list.Version, Unchanged: true}, Version: list.Version}, nil
	}
	p.Label = imp.Version
	if p.Label == "" {
		p.Label = strconv.Itoa(p.Version)
	}
	rep.Version = p.Version
	return p, nil
}

// plan decides entry i of the import.
func (p *ImportPlan) plan(e *watchlist.Entry, i int, rows map[hashkind.Hash]*planRow, opt PlanOptions) error {
	if !e.Hash.Kind().Valid() {
		return fmt.Errorf("entry %d%s: no hash of a known kind", i+1, where(e.Pos))
	}
	d := EntryDigest(e)
	r := rows[e.Hash]
	if r != nil && r.seen {
		if r.digest == d {
			return nil // the same entry twice: keep it once
		}
		return fmt.Errorf("entry %d%s: %s %s is given twice with different attributes", i+1, where(e.Pos), e.Hash.Kind(), e.Hash.Hex())
	}
	p.Entries++
	if opt.Check != nil && (r == nil || !r.active || r.digest != d) {
		if err := opt.Check(e); err != nil {
			return fmt.Errorf("entry %d%s: %s %s: %w", i+1, where(e.Pos), e.Hash.Kind(), e.Hash.Hex(), err)
		}
	}
	rep := &p.Report
	switch {
	case r == nil:
		p.Insert = append(p.Insert, e)
		r = &planRow{active: true}
		rows[e.Hash] = r
		rep.Added++
		rep.AddedHashes = sample(rep.AddedHashes, e.Hash)
		p.Events = append(p.Events, PlannedEvent{Hash: e.Hash, Action: ActionAdded})
	case !r.active:
		p.Update = append(p.Update, EntryUpdate{Row: r.row, Entry: e})
		rep.Added++
		rep.AddedHashes = sample(rep.AddedHashes, e.Hash)
		p.Events = append(p.Events, PlannedEvent{Hash: e.Hash, Action: ActionAdded, Reason: ReasonBack})
	case r.digest != d:
		p.Update = append(p.Update, EntryUpdate{Row: r.row, Entry: e})
		rep.Changed++
		p.Events = append(p.Events, PlannedEvent{Hash: e.Hash, Action: ActionChanged, row: r.row, entry: e})
	}
	r.seen, r.digest = true, d
	return nil
}

// planRemovals removes what the current version had and the import does
// not, in hash order, so that the samples and the history read the same
// each time.
func (p *ImportPlan) planRemovals(rows map[hashkind.Hash]*planRow) {
	var gone []hashkind.Hash
	for h, r := range rows {
		if r.active && !r.seen {
			gone = append(gone, h)
		}
	}
	slices.SortFunc(gone, func(a, b hashkind.Hash) int {
		if c := cmp.Compare(a.Kind(), b.Kind()); c != 0 {
			return c
		}
		return bytes.Compare(a.Bytes(), b.Bytes())
	})
	rep := &p.Report
	for _, h := range gone {
		p.Remove = append(p.Remove, rows[h].row)
		p.Events = append(p.Events, PlannedEvent{Hash: h, Action: ActionRemoved})
		rep.Removed++
		rep.RemovedHashes = sample(rep.RemovedHashes, h)
	}
}

func sample(hs []hashkind.Hash, h hashkind.Hash) []hashkind.Hash {
	if len(hs) < maxSamples {
		hs = append(hs, h)
	}
	return hs
}

// where is an entry's place in the imported file, for an error.
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

// EntryDigest is a watch-list entry's content digest: two versions of a
// list hold the same entry when the digests agree. Its position in the
// file is not content.
func EntryDigest(e *watchlist.Entry) [sha256.Size]byte {
	var b []byte
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	tri := func(p *bool) {
		switch {
		case p == nil:
			b = append(b, 2)
		case *p:
			b = append(b, 1)
		default:
			b = append(b, 0)
		}
	}
	str(e.Category)
	b = binary.AppendVarint(b, int64(e.Severity))
	str(e.Note)
	str(e.Name)
	b = binary.AppendVarint(b, e.Size)
	str(e.Series)
	tri(e.VictimIdentified)
	tri(e.OffenderIdentified)
	keys := make([]string, 0, len(e.Extra))
	for k := range e.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		str(k)
		str(e.Extra[k])
	}
	return sha256.Sum256(b)
}

// DescribeChange says what an import changed in an entry, for its history.
func DescribeChange(old, new *watchlist.Entry) string {
	var parts []string
	field := func(name, a, b string) {
		if a != b {
			parts = append(parts, fmt.Sprintf("%s %q → %q", name, a, b))
		}
	}
	tri := func(p *bool) string {
		if p == nil {
			return ""
		}
		return strconv.FormatBool(*p)
	}
	field("category", old.Category, new.Category)
	field("severity", strconv.Itoa(old.Severity), strconv.Itoa(new.Severity))
	field("note", old.Note, new.Note)
	field("name", old.Name, new.Name)
	field("size", strconv.FormatInt(old.Size, 10), strconv.FormatInt(new.Size, 10))
	field("series", old.Series, new.Series)
	field("victim identified", tri(old.VictimIdentified), tri(new.VictimIdentified))
	field("offender identified", tri(old.OffenderIdentified), tri(new.OffenderIdentified))
	if extraText(old.Extra) != extraText(new.Extra) {
		parts = append(parts, "extra fields")
	}
	return strings.Join(parts, "; ")
}

// extraText is the extra fields as the stores keep them (a JSON object,
// "" for none): two entries' extras differ for the history when these do.
func extraText(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m) // a map of strings always encodes
	return string(b)
}
