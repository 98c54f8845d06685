package main

import (
	"strings"
	"testing"
)

// vigil lab up checks --family and --ipv6, and refuses the lab's ULA
// prefix outside a network namespace with loopback only (here, the host's)
// before starting anything.
func TestLabUpFamilyFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--family", "5"}, exitUsage, `family "5": want 4, 6 or both`},
		{[]string{"--family", "6", "--ipv6", "global"}, exitUsage, `IPv6 network "global": want loopback or ula`},
		{[]string{"--family", "both", "--dht-nodes", "300"}, exitUsage, "simulated nodes are IPv4 only"},
	} {
		args := append([]string{"lab", "up", "--manifest", dir + "/lab.json", "--dir", dir}, c.args...)
		code, _, errOut := vigilRun(t, nil, "", args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("vigil %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), code, errOut, c.code, c.want)
		}
	}
	args := []string{"lab", "up", "--manifest", dir + "/lab.json", "--dir", dir, "--family", "6", "--ipv6", "ula"}
	code, out, errOut := vigilRun(t, nil, "", args...)
	if out != "" || code == exitOK {
		t.Fatalf("vigil %s outside an isolated namespace: exit %d, stderr %q; want a refusal", strings.Join(args, " "), code, errOut)
	}
	if !strings.Contains(errOut, "is not loopback") && !strings.Contains(errOut, "unshare -n") {
		t.Fatalf("vigil %s: stderr %q does not say why or what to do", strings.Join(args, " "), errOut)
	}
}
