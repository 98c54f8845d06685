package alerts

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// Attack: a geo database is a file from outside; the country and
// subdivision a list_seen alert carries are its text, and the alert's
// e-mail is lines of "Name: value". A newline in them forged a line of
// the mail ("Target: ..."), a bidi override turned it around. They are
// written by observe.PlaceText, as the analysis writes them.
func TestAListSeenAlertCarriesAGeoDatabasesTextEscaped(t *testing.T) {
	r := Rule{ID: "r", Agency: "fr-lyon", Kind: KindListSeen}
	o := &observe.Observation{ID: "o-1", Time: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC), Network: observe.NetBitTorrent,
		Item:         observe.Item{Matched: []observe.Match{{List: "national", Category: "1"}}},
		Place:        observe.Place{Country: "FR\nTarget: T-FAKE", Subdivisions: []string{"69\u202e\x00"}},
		Jurisdiction: observe.Jurisdiction{Agency: "fr-lyon"},
	}
	a, ok := listSeen(r, o)
	if !ok {
		t.Fatal("no alert")
	}
	if a.Content.Country != `FR\u000aTarget: T-FAKE` || a.Content.Subdivision != `69\u202e\u0000` {
		t.Fatalf("content country %q, subdivision %q; want observe.PlaceText's", a.Content.Country, a.Content.Subdivision)
	}
	if m := Message(a, "d"); strings.Contains(m.Text, "\nTarget:") || strings.ContainsAny(m.Text, "\u202e\x00") {
		t.Fatalf("the mail's text holds a forged line or a control:\n%s", m.Text)
	}
}
