package digest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// boundarySizes are the lengths where a digest's structure changes: TTH
// leaves (1 KiB), BitTorrent v2 blocks (16 KiB) and powers of two of
// blocks, and eD2K chunks (9,728,000 bytes), each ±1.
var boundarySizes = []int{
	0, 1,
	1023, 1024, 1025, 2047, 2048, 2049,
	16383, 16384, 16385, 32767, 32768, 32769,
	4*16384 - 1, 4 * 16384, 4*16384 + 1, 8*16384 - 1, 8 * 16384, 8*16384 + 1,
	ED2KChunkSize - 1, ED2KChunkSize, ED2KChunkSize + 1,
	2*ED2KChunkSize - 1, 2 * ED2KChunkSize, 2*ED2KChunkSize + 1,
}

// oracleFiles writes one synthetic file per boundary size (each a prefix
// of the same seeded random stream) and returns their paths by size.
func oracleFiles(t *testing.T) (dir string, paths map[int]string) {
	t.Helper()
	dir = t.TempDir()
	data := synthetic(2024, boundarySizes[len(boundarySizes)-1])
	paths = make(map[int]string)
	for _, n := range boundarySizes {
		p := filepath.Join(dir, fmt.Sprintf("synthetic-%08d.bin", n))
		if err := os.WriteFile(p, data[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		paths[n] = p
	}
	return dir, paths
}

// needTool skips the test when an independent implementation is missing
// (fails it under VIGIL_REQUIRE_HASHTOOLS=1).
func needTool(t *testing.T, tool, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		testenv.Missingf(t, "HASHTOOLS", "%s not found (Debian package %s): %v", tool, debianPackage, err)
	}
	return p
}

// toolSums runs a tool over the files and maps each path to the output's
// fields, the path being the last field of each line.
func toolSums(t *testing.T, tool string, args ...string) map[string][]string {
	t.Helper()
	out, err := exec.Command(tool, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", tool, args[:min(len(args), 3)], err)
	}
	res := make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		res[f[len(f)-1]] = f[:len(f)-1]
	}
	return res
}

// ours hashes a file with this package, kind by kind.
func ours(t *testing.T, path string, k hashkind.Kind) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(k)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(b)
	return h.Sum(nil)
}

func sortedPaths(paths map[int]string) []string {
	out := make([]string, 0, len(paths))
	for _, n := range boundarySizes {
		out = append(out, paths[n])
	}
	return out
}

func TestStandardDigestsAgreeWithCoreutils(t *testing.T) {
	_, paths := oracleFiles(t)
	for _, tc := range []struct {
		tool string
		kind hashkind.Kind
	}{{"md5sum", hashkind.MD5}, {"sha1sum", hashkind.SHA1}, {"sha256sum", hashkind.SHA256}} {
		t.Run(tc.tool, func(t *testing.T) {
			needTool(t, tc.tool, "coreutils")
			sums := toolSums(t, tc.tool, sortedPaths(paths)...)
			for _, n := range boundarySizes {
				p := paths[n]
				if got, want := hex.EncodeToString(ours(t, p, tc.kind)), sums[p]; len(want) != 1 || got != want[0] {
					t.Fatalf("%s of %d bytes = %s, %s says %v", tc.kind, n, got, tc.tool, want)
				}
			}
		})
	}
}

func TestED2KTTHAndTigerAgreeWithRHash(t *testing.T) {
	needTool(t, "rhash", "rhash")
	_, paths := oracleFiles(t)
	sums := toolSums(t, "rhash", append([]string{"--printf", "%{ed2k} %{tth} %{tiger} %p\\n"}, sortedPaths(paths)...)...)
	for _, n := range boundarySizes {
		p := paths[n]
		r := sums[p]
		if len(r) != 3 {
			t.Fatalf("rhash gave %v for %s", r, p)
		}
		// rhash uses eMule's convention for exact multiples of the chunk
		// size, as we do; TestED2KConventionsDifferOnlyOnExactMultiples
		// covers the other one.
		if got, want := hex.EncodeToString(ours(t, p, hashkind.ED2K)), r[0]; got != want {
			t.Fatalf("ed2k of %d bytes = %s, rhash --ed2k says %s", n, got, want)
		}
		if got, want := TTHEncoding.EncodeToString(ours(t, p, hashkind.TTH)), strings.ToUpper(r[1]); got != want {
			t.Fatalf("tth of %d bytes = %s, rhash --tth says %s", n, got, want)
		}
		b, _ := os.ReadFile(p)
		tg := TigerSum(b)
		if got, want := hex.EncodeToString(tg[:]), r[2]; got != want {
			t.Fatalf("tiger of %d bytes = %s, rhash --tiger says %s", n, got, want)
		}
	}
}

// libtorrentRoots is run by python3 with the files as arguments; it prints
// each file's BEP 52 pieces root in hex, or "-" where libtorrent refuses
// the file (it will not make a torrent of one empty file).
const libtorrentRoots = `
import sys, os, binascii, libtorrent as lt
for path in sys.argv[1:]:
    try:
        fs = lt.file_storage()
        lt.add_files(fs, path)
        t = lt.create_torrent(fs, 0, lt.create_torrent.v2_only)
        lt.set_piece_hashes(t, os.path.dirname(path))
        node = t.generate()[b'info'][b'file tree'][os.path.basename(path).encode()][b'']
        root = node.get(b'pieces root')
        print(binascii.hexlify(root).decode() if root else '-', path)
    except RuntimeError:
        print('-', path)
`

// pythonWithLibtorrent finds a python3 that can import libtorrent: Debian's
// module is installed for /usr/bin/python3, which another python3 earlier
// in PATH (pyenv, say) cannot see.
func pythonWithLibtorrent(t *testing.T) string {
	t.Helper()
	var cands []string
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	cands = append(cands, "/usr/bin/python3")
	for _, p := range cands {
		if exec.Command(p, "-c", "import libtorrent").Run() == nil {
			return p
		}
	}
	testenv.Missingf(t, "LIBTORRENT", "no python3 of %v imports libtorrent", cands)
	return ""
}

func TestBTV2AgreesWithLibtorrent(t *testing.T) {
	py := pythonWithLibtorrent(t)
	_, paths := oracleFiles(t)
	sums := toolSums(t, py, append([]string{"-c", libtorrentRoots}, sortedPaths(paths)...)...)
	for _, n := range boundarySizes {
		p := paths[n]
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h := NewBTV2()
		h.Write(b)
		root, err := h.Root()
		lt := sums[p]
		if n == 0 {
			if err == nil || len(lt) != 1 || lt[0] != "-" {
				t.Fatalf("empty file: our root err = %v, libtorrent %v; want no root from either", err, lt)
			}
			continue
		}
		if err != nil {
			t.Fatalf("btv2 of %d bytes: %v", n, err)
		}
		if got := hex.EncodeToString(root[:]); len(lt) != 1 || got != lt[0] {
			t.Fatalf("btv2 root of %d bytes = %s, libtorrent says %v", n, got, lt)
		}
	}
}
