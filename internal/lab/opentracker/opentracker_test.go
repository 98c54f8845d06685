package opentracker

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testenv"
)

// A whitelisted hash holding a 0x20 byte is accepted once the tracker is
// ready, and another one is refused: the readiness check must send each
// byte percent-encoded (form encoding writes 0x20 as '+', which
// opentracker reads as 0x2B, so one tracker in thirteen never looked
// ready).
func TestReadyWithASpaceInTheHash(t *testing.T) {
	var spaced, other [20]byte
	rand.Read(spaced[:])
	rand.Read(other[:])
	spaced[3], spaced[17] = 0x20, '+'
	tr, err := Start(t.TempDir(), [][20]byte{spaced})
	if errors.Is(err, ErrMissing) {
		testenv.Missing(t, "OPENTRACKER", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if !tr.allows(spaced) {
		t.Fatalf("the tracker refuses its whitelisted %x: %s", spaced, tr.refusal)
	}
	if tr.allows(other) {
		t.Fatal("the tracker accepts a torrent not on its list")
	}
	if got := percentEncode([]byte{0x20, '+', 'a', 0xff}); got != "%20%2B%61%FF" {
		t.Fatalf("percentEncode = %q", got)
	}
}

// Debian's opentracker is built for IPv4 only: asked to bind ::1 it exits
// at once. The day Debian builds it for IPv6, this fails, and the lab can
// use it as its IPv6 tracker too (package comment).
func TestDebianBuildIsIPv4Only(t *testing.T) {
	if _, err := os.Stat(Bin); err != nil {
		testenv.Missingf(t, "OPENTRACKER", "%v: %v", ErrMissing, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "whitelist"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"-i", "::1", "-p", "1", "-P", "1", "-d", dir, "-w", "whitelist"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, Bin, args...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 111 || !strings.Contains(string(out), "V4 Tracker is V4 only") {
		t.Fatalf("opentracker %v: %v, output %q; want exit status 111 and \"V4 Tracker is V4 only!\"", args, err, out)
	}
}
