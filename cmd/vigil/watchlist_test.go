package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type importOut struct {
	List       string `json:"list"`
	Format     string `json:"format"`
	Imported   int    `json:"imported"`
	Duplicates int    `json:"duplicates"`
	Rejected   []struct {
		File   string `json:"file"`
		Line   int    `json:"line"`
		Reason string `json:"reason"`
	} `json:"rejected"`
	Unchanged bool `json:"unchanged"`
	Added     int  `json:"added"`
	Removed   int  `json:"removed"`
}

func decodeImport(t *testing.T, s string) importOut {
	t.Helper()
	var o importOut
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		t.Fatalf("import --json output %q: %v", s, err)
	}
	return o
}

func TestWatchlistImportContract(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	a, b, c := randHex(t, 20), randHex(t, 20), randHex(t, 20)
	good := writeFile(t, dir, "national.csv", "hash,category,note\n"+a+",1,first\n"+b+",2,second\n"+a+",1,again\n")

	code, out, errOut := vigilRun(t, env, "", "watchlist", "import", "--json", good)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	o := decodeImport(t, out)
	if o.List != "national" || o.Format != "csv" || o.Imported != 2 || o.Duplicates != 1 || len(o.Rejected) != 0 {
		t.Fatalf("import output %+v", o)
	}

	// Same file again: nothing changes.
	_, out, _ = vigilRun(t, env, "", "watchlist", "import", "--json", good)
	if o := decodeImport(t, out); !o.Unchanged {
		t.Fatalf("re-import of the same file reported changes: %+v", o)
	}

	// A new version: one added, one removed.
	v2 := writeFile(t, dir, "national-v2.csv", "hash,category\n"+a+",1\n"+c+",1\n")
	_, out, _ = vigilRun(t, env, "", "watchlist", "import", "--list", "national", "--json", v2)
	if o := decodeImport(t, out); o.Added != 1 || o.Removed != 1 || o.Unchanged {
		t.Fatalf("new version: %+v, want 1 added and 1 removed", o)
	}

	// Bad input: rejected with file and line, exit 1, store unchanged.
	bad := writeFile(t, dir, "bad.txt", a+"\nnot-a-hash\n")
	code, out, _ = vigilRun(t, env, "", "watchlist", "import", "--list", "national", "--json", bad)
	if code != exitRejected {
		t.Fatalf("bad input: exit %d, want %d", code, exitRejected)
	}
	o = decodeImport(t, out)
	if len(o.Rejected) != 1 || o.Rejected[0].File != bad || o.Rejected[0].Line != 2 || o.Rejected[0].Reason == "" {
		t.Fatalf("rejection %+v, want file %s line 2", o.Rejected, bad)
	}
	_, out, _ = vigilRun(t, env, "", "watchlist", "match", "--json", c)
	if !strings.Contains(out, `"matched":true`) {
		t.Fatalf("after a rejected import the list changed: match %s", out)
	}

	// --skip-invalid imports the rest.
	code, out, _ = vigilRun(t, env, "", "watchlist", "import", "--list", "other", "--skip-invalid", "--json", bad)
	if o := decodeImport(t, out); code != exitOK || o.Imported != 1 || len(o.Rejected) != 1 {
		t.Fatalf("--skip-invalid: exit %d, %+v", code, o)
	}

	// Usage errors exit 2.
	if code, _, _ := vigilRun(t, env, "", "watchlist", "import"); code != exitUsage {
		t.Fatalf("no file: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := vigilRun(t, env, "", "watchlist", "import", "--format", "xml", good); code != exitUsage {
		t.Fatalf("bad format: exit %d, want %d", code, exitUsage)
	}
}

func TestWatchlistAmbiguousKindNeedsFlag(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	f := writeFile(t, dir, "md5s.txt", randHex(t, 16)+"\n")
	code, _, errOut := vigilRun(t, env, "", "watchlist", "import", f)
	if code != exitRejected || !strings.Contains(errOut, "--kind") {
		t.Fatalf("exit %d, stderr %q: want a rejection that asks for --kind", code, errOut)
	}
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--kind", "md5", f); code != exitOK {
		t.Fatalf("with --kind md5: exit %d: %s", code, errOut)
	}
}

func TestWatchlistNegativeListSuppressesAndDisableIsKept(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	a, b := randHex(t, 20), randHex(t, 20)
	list := writeFile(t, dir, "national.txt", a+"\n"+b+"\n")
	benign := writeFile(t, dir, "benign.txt", b+"\n")
	for _, args := range [][]string{
		{"watchlist", "import", "--category", "1", list},
		{"watchlist", "import", "--negative", benign},
	} {
		if code, _, errOut := vigilRun(t, env, "", args...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}
	_, out, _ := vigilRun(t, env, "", "watchlist", "match", "--json", b)
	if !strings.Contains(out, `"suppressed":true`) || !strings.Contains(out, `"matched":false`) {
		t.Fatalf("hash on a known-benign list: %s", out)
	}
	// Disable one entry with a reason, then re-import: it stays disabled.
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "disable", "--list", "national", "--reason", "false positive, ticket 7", "--by", "analyst", a); code != exitOK {
		t.Fatalf("disable: exit %d: %s", code, errOut)
	}
	vigilRun(t, env, "", "watchlist", "import", "--category", "1", list)
	_, out, _ = vigilRun(t, env, "", "watchlist", "show", "--json", a)
	if !strings.Contains(out, `"matched":false`) || !strings.Contains(out, "ticket 7") || !strings.Contains(out, `"disabled"`) {
		t.Fatalf("disabled entry after re-import: %s", out)
	}
	// Export the list as CSV and VICS.
	code, csvOut, _ := vigilRun(t, env, "", "watchlist", "export", "--list", "national", "--format", "csv")
	if code != exitOK || !strings.Contains(csvOut, b) || !strings.HasPrefix(csvOut, "hash,") {
		t.Fatalf("csv export: exit %d: %s", code, csvOut)
	}
	code, vicsOut, _ := vigilRun(t, env, "", "watchlist", "export", "--list", "national", "--format", "vics")
	if code != exitOK || !strings.Contains(strings.ToLower(vicsOut), b) {
		t.Fatalf("vics export: exit %d: %s", code, vicsOut)
	}
	code, listOut, _ := vigilRun(t, env, "", "watchlist", "list", "--json")
	var lists []struct {
		Name     string `json:"name"`
		Negative bool   `json:"negative"`
		Entries  int    `json:"entries"`
	}
	if err := json.Unmarshal([]byte(listOut), &lists); code != exitOK || err != nil || len(lists) != 2 {
		t.Fatalf("list --json: exit %d %v: %s", code, err, listOut)
	}
}

func TestWatchlistMatchAcceptsEveryForm(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	ih := randHex(t, 20)
	f := writeFile(t, dir, "t.txt", "magnet:?xt=urn:btih:"+ih+"&dn=synthetic-001.bin\n")
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--category", "2", f); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, form := range []string{ih, strings.ToUpper(ih), "urn:btih:" + ih, "magnet:?xt=urn:btih:" + ih} {
		_, out, _ := vigilRun(t, env, "", "watchlist", "match", "--kind", "btih", "--json", form)
		if !strings.Contains(out, `"matched":true`) || !strings.Contains(out, `"category":"2"`) {
			t.Errorf("form %q: %s", form, out)
		}
	}
	code, out, _ := vigilRun(t, env, "", "watchlist", "match", "zzz")
	if code != exitRejected || !strings.Contains(out, "zzz") {
		t.Fatalf("unreadable hash: exit %d: %s", code, out)
	}
}

// A bare 40-hex value on a list as an info-hash used to give "sha1 …: no
// match": every kind of the length is tried, and the one held is named.
func TestWatchlistBareHashMatchesItsListedKind(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	ih := randHex(t, 20)
	f := writeFile(t, dir, "t.txt", "magnet:?xt=urn:btih:"+ih+"&dn=synthetic-002.bin\n")
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "national", "--category", "1", f); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, out, _ := vigilRun(t, env, "", "watchlist", "match", ih)
	if code != exitOK || !strings.Contains(out, "btih "+ih+": MATCH") || strings.Contains(out, "no match") {
		t.Fatalf("bare info-hash: exit %d: %s", code, out)
	}
	other := randHex(t, 20)
	_, out, _ = vigilRun(t, env, "", "watchlist", "match", other)
	if !strings.Contains(out, "no match as sha1, btih") {
		t.Fatalf("unlisted bare hash: %s", out)
	}
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "disable", "--list", "national", "--reason", "test", ih); code != exitOK {
		t.Fatalf("disable by bare hash: exit %d: %s", code, errOut)
	}
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "confirm", "--by", "A", "--org", "O", ih); code != exitOK {
		t.Fatalf("confirm by bare hash: exit %d: %s", code, errOut)
	}
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "disable", "--list", "national", "--reason", "test", other); code == exitOK || !strings.Contains(errOut, "sha1 or btih") {
		t.Fatalf("disable of an unlisted bare hash: exit %d: %s", code, errOut)
	}
}
