//go:build linux

package ed2k

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeAMuled stands in for amuled: it records, for each run, the Address
// and ECAddress lines of the amule.conf it finds when it starts ("none"
// when there is none, and then, as amuled does, it writes aMule's default
// config, which binds every address, and exits); a run that found one
// stays up until it is stopped.
const fakeAMuled = `#!/bin/sh
dir=""
while [ $# -gt 0 ]; do
	if [ "$1" = "-c" ]; then dir="$2"; shift; fi
	shift
done
if [ ! -f "$dir/amule.conf" ]; then
	echo none >> "$FAKE_AMULED_RECORD"
	printf '[eMule]\nAddress=\nPort=4662\n[ExternalConnect]\nAcceptExternalConnections=0\nECAddress=\n' > "$dir/amule.conf"
	exit 0
fi
echo "$(grep '^Address=' "$dir/amule.conf") $(grep '^ECAddress=' "$dir/amule.conf")" >> "$FAKE_AMULED_RECORD"
exec sleep 120
`

// TestStartAMuleNeverRunsAMuleOnItsDefaults: every run of amuled that
// StartAMule makes must start with the lab's config, which binds only the
// setup's address. A run on aMule's defaults (no amule.conf) binds
// 0.0.0.0:4662 (TCP), 4665 and 4672 (UDP) while it lasts; a second
// daemon's such run took those ports from the first daemon, starting at
// the same moment on its own address, whose UDP socket then failed and
// which crashed (aMule 2.3.3 closes the socket it failed to create:
// SIGSEGV in CAsioUDPSocketImpl::DispatchClose), so that the two-daemon
// acceptance test failed at random at its setup.
func TestStartAMuleNeverRunsAMuleOnItsDefaults(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "amuled"), []byte(fakeAMuled), 0o755); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(t.TempDir(), "runs")
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_AMULED_RECORD", record)

	addr := netip.MustParseAddr("100.64.5.1")
	a, err := StartAMule(context.Background(), AMuleSetup{Dir: filepath.Join(t.TempDir(), "amule"), Addr: addr, ECPassword: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// The daemon's run records what it found as it starts.
	var runs []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(record)
		runs = strings.Split(strings.TrimSpace(string(b)), "\n")
		if last := runs[len(runs)-1]; last != "none" && last != "" || time.Now().After(deadline) {
			break
		}
	}
	want := "Address=" + addr.String() + " ECAddress=" + addr.String()
	if len(runs) != 1 || runs[0] != want {
		t.Fatalf("amuled ran %d times, finding: %q; want one run, finding %q (a run on aMule's defaults binds every address)", len(runs), runs, want)
	}
}

// TestAMuleConfigNamesEverySetting: the amule.conf StartAMule writes
// holds every key of settings, in its section, once.
func TestAMuleConfigNamesEverySetting(t *testing.T) {
	s := AMuleSetup{Addr: netip.MustParseAddr("100.64.5.1"), Dir: "/lab", ECPassword: "x", RequireObfuscation: true}
	got := map[string]map[string]string{}
	section := ""
	for _, line := range strings.Split(amuleConf(s.settings()), "\n") {
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if got[section] != nil {
				t.Fatalf("section %s twice", section)
			}
			got[section] = map[string]string{}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if _, dup := got[section][k]; dup {
			t.Fatalf("%s/%s twice", section, k)
		}
		got[section][k] = v
	}
	for sec, kv := range s.settings() {
		for k, v := range kv {
			if got[sec][k] != v {
				t.Errorf("%s/%s = %q, want %q", sec, k, got[sec][k], v)
			}
		}
	}
	if got["Obfuscation"]["IsClientCryptLayerRequired"] != "1" {
		t.Errorf("RequireObfuscation: %v", got["Obfuscation"])
	}
}
