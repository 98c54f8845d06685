package postgres

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/store/storetest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The rows a series of imports leaves, every column, in the order they
// were written, are the golden file's, which the SQLite store's test reads
// too: both stores write the same rows.
func TestImportSequenceWritesTheGoldenRows(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC) }
	st := openTest(t, cfg)
	got := storetest.ImportSequence(t, st) + dumpListRows(t, st)
	storetest.Golden(t, storetest.ImportRowsGolden, got, *updateGolden)
}

// dumpListRows prints the watch-list tables, row by row in id order,
// every column as text (ids left out: only their order is a contract).
// The rows of list "big" are many and alike: they are summed up as their
// count and a digest of their text.
func dumpListRows(t *testing.T, st *Store) string {
	t.Helper()
	tri := func(c string) string {
		return `CASE WHEN ` + c + ` IS NULL THEN 'NULL' WHEN ` + c + ` THEN '1' ELSE '0' END`
	}
	var b strings.Builder
	for _, q := range []struct{ name, sql string }{
		{"lists", `SELECT name, source, ` + tri("negative") + `, version::text, active_entries::text, disabled_entries::text FROM lists ORDER BY id`},
		{"list_versions", `SELECT l.name, v.number::text, v.label, v.imported_at::text, v.sha256, v.format, v.imported_by,
			v.entries::text, v.added::text, v.removed::text, v.changed::text
			FROM list_versions v JOIN lists l ON l.id = v.list_id ORDER BY l.id, v.number`},
		{"entries", `SELECT l.name, e.kind, encode(e.hash, 'hex'), e.category, e.severity::text, e.note, e.name, e.size::text,
			e.series, ` + tri("e.victim_identified") + `, ` + tri("e.offender_identified") + `,
			COALESCE(e.extra::text, 'NULL'), e.first_version::text, COALESCE(e.last_version::text, 'NULL'),
			` + tri("e.disabled") + `, e.disabled_reason FROM entries e JOIN lists l ON l.id = e.list_id ORDER BY e.id`},
		{"entry_events", `SELECT COALESCE(l.name, 'NULL'), ev.kind, encode(ev.hash, 'hex'), ev.version::text, ev.action,
			ev.at::text, ev.who, ev.reason FROM entry_events ev LEFT JOIN lists l ON l.id = ev.list_id ORDER BY ev.id`},
	} {
		b.WriteString(q.name + "\n")
		rows, err := st.pool.Query(context.Background(), q.sql)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		big, nbig := sha256.New(), 0
		for rows.Next() {
			raw, err := rows.Values()
			if err != nil {
				t.Fatalf("%s: %v", q.name, err)
			}
			vals := make([]string, len(raw))
			for i, v := range raw {
				vals[i] = v.(string)
			}
			line := "  " + strings.Join(vals, " | ") + "\n"
			if vals[0] == "big" {
				big.Write([]byte(line))
				nbig++
				continue
			}
			b.WriteString(line)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "  big: %d rows, sha256 %x\n", nbig, big.Sum(nil))
	}
	return b.String()
}
