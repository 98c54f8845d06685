package web

import (
	"context"
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// A peer names its own client (the "v" of its extension handshake: any
// bytes). html/template makes it inert as HTML, but a bidi override
// (U+202E) or another invisible control in it would still turn around
// the rest of its cell on screen, so that an investigator reads an
// address or a name backwards. The target page shows such characters as
// observe.EscapeText writes them ("\u202e"), and a name longer than a
// line is cut.
func TestPagesShowAPeersControlCharactersVisibly(t *testing.T) {
	e := newEnv(t, "", 400)
	ctx := context.Background()
	ep, file, probe := nowProbeOfA(t, e)
	now := probe.Time
	probe.Client = observe.Client{Name: "Tixati\u202e4pm.exe\x1b[2J\x00\u2066x", Version: "3.1" + strings.Repeat("A", 5000)}
	eng := storeAndCatchUp(t, ctx, e, probe)
	// A file name in the torrent's metadata, the peer's too: the
	// associated files show it.
	if err := eng.AddAssociated(ctx, []analysis.Associated{{Torrent: file.Hash, Time: now,
		Endpoint: observe.Endpoint{IP: ep.Addr(), Port: ep.Port(), Transport: "tcp"},
		Files:    []analysis.AssocFile{{Path: "holiday\u202egpj.scr", Size: 1000}}}}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e)
	b.login("paris")
	for _, path := range []string{"/targets/" + e.TargetA} {
		code, body := b.get(path)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
		if !strings.Contains(body, "Tixati") {
			t.Fatalf("%s does not show the probe's client", path)
		}
		for _, c := range []string{"\u202e", "\u2066", "\x1b", "\x00"} {
			if strings.Contains(body, c) {
				t.Errorf("%s shows the peer's %q as it is", path, c)
			}
		}
		if !strings.Contains(body, "holiday") {
			t.Errorf("%s does not show the associated file", path)
		}
		// As observe.EscapeText writes them (docs/evidence.md, "Peer
		// text"): the analysis so writes the file name into the lead.
		if !strings.Contains(html.UnescapeString(body), `Tixati\u202e4pm.exe\u001b[2J`) ||
			!strings.Contains(html.UnescapeString(body), `holiday\u202egpj.scr`) {
			t.Errorf("%s does not show the peer's bidi override visibly", path)
		}
		if strings.Contains(body, strings.Repeat("A", 300)) {
			t.Errorf("%s shows a client name of 5,000 characters whole", path)
		}
	}
}

// A geo database is a file from outside: its country, subdivision, city
// and organisation strings are shown on the target page (its addresses,
// its observations, its places) as observe.EscapeText writes them, as a
// peer's client name is. Before, the observations' rows showed the
// place's country and subdivision as the database had them: a bidi
// override in them turned their cell around on screen.
func TestPagesShowAGeoDatabasesControlCharactersVisibly(t *testing.T) {
	e := newEnv(t, "", 400)
	ctx := context.Background()
	_, _, probe := nowProbeOfA(t, e)
	probe.Place = observe.Place{Country: "F\u202eR", Subdivisions: []string{"Ile\u202e\x1b[2J"}, City: "Ly\u2066on",
		ASN: 64512, Org: "Lab\u202eTelecom\x00", Lat: 48.8, Lon: 2.3}
	eng := storeAndCatchUp(t, ctx, e, probe)
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e)
	b.login("paris")
	path := "/targets/" + e.TargetA
	code, body := b.get(path)
	if code != http.StatusOK {
		t.Fatalf("%s: %d", path, code)
	}
	for _, c := range []string{"\u202e", "\u2066", "\x1b", "\x00"} {
		if strings.Contains(body, c) {
			t.Errorf("%s shows the geo database's %q as it is", path, c)
		}
	}
	if !strings.Contains(html.UnescapeString(body), `F\u202eR`) {
		t.Errorf("%s does not show the place's country as observe.EscapeText writes it", path)
	}
}
