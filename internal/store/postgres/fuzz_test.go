package postgres

import (
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/observe"
)

// FuzzObservationID checks the id rule on any string a bus may deliver: a
// canonical UUID goes to the uuid column and prints back the same, and
// anything else stays the text given.
func FuzzObservationID(f *testing.F) {
	for _, s := range []string{"", "0193a5e2-7c1d-7abc-8def-0123456789ab", "0193A5E2-7C1D-7ABC-8DEF-0123456789AB",
		"sensor-bt-lab-1/000042", "0193a5e2-7c1d-7abc-8def-0123456789a", "0193a5e2x7c1d-7abc-8def-0123456789ab"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		uid, text := idValues(s)
		switch {
		case uid.Valid && text != nil, !uid.Valid && text == nil:
			t.Fatalf("idValues(%q) = %v, %v: want exactly one column", s, uid, text)
		case uid.Valid:
			if got := formatUUID(uid.Bytes); got != s {
				t.Fatalf("uuid %q prints back as %q", s, got)
			}
		default:
			if text.(string) != s {
				t.Fatalf("text id %q stored as %q", s, text)
			}
		}
	})
}

// FuzzMatchedJSON checks that the hand-written JSON of matches and places
// reads back as written (valid UTF-8; other bytes become U+FFFD, as
// encoding/json does).
func FuzzMatchedJSON(f *testing.F) {
	f.Add("national", "1", "FR", "Versailles")
	f.Add("list \"q\"\n", "\x01\x00", "", "Île-de-France\u2028")
	f.Add("\\", "</script>", "BE", "\t")
	f.Fuzz(func(t *testing.T, list, category, country, city string) {
		for _, s := range []string{list, category, country, city} {
			if !utf8.ValidString(s) { // each alone: two halves of a rune may join when concatenated
				t.Skip()
			}
		}
		ms := []observe.Match{{List: list, Category: category}, {List: category, Category: list}}
		var back []observe.Match
		if err := json.Unmarshal(appendMatched(nil, ms), &back); err != nil || !slices.Equal(back, ms) {
			t.Fatalf("matches %q read back as %q (%v)", ms, back, err)
		}
		p := observe.Place{Country: country, City: city, Subdivisions: []string{city, country}, DB: "lab.mmdb"}
		var got observe.Place
		v := placeValue(&p)
		if err := parsePlace([]byte(v.(string)), &got); err != nil || !got.Equal(&p) {
			t.Fatalf("place %+v read back as %+v (%v) from %s", p, got, err, v)
		}
	})
}
