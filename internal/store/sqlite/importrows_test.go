package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/store/storetest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The rows a series of imports leaves, every column, in the order they
// were written, are the golden file's: what an import writes cannot
// change unnoticed. The PostgreSQL store's test compares with the same
// file: both stores write the same rows.
func TestImportSequenceWritesTheGoldenRows(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC) }
	st, _ := openTemp(t, cfg)
	got := storetest.ImportSequence(t, st) + dumpListRows(t, st.db.DB)
	storetest.Golden(t, storetest.ImportRowsGolden, got, *updateGolden)
}

// dumpListRows prints the watch-list tables, row by row in id order,
// every column as text (ids left out: only their order is a contract).
// The rows of list "big" are many and alike: they are summed up as their
// count and a digest of their text.
func dumpListRows(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []struct{ name, sql string }{
		{"lists", `SELECT name, source, CAST(negative AS TEXT), CAST(version AS TEXT), CAST(active_entries AS TEXT),
			CAST(disabled_entries AS TEXT) FROM lists ORDER BY id`},
		{"list_versions", `SELECT l.name, CAST(v.number AS TEXT), v.label, CAST(v.imported_at AS TEXT), v.sha256, v.format, v.imported_by,
			CAST(v.entries AS TEXT), CAST(v.added AS TEXT), CAST(v.removed AS TEXT), CAST(v.changed AS TEXT)
			FROM list_versions v JOIN lists l ON l.id = v.list_id ORDER BY l.id, v.number`},
		{"entries", `SELECT l.name, e.kind, lower(hex(e.hash)), e.category, CAST(e.severity AS TEXT), e.note, e.name, CAST(e.size AS TEXT),
			e.series, COALESCE(CAST(e.victim_identified AS TEXT), 'NULL'), COALESCE(CAST(e.offender_identified AS TEXT), 'NULL'),
			COALESCE(e.extra, 'NULL'), CAST(e.first_version AS TEXT), COALESCE(CAST(e.last_version AS TEXT), 'NULL'),
			CAST(e.disabled AS TEXT), e.disabled_reason FROM entries e JOIN lists l ON l.id = e.list_id ORDER BY e.id`},
		{"entry_events", `SELECT COALESCE(l.name, 'NULL'), ev.kind, lower(hex(ev.hash)), CAST(ev.version AS TEXT), ev.action,
			CAST(ev.at AS TEXT), ev.who, ev.reason FROM entry_events ev LEFT JOIN lists l ON l.id = ev.list_id ORDER BY ev.id`},
	} {
		b.WriteString(q.name + "\n")
		rows, err := db.QueryContext(context.Background(), q.sql)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		cols, _ := rows.Columns()
		vals := make([]string, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		big, nbig := sha256.New(), 0
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				t.Fatalf("%s: %v", q.name, err)
			}
			line := "  " + strings.Join(vals, " | ") + "\n"
			if vals[0] == "big" {
				big.Write([]byte(line))
				nbig++
				continue
			}
			b.WriteString(line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		fmt.Fprintf(&b, "  big: %d rows, sha256 %x\n", nbig, big.Sum(nil))
	}
	return b.String()
}
