package isp

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrRetention is wrapped by every error about a retention file or period.
var ErrRetention = errors.New("bad retention")

// maxPeriodYears bounds a period so that date arithmetic stays sane.
const maxPeriodYears = 100

// Period is a calendar period: retention laws count in years, months and
// days ("one year from the day of recording"), not in fixed hours, so a year
// back from 1 March 2025 is 1 March 2024 whatever the leap days.
type Period struct {
	Years, Months, Days int
}

// Cutoff is now minus the period, in UTC calendar terms. Years and months
// are taken first, with the day clamped to the end of a shorter month (six
// months back from 31 August is 28 February, a year back from 29 February
// is 28 February), then days.
func (p Period) Cutoff(now time.Time) time.Time {
	now = now.UTC()
	y, m, d := now.Date()
	months := int(m) - 1 - p.Years*12 - p.Months
	y += months / 12
	months %= 12
	if months < 0 {
		months += 12
		y--
	}
	first := time.Date(y, time.Month(months+1), 1, 0, 0, 0, 0, time.UTC)
	if last := first.AddDate(0, 1, -1).Day(); d > last {
		d = last
	}
	hh, mm, ss := now.Clock()
	t := time.Date(y, time.Month(months+1), d, hh, mm, ss, now.Nanosecond(), time.UTC)
	return t.AddDate(0, 0, -p.Days)
}

// IsZero reports whether the period is empty: every sighting is too old.
func (p Period) IsZero() bool { return p == Period{} }

// String prints the period as ParsePeriod reads it: "1y", "6mo", "1y6mo15d", "0d".
func (p Period) String() string {
	var b strings.Builder
	if p.Years != 0 {
		fmt.Fprintf(&b, "%dy", p.Years)
	}
	if p.Months != 0 {
		fmt.Fprintf(&b, "%dmo", p.Months)
	}
	if p.Days != 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%dd", p.Days)
	}
	return b.String()
}

// ParsePeriod reads a period: one or more <number><unit> with units y
// (years), mo (months) and d (days), each at most once and in that order:
// "1y", "6mo", "90d", "1y6mo". "0d" is a zero period.
func ParsePeriod(s string) (Period, error) {
	var p Period
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return p, fmt.Errorf("%w: empty period (want e.g. 1y, 6mo, 90d)", ErrRetention)
	}
	last := -1
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return p, fmt.Errorf("%w: period %q: want a number before each unit (e.g. 1y, 6mo, 90d)", ErrRetention, in)
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil || i > 6 {
			return p, fmt.Errorf("%w: period %q: number %q too large", ErrRetention, in, s[:i])
		}
		s = s[i:]
		var unit int
		switch {
		case strings.HasPrefix(s, "mo"):
			unit, s = 1, s[2:]
			p.Months = n
		case strings.HasPrefix(s, "y"):
			unit, s = 0, s[1:]
			p.Years = n
		case strings.HasPrefix(s, "d"):
			unit, s = 2, s[1:]
			p.Days = n
		default:
			return p, fmt.Errorf("%w: period %q: unknown unit (known: y, mo, d)", ErrRetention, in)
		}
		if unit <= last {
			return p, fmt.Errorf("%w: period %q: units must each appear once, in the order y, mo, d", ErrRetention, in)
		}
		last = unit
	}
	if p.Years*366+p.Months*31+p.Days > maxPeriodYears*366 {
		return p, fmt.Errorf("%w: period %q: longer than %d years", ErrRetention, in, maxPeriodYears)
	}
	return p, nil
}

// Retention is how long ISPs keep the data that ties an address and port
// at an instant to a subscriber, per country of the address.
type Retention struct {
	Default   Period            // for countries not listed, and unknown ones
	ByCountry map[string]Period // by ISO 3166-1 alpha-2 code, upper case
}

// DefaultRetention is one year everywhere, France included. In France,
// operators keep connection data one year (the figure the project was
// given); Vigil knows no other country's law, so it assumes the same and
// expects deployments elsewhere to set theirs in a retention file. Where a
// law keeps data shorter, a one-year default asks for data already gone: the
// ISP answers that it has none, and nothing worse happens.
func DefaultRetention() Retention {
	return Retention{
		Default:   Period{Years: 1},
		ByCountry: map[string]Period{"FR": {Years: 1}},
	}
}

// For is the period for a country code ("" for unknown).
func (r Retention) For(country string) Period {
	if p, ok := r.ByCountry[strings.ToUpper(country)]; ok {
		return p
	}
	return r.Default
}

// LoadRetention reads a retention file (see ParseRetention).
func LoadRetention(path string) (Retention, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Retention{}, fmt.Errorf("retention file: %w", err)
	}
	return ParseRetention(b, path)
}

// ParseRetention reads a retention file; name is used in errors. The format:
//
//	# Retention of subscriber-identification data by ISPs.
//	default: 1y          # required: countries not listed, and unknown ones
//	countries:           # optional
//	  FR: 1y
//	  BE: 1y
//	  XX: 6mo
//
// Unknown keys, malformed periods, bad or repeated country codes are refused
// with the file name and line.
func ParseRetention(b []byte, name string) (Retention, error) {
	errf := func(n *yaml.Node, format string, a ...any) error {
		line := 0
		if n != nil {
			line = n.Line
		}
		return fmt.Errorf("retention %s line %d: %w: %s", name, line, ErrRetention, fmt.Sprintf(format, a...))
	}
	period := func(n *yaml.Node, what string) (Period, error) {
		if n.Kind != yaml.ScalarNode {
			return Period{}, errf(n, "%s: want a period such as 1y, 6mo, 90d", what)
		}
		p, err := ParsePeriod(n.Value)
		if err != nil {
			return Period{}, errf(n, "%s: %s", what, strings.TrimPrefix(err.Error(), ErrRetention.Error()+": "))
		}
		return p, nil
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		return Retention{}, fmt.Errorf("retention %s: %w: %w", name, ErrRetention, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return Retention{}, errf(&doc, "want one YAML document")
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return Retention{}, errf(top, "want a mapping with default and countries")
	}
	r := Retention{ByCountry: map[string]Period{}}
	seen := map[string]int{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return Retention{}, errf(k, "keys must be plain names")
		}
		if l, dup := seen[k.Value]; dup {
			return Retention{}, errf(k, "key %q already given on line %d", k.Value, l)
		}
		seen[k.Value] = k.Line
		switch k.Value {
		case "default":
			p, err := period(v, "default")
			if err != nil {
				return Retention{}, err
			}
			r.Default = p
		case "countries":
			if v.Kind != yaml.MappingNode {
				return Retention{}, errf(v, "countries: want a mapping of country code to period")
			}
			lines := map[string]int{}
			for j := 0; j+1 < len(v.Content); j += 2 {
				ck, cv := v.Content[j], v.Content[j+1]
				c := ck.Value
				if ck.Kind != yaml.ScalarNode || !validCountry(c) {
					return Retention{}, errf(ck, "country %q: want an ISO 3166-1 alpha-2 code in upper case, such as FR", c)
				}
				if l, dup := lines[c]; dup {
					return Retention{}, errf(ck, "country %s already given on line %d", c, l)
				}
				lines[c] = ck.Line
				p, err := period(cv, "country "+c)
				if err != nil {
					return Retention{}, err
				}
				r.ByCountry[c] = p
			}
		default:
			return Retention{}, errf(k, "unknown key %q (known: default, countries)", k.Value)
		}
	}
	if _, ok := seen["default"]; !ok {
		return Retention{}, errf(top, "default: the period for countries not listed is required")
	}
	return r, nil
}

func validCountry(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// String lists the table, for logs and the summary page: "default 1y; FR 1y".
func (r Retention) String() string {
	parts := []string{"default " + r.Default.String()}
	for _, c := range slices.Sorted(maps.Keys(r.ByCountry)) {
		parts = append(parts, c+" "+r.ByCountry[c].String())
	}
	return strings.Join(parts, "; ")
}
