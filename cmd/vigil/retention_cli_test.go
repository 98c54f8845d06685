package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// vigil hold and vigil retention from the command line: an investigator
// (and a name that is no account) cannot place a hold; the analyst can;
// a dry run changes nothing; the run purges the unheld target only and
// says so; each step is in the audit trail.
func TestRetentionFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db"), "USER": "tester"}
	var buf bytes.Buffer
	enc := observe.NewEncoder(&buf)
	old := time.Now().UTC().AddDate(-3, 0, 0)
	for i := range 3 {
		at := old.Add(time.Duration(i) * time.Hour)
		if i == 2 { // past the transcripts' year, within the observations' two
			at = time.Now().UTC().AddDate(0, -18, 0)
		}
		o := storetest.Observation(rand.New(rand.NewPCG(21, uint64(i))), at, i)
		o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 10+i)), 51413
		if err := enc.Encode(&o); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env, "", "observations", "import", "--format", "jsonl", writeFile(t, dir, "obs.jsonl", buf.String()))
	mustRun(t, env, "", "agency", "add", "--id", "fr-ofmin", "--name", "OFMIN")
	mustRun(t, env, "", "agency", "add", "--id", "fr-lyon", "--name", "Lyon")
	mustRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-ofmin", "--role", "analyst", "--name", "m.durand")
	mustRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-lyon", "--role", "investigator", "--name", "j.curious")
	var ts []targetJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "targets", "--json")), &ts); err != nil || len(ts) != 3 {
		t.Fatalf("targets: %v %+v", err, ts)
	}
	at := map[string]string{}
	for _, x := range ts {
		at[x.Label] = x.ID
	}
	held, purged, young := at["192.0.2.10:51413"], at["192.0.2.11:51413"], at["192.0.2.12:51413"]
	if held == "" || purged == "" || young == "" {
		t.Fatalf("targets by endpoint: %v", at)
	}
	for _, as := range []string{"j.curious", "nobody"} {
		if code, _, errOut := vigilRun(t, env, "", "hold", "add", "--as", as, "--target", held, "--reason", "curious"); code == exitOK {
			t.Fatalf("%s placed a hold:\n%s", as, errOut)
		}
	}
	if code, _, _ := vigilRun(t, env, "", "hold", "add", "--as", "m.durand", "--target", held); code == exitOK {
		t.Fatal("a hold without --reason was placed")
	}
	if out := mustRun(t, env, "", "hold", "add", "--as", "m.durand", "--target", held, "--case", "PV 2026/1", "--reason", "inquiry"); !strings.Contains(out, "on "+held) {
		t.Fatalf("hold add: %s", out)
	}
	if out := mustRun(t, env, "", "hold", "list", "--as", "m.durand"); !strings.Contains(out, held) || !strings.Contains(out, "PV 2026/1") {
		t.Fatalf("hold list: %s", out)
	}
	out := mustRun(t, env, "", "retention", "run", "--dry-run")
	// Sign the log before the purge, as a running Vigil would have.
	mustRun(t, env, "", "evidence", "checkpoint")
	if !strings.Contains(out, "observations") || !strings.Contains(out, "1 active legal hold") {
		t.Fatalf("dry run: %s", out)
	}
	auditBefore := mustRun(t, env, "", "audit", "list", "--json")
	out = mustRun(t, env, "", "retention", "run")
	if !strings.Contains(out, "observations: 1 of 1 purged") || !strings.Contains(out, "transcripts: 2 of 2 purged") {
		t.Fatalf("run: %s", out)
	}
	if n := len(mustRun(t, env, "", "audit", "list", "--json")); n <= len(auditBefore) {
		t.Fatal("the purge wrote nothing to the audit trail")
	}
	trail := mustRun(t, env, "", "audit", "list", "--json")
	for _, want := range []string{"legal_hold_add", "retention_purge", "retention_purge_done", "denied"} {
		if !strings.Contains(trail, want) {
			t.Errorf("the audit trail lacks %s", want)
		}
	}
	// The purged target's bundle still verifies, and says what was purged.
	bundle := filepath.Join(dir, "b.zip")
	if out := mustRun(t, env, "", "evidence", "export", "--target", purged, "--out", bundle); !strings.Contains(out, "1 more purged under retention") {
		t.Fatalf("export of the purged target: %s", out)
	}
	code, out, errOut := vigilRun(t, env, "", "verify", bundle)
	if code != exitOK || !strings.Contains(out, "PURGED under retention: 1 observations") {
		t.Fatalf("verify of the purged target's bundle: exit %d\n%s\n%s", code, out, errOut)
	}
	// The younger target kept its row, not its transcript: its bundle
	// says so too.
	if out := mustRun(t, env, "", "evidence", "export", "--target", young, "--out", bundle); !strings.Contains(out, "0 observations") {
		t.Fatalf("export of the target whose transcript was purged: %s", out)
	}
	code, out, errOut = vigilRun(t, env, "", "verify", bundle)
	if code != exitOK || !strings.Contains(out, "PURGED under retention: 1 observations of the target (1 of them only their transcript)") {
		t.Fatalf("verify of the transcript-purged target's bundle: exit %d\n%s\n%s", code, out, errOut)
	}
	if out := mustRun(t, env, "", "retention", "show"); !strings.Contains(out, "WOULD PURGE") {
		t.Fatalf("show: %s", out)
	}
	if code, _, errOut := vigilRun(t, env, "", "retention", "run", "--keep-transcripts", "3y", "--keep-observations", "2y"); code == exitOK || !strings.Contains(errOut, "--keep-transcripts") {
		t.Fatalf("transcripts kept longer than observations: exit %d %s", code, errOut)
	}
}
