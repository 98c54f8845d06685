package geo

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ProviderKind says what an autonomous system's addresses are.
type ProviderKind uint8

const (
	// NotProvider: not on the list (or removed by an override).
	NotProvider ProviderKind = iota
	// VPN: a VPN provider's exits.
	VPN
	// Hosting: a hosting or cloud provider's servers (and the VPN exits
	// rented there).
	Hosting
)

func (k ProviderKind) String() string {
	switch k {
	case VPN:
		return "vpn"
	case Hosting:
		return "hosting"
	default:
		return "none"
	}
}

// Provider is one entry of the list.
type Provider struct {
	ASN    uint32
	Kind   ProviderKind
	Org    string
	Source string // where the entry was checked
}

// Providers is an immutable ASN → provider list, safe for concurrent use.
type Providers struct {
	m map[uint32]Provider
}

//go:embed providers.csv
var shippedProviders []byte

// DefaultProviders is the list shipped in the binary (providers.csv).
func DefaultProviders() *Providers {
	p, err := ParseProviders(bytes.NewReader(shippedProviders), "providers.csv (shipped)", nil)
	if err != nil {
		panic(err) // a test proves the shipped file parses
	}
	return p
}

// LoadProviders reads an override file in the same format as the shipped
// list and applies it over base (which may be nil): entries add or replace,
// kind "none" removes.
func LoadProviders(path string, base *Providers) (*Providers, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("provider list %s: %w", path, err)
	}
	defer f.Close()
	return ParseProviders(f, path, base)
}

// ParseProviders reads a provider list (asn,kind,organisation,source; '#'
// comments) from r over base. Errors name the file and line.
func ParseProviders(r io.Reader, name string, base *Providers) (*Providers, error) {
	out := &Providers{m: map[uint32]Provider{}}
	if base != nil {
		maps.Copy(out.m, base.m)
	}
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	seen := map[uint32]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// FieldPos panics after a read error; the ParseError has the line.
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			return nil, fmt.Errorf("provider list %s line %d: %w: %w", name, line, ErrBadProviders, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != 4 {
			return nil, fmt.Errorf("provider list %s line %d: %w: want 4 fields (asn,kind,organisation,source), got %d", name, line, ErrBadProviders, len(rec))
		}
		asn, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(rec[0]), "AS"), 10, 32)
		if err != nil || asn == 0 {
			return nil, fmt.Errorf("provider list %s line %d: %w: asn %q is not a number from 1 to 4294967295", name, line, ErrBadProviders, rec[0])
		}
		if prev, dup := seen[uint32(asn)]; dup {
			return nil, fmt.Errorf("provider list %s line %d: %w: AS%d already listed on line %d", name, line, ErrBadProviders, asn, prev)
		}
		seen[uint32(asn)] = line
		var kind ProviderKind
		switch strings.TrimSpace(rec[1]) {
		case "vpn":
			kind = VPN
		case "hosting":
			kind = Hosting
		case "none":
			delete(out.m, uint32(asn))
			continue
		default:
			return nil, fmt.Errorf("provider list %s line %d: %w: kind %q (want vpn, hosting or none)", name, line, ErrBadProviders, rec[1])
		}
		if strings.TrimSpace(rec[3]) == "" {
			return nil, fmt.Errorf("provider list %s line %d: %w: AS%d has no source", name, line, ErrBadProviders, asn)
		}
		out.m[uint32(asn)] = Provider{ASN: uint32(asn), Kind: kind, Org: strings.TrimSpace(rec[2]), Source: strings.TrimSpace(rec[3])}
	}
	return out, nil
}

// Kind returns what the ASN is on the list.
func (p *Providers) Kind(asn uint32) ProviderKind {
	if p == nil || asn == 0 {
		return NotProvider
	}
	return p.m[asn].Kind
}

// Get returns the entry for an ASN.
func (p *Providers) Get(asn uint32) (Provider, bool) {
	if p == nil {
		return Provider{}, false
	}
	e, ok := p.m[asn]
	return e, ok
}

// All returns the entries sorted by ASN.
func (p *Providers) All() []Provider {
	if p == nil {
		return nil
	}
	out := slices.Collect(maps.Values(p.m))
	slices.SortFunc(out, func(a, b Provider) int { return int(int64(a.ASN) - int64(b.ASN)) })
	return out
}
