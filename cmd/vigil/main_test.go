package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// vigilRun runs one command line in-process with a private store and
// environment, and returns the exit code, standard output and error.
func vigilRun(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

func TestEveryCommandHelpTeaches(t *testing.T) {
	var walk func(c *command, path []string)
	walk = func(c *command, path []string) {
		if c.summary == "" || c.usage == "" {
			t.Errorf("command %q lacks a summary or usage", strings.Join(path, " "))
		}
		if c.setup != nil {
			code, out, errOut := vigilRun(t, nil, "", append(append([]string{}, path...), "--help")...)
			if code != exitOK {
				t.Errorf("vigil %s --help: exit %d, stderr %s", strings.Join(path, " "), code, errOut)
			}
			if !strings.Contains(out, "Usage:") || !strings.Contains(out, c.usage) {
				t.Errorf("vigil %s --help does not show its usage:\n%s", strings.Join(path, " "), out)
			}
			if len(path) > 1 && !strings.Contains(strings.ToLower(c.help), "example") && c.name != "version" {
				t.Errorf("vigil %s --help has no example", strings.Join(path, " "))
			}
		}
		for _, s := range c.subs {
			walk(s, append(append([]string{}, path...), s.name))
		}
	}
	walk(rootCommand(), nil)
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	code, _, errOut := vigilRun(t, nil, "", "watchlist", "frobnicate")
	if code != exitUsage || !strings.Contains(errOut, `unknown command "watchlist frobnicate"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, _, _ = vigilRun(t, nil, "", "watchlist", "import", "--no-such-flag", "x")
	if code != exitUsage {
		t.Fatalf("unknown flag: exit %d, want %d", code, exitUsage)
	}
}

func TestConfigExampleIsAValidConfig(t *testing.T) {
	code, out, errOut := vigilRun(t, nil, "", "config", "example")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "# db: vigil.db") || !strings.Contains(out, "import:") {
		t.Fatalf("example lacks expected settings:\n%s", out)
	}
	// Uncommenting one setting in a section gives a file vigil accepts.
	cfg := strings.Replace(out, "    # skip-invalid: false", "    skip-invalid: true", 1)
	if cfg == out {
		t.Fatalf("example has no watchlist import skip-invalid setting:\n%s", out)
	}
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	db := emptyStore(t)
	code, _, errOut = vigilRun(t, nil, "", "--config", path, "--db", db, "watchlist", "list")
	if code != exitOK {
		t.Fatalf("vigil rejected its own example config: exit %d: %s", code, errOut)
	}
}

func TestConfigFileTypoIsNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(path, []byte("watchlist:\n  import:\n    skip-invalde: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := vigilRun(t, map[string]string{"VIGIL_CONFIG": path}, "", "watchlist", "list")
	if code != exitUsage || !strings.Contains(errOut, "line 3") || !strings.Contains(errOut, "skip-invalde") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestGlobalFlagsBeforeAndAfterTheCommand(t *testing.T) {
	dir := t.TempDir()
	list := writeFile(t, dir, "l.txt", randHex(t, 20)+"\n")
	for _, args := range [][]string{
		{"--db", filepath.Join(dir, "before.db"), "watchlist", "import", list},
		{"watchlist", "import", list, "--db", filepath.Join(dir, "after.db")},
	} {
		if code, _, errOut := vigilRun(t, nil, "", args...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	for _, name := range []string{"before.db", "after.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("--db was not honoured: %v", err)
		}
	}
	if _, err := os.Stat("vigil.db"); err == nil {
		t.Error("a store was opened at the default path although --db was given")
	}
}

// Flags may follow arguments, and "--" makes what follows arguments even
// when it looks like a flag.
func TestFlagsAfterArguments(t *testing.T) {
	db := emptyStore(t)
	h := "0123456789abcdef0123456789abcdef01234567"
	code, out, errOut := vigilRun(t, nil, "", "--db", db, "watchlist", "match", h, "--json")
	if code != exitOK || !strings.HasPrefix(strings.TrimSpace(out), "[") && !strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Fatalf("match HASH --json: exit %d, not JSON:\n%s%s", code, out, errOut)
	}
	code, out, errOut = vigilRun(t, nil, "", "--db", db, "watchlist", "match", "--", "--json")
	if code == exitOK || !strings.Contains(out+errOut, `hash "--json"`) {
		t.Fatalf("after --, --json must be read as a hash (and refused): exit %d %s", code, errOut)
	}
}

// emptyStore makes an empty SQLite store, as the commands that bring data
// in would, for commands that only read (they refuse a missing file).
func emptyStore(t *testing.T) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "vigil.db")
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return db
}

// A typo in --db used to create an empty store and report "0 of 0
// targets" with exit 0: commands that read refuse a missing file and name
// it, and an unknown URL scheme is named as such.
func TestReadingCommandsRefuseAMissingStore(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "vigli.db")
	for _, args := range [][]string{
		{"--db", typo, "targets"},
		{"--db", typo, "target", "show", "T-1"},
		{"--db", typo, "stats"},
		{"--db", typo, "observations", "export", "--case", "2026/0001"},
		{"--db", typo, "watchlist", "list"},
	} {
		code, _, errOut := vigilRun(t, nil, "", args...)
		if code != exitRejected || !strings.Contains(errOut, typo) || !strings.Contains(errOut, "no such store") {
			t.Errorf("%v: exit %d, stderr %q: want exit 1 naming the file", args, code, errOut)
		}
	}
	if _, err := os.Stat(typo); err == nil {
		t.Fatal("a reading command created the store file")
	}
	code, _, errOut := vigilRun(t, nil, "", "--db", "mysql://x", "targets")
	if code != exitUsage || !strings.Contains(errOut, "unknown store scheme") {
		t.Fatalf("--db mysql://x: exit %d, stderr %q", code, errOut)
	}
}

// 'vigil --help' used to show "[global flags]" without naming them.
func TestRootHelpListsGlobalFlags(t *testing.T) {
	code, out, _ := vigilRun(t, nil, "", "--help")
	if code != exitOK || !strings.Contains(out, "Global flags:") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, f := range []string{"--db", "--config", "--log-level", "--log-format"} {
		if !strings.Contains(out, "  "+f+" ") {
			t.Errorf("root help does not list %s", f)
		}
	}
}

// With GOPPROF set, a library linked for the lab (anacrolix/envpprof) would
// already be serving profiles over HTTP: every command refuses to run.
func TestRefusesToRunWithGOPPROF(t *testing.T) {
	dir := t.TempDir()
	db := dir + "/vigil.db"
	code, out, errOut := vigilRun(t, map[string]string{"GOPPROF": "http"}, "", "--db", db, "watchlist", "list")
	if code != exitUsage || out != "" || !strings.Contains(errOut, "GOPPROF") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want exit %d naming GOPPROF", code, out, errOut, exitUsage)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("a store was opened before the refusal")
	}
	if code, _, _ := vigilRun(t, nil, "", "version"); code != exitOK {
		t.Fatalf("without GOPPROF: exit %d", code)
	}
}
