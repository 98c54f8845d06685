package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// vigil alert: a rule is added for an existing agency, listed, refused
// when it reaches into another jurisdiction (the error names the input),
// removed by its agency only; reading an agency's alerts is audited.
func TestAlertRulesFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "v.db")
	env := map[string]string{"VIGIL_DB": db, "USER": "tester"}
	for _, a := range []string{"fr-lyon", "fr-versailles"} {
		mustRun(t, env, "", "agency", "add", "--id", a, "--name", a)
	}
	out := mustRun(t, env, "", "alert", "rule", "add", "--id", "nat", "--agency", "fr-lyon", "--kind", "list_seen", "--list", "national",
		"--email", "alerts@lyon.example", "--max-per-hour", "5")
	if !strings.Contains(out, "alert rule nat added for fr-lyon") {
		t.Fatalf("add: %s", out)
	}
	code, _, errOut := vigilRun(t, env, "", "alert", "rule", "add", "--id", "wide", "--agency", "fr-lyon", "--kind", "list_seen",
		"--list", "national", "--jurisdiction", "fr-versailles")
	if code == exitOK || !strings.Contains(errOut, "jurisdiction fr-versailles") {
		t.Fatalf("a rule on another jurisdiction: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := vigilRun(t, env, "", "alert", "rule", "add", "--id", "x", "--agency", "fr-nowhere", "--kind", "held_new_address"); code == exitOK || !strings.Contains(errOut, "fr-nowhere") {
		t.Fatalf("a rule of an unknown agency: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := vigilRun(t, env, "", "alert", "rule", "add", "--id", "s", "--agency", "fr-lyon", "--kind", "score_passed"); code == exitOK || !strings.Contains(errOut, "score") {
		t.Fatalf("score_passed without a score: exit %d\n%s", code, errOut)
	}
	if out := mustRun(t, env, "", "alert", "rule", "list"); !strings.Contains(out, "nat") || !strings.Contains(out, "list=national") ||
		!strings.Contains(out, "feed email:alerts@lyon.example") {
		t.Fatalf("list: %s", out)
	}
	if code, _, _ := vigilRun(t, env, "", "alert", "rule", "remove", "--id", "nat", "--agency", "fr-versailles"); code == exitOK {
		t.Fatal("another agency removed fr-lyon's rule")
	}
	mustRun(t, env, "", "alert", "list", "--agency", "fr-lyon")
	mustRun(t, env, "", "alert", "deliveries")
	mustRun(t, env, "", "alert", "rule", "remove", "--id", "nat", "--agency", "fr-lyon")
	if out := mustRun(t, env, "", "alert", "rule", "list"); strings.Contains(out, "nat") {
		t.Fatalf("list after removal: %s", out)
	}
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := 0
	if err := st.AuditRecords(context.Background(), audit.Filter{Action: alerts.ActionAlertView}, func(r audit.Record) error {
		if r.Object == "alerts:fr-lyon" {
			n++
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("audit records of alert list: %d, %v", n, err)
	}
	for _, help := range [][]string{{"alert", "--help"}, {"alert", "rule", "add", "--help"}, {"alert", "deliveries", "--help"}} {
		_, o, e := vigilRun(t, env, "", help...)
		if !strings.Contains(o+e, "Example") && !strings.Contains(o+e, "docs/alerts.md") {
			t.Errorf("vigil %s: %s%s", strings.Join(help, " "), o, e)
		}
	}
}
