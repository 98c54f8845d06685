package ingest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/examples/jurisdictions"
	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
)

func labEnricher(t *testing.T) *Enricher {
	t.Helper()
	files, err := lab.WriteGeo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	loc, err := geo.Open(geo.Config{PlaceFiles: []string{files.City}, ASNFiles: []string{files.ASN},
		ProviderFile: files.Providers, DB: geo.DefaultDBConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loc.Close() })
	b, err := jurisdictions.FS.ReadFile("france.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := jurisdiction.Parse(b, "france.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return NewEnricher(loc, rules)
}

func TestEnrichPlacesAndRoutes(t *testing.T) {
	e := labEnricher(t)
	cases := []struct {
		ip                       string
		country, city, dep, agcy string
		asn                      uint32
		vpn, placed              bool
	}{
		{"127.1.0.5", "FR", "Paris", "75", "fr-pp-dpj", 64496, false, true},
		{"127.8.3.9", "FR", "Versailles", "78", "fr-pj-idf-gc", 64497, false, true},
		{"127.30.0.7", "NL", "Amsterdam", "", "fr-ofmin", lab.ASNLabVPN, true, true},
		{"::ffff:127.2.0.1", "FR", "Lyon", "69", "", 64497, false, true},
		// IPv6: a subscriber's /64 in the lab's /48 of each place.
		{"fd00:0:1:1::5", "FR", "Paris", "75", "fr-pp-dpj", 64496, false, true},
		{"fd00:0:3:4:3c1a:92ff:fe00:4d21", "FR", "Marseille", "13", "fr-szpj-sud", 64496, false, true},
		{"fd00:0:8:2::1", "FR", "Versailles", "78", "fr-pj-idf-gc", 64497, false, true},
		{"fd00:0:30:1::7", "NL", "Amsterdam", "", "fr-ofmin", lab.ASNLabVPN, true, true},
		{"2001:db8::1", "", "", "", "fr-ofmin", 0, false, false}, // in none of the lab's ranges (::1 is, in Lyon: the demo's IPv6 seeder)
	}
	for _, c := range cases {
		o := observe.Observation{Endpoint: observe.Endpoint{IP: netip.MustParseAddr(c.ip), Port: 6881}}
		e.Enrich(&o)
		p := o.Place
		if p.Found() != c.placed || p.Country != c.country || p.City != c.city || p.ASN != c.asn || p.VPN != c.vpn {
			t.Errorf("%s: place %+v, want %s/%s AS%d vpn=%v placed=%v", c.ip, p, c.country, c.city, c.asn, c.vpn, c.placed)
		}
		if c.placed && (p.DB == "" || p.DBBuild.IsZero()) {
			t.Errorf("%s: place does not name its database and build: %+v", c.ip, p)
		}
		if c.dep != "" && (len(p.Subdivisions) == 0 || p.Subdivisions[len(p.Subdivisions)-1] != c.dep) {
			t.Errorf("%s: subdivisions %v, want the département %s last", c.ip, p.Subdivisions, c.dep)
		}
		if c.agcy != "" && o.Jurisdiction.Agency != c.agcy {
			t.Errorf("%s: routed to %q (%s), want %s", c.ip, o.Jurisdiction.Agency, o.Jurisdiction.Rule, c.agcy)
		}
		if o.Jurisdiction.Agency == "" || o.Jurisdiction.Rule == "" {
			t.Errorf("%s: not routed, or no reason: %+v", c.ip, o.Jurisdiction)
		}
	}
	if s := e.Stats(); s.Placed != 8 || s.Unplaced != 1 || s.Routed != 9 {
		t.Errorf("stats %+v, want 8 placed, 1 unplaced, 9 routed", s)
	}
	// The same counts reach Prometheus.
	for i, want := range []float64{8, 1, 9} {
		if got := value(t, e.Collectors()[i].(prometheus.Metric)); got != want {
			t.Errorf("%v = %v, want %v", e.Collectors()[i].(prometheus.Metric).Desc(), got, want)
		}
	}
}

// What was known when an observation was seen is never rewritten: an
// imported observation keeps its place and agency, and is routed from its
// own place when it has no agency.
func TestEnrichKeepsWhatWasKnown(t *testing.T) {
	e := labEnricher(t)
	old := observe.Place{Country: "FR", Subdivisions: []string{"Hauts-de-France", "59"}, City: "Lille", ASN: 64497,
		DB: "older.mmdb", DBBuild: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	o := observe.Observation{Endpoint: observe.Endpoint{IP: netip.MustParseAddr("127.1.0.5")}, Place: old}
	e.Enrich(&o)
	if !o.Place.Equal(&old) {
		t.Errorf("place rewritten: %+v, want %+v", o.Place, old)
	}
	if o.Jurisdiction.Agency != "fr-szpj-nord" {
		t.Errorf("routed to %+v, want fr-szpj-nord from the stored place (Lille, 59)", o.Jurisdiction)
	}
	o.Jurisdiction = observe.Jurisdiction{Agency: "be-fccu", Rule: "imported"}
	e.Enrich(&o)
	if o.Jurisdiction.Agency != "be-fccu" {
		t.Errorf("agency rewritten: %+v", o.Jurisdiction)
	}
}

func TestNilPartsAreAllowed(t *testing.T) {
	var e *Enricher
	o := observe.Observation{Endpoint: observe.Endpoint{IP: netip.MustParseAddr("127.1.0.5")}}
	e.Enrich(&o) // no panic, nothing set
	NewEnricher(nil, nil).Enrich(&o)
	if o.Place.Found() || o.Jurisdiction.Agency != "" {
		t.Errorf("enriched without sources: %+v %+v", o.Place, o.Jurisdiction)
	}
}
