package geo

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// testBuild is the build time written into every test database.
var testBuild = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// network is one entry of a test database.
type network struct {
	cidr string
	rec  mmdbtype.Map
}

// writeMMDB writes a .mmdb file of the given IP version holding nets, into a
// temporary directory, and returns its path. Reserved networks (loopback,
// documentation ranges) are allowed: the tests look those up.
//
// The @ip-location-db files (database type "city ipv4", ...) have an empty
// description map, which changes how they are verified; the test files of
// that layout have one too.
func writeMMDB(t testing.TB, name string, ipVersion int, dbType string, nets []network) string {
	t.Helper()
	desc := map[string]string{"en": "vigil synthetic test database"}
	if strings.HasPrefix(dbType, "city ") {
		desc = map[string]string{}
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		IPVersion:               ipVersion,
		RecordSize:              28,
		IncludeReservedNetworks: true,
		BuildEpoch:              testBuild.Unix(),
		Description:             desc,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.cidr)
		if err != nil {
			t.Fatalf("%s: %v", n.cidr, err)
		}
		if err := tree.Insert(ipnet, n.rec); err != nil {
			t.Fatalf("insert %s: %v", n.cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func testNames(en string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(en), "fr": mmdbtype.String(en + " (fr)")}
}

// nestedCity is a GeoIP2-City style record.
func nestedCity(cc string, subs [][2]string, city, postcode string, lat, lon float64, tz string) mmdbtype.Map {
	m := mmdbtype.Map{
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "names": testNames("Europe")},
		"country":   mmdbtype.Map{"iso_code": mmdbtype.String(cc), "geoname_id": mmdbtype.Uint32(1), "names": testNames("Country " + cc)},
		"registered_country": mmdbtype.Map{
			"iso_code": mmdbtype.String(cc), "names": testNames("Country " + cc),
		},
		"location": mmdbtype.Map{
			"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon),
			"time_zone": mmdbtype.String(tz), "accuracy_radius": mmdbtype.Uint16(20),
		},
	}
	if city != "" {
		m["city"] = mmdbtype.Map{"geoname_id": mmdbtype.Uint32(2), "names": testNames(city)}
	}
	if postcode != "" {
		m["postal"] = mmdbtype.Map{"code": mmdbtype.String(postcode)}
	}
	if len(subs) > 0 {
		var s mmdbtype.Slice
		for _, sub := range subs {
			e := mmdbtype.Map{"names": testNames(sub[1])}
			if sub[0] != "" {
				e["iso_code"] = mmdbtype.String(sub[0])
			}
			s = append(s, e)
		}
		m["subdivisions"] = s
	}
	return m
}

// flatCity is an @ip-location-db style record.
func flatCity(cc, state1, state2, city, postcode string, lat, lon float64, tz string) mmdbtype.Map {
	return mmdbtype.Map{
		"country_code": mmdbtype.String(cc),
		"state1":       mmdbtype.String(state1),
		"state2":       mmdbtype.String(state2),
		"city":         mmdbtype.String(city),
		"postcode":     mmdbtype.String(postcode),
		"latitude":     mmdbtype.Float64(lat),
		"longitude":    mmdbtype.Float64(lon),
		"timezone":     mmdbtype.String(tz),
	}
}

func asnRecord(asn uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(asn),
		"autonomous_system_organization": mmdbtype.String(org),
	}
}

var nestedNets = []network{
	{"192.0.2.0/25", nestedCity("FR", [][2]string{{"IDF", "Île-de-France"}, {"78", "Yvelines"}}, "Versailles", "78000", 48.8, 2.13, "Europe/Paris")},
	{"192.0.2.128/25", nestedCity("BE", nil, "", "", 50.85, 4.35, "Europe/Brussels")},
	{"127.0.0.0/8", nestedCity("DE", [][2]string{{"BE", "Land Berlin"}}, "Berlin", "10115", 52.52, 13.40, "Europe/Berlin")},
}

var nestedNets6 = []network{
	{"2001:db8::/48", nestedCity("ES", [][2]string{{"MD", "Madrid"}}, "Madrid", "", 40.41, -3.70, "Europe/Madrid")},
	{"2001:db8:1::/48", nestedCity("FR", [][2]string{{"20R", "Corsica"}, {"2A", "South Corsica"}}, "Ajaccio", "20000", 41.92, 8.73, "Europe/Paris")},
}

var flatNets = []network{
	{"192.0.2.0/24", flatCity("FR", "Corsica", "Upper Corsica", "Bastia", "20200", 42.70, 9.45, "Europe/Paris")},
	{"198.51.100.0/24", flatCity("FR", "Hauts-de-France", "North", "Lille", "59000", 50.63, 3.06, "Europe/Paris")},
	{"127.0.0.0/8", flatCity("FR", "Ile-de-France", "Paris Department", "Paris", "75001", 48.86, 2.35, "Europe/Paris")},
}

var flatNets6 = []network{
	{"2001:db8::/32", flatCity("FR", "Occitanie", "Upper Garonne", "Toulouse", "31000", 43.60, 1.44, "Europe/Paris")},
}

var asnNets = []network{
	{"192.0.2.0/24", asnRecord(64500, "Documentation Net A")},
	{"198.51.100.0/24", asnRecord(39351, "31173 Services AB")}, // on the shipped VPN list
	{"203.0.113.0/24", asnRecord(16276, "OVH SAS")},            // on the shipped hosting list
	{"2001:db8::/32", asnRecord(64501, "Documentation Net B")},
}
