package geo

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// Config names the files a Locator reads.
type Config struct {
	// PlaceFiles are city or country .mmdb files, tried in order; the first
	// that covers the address family and has a record wins. Give both the
	// -ipv4 and -ipv6 files of an @ip-location-db package: its IPv6 file
	// holds no IPv4 addresses.
	PlaceFiles []string
	// ASNFiles are ASN sources, tried in order: .mmdb (GeoLite2-ASN style)
	// or .csv (@ip-location-db/asn ranges). An ASN found here overrides one
	// that a place file carries.
	ASNFiles []string
	// ProviderFile, if set, is applied over the shipped VPN/hosting list
	// (same CSV format; kind "none" removes an entry).
	ProviderFile string
	// DB holds the per-.mmdb settings.
	DB DBConfig
}

// DefaultConfig has no files (the caller names them) and the default
// per-database settings.
func DefaultConfig() Config {
	return Config{DB: DefaultDBConfig()}
}

// Locator combines place databases, ASN sources and the provider list. It
// is safe for concurrent use.
type Locator struct {
	places    []*DB
	asns      []ASNSource
	closers   []*DB
	providers *Providers
}

// Open opens every file named in cfg, failing at start-up on the first
// missing or bad one (the error names it).
func Open(cfg Config) (_ *Locator, err error) {
	if len(cfg.PlaceFiles) == 0 && len(cfg.ASNFiles) == 0 {
		return nil, ErrNoSource
	}
	l := &Locator{providers: DefaultProviders()}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	for _, path := range cfg.PlaceFiles {
		db, err := OpenDB(path, cfg.DB)
		if err != nil {
			return nil, err
		}
		l.places = append(l.places, db)
		l.closers = append(l.closers, db)
	}
	for _, path := range cfg.ASNFiles {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			t, err := LoadASNCSV(path)
			if err != nil {
				return nil, err
			}
			l.asns = append(l.asns, t)
		case ".mmdb":
			db, err := OpenDB(path, cfg.DB)
			if err != nil {
				return nil, err
			}
			l.asns = append(l.asns, db)
			l.closers = append(l.closers, db)
		default:
			return nil, fmt.Errorf("ASN file %s: want a .csv or .mmdb file", path)
		}
	}
	if cfg.ProviderFile != "" {
		p, err := LoadProviders(cfg.ProviderFile, l.providers)
		if err != nil {
			return nil, err
		}
		l.providers = p
	}
	return l, nil
}

// NewLocator builds a Locator from sources already opened (tests, the lab).
// providers may be nil for the shipped list.
func NewLocator(places []*DB, asns []ASNSource, providers *Providers) *Locator {
	if providers == nil {
		providers = DefaultProviders()
	}
	return &Locator{places: places, asns: asns, providers: providers}
}

// Close closes the files Open opened.
func (l *Locator) Close() error {
	var errs []error
	for _, db := range l.closers {
		errs = append(errs, db.Close())
	}
	l.closers = nil
	return errors.Join(errs...)
}

// Providers is the VPN/hosting list in force.
func (l *Locator) Providers() *Providers { return l.providers }

// Lookup places addr. It returns what the sources know (a Place may have an
// ASN and no country, or the reverse) and ErrNoRecord when none had a
// record, ErrNotCovered when no place database covers the address family
// and no ASN source knew it either.
func (l *Locator) Lookup(addr netip.Addr) (Place, error) {
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return Place{}, ErrInvalidAddr
	}
	var p Place
	covered, found := false, false
	for _, db := range l.places {
		if !db.Covers(addr) {
			continue
		}
		covered = true
		rec, ok, err := db.lookup(addr)
		if err != nil {
			return Place{}, err
		}
		if ok {
			rec.fill(&p)
			p.DB, p.DBBuild = db.name, db.build
			found = true
			break
		}
	}
	for _, src := range l.asns {
		if asn, org, ok := src.LookupASN(addr); ok {
			p.ASN, p.Org = asn, org
			found = true
			break
		}
	}
	switch l.providers.Kind(p.ASN) {
	case VPN:
		p.VPN = true
	case Hosting:
		p.Hosting = true
	}
	if !found {
		if !covered && len(l.places) > 0 {
			return Place{}, fmt.Errorf("%s: %w", addr, ErrNotCovered)
		}
		return Place{}, fmt.Errorf("%s: %w", addr, ErrNoRecord)
	}
	return p, nil
}
