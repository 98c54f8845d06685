package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

func accessEnv(t *testing.T) (map[string]string, string) {
	db := filepath.Join(t.TempDir(), "v.db")
	return map[string]string{"VIGIL_DB": db, "USER": "tester"}, db
}

func mustRun(t *testing.T, env map[string]string, stdin string, args ...string) string {
	t.Helper()
	code, out, errOut := vigilRun(t, env, stdin, args...)
	if code != exitOK {
		t.Fatalf("vigil %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestUserAndAgencyCommands(t *testing.T) {
	env, db := accessEnv(t)
	mustRun(t, env, "", "agency", "add", "--id", "fr-a", "--name", "Agency A", "--country", "fr", "--jurisdiction", "FR-69,FR-38")
	if code, _, errOut := vigilRun(t, env, "", "agency", "add", "--id", "fr-a", "--name", "again"); code != exitRejected || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate agency: %d %s", code, errOut)
	}
	if out := mustRun(t, env, "", "agency", "list"); !strings.Contains(out, "fr-a") || !strings.Contains(out, "FR-69,FR-38") {
		t.Fatalf("agency list:\n%s", out)
	}

	// The password comes from standard input and must be long enough.
	code, _, errOut := vigilRun(t, env, "short\n", "user", "add", "--agency", "fr-a", "--role", "investigator", "--name", "j.dupont")
	if code != exitUsage || !strings.Contains(errOut, "at least 12") {
		t.Fatalf("short password: %d %s", code, errOut)
	}
	code, _, errOut = vigilRun(t, env, "", "user", "add", "--agency", "fr-a", "--role", "investigator", "--name", "j.dupont")
	if code != exitUsage || !strings.Contains(errOut, "no password on standard input") {
		t.Fatalf("no password: %d %s", code, errOut)
	}
	code, _, errOut = vigilRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-a", "--role", "chief", "--name", "x")
	if code != exitUsage || !strings.Contains(errOut, "--role") {
		t.Fatalf("bad role: %d %s", code, errOut)
	}
	code, _, errOut = vigilRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-zz", "--role", "analyst", "--name", "x")
	if code != exitRejected || !strings.Contains(errOut, "agency fr-zz") {
		t.Fatalf("unknown agency: %d %s", code, errOut)
	}
	mustRun(t, env, "a long enough password\r\n", "user", "add", "--agency", "fr-a", "--role", "investigator", "--name", "j.dupont", "--lang", "en", "--tz", "Europe/Brussels")
	out := mustRun(t, env, "", "user", "list", "--json")
	var u userJSON
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &u); err != nil {
		t.Fatalf("user list --json %q: %v", out, err)
	}
	if u.Name != "j.dupont" || u.Role != "investigator" || u.Lang != "en" || u.TimeZone != "Europe/Brussels" || !u.Password || u.Disabled {
		t.Fatalf("listed %+v", u)
	}

	// The stored password works (the CR of a Windows line end is not part of it).
	ctx := context.Background()
	withService(t, db, func(svc *access.Service) {
		if _, _, err := svc.Login(ctx, "j.dupont", "a long enough password", "127.0.0.1:1"); err != nil {
			t.Fatalf("login with the CLI's password: %v", err)
		}
	})
	mustRun(t, env, "another long password\n", "user", "passwd", "--name", "j.dupont")
	withService(t, db, func(svc *access.Service) {
		if _, _, err := svc.Login(ctx, "j.dupont", "a long enough password", ""); err == nil {
			t.Fatal("old password still works")
		}
		if _, _, err := svc.Login(ctx, "j.dupont", "another long password", ""); err != nil {
			t.Fatalf("new password: %v", err)
		}
	})
	mustRun(t, env, "", "user", "disable", "--name", "j.dupont", "--reason", "left")
	if out := mustRun(t, env, "", "user", "list"); !strings.Contains(out, "disabled") {
		t.Fatalf("user list after disable:\n%s", out)
	}

	// Every change is audited as cli:<os user>.
	out = mustRun(t, env, "", "audit", "list", "--actor", "cli:"+cliUser(), "--json")
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit list --json line %q: %v", line, err)
		}
		if r.Role != "cli" || !strings.HasPrefix(r.Remote, "cli uid=") {
			t.Errorf("cli record %+v", r)
		}
		actions = append(actions, r.Action)
	}
	if got := strings.Join(actions, ","); got != "agency_add,user_add,user_passwd,user_disable" {
		t.Fatalf("audited actions %s", got)
	}
}

func withService(t *testing.T, db string, fn func(*access.Service)) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := access.New(st, &audit.Log{Store: st}, access.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	fn(svc)
}

func TestTokenCommands(t *testing.T) {
	env, db := accessEnv(t)
	mustRun(t, env, "", "agency", "add", "--id", "fr-nat", "--name", "National")
	mustRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-nat", "--role", "analyst", "--name", "svc")
	code, out, errOut := vigilRun(t, env, "", "token", "create", "--user", "svc", "--expires", "90d", "--label", "ci")
	if code != exitOK {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	tok := strings.TrimSpace(out)
	if !regexp.MustCompile(`^vgt_[A-Za-z0-9_-]{43}$`).MatchString(tok) || !strings.Contains(errOut, "will not be shown again") {
		t.Fatalf("token output %q / %q", out, errOut)
	}
	if raw, _ := os.ReadFile(db); strings.Contains(string(raw), tok) {
		t.Fatal("the token is in the database file in clear")
	}
	ctx := context.Background()
	withService(t, db, func(svc *access.Service) {
		if p, err := svc.TokenPrincipal(ctx, tok, ""); err != nil || p.Name != "svc" {
			t.Fatalf("the printed token does not authenticate: %v", err)
		}
	})
	if out := mustRun(t, env, "", "token", "list", "--user", "svc"); !strings.Contains(out, "ci") || strings.Contains(out, tok) {
		t.Fatalf("token list:\n%s", out)
	}
	if code, _, _ := vigilRun(t, env, "", "token", "create", "--user", "svc", "--expires", "soon"); code != exitUsage {
		t.Fatalf("bad --expires: %d", code)
	}
	mustRun(t, env, "", "token", "revoke", "--id", "1")
	withService(t, db, func(svc *access.Service) {
		if _, err := svc.TokenPrincipal(ctx, tok, ""); err == nil {
			t.Fatal("revoked token still authenticates")
		}
	})
	if code, _, _ := vigilRun(t, env, "", "token", "revoke", "--id", "99"); code != exitRejected {
		t.Fatalf("revoke unknown: %d", code)
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	env, db := accessEnv(t)
	mustRun(t, env, "", "agency", "add", "--id", "fr-a", "--name", "A")
	for _, n := range []string{"u1", "u2", "u3"} {
		mustRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-a", "--role", "analyst", "--name", n)
	}
	if out := mustRun(t, env, "", "audit", "verify"); !strings.Contains(out, "audit trail unbroken: 4 records") {
		t.Fatalf("verify: %s", out)
	}
	// A checkpoint, then verify with its public key.
	keyFile := writeFile(t, t.TempDir(), "audit.key", randHex(t, 32)+"\n")
	out := mustRun(t, env, "", "audit", "checkpoint", "--key", keyFile)
	pub := regexp.MustCompile(`public key ([0-9a-f]{64})`).FindStringSubmatch(out)
	if pub == nil {
		t.Fatalf("checkpoint output %q", out)
	}
	out = mustRun(t, env, "", "audit", "verify", "--json", "--pubkey", pub[1])
	var v verifyJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.OK || v.Checkpoints != 1 {
		t.Fatalf("verify --json %q: %v", out, err)
	}

	// Tamper with record 2 behind Vigil's back.
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET object = 'user:someone' WHERE seq = 2`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	code, out, errOut := vigilRun(t, env, "", "audit", "verify")
	if code != exitRejected || !strings.Contains(errOut, "broken at seq 2 (changed)") {
		t.Fatalf("tampered: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = vigilRun(t, env, "", "audit", "verify", "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != exitRejected || v.OK || v.Broken == nil || v.Broken.Seq != 2 {
		t.Fatalf("tampered --json: exit %d %q", code, out)
	}
}

func TestAgencyImportFromRules(t *testing.T) {
	env, _ := accessEnv(t)
	out := mustRun(t, env, "", "agency", "import", "--rules", "example:france")
	if !regexp.MustCompile(`^[1-9][0-9]* agencies added, 0 already present`).MatchString(out) {
		t.Fatalf("import: %q", out)
	}
	if out := mustRun(t, env, "", "agency", "import", "--rules", "example:france"); !strings.HasPrefix(out, "0 agencies added") {
		t.Fatalf("re-import: %q", out)
	}
}

// A platform account is made like any other; its token's help shows the
// one route it may call, not a bulk export.
func TestPlatformAccountAndTokenHelp(t *testing.T) {
	env, _ := accessEnv(t)
	mustRun(t, env, "", "agency", "add", "--id", "filehost", "--name", "File host")
	mustRun(t, env, "a long enough password\n", "user", "add", "--agency", "filehost", "--role", "platform", "--name", "ts-filehost", "--lang", "en")
	var u userJSON
	if out := mustRun(t, env, "", "user", "list", "--json"); json.Unmarshal([]byte(strings.TrimSpace(out)), &u) != nil || u.Role != "platform" {
		t.Fatalf("user list: %q, want the platform account", out)
	}
	if tok := strings.TrimSpace(mustRun(t, env, "", "token", "create", "--user", "ts-filehost", "--expires", "30d")); !strings.HasPrefix(tok, "vgt_") {
		t.Fatalf("token for a platform: %q", tok)
	}
	_, out, _ := vigilRun(t, nil, "", "token", "create", "--help")
	if !strings.Contains(out, "/api/v1/check") || strings.Contains(out, "/api/v1/observations") {
		t.Fatalf("token create --help shows a platform token calling another route than the check:\n%s", out)
	}
	_, out, _ = vigilRun(t, nil, "", "user", "add", "--help")
	if !strings.Contains(out, "--role platform") {
		t.Fatalf("user add --help has no platform example:\n%s", out)
	}
}

func TestServeRefusesCheckBoundsThatAreNone(t *testing.T) {
	env, _ := accessEnv(t)
	for _, args := range [][]string{{"--check-max", "0"}, {"--check-max", "101"}, {"--check-per-minute", "0"}, {"--check-per-day", "-1"}, {"--check-tolerance", "0s"}, {"--check-tolerance", "48h"}, {"--check-instants-per-address", "0"}, {"--check-refusal-records", "0"}} {
		code, _, errOut := vigilRun(t, env, "", append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		if code != exitUsage || !strings.Contains(errOut, "--check-") {
			t.Errorf("serve %v: exit %d %s, want a usage error", args, code, errOut)
		}
	}
}
