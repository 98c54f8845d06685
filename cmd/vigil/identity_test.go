package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// The configuration hash is of the effective flags: the same flags give
// the same hash whatever their order on the command line, any flag that
// changes what the sensor does changes it (--own-addresses too, global
// as it is), and --bus (--bus-creds, --bus-inbox) and the other global
// flags do not.
func TestConfigHashCoversTheSensorsOwnFlags(t *testing.T) {
	hash := func(args ...string) string {
		t.Helper()
		fs := flag.NewFlagSet("vigil sensor ed2k", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		a := &app{}
		a.defineGlobal(fs)
		sensorED2KCommand().setup(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return configHash(fs)
	}
	base := hash("--server", "127.0.0.1:4661", "--lab")
	if len(base) != 64 || strings.Trim(base, "0123456789abcdef") != "" {
		t.Fatalf("hash %q: want 64 hex digits", base)
	}
	if got := hash("--lab", "--server", "127.0.0.1:4661"); got != base {
		t.Fatalf("same flags in another order: %s, want %s", got, base)
	}
	if got := hash("--server", "127.0.0.1:4661", "--lab=true", "--probe=true"); got != base {
		t.Fatalf("defaults spelled out: %s, want %s", got, base)
	}
	for _, same := range [][]string{{"--bus", "nats://u:secret@127.0.0.1:4222"}, {"--bus", "nats://127.0.0.1:4222", "--bus-creds", "s.creds", "--bus-inbox", "_INBOX_s"}, {"--db", "other.db"}, {"--log-level", "debug"}} {
		if got := hash(append([]string{"--server", "127.0.0.1:4661", "--lab"}, same...)...); got != base {
			t.Fatalf("%v changed the hash", same)
		}
	}
	for _, other := range [][]string{{"--verify"}, {"--ntp", "127.0.0.1:123"}, {"--id", "ed2k-2"}, {"--ntp-max-offset", "1s"}, {"--own-addresses", "own.txt"}} {
		if got := hash(append([]string{"--server", "127.0.0.1:4661", "--lab"}, other...)...); got == base {
			t.Fatalf("%v left the hash unchanged", other)
		}
	}
}

// --ntp takes IP:port only: a name is a usage error, never resolved.
func TestSensorNTPFlagRefusesNames(t *testing.T) {
	for _, cmd := range [][]string{{"sensor", "ed2k", "--server", "127.0.0.1:4661"}, {"sensor", "bittorrent", "--bootstrap", "127.0.0.1:40001"}} {
		for _, bad := range [][]string{{"--ntp", "pool.ntp.org:123"}, {"--ntp", "127.0.0.1"}, {"--ntp-every", "0s"}} {
			code, _, errOut := vigilRun(t, map[string]string{"VIGIL_DB": t.TempDir() + "/v.db"}, "", append(cmd, bad...)...)
			if code != exitUsage || !strings.Contains(errOut, strings.TrimPrefix(bad[0], "-")) {
				t.Fatalf("%v %v: exit %d, %s; want a usage error naming the flag", cmd, bad, code, errOut)
			}
		}
	}
}

func TestVersionPrintsTheCommit(t *testing.T) {
	old := buildCommit
	buildCommit = "0123456789abcdef0123456789abcdef01234567"
	defer func() { buildCommit = old }()
	code, out, _ := vigilRun(t, nil, "", "version")
	if code != exitOK || !strings.Contains(out, "commit 0123456789abcdef0123456789abcdef01234567") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	ver, commit, _ := build()
	if ver != version || commit != buildCommit {
		t.Fatalf("build() = %s, %s", ver, commit)
	}
}
