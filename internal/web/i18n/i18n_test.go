package i18n

import (
	"regexp"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris without the machine's zoneinfo: the test cannot skip
)

// Every key of the catalog has a message in every language: a page in
// one language never falls back to the other's words or to "[key]".
func TestEveryKeyHasEveryLanguage(t *testing.T) {
	for _, k := range Keys() {
		for _, l := range Languages {
			if strings.TrimSpace(catalog[k][l]) == "" {
				t.Errorf("key %q has no %s message", k, l)
			}
		}
		for l := range catalog[k] {
			if !Supported(l) {
				t.Errorf("key %q has a message in %q, a language not offered", k, l)
			}
		}
	}
	if len(Keys()) < 200 {
		t.Fatalf("only %d keys: the catalog did not load", len(Keys()))
	}
}

// French typography: a narrow no-break space before : ; ! ? (never a plain
// space, never none when the sign ends a clause), typographic apostrophes,
// and the same fmt verbs as the English message.
func TestFrenchTypography(t *testing.T) {
	plainBefore := regexp.MustCompile(`[ \x{a0}][:;!?]`)
	glued := regexp.MustCompile(`[\p{L}\p{N})»%][;!?:]( |$)`)
	verbs := regexp.MustCompile(`%[-+# 0]*[0-9]*(\.[0-9]+)?[a-zA-Z%]`)
	for _, k := range Keys() {
		fr, en := catalog[k]["fr"], catalog[k]["en"]
		if m := plainBefore.FindString(fr); m != "" {
			t.Errorf("%s: fr %q: %q wants a narrow no-break space (U+202F) before the sign", k, fr, m)
		}
		if m := glued.FindString(fr); m != "" {
			t.Errorf("%s: fr %q: %q wants a narrow no-break space (U+202F) before the sign", k, fr, m)
		}
		if strings.Contains(fr, "'") {
			t.Errorf("%s: fr %q: a straight apostrophe (want ’)", k, fr)
		}
		if a, b := strings.Join(verbs.FindAllString(en, -1), " "), strings.Join(verbs.FindAllString(fr, -1), " "); a != b {
			t.Errorf("%s: verbs en %q, fr %q", k, a, b)
		}
	}
}

func TestNumbersFollowTheLanguage(t *testing.T) {
	for _, c := range []struct {
		lang string
		f    float64
		prec int
		want string
	}{
		{"en", 10.44, 1, "10.4"},
		{"fr", 10.44, 1, "10,4"},
		{"fr", 1234567.891, 2, "1\u202f234\u202f567,89"},
		{"en", 1234567.891, 2, "1,234,567.89"},
		{"fr", -0.04, 1, "0,0"},
		{"fr", -1234.5, 1, "-1\u202f234,5"},
		{"en", 665.666, 2, "665.67"},
		{"fr", 999.96, 1, "1\u202f000,0"},
		{"en", 3, 0, "3"},
	} {
		if got := Float(c.lang, c.f, c.prec); got != c.want {
			t.Errorf("Float(%s, %v, %d) = %q, want %q", c.lang, c.f, c.prec, got, c.want)
		}
	}
	for _, c := range []struct {
		lang string
		n    int
		want string
	}{
		{"en", 0, "0"}, {"fr", 999, "999"}, {"fr", 1000, "1\u202f000"}, {"en", 1000, "1,000"},
		{"en", -1234567, "-1,234,567"}, {"fr", 36, "36"}, {"xx", 12345, "12,345"},
	} {
		if got := Int(c.lang, c.n); got != c.want {
			t.Errorf("Int(%s, %d) = %q, want %q", c.lang, c.n, got, c.want)
		}
	}
}

func TestTimesFollowTheLanguage(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris") // from time/tzdata where the machine has no zoneinfo
	if err != nil {
		t.Fatal(err)
	}
	tm := time.Date(2026, 12, 6, 11, 6, 21, 692_521_404, time.UTC).In(paris)
	for _, c := range []struct {
		lang string
		ms   bool
		want string
	}{
		{"en", false, "2026-12-06 12:06:21 CET"},
		{"fr", false, "2026-12-06 12:06:21 CET"},
		{"en", true, "2026-12-06 12:06:21.692 CET"},
		{"fr", true, "2026-12-06 12:06:21,692 CET"},
	} {
		if got := Time(c.lang, tm, c.ms); got != c.want {
			t.Errorf("Time(%s, ms %v) = %q, want %q", c.lang, c.ms, got, c.want)
		}
	}
	if Time("fr", time.Time{}, true) != "" || Date("fr", time.Time{}) != "" {
		t.Error("the zero time is written")
	}
	if got := Date("fr", tm); got != "2026-12-06" {
		t.Errorf("Date = %q", got)
	}
}
