package hashkind

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/testenv"
)

// TestParseReadsRHashOutput checks Parse and ParseRef against an independent
// implementation: RHash prints the digests of a synthetic random file in hex
// and in base32, as a magnet link and as an ed2k link, and every form must
// give the same hashes.
func TestParseReadsRHashOutput(t *testing.T) {
	rhash := testenv.Need(t, "HASHTOOLS", "rhash")
	dir := t.TempDir()
	file := filepath.Join(dir, "synthetic-001.bin")
	data := make([]byte, 300_000) // > 184,320 bytes: the AICH differs from the sha1
	rand.Read(data)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(rhash, append(args, file)...).Output()
		if err != nil {
			t.Fatalf("rhash %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	fields := strings.Fields(run("-p", "%x{md5} %x{sha1} %x{sha-256} %x{ed2k} %x{tth} %x{btih} %B{sha1} %{tth} %{aich}\n"))
	if len(fields) != 9 {
		t.Fatalf("rhash printed %q", fields)
	}
	want := map[Kind]string{MD5: fields[0], SHA1: fields[1], SHA256: fields[2], ED2K: fields[3], TTH: fields[4], BTIH: fields[5]}
	for k, hx := range want {
		h := mustParse(t, hx, k)
		if h.Hex() != hx {
			t.Fatalf("%s: Hex() = %s, rhash %s", k, h.Hex(), hx)
		}
	}
	// base32 forms as rhash prints them (tth lower case)
	if h := mustParse(t, fields[7], Unknown); h.Kind() != TTH || h.Hex() != want[TTH] {
		t.Fatalf("tth base32 %s gave %v", fields[7], h)
	}
	if h := mustParse(t, "tth:"+fields[7], Unknown); h.String() != strings.ToUpper(fields[7]) {
		t.Fatalf("tth String() = %s, rhash %s", h.String(), fields[7])
	}
	// %B is base64, which Vigil does not read: a hash list never uses it.
	if _, err := Parse(fields[6], Unknown); err == nil {
		t.Fatalf("base64 %s parsed", fields[6])
	}

	magnet := run("--magnet", "-a")
	ref, err := ParseRef(magnet, Unknown)
	if err != nil {
		t.Fatalf("ParseRef(rhash magnet): %v", err)
	}
	got := map[Kind]string{}
	for _, h := range ref.Hashes {
		got[h.Kind()] = h.Hex()
	}
	wantMagnet := map[Kind]string{MD5: want[MD5], SHA1: want[SHA1], SHA256: want[SHA256], ED2K: want[ED2K], TTH: want[TTH], BTIH: want[BTIH]}
	if len(got) != len(wantMagnet) {
		t.Fatalf("magnet gave %v, want %v", got, wantMagnet)
	}
	for k, v := range wantMagnet {
		if got[k] != v {
			t.Fatalf("magnet %s = %s, rhash %s", k, got[k], v)
		}
	}
	if ref.Name != "synthetic-001.bin" || ref.Size != int64(len(data)) {
		t.Fatalf("magnet name, size = %q, %d", ref.Name, ref.Size)
	}

	link := run("--ed2k-link")
	ref, err = ParseRef(link, Unknown)
	if err != nil {
		t.Fatalf("ParseRef(rhash ed2k link %s): %v", link, err)
	}
	if len(ref.Hashes) != 1 || ref.Hashes[0].Hex() != want[ED2K] || ref.Hashes[0].Kind() != ED2K {
		t.Fatalf("ed2k link gave %v, want ed2k %s", ref.Hashes, want[ED2K])
	}
	if ref.AICH != strings.ToUpper(fields[8]) || ref.Name != "synthetic-001.bin" || ref.Size != int64(len(data)) {
		t.Fatalf("ed2k link aich, name, size = %q, %q, %d", ref.AICH, ref.Name, ref.Size)
	}
}
