package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// --ipv6-prefixes (analysis.Config.IPv6) is set by flag, by environment or
// in the config file like every global setting, and a length no ISP gives
// one subscriber is refused before the command runs.
func TestIPv6PrefixesSetting(t *testing.T) {
	t.Cleanup(func() { analysisIPv6.Store(nil) })
	db := emptyStore(t)
	path := filepath.Join(t.TempDir(), "vigil.yaml")
	if err := os.WriteFile(path, []byte("ipv6-prefixes: \"64,AS3215=56\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"default", nil, nil, "64"},
		{"flag", nil, []string{"--ipv6-prefixes", "64,AS64500=128"}, "64,AS64500=128"},
		{"environment", map[string]string{"VIGIL_IPV6_PREFIXES": "60"}, nil, "60"},
		{"config file", nil, []string{"--config", path}, "64,AS3215=56"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			analysisIPv6.Store(nil)
			code, _, errOut := vigilRun(t, tc.env, "", append(tc.args, "--db", db, "watchlist", "list")...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got := analysisIPv6.Load(); got == nil || got.String() != tc.want {
				t.Fatalf("analysis IPv6 config %v, want %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"32", "AS3215=129", "AS-1=64"} {
		code, _, errOut := vigilRun(t, nil, "", "--ipv6-prefixes", bad, "--db", db, "watchlist", "list")
		if code != exitUsage || !strings.Contains(errOut, "ipv6 prefixes") {
			t.Errorf("--ipv6-prefixes %s: exit %d, stderr %q; want a usage error naming the setting", bad, code, errOut)
		}
	}
	if _, err := analysis.ParseIPv6Config(analysis.DefaultConfig().IPv6.String()); err != nil {
		t.Fatalf("the flag's default does not parse: %v", err)
	}
}
