package config

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

func newFlags() (*flag.FlagSet, *string, *int) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	db := fs.String("db", "default.db", "")
	n := fs.Int("identities", 1, "")
	return fs, db, n
}

var global = map[string]bool{"db": true}

func TestApplyPrecedenceFlagOverEnvOverFile(t *testing.T) {
	f, err := Parse("vigil.yaml", []byte("db: file.db\nsensor:\n  bittorrent:\n    identities: 8\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantDB  string
		wantIDs int
	}{
		{"file only", nil, nil, "file.db", 8},
		{"env beats file", nil, map[string]string{"VIGIL_DB": "env.db", "VIGIL_SENSOR_BITTORRENT_IDENTITIES": "3"}, "env.db", 3},
		{"flag beats env", []string{"--db", "flag.db", "--identities", "5"}, map[string]string{"VIGIL_DB": "env.db"}, "flag.db", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, db, n := newFlags()
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string { return tt.env[k] }
			if err := Apply(fs, []string{"sensor", "bittorrent"}, global, f, getenv); err != nil {
				t.Fatal(err)
			}
			if got, want := *db, tt.wantDB; got != want {
				t.Fatalf("db = %q, want %q", got, want)
			}
			if got, want := *n, tt.wantIDs; got != want {
				t.Fatalf("identities = %d, want %d", got, want)
			}
		})
	}
}

func TestApplyNamesBadValueWithFileAndLine(t *testing.T) {
	f, err := Parse("vigil.yaml", []byte("# comment\nsensor:\n  bittorrent:\n    identities: many\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs, _, _ := newFlags()
	_ = fs.Parse(nil)
	err = Apply(fs, []string{"sensor", "bittorrent"}, global, f, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "vigil.yaml line 4") {
		t.Fatalf("err = %v, want one naming vigil.yaml line 4", err)
	}
}

func TestApplyNamesBadEnvironmentValue(t *testing.T) {
	fs, _, _ := newFlags()
	_ = fs.Parse(nil)
	err := Apply(fs, []string{"sensor", "bittorrent"}, global, nil, func(k string) string {
		if k == "VIGIL_SENSOR_BITTORRENT_IDENTITIES" {
			return "x"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "VIGIL_SENSOR_BITTORRENT_IDENTITIES") {
		t.Fatalf("err = %v, want one naming the variable", err)
	}
}

func TestCheckRejectsUnknownKeyWithLine(t *testing.T) {
	known := map[string]map[string]bool{
		"":                  {"db": true},
		"sensor":            {},
		"sensor bittorrent": {"identities": true},
		"watchlist":         {},
		"watchlist import":  {"kind": true},
	}
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"valid", "db: x\nsensor:\n  bittorrent:\n    identities: 2\n", ""},
		{"empty section", "watchlist:\n", ""},
		{"typo at top", "dbb: x\n", `line 1: unknown setting "dbb" at the top level`},
		{"typo in section", "sensor:\n  bittorrent:\n    identites: 2\n", `line 3: unknown setting "identites" in section sensor.bittorrent`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("c.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = f.Check(known)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseRejectsNonMapping(t *testing.T) {
	if _, err := Parse("c.yaml", []byte("- a\n- b\n")); err == nil || !strings.Contains(err.Error(), "c.yaml line 1") {
		t.Fatalf("err = %v", err)
	}
	if f, err := Parse("c.yaml", nil); err != nil || f == nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestEnvName(t *testing.T) {
	if got, want := EnvName([]string{"watchlist", "import"}, "skip-invalid", false), "VIGIL_WATCHLIST_IMPORT_SKIP_INVALID"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if got, want := EnvName([]string{"watchlist"}, "db", true), "VIGIL_DB"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}
