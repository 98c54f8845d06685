package hasher

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// goldenResults hashes a fixed set of synthetic files and makes the paths
// relative, so that the output does not depend on the temporary folder.
func goldenResults(t *testing.T) []Result {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{
		"synthetic-000.bin": 0, "synthetic-001.bin": 1, "set/synthetic-002.bin": 1025, "set/synthetic,003.bin": 40000,
	})
	res := collect(t, []string{dir}, DefaultConfig())
	for i := range res {
		res[i].Path, _ = filepath.Rel(dir, res[i].Path)
	}
	return append(res, Result{Path: "unreadable.bin", Err: errors.New("open unreadable.bin: permission denied")})
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/hasher -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from %s (run with -update if the change is intended):\n%s", path, got)
	}
}

func TestCSVOutputMatchesGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, goldenResults(t)); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "hash.csv", buf.Bytes())
	if got, want := strings.SplitN(buf.String(), "\n", 2)[0], "path,size,md5,sha1,sha256,ed2k,tth,btv2"; got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
}

func TestTextOutputMatchesGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, goldenResults(t)); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "hash.txt", buf.Bytes())
}

func TestCSVOfNoResultsIsTheHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "path,size,md5,sha1,sha256,ed2k,tth,btv2\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestFormatSumPrintsTTHInBase32AndOthersInHex(t *testing.T) {
	tth := hashkind.MustNew(hashkind.TTH, bytes.Repeat([]byte{0xff}, 24))
	// 192 bits: 38 whole 5-bit groups, then 2 bits and no padding.
	if got, want := FormatSum(tth), strings.Repeat("7", 38)+"Y"; got != want {
		t.Fatalf("FormatSum(tth) = %s, want %s", got, want)
	}
	md5 := hashkind.MustNew(hashkind.MD5, bytes.Repeat([]byte{0xAB}, 16))
	if got, want := FormatSum(md5), strings.Repeat("ab", 16); got != want {
		t.Fatalf("FormatSum(md5) = %s, want %s", got, want)
	}
}

func TestFormatTextQuotesControlCharactersInPaths(t *testing.T) {
	r := Result{Path: "two\nlines.bin", Size: 0, Sums: map[hashkind.Kind]hashkind.Hash{}}
	if got, want := FormatText(r), `size:0  "two\nlines.bin"`; got != want {
		t.Fatalf("FormatText = %q, want %q", got, want)
	}
}

func TestTerminalProgressIsSilentOnAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if TerminalProgress(w) != nil {
		t.Fatal("TerminalProgress on a pipe returned a renderer")
	}
}

func TestProgressRendererRedrawsOneLineAndEndsWithSummary(t *testing.T) {
	var buf bytes.Buffer
	render := NewProgressRenderer(&buf)
	render(Progress{FilesDone: 3, FilesTotal: 16, BytesDone: 3 << 30 / 2, BytesTotal: 2 << 30, Elapsed: 1e9})
	render(Progress{FilesDone: 16, FilesTotal: 16, BytesDone: 2 << 30, BytesTotal: 2 << 30, Elapsed: 2e9, Done: true})
	got := buf.String()
	for _, want := range []string{"\rhashing 3/16 files  1.50 GiB/2.00 GiB   75%  1611 MB/s", "\rhashed 16/16 files, 2.00 GiB in 2s  1074 MB/s"} {
		if !strings.Contains(got, want) {
			t.Fatalf("output %q lacks %q", got, want)
		}
	}
	if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
		t.Fatalf("output %q: want exactly one newline, at the end", got)
	}
}
