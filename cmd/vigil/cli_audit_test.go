package main

import (
	"context"
	"database/sql"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// cliRecords returns every record of the trail in db.
func cliRecords(t *testing.T, db string) []audit.Record {
	t.Helper()
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []audit.Record
	if err := st.AuditRecords(context.Background(), audit.Filter{}, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// The command line records the operating-system account behind it (its
// real uid), never what the environment claims: at 8846f19
// "USER=j.dupont vigil user disable ..." was logged as cli:j.dupont.
func TestCLIActorIsTheOSUserNotTheEnvironment(t *testing.T) {
	db := filepath.Join(t.TempDir(), "v.db")
	env := map[string]string{"VIGIL_DB": db, "USER": "j.dupont", "LOGNAME": "j.dupont", "HOME": "/home/j.dupont"}
	mustRun(t, env, "", "agency", "add", "--id", "fr-a", "--name", "Agency A")
	mustRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-a", "--role", "investigator", "--name", "m.martin")
	mustRun(t, env, "", "user", "disable", "--name", "m.martin", "--reason", "test")
	uid := strconv.Itoa(os.Getuid())
	want := "cli:uid=" + uid
	if u, err := user.LookupId(uid); err == nil && u.Username != "" {
		want = "cli:" + u.Username
	}
	if want == "cli:j.dupont" {
		t.Skip("the test runs as an account named j.dupont")
	}
	recs := cliRecords(t, db)
	if len(recs) < 3 {
		t.Fatalf("%d records", len(recs))
	}
	for _, r := range recs {
		if strings.Contains(r.Actor, "j.dupont") || r.Actor != want || r.Remote != "cli uid="+uid {
			t.Errorf("record %d (%s): actor %q from %q, want %q from %q", r.Seq, r.Action, r.Actor, r.Remote, want, "cli uid="+uid)
		}
	}
}

// Watch-list imports, exports and changes from the command line are in the
// trail, written before the change or the first byte; a bulk export of
// observations needs a case number; and when the trail cannot be written,
// nothing is exported. (At 8846f19 none of the watch-list commands was
// audited and the observations export needed no case number.)
func TestCLIWatchlistAndExportsAreAudited(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "v.db")
	env := map[string]string{"VIGIL_DB": db}
	h := randHex(t, 20)
	list := writeFile(t, dir, "lab.txt", h+"\n"+randHex(t, 20)+"\n")
	mustRun(t, env, "", "watchlist", "import", "--list", "lab", list)
	if out := mustRun(t, env, "", "watchlist", "export", "--list", "lab"); !strings.Contains(out, h) {
		t.Fatalf("export lacks %s:\n%s", h, out)
	}
	mustRun(t, env, "", "watchlist", "disable", "--list", "lab", "--reason", "benign, ticket 1", h)

	// A bulk export of observations needs the case it is made for.
	code, out, errOut := vigilRun(t, env, "", "observations", "export", "--format", "jsonl")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "--case") {
		t.Fatalf("observations export without --case: exit %d, %d bytes out, %s", code, len(out), errOut)
	}
	mustRun(t, env, "", "observations", "export", "--case", "PV 2026/00077", "--format", "jsonl")

	var got []string
	for _, r := range cliRecords(t, db) {
		got = append(got, r.Action+" "+r.Object+" "+r.Purpose)
	}
	for _, want := range []string{"change list:lab ", "export list:lab ", "change list:lab ", "export observations PV 2026/00077"} {
		found := false
		for i, g := range got {
			if g == want {
				found = true
				got = append(got[:i], got[i+1:]...)
				break
			}
		}
		if !found {
			t.Errorf("no record %q in the trail", want)
		}
	}

	// The trail fails: nothing leaves.
	sq, err := sql.Open("sqlite", "file:"+db)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	if _, err := sq.Exec(`CREATE TRIGGER test_audit_fails BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"watchlist", "export", "--list", "lab"},
		{"observations", "export", "--case", "PV 2026/00078", "--format", "jsonl"},
	} {
		code, out, errOut := vigilRun(t, env, "", args...)
		if code == exitOK || out != "" || !strings.Contains(errOut, "audit trail") {
			t.Errorf("vigil %s with the audit trail failing: exit %d, %d bytes out, %s", strings.Join(args, " "), code, len(out), errOut)
		}
	}
	if code, _, _ := vigilRun(t, env, "", "watchlist", "import", "--list", "other", list); code == exitOK {
		t.Error("an import went through without its record")
	}
}
