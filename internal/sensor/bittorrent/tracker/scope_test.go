package tracker

import (
	"context"
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/scope"
)

// The addresses below are documentation and private ranges; the guard
// refuses them from the address alone, before a socket exists, so nothing
// is sent anywhere.
func TestTrackerOutOfScopeIsRefusedBeforeAnySocket(t *testing.T) {
	tests := []struct {
		tracker string
		reason  scope.Reason
	}{
		{"http://192.0.2.1:6969/announce", scope.ReasonPublic},
		{"https://192.0.2.1/announce", scope.ReasonPublic},
		{"udp://192.0.2.1:6969", scope.ReasonPublic},
		{"udp://[2001:db8::1]:6969/announce", scope.ReasonPublic},
		{"http://10.1.2.3:80/announce", scope.ReasonPrivate},
		{"udp://0.0.0.0:6969", scope.ReasonSpecial},
	}
	for _, tt := range tests {
		t.Run(tt.tracker, func(t *testing.T) {
			c, g := newTestClient(t, nil)
			r, err := c.Announce(context.Background(), tt.tracker, syntheticRequest(t))
			if !errors.Is(err, scope.ErrOutOfScope) {
				t.Fatalf("Announce error = %v, want scope.ErrOutOfScope", err)
			}
			if len(r.Sent) != 0 {
				t.Fatalf("Sent = %q for a refused tracker", r.Sent)
			}
			if _, err := c.Scrape(context.Background(), tt.tracker, [][20]byte{{1}}); !errors.Is(err, scope.ErrOutOfScope) {
				t.Fatalf("Scrape error = %v, want scope.ErrOutOfScope", err)
			}
			if got, want := g.Refused(tt.reason), uint64(2); got != want {
				t.Fatalf("guard counted %d refusals for %v, want %d", got, tt.reason, want)
			}
			if !strings.Contains(err.Error(), tt.tracker) {
				t.Fatalf("error %q does not name the tracker", err)
			}
		})
	}
}

func TestTrackerHostNameIsRefusedUnresolved(t *testing.T) {
	for _, tracker := range []string{"http://tracker.invalid:6969/announce", "udp://localhost:6969", "http://tracker.invalid/announce"} {
		c, g := newTestClient(t, nil)
		_, err := c.Announce(context.Background(), tracker, syntheticRequest(t))
		if !errors.Is(err, scope.ErrOutOfScope) {
			t.Fatalf("%s: error = %v, want scope.ErrOutOfScope", tracker, err)
		}
		if !strings.Contains(err.Error(), "tracker host must be an IP address in lab scope") {
			t.Fatalf("%s: error %q does not say the host must be an IP address", tracker, err)
		}
		if got := g.Refused(scope.ReasonNotIP); got != 1 {
			t.Fatalf("%s: guard counted %d not_ip refusals, want 1", tracker, got)
		}
	}
}

func TestTrackerURLsThatCannotBeUsedAreRejected(t *testing.T) {
	for _, tracker := range []string{
		"ftp://127.0.0.1/announce",
		"udp://127.0.0.1",
		"http://user:secret@127.0.0.1/announce",
		"http://127.0.0.1:99999/announce",
		"http:///announce",
		"http://127.0.0.1/announce?a b",
		"%zz",
	} {
		c, _ := newTestClient(t, nil)
		if _, err := c.Announce(context.Background(), tracker, syntheticRequest(t)); !errors.Is(err, ErrBadURL) {
			t.Fatalf("%q: error = %v, want ErrBadURL", tracker, err)
		}
	}
}

func TestNewRequiresGuardAndValidConfig(t *testing.T) {
	if _, err := New(DefaultConfig(), nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("New without a guard: error = %v, want ErrConfig", err)
	}
	g, _ := scope.New(scope.DefaultConfig(), nil)
	for name, mutate := range map[string]func(*Config){
		"zero-timeout":       func(c *Config) { c.HTTPTimeout = 0 },
		"zero-retry-base":    func(c *Config) { c.UDPRetryBase = 0 },
		"huge-batch":         func(c *Config) { c.MaxScrapeBatch = 75 },
		"tiny-datagram":      func(c *Config) { c.MaxUDPDatagram = 8 },
		"long-connection-id": func(c *Config) { c.ConnectionIDLifetime = 3 * 60e9 },
		"no-user-agent":      func(c *Config) { c.UserAgent = "" },
	} {
		cfg := DefaultConfig()
		mutate(&cfg)
		if _, err := New(cfg, g); !errors.Is(err, ErrConfig) {
			t.Fatalf("%s: error = %v, want ErrConfig", name, err)
		}
	}
	if _, err := New(DefaultConfig(), g); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
}

// TestPackageKnowsNothingOfObservationsOrStorage keeps the tracker client a
// protocol package: the sensor turns its answers into observations.
func TestPackageKnowsNothingOfObservationsOrStorage(t *testing.T) {
	forbidden := []string{"/internal/observe", "/internal/store", "/internal/watchlist", "/internal/bus", "/internal/ingest", "/internal/web", "/internal/match"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if strings.Contains(path, bad) {
					t.Fatalf("%s imports %s", name, path)
				}
			}
		}
	}
}
