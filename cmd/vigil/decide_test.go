package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Observations imported from a file become targets at the next read (not
// first-hand: scored only as second_hand); an
// analyst's flag adds its documented points, is kept, and is audited; a
// decision without a reason is refused.
func TestTargetFlagFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "v.db")
	var buf bytes.Buffer
	enc := observe.NewEncoder(&buf)
	r := rand.New(rand.NewPCG(5, 6))
	at := time.Now().UTC().Add(-time.Hour)
	for i := range 3 {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Minute), 1)
		// A public address: an imported sighting of a loopback or private
		// address is not first-hand, so it makes no target until the
		// endpoint itself talks to a sensor there.
		o.Endpoint.IP = netip.MustParseAddr("192.0.2.77")
		o.Endpoint.Port = 51413
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
	targets := func() []targetJSON {
		code, out, errOut := vigilRun(t, nil, "", "--db", db, "targets", "--json")
		if code != exitOK {
			t.Fatalf("targets: %d %s", code, errOut)
		}
		var ts []targetJSON
		if err := json.Unmarshal([]byte(out), &ts); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	ts := targets()
	if len(ts) != 1 {
		t.Fatalf("%d targets from one endpoint's observations, want 1", len(ts))
	}
	// An imported file proves no conversation (unsigned_import is not
	// first-hand): the target is listed, and scores only the capped
	// second_hand part.
	for _, part := range []string{"files", "possession", "days_active", "repetition", "recency", "sharing"} {
		if v := ts[0].Parts[part]; v != 0 {
			t.Fatalf("imported observations scored %s %.2f: parts %v", part, v, ts[0].Parts)
		}
	}
	if v := ts[0].Parts["second_hand"]; v <= 0 || v > 1 {
		t.Fatalf("imported observations: second_hand %.2f, want in (0, 1]: parts %v", v, ts[0].Parts)
	}
	id, before := ts[0].ID, ts[0].Score
	if code, _, _ := vigilRun(t, nil, "", "--db", db, "target", "flag", id, "--flag", "known_offender"); code != exitUsage {
		t.Fatalf("a flag without --why: exit %d, want %d", code, exitUsage)
	}
	if code, out, errOut := vigilRun(t, nil, "", "--db", db, "target", "flag", id, "--flag", "known_offender", "--why", "convicted 2019, case 2026/7"); code != exitOK {
		t.Fatalf("flag: %d %s %s", code, out, errOut)
	}
	after := targets()[0]
	if after.Parts["flag_known_offender"] != 50 || after.Score != before+50 {
		t.Fatalf("after the flag: score %.2f parts %v; want +50 from flag_known_offender (was %.2f)", after.Score, after.Parts, before)
	}
	code, out, _ := vigilRun(t, nil, "", "--db", db, "audit", "list", "--action", "change", "--json")
	if code != exitOK || !strings.Contains(out, "target:"+id) || !strings.Contains(out, "convicted 2019") {
		t.Fatalf("the flag was not audited with its reason:\n%s", out)
	}
	if code, _, _ := vigilRun(t, nil, "", "--db", db, "target", "flag", id, "--flag", "known_offender", "--off", "--why", "wrong person"); code != exitOK {
		t.Fatal("clearing the flag failed")
	}
	if p := targets()[0].Parts["flag_known_offender"]; p != 0 {
		t.Fatalf("flag still scores %.2f after --off", p)
	}
	code, out, _ = vigilRun(t, nil, "", "--db", db, "stats", "--json")
	var st struct {
		Stats struct {
			Targets  int            `json:"targets"`
			ByAgency map[string]int `json:"by_agency"`
		} `json:"stats"`
		ByMonth map[string]int `json:"by_month"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != exitOK || err != nil || st.Stats.Targets != 1 || st.Stats.ByAgency["fr-srpj-versailles"] != 1 || len(st.ByMonth) == 0 {
		t.Fatalf("stats: exit %d %v %+v\n%s", code, err, st, out)
	}
	if code, _, errOut := vigilRun(t, nil, "", "--db", db, "quarantine", "release", "sha1:0000000000000000000000000000000000000000", "--why", "x"); code == exitOK {
		t.Fatalf("releasing a hash that is not held succeeded: %s", errOut)
	}
}
