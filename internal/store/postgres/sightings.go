package postgres

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// The analysis's timeline (migration 0022): one row of
// analysis_timeline_days an endpoint and UTC day, its sightings (the
// observation's time and seq) packed in a bytea. Each save appends one
// run to the row of every (endpoint, day) it touches; a run is
//
//	0x01                       the run's tag (its format)
//	uvarint n                  n >= 1 sightings, in ascending (time, seq)
//	n times:
//	  uvarint time delta       from the day's start for the first, else from the previous time
//	  seq                      uvarint for the first; else the zigzag varint delta from the previous seq
//
// Varints are minimal (no trailing 0x80 bytes; at most 10 bytes, below
// 2^64). Within a run the sightings strictly ascend; runs of one row may
// overlap and repeat each other (a save run again), which readers sort
// and merge. vigil_timeline_unpack (migration 0022) is the same decoder in
// SQL, for retention's queries; TestSightingsDecodersAgree holds them to
// the same answers.

// runTag starts every run (a tampered or foreign value rarely does).
const runTag = 0x01

// The bounds of one row (an endpoint's day) that the readers accept, in Go
// (decodeSightings, endpointSightings) and in SQL (vigil_timeline_unpack,
// migration 0024, which holds the same numbers): a value beyond them is
// refused as malformed, with its size, before it is decoded (or, in Go,
// read from the server), rather than decoded bounded only by its size
// (a hand-made row of a gigabyte would have been 500 million sightings,
// 8 GB in memory). A day holds at most maxDaySightings sightings, repeats
// included (one every 82 ms all day at one address and port: the saves'
// rewriting of the row, N²/2 sightings written, makes a day of even
// 10,000 costly, docs/benchmarks.md), in at most maxPackedBytes (8 bytes
// a sighting: a busy endpoint's take about 5).
const (
	maxDaySightings = 1 << 20
	maxPackedBytes  = 8 << 20
)

// errSightings is the error of a malformed packed value.
var errSightings = errors.New("malformed packed sightings")

// sighting is one observation on an endpoint's timeline.
type sighting struct {
	timeNS, seq int64
}

// dayOf is the UTC day of t (days since 1970-01-01, rounded down).
func dayOf(t int64) int64 {
	d := t / dayNS
	if t%dayNS < 0 {
		d--
	}
	return d
}

// appendRun appends the run of ss (sightings of one day, ascending and
// distinct) to b.
func appendRun(b []byte, day int64, ss []sighting) []byte {
	b = append(b, runTag)
	b = appendUvarint(b, uint64(len(ss)))
	var prevT, prevS int64
	for i, s := range ss {
		if i == 0 {
			// The offset in the day: t - day*dayNS, computed in wrapping
			// arithmetic (exact, since t and the offset fit in int64 even
			// where day*dayNS does not).
			b = appendUvarint(b, uint64(s.timeNS-day*dayNS))
			b = appendUvarint(b, uint64(s.seq))
		} else {
			b = appendUvarint(b, uint64(s.timeNS-prevT))
			d := s.seq - prevS
			b = appendUvarint(b, uint64(d<<1)^uint64(d>>63))
		}
		prevT, prevS = s.timeNS, s.seq
	}
	return b
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// uvarint reads a minimal varint of b at i, returning it and the index
// after it.
func uvarint(b []byte, i int) (uint64, int, error) {
	var v uint64
	for k := 0; k < 10; k++ {
		if i >= len(b) {
			return 0, i, fmt.Errorf("%w: a varint cut off at byte %d", errSightings, i)
		}
		c := b[i]
		i++
		if k == 9 && c > 1 {
			return 0, i, fmt.Errorf("%w: a varint past 64 bits at byte %d", errSightings, i-1)
		}
		v |= uint64(c&0x7f) << (7 * k)
		if c < 0x80 {
			if c == 0 && k > 0 {
				return 0, i, fmt.Errorf("%w: a varint not minimal at byte %d", errSightings, i-1)
			}
			return v, i, nil
		}
	}
	return 0, i, fmt.Errorf("%w: a varint of more than 10 bytes at byte %d", errSightings, i)
}

// decodeSightings appends the sightings packed in b, a row of day, to
// out, in the order stored. Anything else than whole runs of strictly
// ascending sightings, seqs of at least 1 and times within the day, is an
// error: a damaged row must not show another observation, or hide one. So
// is a value of more than maxPackedBytes, or of more than maxDaySightings
// sightings in all (checked at each run's count, before its sightings
// are decoded).
func decodeSightings(out []sighting, day int64, b []byte) ([]sighting, error) {
	if len(b) == 0 {
		return out, fmt.Errorf("%w: empty", errSightings)
	}
	if len(b) > maxPackedBytes {
		return out, fmt.Errorf("%w: %d bytes, more than the %d a day's row may hold", errSightings, len(b), maxPackedBytes)
	}
	total := uint64(0)
	base := day * dayNS // wraps at the edges of time; the checks below hold the sum
	for i := 0; i < len(b); {
		if b[i] != runTag {
			return out, fmt.Errorf("%w: byte %d is %#x, not a run's tag", errSightings, i, b[i])
		}
		n, j, err := uvarint(b, i+1)
		if err != nil {
			return out, err
		}
		if n == 0 || n > uint64(len(b)-j)/2 {
			return out, fmt.Errorf("%w: a run of %d sightings in %d bytes at byte %d", errSightings, n, len(b)-j, i)
		}
		if total += n; total > maxDaySightings {
			return out, fmt.Errorf("%w: more than %d sightings in a day's row, at the run at byte %d", errSightings, maxDaySightings, i)
		}
		i = j
		var off uint64
		var seq int64
		for k := uint64(0); k < n; k++ {
			var dt, ds uint64
			if dt, i, err = uvarint(b, i); err != nil {
				return out, err
			}
			if ds, i, err = uvarint(b, i); err != nil {
				return out, err
			}
			if dt >= uint64(dayNS) || off+dt >= uint64(dayNS) {
				return out, fmt.Errorf("%w: a time past its day at byte %d", errSightings, i)
			}
			off += dt
			if k == 0 {
				if ds > math.MaxInt64 {
					return out, fmt.Errorf("%w: a seq past 63 bits at byte %d", errSightings, i)
				}
				seq = int64(ds)
			} else {
				d := int64(ds>>1) ^ -int64(ds&1)
				if (d > 0 && seq > math.MaxInt64-d) || (dt == 0 && d <= 0) {
					return out, fmt.Errorf("%w: sightings not ascending at byte %d", errSightings, i)
				}
				seq += d
			}
			if seq < 1 {
				return out, fmt.Errorf("%w: seq %d at byte %d", errSightings, seq, i)
			}
			t := base + int64(off)
			if dayOf(t) != day {
				return out, fmt.Errorf("%w: a time outside int64 at byte %d", errSightings, i)
			}
			out = append(out, sighting{t, seq})
		}
	}
	return out, nil
}

// newestFirst sorts ss newest first (time, then seq, descending) and
// drops repeats: the order of the target page's timeline.
func newestFirst(ss []sighting) []sighting {
	slices.SortFunc(ss, func(a, b sighting) int {
		if a.timeNS != b.timeNS {
			if a.timeNS > b.timeNS {
				return -1
			}
			return 1
		}
		switch {
		case a.seq > b.seq:
			return -1
		case a.seq < b.seq:
			return 1
		}
		return 0
	})
	return slices.Compact(ss)
}
