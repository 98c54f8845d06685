package hasher

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-oss/vigil/internal/digest"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// synthetic returns n seeded random bytes: test data is never real content.
func synthetic(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// writeFiles creates name -> size files of synthetic bytes under dir.
func writeFiles(t *testing.T, dir string, files map[string]int) {
	t.Helper()
	for name, n := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, synthetic(uint64(n)+uint64(len(name)), n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// collect runs Walk and returns every result in delivery order.
func collect(t *testing.T, paths []string, cfg Config) []Result {
	t.Helper()
	var out []Result
	if err := Walk(context.Background(), paths, cfg, func(r Result) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return out
}

// oneShot hashes a file's bytes with each digest of internal/digest.
func oneShot(t *testing.T, path string, k hashkind.Kind) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := digest.New(k)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

var sizedFiles = map[string]int{
	"synthetic-000.bin": 0, "synthetic-001.bin": 1, "synthetic-1023.bin": 1023, "synthetic-1025.bin": 1025,
	"a/synthetic-16384.bin": 16384, "a/synthetic-16385.bin": 16385, "a/b/synthetic-65537.bin": 65537,
	"a/b/synthetic-300000.bin": 300000, "synthetic-ed2k-plus-1.bin": digest.ED2KChunkSize + 1,
}

func TestWalkComputesEveryKindInOneReadForEachWorkerShape(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, sizedFiles)
	for _, tc := range []struct {
		name    string
		workers int
		paths   []string
	}{
		{"one worker", 1, []string{dir}},
		{"more files than workers", 2, []string{dir}},
		{"fewer files than workers fans out", 8, []string{filepath.Join(dir, "a")}},
		{"single large file fans out", 3, []string{filepath.Join(dir, "synthetic-ed2k-plus-1.bin")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Workers = tc.workers
			cfg.BufferSize = 4096 + 7 // odd, so reads straddle every boundary
			res := collect(t, tc.paths, cfg)
			if len(res) == 0 {
				t.Fatal("no results")
			}
			for _, r := range res {
				if r.Err != nil {
					t.Fatalf("%s: %v", r.Path, r.Err)
				}
				fi, _ := os.Stat(r.Path)
				if got, want := r.Size, fi.Size(); got != want {
					t.Fatalf("%s: size %d, want %d", r.Path, got, want)
				}
				for _, k := range DefaultKinds() {
					s, ok := r.Sums[k]
					if k == hashkind.BTV2 && r.Size == 0 {
						if ok {
							t.Fatalf("%s: empty file has a btv2 root %s", r.Path, s.Hex())
						}
						continue
					}
					if got, want := s.Hex(), oneShot(t, r.Path, k); !ok || got != want {
						t.Fatalf("%s %s = %s (present %v), want %s", r.Path, k, got, ok, want)
					}
				}
			}
		})
	}
}

func TestWalkAgreesWithCoreutils(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, sizedFiles)
	res := collect(t, []string{dir}, DefaultConfig())
	var paths []string
	for _, r := range res {
		paths = append(paths, r.Path)
	}
	for _, tc := range []struct {
		tool string
		kind hashkind.Kind
	}{{"md5sum", hashkind.MD5}, {"sha1sum", hashkind.SHA1}, {"sha256sum", hashkind.SHA256}} {
		t.Run(tc.tool, func(t *testing.T) {
			if _, err := exec.LookPath(tc.tool); err != nil {
				testenv.Missingf(t, "HASHTOOLS", "%s not found (Debian package coreutils)", tc.tool)
			}
			out, err := exec.Command(tc.tool, paths...).Output()
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if got, want := len(lines), len(res); got != want {
				t.Fatalf("%s printed %d lines for %d files", tc.tool, got, want)
			}
			for i, line := range lines {
				if got, want := res[i].Sums[tc.kind].Hex()+"  "+res[i].Path, line; got != want {
					t.Fatalf("Walk gives %q, %s gives %q", got, tc.tool, want)
				}
			}
		})
	}
}

func TestWalkDeliversResultsSortedByPath(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{}
	for i := range 40 {
		files[fmt.Sprintf("d%d/synthetic-%03d.bin", i%3, (i*17)%40)] = 100 * (40 - i) // big files first in name order
	}
	writeFiles(t, dir, files)
	cfg := DefaultConfig()
	cfg.Workers = 4
	// Name a sub-folder twice and in reverse order: each file comes once.
	res := collect(t, []string{filepath.Join(dir, "d2"), dir, filepath.Join(dir, "d0")}, cfg)
	if got, want := len(res), 40; got != want {
		t.Fatalf("%d results, want %d", got, want)
	}
	if !slices.IsSortedFunc(res, func(a, b Result) int { return strings.Compare(a.Path, b.Path) }) {
		t.Fatalf("results not in path order")
	}
}

func TestWalkSymlinks(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{"real/synthetic-001.bin": 10, "other/synthetic-002.bin": 20})
	mustLink := func(old, new string) {
		if err := os.Symlink(old, filepath.Join(dir, new)); err != nil {
			t.Fatal(err)
		}
	}
	mustLink("../other/synthetic-002.bin", "real/file-link.bin")
	mustLink("../other", "real/dir-link")
	mustLink("..", "real/loop")
	mustLink("missing.bin", "real/dangling.bin")

	names := func(res []Result) (ok, failed []string) {
		for _, r := range res {
			rel, _ := filepath.Rel(dir, r.Path)
			if r.Err != nil {
				failed = append(failed, rel)
			} else {
				ok = append(ok, rel)
			}
		}
		return ok, failed
	}

	t.Run("not followed by default", func(t *testing.T) {
		ok, failed := names(collect(t, []string{filepath.Join(dir, "real")}, DefaultConfig()))
		if got, want := strings.Join(ok, ","), "real/synthetic-001.bin"; got != want || len(failed) != 0 {
			t.Fatalf("hashed %q failed %q, want %q and no failure", got, failed, want)
		}
	})
	t.Run("a named link is reported", func(t *testing.T) {
		res := collect(t, []string{filepath.Join(dir, "real/file-link.bin")}, DefaultConfig())
		if len(res) != 1 || !errors.Is(res[0].Err, ErrSymlink) {
			t.Fatalf("got %+v, want one result with ErrSymlink", res)
		}
	})
	t.Run("followed when asked, loops and dangling links reported", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.FollowSymlinks = true
		res := collect(t, []string{filepath.Join(dir, "real")}, cfg)
		ok, failed := names(res)
		if got, want := strings.Join(ok, ","), "real/dir-link/synthetic-002.bin,real/file-link.bin,real/loop/other/synthetic-002.bin,real/synthetic-001.bin"; got != want {
			t.Fatalf("hashed %q, want %q", got, want)
		}
		if got, want := strings.Join(failed, ","), "real/dangling.bin,real/loop/real"; got != want {
			t.Fatalf("failed %q, want %q", got, want)
		}
		for _, r := range res {
			if strings.HasSuffix(r.Path, "loop/real") && !errors.Is(r.Err, ErrLoop) {
				t.Fatalf("%s: err %v, want ErrLoop", r.Path, r.Err)
			}
			if strings.HasSuffix(r.Path, "dangling.bin") && !errors.Is(r.Err, fs.ErrNotExist) {
				t.Fatalf("%s: err %v, want not-exist", r.Path, r.Err)
			}
		}
	})
}

func TestWalkStopsWhenCallbackFails(t *testing.T) {
	dir := t.TempDir()
	files := map[string]int{}
	for i := range 20 {
		files[fmt.Sprintf("synthetic-%03d.bin", i)] = 5000
	}
	writeFiles(t, dir, files)
	stop := errors.New("enough")
	calls := 0
	err := Walk(context.Background(), []string{dir}, DefaultConfig(), func(Result) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("Walk returned %v after %d calls, want the callback's error after 3", err, calls)
	}
}

func TestWalkStopsWhenContextIsCancelled(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{"synthetic-001.bin": 5000, "synthetic-002.bin": 5000})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Walk(ctx, []string{dir}, DefaultConfig(), func(Result) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Walk with a cancelled context returned %v, want context.Canceled", err)
	}
}

func TestWalkRejectsKindsThatAreNotFileDigests(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Kinds = []hashkind.Kind{hashkind.SHA1, hashkind.BTIH}
	err := Walk(context.Background(), []string{t.TempDir()}, cfg, func(Result) error { return nil })
	if !errors.Is(err, digest.ErrNotFileDigest) {
		t.Fatalf("Walk with btih returned %v, want ErrNotFileDigest", err)
	}
	if err := Walk(context.Background(), nil, DefaultConfig(), func(Result) error { return nil }); !errors.Is(err, ErrNoPaths) {
		t.Fatalf("Walk with no paths returned %v, want ErrNoPaths", err)
	}
}

func TestWalkComputesOnlyRequestedKinds(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{"synthetic-001.bin": 3000})
	cfg := DefaultConfig()
	cfg.Kinds = []hashkind.Kind{hashkind.TTH, hashkind.MD5, hashkind.TTH}
	res := collect(t, []string{dir}, cfg)
	if len(res) != 1 {
		t.Fatalf("%d results", len(res))
	}
	var got []string
	for k := range res[0].Sums {
		got = append(got, k.String())
	}
	slices.Sort(got)
	if g, w := strings.Join(got, ","), "md5,tth"; g != w {
		t.Fatalf("computed %s, want %s", g, w)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, res); err != nil {
		t.Fatal(err)
	}
	row := strings.Split(strings.Split(buf.String(), "\n")[1], ",")
	if got, want := fmt.Sprintf("%q", row[3:6]), `["" "" ""]`; row[2] == "" || row[6] == "" || got != want || row[7] != "" {
		t.Fatalf("CSV row %q: want md5 and tth only", row)
	}
}

func TestWalkReportsProgressUpToTheTotals(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, sizedFiles)
	var mu sync.Mutex
	var seen []Progress
	cfg := DefaultConfig()
	cfg.ProgressInterval = 1 // as often as the ticker allows
	cfg.Progress = func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
	}
	collect(t, []string{dir}, cfg)
	var total int64
	for _, n := range sizedFiles {
		total += int64(n)
	}
	last := seen[len(seen)-1]
	if !last.Done || last.FilesDone != len(sizedFiles) || last.FilesTotal != len(sizedFiles) || last.BytesDone != total || last.BytesTotal != total {
		t.Fatalf("last progress %+v, want done with %d files and %d bytes", last, len(sizedFiles), total)
	}
	for i, p := range seen[:len(seen)-1] {
		if p.Done {
			t.Fatalf("progress %d of %d says done", i, len(seen))
		}
		if i > 0 && p.BytesDone < seen[i-1].BytesDone {
			t.Fatalf("progress went back: %d after %d", p.BytesDone, seen[i-1].BytesDone)
		}
	}
}
