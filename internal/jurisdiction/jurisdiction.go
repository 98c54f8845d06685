// Package jurisdiction decides which police agency and service has
// jurisdiction over a place, from a YAML rules file that declares the
// agencies and maps autonomous systems, cities, subdivisions (French
// départements) and countries to them.
//
// Precedence, most specific first:
//
//  1. asn          an autonomous system (a VPN provider, a university
//     network): the place of such an address says little about the person,
//     so an operator may send all of it to one office;
//  2. city         a country and a city;
//  3. subdivision  a country and a subdivision: for France a département
//     code ("01".."95", "2A", "2B", "971".."976"), matched against the codes
//     or names that geolocation databases give; elsewhere the subdivision
//     code or name as the database gives it;
//  4. country      the national default;
//  5. default      the global default, required.
//
// Within subdivisions the most specific one (the last: the département,
// before the region) is tried first. The overseas départements, which
// databases report as countries GP, MQ, GF, RE, PM and YT, match the
// French subdivision rules 971..976 and then their own country rule, then
// FR's.
//
// The file format (see examples/jurisdictions/france.yaml):
//
//	agencies:
//	  - {id: fr-ofmin, name: "Office mineurs (OFMIN)", country: FR, contact: "...", address: "..."}
//	default: {agency: fr-ofmin, service: "..."}
//	rules:
//	  - {country: FR, agency: fr-ofmin, service: "..."}
//	  - {country: FR, subdivision: "69", agency: fr-szpj-sud-est, service: "..."}
//	  - {country: FR, city: Lyon, agency: ..., service: ...}
//	  - {asn: 39351, agency: fr-ofmin, service: "..."}
//
// A rule or agency with an unknown key, a rule naming an undeclared agency,
// a bad département code, or two rules for the same key are errors naming
// the file and line, at load.
//
// This package only decides; it must never contact an agency or send
// anything anywhere.
package jurisdiction

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigil-oss/vigil/internal/observe"
)

// ErrRules is wrapped by every error in a rules file.
var ErrRules = errors.New("bad jurisdiction rules")

// Agency is a police agency declared in a rules file.
type Agency struct {
	ID      string // short stable identifier, e.g. "fr-ofmin"
	Name    string
	Country string // ISO 3166-1 alpha-2
	Contact string // how to reach it (free text); may be empty
	// Address is its postal address, as a letter's head prints it (lines
	// separated by "\n"); may be empty.
	Address string
	Note    string
	Line    int // where it was declared
}

// Route is where an observation of a place goes.
type Route struct {
	Agency  string // agency id
	Service string // the service within the agency
	// Reason says which rule matched and where it is, e.g.
	// "subdivision FR/69 (france.yaml:57)".
	Reason string
}

// Rules is a loaded rules file. It is immutable and safe for concurrent
// use.
type Rules struct {
	file     string
	agencies map[string]*Agency
	order    []string // agency ids in file order
	def      *rule
	asn      map[uint32]*rule
	city     map[string]*rule // "CC\x00folded city"
	sub      map[string]*rule // "CC\x00code or folded name"
	country  map[string]*rule
}

type rule struct {
	route Route
	line  int
}

// Load reads and checks a rules file.
func Load(path string) (*Rules, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jurisdiction rules %s: %w", path, err)
	}
	return Parse(b, path)
}

// Parse reads rules from b; name is used in errors and reasons.
func Parse(b []byte, name string) (*Rules, error) {
	p := parser{file: name, base: filepath.Base(name)}
	r, err := p.parse(b)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Agency returns a declared agency.
func (r *Rules) Agency(id string) (Agency, bool) {
	a, ok := r.agencies[id]
	if !ok {
		return Agency{}, false
	}
	return *a, true
}

// Agencies returns the declared agencies in file order.
func (r *Rules) Agencies() []Agency {
	out := make([]Agency, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, *r.agencies[id])
	}
	return out
}

// Route returns the agency and service for a place (see the package
// comment for the precedence). It never fails: the global default is the
// last resort.
func (r *Rules) Route(p observe.Place) Route {
	if p.ASN != 0 {
		if ru, ok := r.asn[p.ASN]; ok {
			return ru.route
		}
	}
	country := p.Country
	overseas := overseasCountries[country]
	if p.City != "" && country != "" {
		if ru := r.lookupKey(r.city, country, p.City); ru != nil {
			return ru.route
		}
		if overseas != "" {
			if ru := r.lookupKey(r.city, "FR", p.City); ru != nil {
				return ru.route
			}
		}
	}
	if country == "FR" {
		for i := len(p.Subdivisions) - 1; i >= 0; i-- {
			if code, ok := DepartementCode(p.Subdivisions[i]); ok {
				if ru, ok := r.sub["FR\x00"+code]; ok {
					return ru.route
				}
			}
		}
	} else if overseas != "" {
		if ru, ok := r.sub["FR\x00"+overseas]; ok {
			return ru.route
		}
	} else if country != "" {
		for i := len(p.Subdivisions) - 1; i >= 0; i-- {
			if ru := r.lookupKey(r.sub, country, p.Subdivisions[i]); ru != nil {
				return ru.route
			}
		}
	}
	if ru, ok := r.country[country]; ok && country != "" {
		return ru.route
	}
	if overseas != "" {
		if ru, ok := r.country["FR"]; ok {
			return ru.route
		}
	}
	return r.def.route
}

// lookupKey finds country+folded(s) in m without allocating for short
// strings.
func (r *Rules) lookupKey(m map[string]*rule, country, s string) *rule {
	var buf [96]byte
	k := append(buf[:0], country...)
	k = append(k, 0)
	k = foldInto(k, s)
	return m[string(k)]
}

func key(country, s string) string {
	return country + "\x00" + fold(s)
}

// parser walks the yaml.v3 node tree so that every error has a line.
type parser struct {
	file, base string
}

func (p *parser) errf(n *yaml.Node, format string, a ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return fmt.Errorf("jurisdiction rules %s line %d: %w: %s", p.file, line, ErrRules, fmt.Sprintf(format, a...))
}

func (p *parser) reason(kind, key string, line int) string {
	return fmt.Sprintf("%s %s (%s:%d)", kind, key, p.base, line)
}

// fields checks that n is a mapping with only the allowed keys and returns
// its values by key.
func (p *parser) fields(n *yaml.Node, what string, allowed ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "%s must be a mapping", what)
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(allowed, k.Value) {
			return nil, p.errf(k, "unknown key %q in %s (known: %s)", k.Value, what, strings.Join(allowed, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, p.errf(k, "key %q given twice in %s", k.Value, what)
		}
		if v.Kind != yaml.ScalarNode && k.Value != "agencies" && k.Value != "rules" && k.Value != "default" {
			return nil, p.errf(v, "%s of %s must be a single value", k.Value, what)
		}
		out[k.Value] = v
	}
	return out, nil
}

func scalar(m map[string]*yaml.Node, k string) string {
	if n, ok := m[k]; ok {
		return strings.TrimSpace(n.Value)
	}
	return ""
}

func validCountry(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func (p *parser) parse(b []byte) (*Rules, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("jurisdiction rules %s: %w: %w", p.file, ErrRules, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.errf(&doc, "want one YAML document")
	}
	top, err := p.fields(doc.Content[0], "the file", "agencies", "default", "rules")
	if err != nil {
		return nil, err
	}
	r := &Rules{
		file:     p.file,
		agencies: map[string]*Agency{},
		asn:      map[uint32]*rule{},
		city:     map[string]*rule{},
		sub:      map[string]*rule{},
		country:  map[string]*rule{},
	}
	an, ok := top["agencies"]
	if !ok || an.Kind != yaml.SequenceNode || len(an.Content) == 0 {
		return nil, p.errf(doc.Content[0], "agencies: want a list of at least one agency")
	}
	for _, n := range an.Content {
		f, err := p.fields(n, "an agency", "id", "name", "country", "contact", "address", "note")
		if err != nil {
			return nil, err
		}
		a := &Agency{ID: scalar(f, "id"), Name: scalar(f, "name"), Country: scalar(f, "country"),
			Contact: scalar(f, "contact"), Address: scalar(f, "address"), Note: scalar(f, "note"), Line: n.Line}
		if a.ID == "" || a.Name == "" {
			return nil, p.errf(n, "an agency needs an id and a name")
		}
		if a.Country != "" && !validCountry(a.Country) {
			return nil, p.errf(f["country"], "country %q: want an ISO 3166-1 alpha-2 code such as FR", a.Country)
		}
		if prev, dup := r.agencies[a.ID]; dup {
			return nil, p.errf(n, "agency %q already declared on line %d", a.ID, prev.Line)
		}
		r.agencies[a.ID] = a
		r.order = append(r.order, a.ID)
	}

	dn, ok := top["default"]
	if !ok {
		return nil, p.errf(doc.Content[0], "default: the global default route is required")
	}
	df, err := p.fields(dn, "the default", "agency", "service", "note")
	if err != nil {
		return nil, err
	}
	if r.def, err = p.target(df, dn, r, "default", ""); err != nil {
		return nil, err
	}

	rn, ok := top["rules"]
	if !ok {
		return r, nil
	}
	if rn.Kind != yaml.SequenceNode {
		return nil, p.errf(rn, "rules: want a list")
	}
	seen := map[string]int{}
	for _, n := range rn.Content {
		f, err := p.fields(n, "a rule", "country", "subdivision", "city", "asn", "agency", "service", "note")
		if err != nil {
			return nil, err
		}
		country, sub, city, asnText := scalar(f, "country"), scalar(f, "subdivision"), scalar(f, "city"), scalar(f, "asn")
		var kind, id string
		switch {
		case asnText != "":
			if country != "" || sub != "" || city != "" {
				return nil, p.errf(n, "an asn rule names no country, subdivision or city")
			}
			asnText = strings.TrimPrefix(strings.TrimPrefix(asnText, "AS"), "as")
			v, err := strconv.ParseUint(asnText, 10, 32)
			if err != nil || v == 0 {
				return nil, p.errf(f["asn"], "asn %q: want a number from 1 to 4294967295", f["asn"].Value)
			}
			kind, id = "asn", "AS"+strconv.FormatUint(v, 10)
		case country == "":
			return nil, p.errf(n, "a rule needs a country or an asn")
		case !validCountry(country):
			return nil, p.errf(f["country"], "country %q: want an ISO 3166-1 alpha-2 code such as FR", country)
		case sub != "" && city != "":
			return nil, p.errf(n, "a rule names a subdivision or a city, not both")
		case sub != "":
			if country == "FR" && !IsDepartementCode(sub) {
				return nil, p.errf(f["subdivision"], "subdivision %q is not a French département code (01..95 without 20, 2A, 2B, 971..976; quote codes so that YAML keeps the leading zero)", sub)
			}
			kind, id = "subdivision", country+"/"+sub
		case city != "":
			kind, id = "city", country+"/"+city
		default:
			kind, id = "country", country
		}
		// Duplicates compare folded keys: "Lyon" and "lyon" are one rule.
		dupKey := kind + "\x00" + id
		if kind == "city" || (kind == "subdivision" && country != "FR") {
			dupKey = kind + "\x00" + key(country, strings.TrimPrefix(id, country+"/"))
		}
		if prev, dup := seen[dupKey]; dup {
			return nil, p.errf(n, "duplicate rule for %s %s (first on line %d)", kind, id, prev)
		}
		seen[dupKey] = n.Line
		ru, err := p.target(f, n, r, kind, id)
		if err != nil {
			return nil, err
		}
		switch kind {
		case "asn":
			v, _ := strconv.ParseUint(strings.TrimPrefix(id, "AS"), 10, 32)
			r.asn[uint32(v)] = ru
		case "city":
			r.city[key(country, city)] = ru
		case "subdivision":
			if country == "FR" {
				r.sub["FR\x00"+sub] = ru
			} else {
				r.sub[key(country, sub)] = ru
			}
		case "country":
			r.country[country] = ru
		}
	}
	return r, nil
}

// target reads agency and service and makes the rule's route.
func (p *parser) target(f map[string]*yaml.Node, n *yaml.Node, r *Rules, kind, id string) (*rule, error) {
	agency, service := scalar(f, "agency"), scalar(f, "service")
	if agency == "" {
		return nil, p.errf(n, "%s rule has no agency", kind)
	}
	if _, ok := r.agencies[agency]; !ok {
		return nil, p.errf(f["agency"], "agency %q is not declared under agencies", agency)
	}
	reason := p.reason(kind, id, n.Line)
	if kind == "default" {
		reason = fmt.Sprintf("default (%s:%d)", p.base, n.Line)
	}
	return &rule{route: Route{Agency: agency, Service: service, Reason: reason}, line: n.Line}, nil
}
