package isp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in   string
		want Period
		err  string
	}{
		{in: "1y", want: Period{Years: 1}},
		{in: " 6mo ", want: Period{Months: 6}},
		{in: "90d", want: Period{Days: 90}},
		{in: "1y6mo15d", want: Period{1, 6, 15}},
		{in: "0d", want: Period{}},
		{in: "100y", want: Period{Years: 100}},
		{in: "", err: "empty period"},
		{in: "y", err: "want a number"},
		{in: "12", err: "unknown unit"},
		{in: "6m", err: "unknown unit"},
		{in: "1h", err: "unknown unit"},
		{in: "-1y", err: "want a number"},
		{in: "6mo1y", err: "in the order y, mo, d"},
		{in: "1y1y", err: "in the order y, mo, d"},
		{in: "101y", err: "longer than 100 years"},
		{in: "99999999999999999999d", err: "too large"},
		{in: "1 y", err: "unknown unit"},
	}
	for _, tc := range tests {
		got, err := ParsePeriod(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrRetention) {
				t.Errorf("ParsePeriod(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		// String reads back.
		if again, err := ParsePeriod(got.String()); err != nil || again != got {
			t.Errorf("ParsePeriod(%q.String() = %q) = %v, %v", tc.in, got.String(), again, err)
		}
	}
}

func TestParseRetention(t *testing.T) {
	good := "# retention of subscriber data\ndefault: 1y\ncountries:\n  FR: 1y\n  ZZ: 6mo\n  YY: 0d\n"
	r, err := ParseRetention([]byte(good), "ret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r.Default != (Period{Years: 1}) || r.For("fr") != (Period{Years: 1}) || r.For("ZZ") != (Period{Months: 6}) ||
		!r.For("YY").IsZero() || r.For("") != r.Default || r.For("DE") != r.Default {
		t.Fatalf("parsed %+v", r)
	}
	if got := r.String(); got != "default 1y; FR 1y; YY 0d; ZZ 6mo" {
		t.Errorf("String() = %q", got)
	}

	bad := []struct {
		name, text, want string
	}{
		{"no default", "countries:\n  FR: 1y\n", "line 1: bad retention: default: the period for countries not listed is required"},
		{"unknown key", "default: 1y\nretention: 2y\n", `line 2: bad retention: unknown key "retention" (known: default, countries)`},
		{"bad period", "default: 1y\ncountries:\n  FR: 1 year\n", `line 3: bad retention: country FR: period "1 year": unknown unit`},
		{"bad default", "default: forever\n", `line 1: bad retention: default: period "forever"`},
		{"lower-case country", "default: 1y\ncountries:\n  fr: 1y\n", `line 3: bad retention: country "fr": want an ISO 3166-1 alpha-2 code`},
		{"long country", "default: 1y\ncountries:\n  FRA: 1y\n", `line 3: bad retention: country "FRA"`},
		{"repeated country", "default: 1y\ncountries:\n  FR: 1y\n  FR: 2y\n", "line 4: bad retention: country FR already given on line 3"},
		{"repeated key", "default: 1y\ndefault: 2y\n", `line 2: bad retention: key "default" already given on line 1`},
		{"countries a list", "default: 1y\ncountries:\n  - FR\n", "line 3: bad retention: countries: want a mapping"},
		{"period a mapping", "default: {y: 1}\n", "line 1: bad retention: default: want a period"},
		{"not a mapping", "- 1y\n", "line 1: bad retention: want a mapping"},
		{"empty", "", "bad retention"},
		{"two documents", "default: 1y\n---\ndefault: 2y\n", ""},
		{"yaml error", "default: [1y\n", "bad retention"},
		{"alias", "x: &a 1y\ndefault: *a\n", `line 1: bad retention: unknown key "x"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRetention([]byte(tc.text), "ret.yaml")
			if tc.name == "two documents" {
				// yaml.v3's Decoder reads the first document only; the
				// second is ignored, which is what the format says.
				if err != nil {
					t.Fatalf("first document refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %q", tc.text)
			}
			if !errors.Is(err, ErrRetention) || !strings.Contains(err.Error(), "retention ret.yaml") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to name ret.yaml and contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "retention.yaml")
	if err := os.WriteFile(path, []byte("default: 1y\ncountries:\n  ZZ: 30d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRetention(path)
	if err != nil || r.For("ZZ") != (Period{Days: 30}) {
		t.Fatalf("LoadRetention = %+v, %v", r, err)
	}
	if _, err := LoadRetention(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file error %v", err)
	}
	// The example shipped with the package loads.
	if _, err := LoadRetention(filepath.Join("testdata", "retention.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultRetentionIsOneYear(t *testing.T) {
	r := DefaultRetention()
	if r.For("FR") != (Period{Years: 1}) || r.For("") != (Period{Years: 1}) {
		t.Fatalf("default retention %v", r)
	}
}

// FuzzParseRetention checks that any file is either refused with
// ErrRetention or gives periods within bounds whose text reads back.
func FuzzParseRetention(f *testing.F) {
	f.Add("default: 1y\ncountries:\n  FR: 1y\n")
	f.Add("default: 1y6mo15d\n")
	f.Add("default: 0d\ncountries: {ZZ: 30d, YY: 2y}\n")
	if b, err := os.ReadFile(filepath.Join("testdata", "retention.yaml")); err == nil {
		f.Add(string(b))
	}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ParseRetention([]byte(text), "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrRetention) || !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not wrap ErrRetention or name the file: %v", err)
			}
			return
		}
		check := func(p Period) {
			if p.Years < 0 || p.Months < 0 || p.Days < 0 {
				t.Fatalf("negative period %+v", p)
			}
			if again, err := ParsePeriod(p.String()); err != nil || again != p {
				t.Fatalf("period %+v prints %q which reads %+v, %v", p, p.String(), again, err)
			}
			c := p.Cutoff(now)
			if c.After(now) || c.Before(now.AddDate(-maxPeriodYears-1, 0, 0)) {
				t.Fatalf("cutoff %v of %v out of bounds", c, p)
			}
		}
		check(r.Default)
		for c, p := range r.ByCountry {
			if !validCountry(c) {
				t.Fatalf("country %q accepted", c)
			}
			check(p)
		}
	})
}
