package geo

import (
	"cmp"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ASNSource gives the autonomous system of an address.
type ASNSource interface {
	LookupASN(addr netip.Addr) (asn uint32, org string, ok bool)
}

// ASNTable is a compact sorted table of address ranges and their
// autonomous systems, searched by binary search. It is immutable once
// loaded and safe for concurrent use.
type ASNTable struct {
	name string
	v4   []range4
	v6   []range6
	orgs []string // deduplicated organisation names; ranges index into it
	// overlaps counts input ranges that overlapped another and were cut.
	overlaps int
}

// Overlaps is the number of input ranges that overlapped another range and
// were resolved (see ParseASNCSV).

type range4 struct {
	start, end uint32
	asn        uint32
	org        uint32
}

type range6 struct {
	startHi, startLo uint64
	endHi, endLo     uint64
	asn              uint32
	org              uint32
}

func (t *ASNTable) Overlaps() int { return t.overlaps }

// Len is the number of ranges, IPv4 and IPv6.
func (t *ASNTable) Len() int { return len(t.v4) + len(t.v6) }

// Name is the file name the table was loaded from.
func (t *ASNTable) Name() string { return t.name }

// LookupASN implements ASNSource.
func (t *ASNTable) LookupASN(addr netip.Addr) (uint32, string, bool) {
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		v := binary.BigEndian.Uint32(b[:])
		// The first range whose end is at or above v; ranges do not
		// overlap, so it is the only candidate.
		i, _ := slices.BinarySearchFunc(t.v4, v, func(r range4, v uint32) int { return cmp.Compare(r.end, v) })
		if i < len(t.v4) && t.v4[i].start <= v {
			return t.v4[i].asn, t.orgs[t.v4[i].org], true
		}
		return 0, "", false
	}
	if !addr.Is6() {
		return 0, "", false
	}
	b := addr.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	i, _ := slices.BinarySearchFunc(t.v6, [2]uint64{hi, lo}, func(r range6, v [2]uint64) int {
		return cmp128(r.endHi, r.endLo, v[0], v[1])
	})
	if i < len(t.v6) && cmp128(t.v6[i].startHi, t.v6[i].startLo, hi, lo) <= 0 {
		return t.v6[i].asn, t.orgs[t.v6[i].org], true
	}
	return 0, "", false
}

func cmp128(ahi, alo, bhi, blo uint64) int {
	if c := cmp.Compare(ahi, bhi); c != 0 {
		return c
	}
	return cmp.Compare(alo, blo)
}

// LoadASNCSV reads an ASN range CSV file as @ip-location-db/asn ships it:
// no header, four columns ip_range_start, ip_range_end (inclusive; dotted or
// colon form, or decimal numbers in the -num files),
// autonomous_system_number, autonomous_system_organization. Errors name the
// file and line.
func LoadASNCSV(path string) (*ASNTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ASN file %s: %w", path, err)
	}
	defer f.Close()
	return ParseASNCSV(f, path)
}

// ParseASNCSV reads ranges from r (see LoadASNCSV); name is used in errors
// and, when it contains "ipv6", makes decimal addresses IPv6 even below
// 2^32. A header line starting with ip_range_start and lines starting
// with '#' are skipped. Overlapping ranges are resolved (see
// resolveOverlaps) and counted in Overlaps.
func ParseASNCSV(r io.Reader, name string) (*ASNTable, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.Comment = '#'
	numericV6 := strings.Contains(strings.ToLower(filepath.Base(name)), "ipv6")

	t := &ASNTable{name: filepath.Base(name)}
	orgIndex := map[string]uint32{}
	var spans4, spans6 []span
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
			return nil, fmt.Errorf("ASN file %s line %d: %w: %w", name, line, ErrBadCSV, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) > 0 && strings.TrimSpace(rec[0]) == "ip_range_start" {
			continue
		}
		if len(rec) != 4 {
			return nil, badLine(name, line, "want 4 fields (ip_range_start,ip_range_end,autonomous_system_number,autonomous_system_organization), got %d", len(rec))
		}
		start, err := parseRangeAddr(rec[0], numericV6)
		if err != nil {
			return nil, badLine(name, line, "ip_range_start %q: %v", rec[0], err)
		}
		end, err := parseRangeAddr(rec[1], numericV6)
		if err != nil {
			return nil, badLine(name, line, "ip_range_end %q: %v", rec[1], err)
		}
		if start.Is4() != end.Is4() {
			return nil, badLine(name, line, "range %s-%s mixes IPv4 and IPv6", start, end)
		}
		if end.Less(start) {
			return nil, badLine(name, line, "range end %s is before its start %s", end, start)
		}
		asn, err := strconv.ParseUint(strings.TrimSpace(rec[2]), 10, 32)
		if err != nil {
			return nil, badLine(name, line, "autonomous_system_number %q: %v", rec[2], err)
		}
		org := rec[3]
		oi, ok := orgIndex[org]
		if !ok {
			if len(t.orgs) == math.MaxUint32 {
				return nil, badLine(name, line, "too many organisations")
			}
			oi = uint32(len(t.orgs))
			org = strings.Clone(org) // rec is reused by the reader
			t.orgs = append(t.orgs, org)
			orgIndex[org] = oi
		}
		s := span{start: toU128(start), end: toU128(end), asn: uint32(asn), org: oi, line: line}
		if start.Is4() {
			spans4 = append(spans4, s)
		} else {
			spans6 = append(spans6, s)
		}
	}
	for _, spans := range []*[]span{&spans4, &spans6} {
		var n int
		*spans, n = resolveOverlaps(*spans)
		if n < 0 {
			return nil, badLine(name, -n, "more than %d ranges overlap one another from here", maxCluster)
		}
		t.overlaps += n
	}
	t.v4 = make([]range4, len(spans4))
	for i, s := range spans4 {
		t.v4[i] = range4{uint32(s.start.lo), uint32(s.end.lo), s.asn, s.org}
	}
	t.v6 = make([]range6, len(spans6))
	for i, s := range spans6 {
		t.v6[i] = range6{s.start.hi, s.start.lo, s.end.hi, s.end.lo, s.asn, s.org}
	}
	return t, nil
}

func badLine(name string, line int, format string, a ...any) error {
	return fmt.Errorf("ASN file %s line %d: %w: %s", name, line, ErrBadCSV, fmt.Sprintf(format, a...))
}

// u128 is an address as a 128-bit number (IPv4 in the low 32 bits).
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (a u128) cmp(b u128) int { return cmp128(a.hi, a.lo, b.hi, b.lo) }

func (a u128) succ() (u128, bool) {
	lo, c := bits.Add64(a.lo, 1, 0)
	hi, c2 := bits.Add64(a.hi, 0, c)
	return u128{hi, lo}, c2 == 0
}

func (a u128) pred() u128 {
	lo, b := bits.Sub64(a.lo, 1, 0)
	hi, _ := bits.Sub64(a.hi, 0, b)
	return u128{hi, lo}
}

// span is a range while a table is being built.
type span struct {
	start, end u128
	asn, org   uint32
	line       int
}

// resolveOverlaps sorts spans by start and makes them disjoint. Published
// files are not always clean (@ip-location-db/asn has a few overlapping
// ranges), so overlaps are resolved, not refused: over any address, the
// range that starts last wins (the more specific one, in practice), ties
// going to the shorter range, then to the earlier line; an enclosing range
// resumes after a range nested in it. It returns the number of input
// ranges that overlapped another, or minus the first line of a cluster
// larger than maxCluster.
func resolveOverlaps(in []span) ([]span, int) {
	slices.SortStableFunc(in, func(a, b span) int { return a.start.cmp(b.start) })
	out := make([]span, 0, len(in))
	overlapping := 0
	for i := 0; i < len(in); {
		// A cluster: ranges that overlap, directly or through others.
		j, maxEnd := i+1, in[i].end
		for j < len(in) && in[j].start.cmp(maxEnd) <= 0 {
			if in[j].end.cmp(maxEnd) > 0 {
				maxEnd = in[j].end
			}
			j++
		}
		if j == i+1 {
			out = append(out, in[i])
			i = j
			continue
		}
		if j-i > maxCluster {
			return nil, -in[i].line
		}
		overlapping += j - i
		out = appendCluster(out, in[i:j], maxEnd)
		i = j
	}
	return slices.Clip(out), overlapping
}

// maxCluster bounds the work on a file of deeply nested ranges (the cost
// of a cluster grows with the square of its size); real files have
// clusters of two or three.
const maxCluster = 1024

// appendCluster cuts a cluster of overlapping ranges into elementary
// segments, picks each segment's winner and appends the segments, merging
// neighbours with the same winner.
func appendCluster(out, c []span, maxEnd u128) []span {
	points := make([]u128, 0, 2*len(c))
	for _, s := range c {
		points = append(points, s.start)
		if n, ok := s.end.succ(); ok && n.cmp(maxEnd) <= 0 {
			points = append(points, n)
		}
	}
	slices.SortFunc(points, u128.cmp)
	points = slices.Compact(points)
	last := -1 // index in c of the previous segment's winner
	for k, p := range points {
		segEnd := maxEnd
		if k+1 < len(points) {
			segEnd = points[k+1].pred()
		}
		w := -1
		for i, s := range c {
			if s.start.cmp(p) > 0 || s.end.cmp(p) < 0 {
				continue
			}
			if w < 0 || s.start.cmp(c[w].start) > 0 ||
				(s.start == c[w].start && s.end.cmp(c[w].end) < 0) {
				w = i
			}
		}
		if w < 0 {
			continue // cannot happen inside a cluster; kept for safety
		}
		if w == last && len(out) > 0 {
			out[len(out)-1].end = segEnd
			continue
		}
		seg := c[w]
		seg.start, seg.end = p, segEnd
		out = append(out, seg)
		last = w
	}
	return out
}

// parseRangeAddr parses an address in text form or as a decimal number. A
// decimal above 2^32-1, or any decimal when numericV6 is set, is IPv6.
func parseRangeAddr(s string, numericV6 bool) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, errors.New("empty")
	}
	if strings.ContainsAny(s, ".:") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, err
		}
		if a.Zone() != "" {
			return netip.Addr{}, errors.New("zone not allowed")
		}
		return a.Unmap(), nil
	}
	hi, lo, err := parseUint128(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if !numericV6 && hi == 0 && lo <= math.MaxUint32 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(lo))
		return netip.AddrFrom4(b), nil
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	// Unmapped like the text forms, so that a range in ::ffff:0:0/96 is
	// an IPv4 range, found by IPv4 lookups.
	return netip.AddrFrom16(b).Unmap(), nil
}

var errUint128 = errors.New("not a decimal number below 2^128")

// parseUint128 parses a decimal number of up to 128 bits.
func parseUint128(s string) (hi, lo uint64, err error) {
	if len(s) > 39 {
		return 0, 0, errUint128
	}
	for i := 0; i < len(s); i++ {
		d := s[i]
		if d < '0' || d > '9' {
			return 0, 0, errUint128
		}
		// (hi,lo) = (hi,lo)*10 + d, checking overflow.
		h1, l1 := bits.Mul64(lo, 10)
		h2, h2lo := bits.Mul64(hi, 10)
		if h2 != 0 {
			return 0, 0, errUint128
		}
		nh, c := bits.Add64(h1, h2lo, 0)
		if c != 0 {
			return 0, 0, errUint128
		}
		nl, c := bits.Add64(l1, uint64(d-'0'), 0)
		nh, c2 := bits.Add64(nh, 0, c)
		if c2 != 0 {
			return 0, 0, errUint128
		}
		hi, lo = nh, nl
	}
	return hi, lo, nil
}
