package isp

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// A 6to4, Teredo or NAT64 address is the relay's or translator's, which
// geolocation databases place at the relay's operator (2002::/16 and
// 2001::/32 at Hurricane Electric): a letter to that operator asks for a
// subscriber it never had. Such a sighting is never a row, of any group;
// the annex names the IPv4 address inside so that the analyst can ask the
// right ISP.
func TestTunnelAddressesAreNotRowsOfTheRelay(t *testing.T) {
	for _, ip := range []string{"2002:5db8:d822::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "64:ff9b::5db8:d822", "64:ff9b:1::5db8:d822"} {
		at := func(when, id string) Sighting {
			return fh(Sighting{IP: netip.MustParseAddr(ip), Port: 41234, Time: ts(when), ClockSource: "ntp:127.0.0.1",
				ObservationID: id, Network: observe.NetBitTorrent, Level: observe.Complete, Item: item,
				ASN: 6939, Org: "Relay Operator", Country: "US"})
		}
		req := Build(Target{ID: "T-1"}, []Sighting{at("2026-02-20T10:00:00Z", "o1"), at("2026-02-20T11:00:00Z", "o2")}, fixedNow, DefaultRetention())
		for _, g := range req.Groups {
			for _, r := range g.Rows {
				t.Errorf("%s: row %d addressed to %s (AS%d) with note %q", ip, r.Line, g.ISP(), g.ASN, r.PrefixNote.EN)
			}
		}
		if len(req.Groups) != 0 || req.Kept != 0 || !req.Has(NoteNothing) {
			t.Errorf("%s: groups %+v, want none: no letter to the relay's operator", ip, req.Groups)
		}
		if len(req.Annex) != 2 {
			t.Fatalf("%s: annex %+v, want both sightings", ip, req.Annex)
		}
		for _, a := range req.Annex {
			if a.Reason != AnnexTunnel || !strings.Contains(a.EN, "93.184.216.34") && !strings.Contains(a.EN, "192.0.2.45") {
				t.Errorf("%s: annex %s %q, want %s naming the IPv4 address inside", ip, a.Reason, a.EN, AnnexTunnel)
			}
		}
	}
}

// The annex text names the IPv4 address inside, in both languages: for
// 6to4 bits 16-48; for NAT64 the last 32 bits; for Teredo the client's
// address (the last 32 bits inverted) and its port (bits 80-96 inverted),
// which the client's NAT mapped: what its ISP needs behind carrier-grade
// NAT. Sightings older than the retention period are still no group's.
func TestTunnelAnnexNamesTheIPv4Inside(t *testing.T) {
	for _, tc := range []struct {
		ip       string
		en, fr   []string
		notFirst bool
	}{
		{ip: "2002:5db8:d822::1", en: []string{"6to4", "93.184.216.34"}, fr: []string{"6to4", "93.184.216.34"}},
		{ip: "64:ff9b::5db8:d822", en: []string{"NAT64", "93.184.216.34"}, fr: []string{"NAT64", "93.184.216.34"}},
		{ip: "64:ff9b:1::5db8:d822", en: []string{"NAT64", "/96", "93.184.216.34"}, fr: []string{"NAT64", "/96", "93.184.216.34"}},
		{ip: "2001:0:4136:e378:8000:63bf:3fff:fdd2", en: []string{"Teredo", "192.0.2.45", "port 40000", "65.54.227.120"},
			fr: []string{"Teredo", "192.0.2.45", "port 40000", "65.54.227.120"}},
		{ip: "::ffff:93.184.216.34"}, // IPv4-mapped: an ordinary IPv4 address, a row
		{ip: "2001:db8:1:2::1"},      // documentation, not Teredo (2001:0::/32 only)
	} {
		s := []Sighting{
			fh(Sighting{IP: netip.MustParseAddr(tc.ip), Port: 41234, Time: ts("2026-02-20T10:00:00Z"), ObservationID: "o1",
				ASN: 6939, Org: "Relay Operator", Country: "US", Level: observe.Complete, Item: item}),
			fh(Sighting{IP: netip.MustParseAddr(tc.ip), Port: 41234, Time: ts("2026-02-20T11:00:00Z"), ObservationID: "o2",
				ASN: 6939, Org: "Relay Operator", Country: "US", Level: observe.Complete, Item: item}),
			fh(Sighting{IP: netip.MustParseAddr(tc.ip), Port: 41234, Time: ts("2020-02-20T11:00:00Z"), ObservationID: "o-old",
				ASN: 6939, Org: "Relay Operator", Country: "US", Level: observe.Complete, Item: item}),
		}
		req := Build(Target{ID: "T-1"}, s, fixedNow, DefaultRetention())
		if tc.en == nil {
			if req.Kept != 2 {
				t.Errorf("%s: %d rows, want 2 (not a tunnel address); annex %+v", tc.ip, req.Kept, req.Annex)
			}
			continue
		}
		if len(req.Groups) != 0 || len(req.Annex) != 3 {
			t.Fatalf("%s: groups %+v, annex %+v: want no group and three annex entries", tc.ip, req.Groups, req.Annex)
		}
		for _, a := range req.Annex {
			for _, w := range tc.en {
				if !strings.Contains(a.EN, w) {
					t.Errorf("%s: English %q lacks %q", tc.ip, a.EN, w)
				}
			}
			for _, w := range tc.fr {
				if !strings.Contains(a.FR, w) {
					t.Errorf("%s: French %q lacks %q", tc.ip, a.FR, w)
				}
			}
			if a.EN == a.FR {
				t.Errorf("%s: no French text: %q", tc.ip, a.FR)
			}
		}
	}
}

// A third party's claim about a tunnel address keeps the more exact
// reason (a third party's), and still makes no group.
func TestTunnelThirdPartyClaimKeepsItsReason(t *testing.T) {
	x := Sighting{IP: netip.MustParseAddr("2002:5db8:d822::1"), Port: 41234, Time: ts("2026-02-20T10:00:00Z"), ObservationID: "o1",
		Method: observe.MethodTracker, Marks: []string{observe.MarkThirdParty}, ASN: 6939, Org: "Relay Operator", Country: "US"}
	req := Build(Target{ID: "T-1"}, []Sighting{x}, fixedNow, DefaultRetention())
	if len(req.Groups) != 0 || len(req.Annex) != 1 || req.Annex[0].Reason != AnnexThirdParty {
		t.Fatalf("groups %+v, annex %+v", req.Groups, req.Annex)
	}
}

// The PDF's annex prints the tunnel text in each language of the letter.
func TestTunnelAnnexInThePDF(t *testing.T) {
	at := func(when, id string) Sighting {
		return fh(Sighting{IP: netip.MustParseAddr("2001:0:4136:e378:8000:63bf:3fff:fdd2"), Port: 41234, Time: ts(when), ObservationID: id,
			ASN: 6939, Org: "Relay Operator", Country: "US", Level: observe.Complete, Item: item})
	}
	req := Build(Target{ID: "T-1"}, []Sighting{at("2026-02-20T10:00:00Z", "o1"), at("2026-02-20T11:00:00Z", "o2")}, fixedNow, DefaultRetention())
	text := pdftotext(t, buildPDF(t, &req, LangBoth))
	for _, want := range []string{"the client's IPv4 address 192.0.2.45 and port 40000", "l'adresse IPv4 192.0.2.45 et le port 40000 du client"} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q:\n%s", want, text)
		}
	}
}
