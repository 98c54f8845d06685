package geo

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// DBConfig holds the settings for opening one .mmdb file.
type DBConfig struct {
	// Verify walks the whole search tree and data section once at open, so
	// that a corrupt or truncated file fails at start-up, not at the first
	// unlucky lookup. It costs about a second for a city database.
	Verify bool
	// CacheEntries is the size of the decoded-record cache (rounded up to a
	// power of two; 0 disables it). Many networks share one record, so a
	// small cache turns most lookups into a tree walk and a copy.
	CacheEntries int
}

// DefaultDBConfig verifies every file and caches 64 Ki records per file.
func DefaultDBConfig() DBConfig {
	return DBConfig{Verify: true, CacheEntries: 1 << 16}
}

// DB is one opened .mmdb file, of either record layout. It is safe for
// concurrent use.
type DB struct {
	path   string
	name   string
	r      *maxminddb.Reader
	ipv6   bool
	build  time.Time
	dbType string

	cache []atomic.Pointer[cachedRecord]
	shift uint
}

// record is what this package keeps of one database record: the union of
// the flat and nested layouts, already normalised.
type record struct {
	country      string
	subdivisions []string
	city         string
	postcode     string
	lat, lon     float64
	timeZone     string
	asn          uint32
	org          string
	vpn, hosting bool
}

type cachedRecord struct {
	offset uintptr
	rec    record
}

// OpenDB opens and (by default) verifies one .mmdb file. Errors name the
// file and wrap ErrBadDatabase when the file is not a valid MaxMind DB.
func OpenDB(path string, cfg DBConfig) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("geo database %s: %w", path, err)
	}
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo database %s: %w: %w", path, ErrBadDatabase, err)
	}
	if cfg.Verify {
		if err := verify(r); err != nil {
			r.Close()
			return nil, fmt.Errorf("geo database %s: %w: %w", path, ErrBadDatabase, err)
		}
	}
	md := r.Metadata
	if md.IPVersion != 4 && md.IPVersion != 6 {
		r.Close()
		return nil, fmt.Errorf("geo database %s: %w: ip_version %d", path, ErrBadDatabase, md.IPVersion)
	}
	db := &DB{
		path:   path,
		name:   filepath.Base(path),
		r:      r,
		ipv6:   md.IPVersion == 6,
		build:  md.BuildTime().UTC(),
		dbType: md.DatabaseType,
	}
	if cfg.CacheEntries > 0 {
		n := 1
		for n < cfg.CacheEntries {
			n <<= 1
		}
		db.cache = make([]atomic.Pointer[cachedRecord], n)
		db.shift = uint(64 - bits.TrailingZeros(uint(n)))
	}
	return db, nil
}

// Close releases the file. No lookup may run during or after Close.
func (db *DB) Close() error { return db.r.Close() }

// Name is the file's base name, as recorded in Place.DB.
func (db *DB) Name() string { return db.name }

// Path is the file's path.
func (db *DB) Path() string { return db.path }

// Type is the database_type from the file's metadata.
func (db *DB) Type() string { return db.dbType }

// BuildTime is the build time from the file's metadata, UTC.
func (db *DB) BuildTime() time.Time { return db.build }

// IPv6 reports whether the file's tree holds IPv6 addresses. An IPv6
// database may or may not hold IPv4 addresses too (MaxMind's do, under
// ::/96; @ip-location-db's -ipv6 files do not).
func (db *DB) IPv6() bool { return db.ipv6 }

// Covers reports whether an address of this family can be looked up in the
// file at all.
func (db *DB) Covers(addr netip.Addr) bool {
	return addr.Is4() || db.ipv6
}

// Lookup returns the place the file gives for addr, with DB and DBBuild
// set, and whether the file had a record. An address of a family the file
// does not cover is ErrNotCovered, never a panic.
func (db *DB) Lookup(addr netip.Addr) (Place, bool, error) {
	rec, ok, err := db.lookup(addr)
	if err != nil || !ok {
		return Place{}, ok, err
	}
	var p Place
	rec.fill(&p)
	p.DB, p.DBBuild = db.name, db.build
	return p, true, nil
}

func (db *DB) lookup(addr netip.Addr) (*record, bool, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return nil, false, ErrInvalidAddr
	}
	if !db.Covers(addr) {
		return nil, false, fmt.Errorf("geo database %s (IPv4 only): %s: %w", db.name, addr, ErrNotCovered)
	}
	res := db.r.Lookup(addr)
	if err := res.Err(); err != nil {
		return nil, false, fmt.Errorf("geo database %s: %s: %w", db.name, addr, err)
	}
	if !res.Found() {
		return nil, false, nil
	}
	off := res.Offset()
	var slot *atomic.Pointer[cachedRecord]
	if db.cache != nil {
		// Fibonacci hashing spreads the offsets, which are clustered.
		slot = &db.cache[(uint64(off)*0x9E3779B97F4A7C15)>>db.shift]
		if c := slot.Load(); c != nil && c.offset == off {
			return &c.rec, true, nil
		}
	}
	var raw rawRecord
	if err := res.Decode(&raw); err != nil {
		return nil, false, fmt.Errorf("geo database %s: %s: %w: %w", db.name, addr, ErrBadDatabase, err)
	}
	c := &cachedRecord{offset: off, rec: raw.normalise()}
	if slot != nil {
		slot.Store(c)
	}
	return &c.rec, true, nil
}

// verify checks a whole file once. The library's Verify refuses a file
// whose metadata has an empty description map, as the @ip-location-db files
// have, before it looks at the tree; for those the tree and every record
// are walked here instead.
func verify(r *maxminddb.Reader) error {
	err := r.Verify()
	if err == nil {
		return nil
	}
	var ide maxminddb.InvalidDatabaseError
	if !errors.As(err, &ide) || !strings.HasPrefix(err.Error(), "description - ") {
		return err
	}
	md := r.Metadata
	if md.RecordSize != 24 && md.RecordSize != 28 && md.RecordSize != 32 {
		return fmt.Errorf("record_size %d", md.RecordSize)
	}
	if md.NodeCount == 0 || md.DatabaseType == "" || md.BinaryFormatMajorVersion != 2 {
		return errors.New("incomplete metadata")
	}
	// A valid tree of n nodes has at most n+1 leaves; a corrupt tree can
	// loop back on itself, so the walk is bounded by that count.
	limit := uint64(md.NodeCount) + 1
	var leaves uint64
	decoded := map[uintptr]struct{}{}
	for res := range r.Networks(maxminddb.IncludeNetworksWithoutData()) {
		if leaves++; leaves > limit {
			return fmt.Errorf("search tree has more than %d leaves for %d nodes", limit, md.NodeCount)
		}
		if err := res.Err(); err != nil {
			return err
		}
		if !res.Found() {
			continue
		}
		off := res.Offset()
		if _, ok := decoded[off]; ok {
			continue
		}
		decoded[off] = struct{}{}
		var raw rawRecord
		if err := res.Decode(&raw); err != nil {
			return fmt.Errorf("network %s: %w", res.Prefix(), err)
		}
	}
	return nil
}

// LookupASN implements ASNSource for an ASN database (GeoLite2-ASN style,
// or any record carrying autonomous_system_number).
func (db *DB) LookupASN(addr netip.Addr) (uint32, string, bool) {
	if !db.Covers(addr.Unmap()) {
		return 0, "", false
	}
	rec, ok, err := db.lookup(addr)
	if err != nil || !ok || rec.asn == 0 {
		return 0, "", false
	}
	return rec.asn, rec.org, true
}

func (r *record) fill(p *Place) {
	p.Country = r.country
	p.Subdivisions = r.subdivisions
	p.City = r.city
	p.Postcode = r.postcode
	p.Lat, p.Lon = r.lat, r.lon
	p.TimeZone = r.timeZone
	if r.asn != 0 {
		p.ASN, p.Org = r.asn, r.org
	}
	p.VPN = p.VPN || r.vpn
	p.Hosting = p.Hosting || r.hosting
}

// names is a GeoIP2 "names" map; only English is kept.
type names struct {
	En string `maxminddb:"en"`
}

// rawRecord is the union of the layouts this package reads. Fields absent
// from a record stay zero.
type rawRecord struct {
	// Flat @ip-location-db layout.
	CountryCode string    `maxminddb:"country_code"`
	State1      string    `maxminddb:"state1"`
	State2      string    `maxminddb:"state2"`
	City        cityValue `maxminddb:"city"` // a string here, a map in GeoIP2
	Postcode    string    `maxminddb:"postcode"`
	Latitude    float64   `maxminddb:"latitude"`
	Longitude   float64   `maxminddb:"longitude"`
	Timezone    string    `maxminddb:"timezone"`

	// Nested GeoIP2/GeoLite2 City and Country layout.
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   names  `maxminddb:"names"`
	} `maxminddb:"subdivisions,maxsize:16"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
		TimeZone  string  `maxminddb:"time_zone"`
	} `maxminddb:"location"`
	Postal struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"postal"`
	// GeoIP2 Enterprise/Insights and Anonymous-IP put these in traits.
	Traits struct {
		ASN               uint32 `maxminddb:"autonomous_system_number"`
		Org               string `maxminddb:"autonomous_system_organization"`
		IsAnonymousVPN    bool   `maxminddb:"is_anonymous_vpn"`
		IsHostingProvider bool   `maxminddb:"is_hosting_provider"`
	} `maxminddb:"traits"`

	// GeoLite2-ASN layout (top level); also GeoIP2-Anonymous-IP's flags.
	ASN               uint32 `maxminddb:"autonomous_system_number"`
	Org               string `maxminddb:"autonomous_system_organization"`
	IsAnonymousVPN    bool   `maxminddb:"is_anonymous_vpn"`
	IsHostingProvider bool   `maxminddb:"is_hosting_provider"`
}

func (r *rawRecord) normalise() record {
	var out record
	out.country = first(r.CountryCode, r.Country.ISOCode)
	switch {
	case len(r.Subdivisions) > 0:
		out.subdivisions = make([]string, 0, len(r.Subdivisions))
		for _, s := range r.Subdivisions {
			if v := first(s.ISOCode, s.Names.En); v != "" {
				out.subdivisions = append(out.subdivisions, v)
			}
		}
	case r.State1 != "" || r.State2 != "":
		out.subdivisions = make([]string, 0, 2)
		for _, s := range []string{r.State1, r.State2} {
			if s != "" {
				out.subdivisions = append(out.subdivisions, s)
			}
		}
	}
	out.city = string(r.City)
	out.postcode = first(r.Postcode, r.Postal.Code)
	if r.Latitude != 0 || r.Longitude != 0 {
		out.lat, out.lon = r.Latitude, r.Longitude
	} else {
		out.lat, out.lon = r.Location.Latitude, r.Location.Longitude
	}
	out.timeZone = first(r.Timezone, r.Location.TimeZone)
	out.asn = r.ASN
	out.org = r.Org
	if out.asn == 0 {
		out.asn, out.org = r.Traits.ASN, r.Traits.Org
	}
	out.vpn = r.IsAnonymousVPN || r.Traits.IsAnonymousVPN
	out.hosting = r.IsHostingProvider || r.Traits.IsHostingProvider
	return out
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// cityValue decodes "city" in either layout: a plain string (flat) or a
// GeoIP2 map {"geoname_id": ..., "names": {"en": ...}}.
type cityValue string

var errCityKind = errors.New("city is neither a string nor a map")

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (c *cityValue) UnmarshalMaxMindDBCursor(cur mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	kind, err := cur.Kind()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	switch kind {
	case mmdbdata.KindString:
		s, next, err := cur.ReadString()
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
		*c = cityValue(s)
		return next, nil
	case mmdbdata.KindMap:
		return c.readNames(cur, 0)
	default:
		return mmdbdata.Cursor{}, errCityKind
	}
}

// readNames walks a map looking for names.en; depth bounds the recursion to
// the two levels of the GeoIP2 layout.
func (c *cityValue) readNames(cur mmdbdata.Cursor, depth int) (mmdbdata.Cursor, error) {
	m, err := cur.Map()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	var next mmdbdata.Cursor
	for {
		key, val, ok := m.Next(next)
		if !ok {
			break
		}
		switch {
		case depth == 0 && string(key) == "names":
			next, err = c.readNames(val, 1)
		case depth == 1 && string(key) == "en":
			var s string
			s, next, err = val.ReadString()
			*c = cityValue(s)
		default:
			next, err = val.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	return m.End()
}
