package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// vigil stats --by/--group/--from/--to/--format/--min-cell prints the
// Contract's columns, counted exactly over a short range, suppresses
// every figure below --min-cell and says so, and is audited; --since and
// --json keep their old output.
func TestStatsFiguresFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "v.db")
	var buf bytes.Buffer
	enc := observe.NewEncoder(&buf)
	r := rand.New(rand.NewPCG(15, 1))
	// Week 2026-W10 (from Monday 2 March): 4 observations at 192.0.2.1 and
	// 1 at 192.0.2.2; week W11: 3 at 192.0.2.1. The times are fixed, each
	// day's first less than 24 hours (the analysis's EndpointWindow) after
	// the day before's last: 192.0.2.1 is one device in W10 and one (a new
	// generation, silent for six days) in W11.
	monday := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, s := range []struct {
		ip       string
		day, min int
	}{{"192.0.2.1", 0, 20}, {"192.0.2.1", 0, 30}, {"192.0.2.1", 1, 0}, {"192.0.2.1", 1, 10}, {"192.0.2.2", 2, 0},
		{"192.0.2.1", 7, 0}, {"192.0.2.1", 7, 10}, {"192.0.2.1", 8, 0}} {
		o := storetest.Observation(r, monday.AddDate(0, 0, s.day).Add(time.Duration(s.min)*time.Minute), 1)
		o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(s.ip), 51413
		if err := enc.Encode(&o); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, dir, "obs.jsonl", buf.String())
	if code, _, errOut := vigilRun(t, nil, "", "--db", db, "observations", "import", "--format", "jsonl", file); code != exitOK {
		t.Fatalf("import: %d %s", code, errOut)
	}
	code, out, errOut := vigilRun(t, nil, "", "--db", db, "stats", "--by", "week", "--from", "2026-03-04", "--to", "2026-03-10", "--format", "csv")
	if code != exitOK {
		t.Fatalf("stats csv: %d %s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"period", "observations", "unique_addresses", "unique_devices", "observations_change_pct", "unique_addresses_change_pct", "unique_devices_change_pct", "estimated", "suppressed"},
		{"2026-W10", "5", "2", "2", "", "", "", "false", ""},
		{"2026-W11", "3", "1", "1", "-40.0", "-50.0", "-50.0", "false", ""},
	}
	if !slices.EqualFunc(recs, want, slices.Equal) {
		t.Fatalf("stats --format csv:\n%q\nwant\n%q", recs, want)
	}
	code, out, errOut = vigilRun(t, nil, "", "--db", db, "stats", "--by", "week", "--from", "2026-03-02", "--to", "2026-03-15", "--min-cell", "2", "--format", "json")
	var rep struct {
		Method, Note string
		Estimated    bool
		Suppressed   int `json:"suppressed_cells"`
		Rows         []struct {
			Period        string
			Observations  *int64
			UniqueDevices *int64   `json:"unique_devices"`
			DevicesChange *float64 `json:"unique_devices_change_pct"`
			Suppressed    []string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); code != exitOK || err != nil {
		t.Fatalf("stats json: %d %v %s\n%s", code, err, errOut, out)
	}
	if rep.Method != "exact" || rep.Estimated || rep.Suppressed != 2 || !strings.Contains(rep.Note, "below 2 is suppressed") || len(rep.Rows) != 2 {
		t.Fatalf("stats --min-cell 2: %+v", rep)
	}
	w11 := rep.Rows[1]
	if w11.UniqueDevices != nil || w11.DevicesChange != nil || *w11.Observations != 3 || fmt.Sprint(w11.Suppressed) != "[unique_addresses unique_devices]" {
		t.Fatalf("W11 with --min-cell 2: %+v", w11)
	}
	if code, _, _ := vigilRun(t, nil, "", "--db", db, "stats", "--by", "day"); code != exitUsage {
		t.Fatalf("--by day: exit %d, want %d", code, exitUsage)
	}
	code, out, _ = vigilRun(t, nil, "", "--db", db, "stats", "--since", "2026-01-01", "--json")
	if code != exitOK || !strings.Contains(out, `"by_month"`) || !strings.Contains(out, `"2026-03": 8`) {
		t.Fatalf("stats --since --json changed:\n%s", out)
	}
	code, out, _ = vigilRun(t, nil, "", "--db", db, "audit", "list", "--action", "search", "--json")
	if code != exitOK || !strings.Contains(out, `"min_cell"`) {
		t.Fatalf("the figures were not audited:\n%s", out)
	}
}
