package postgres

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// FuzzDecodeSightings: any bytes a row may hold (at most maxPackedBytes) (a damaged disk, a
// hand-edited row) decode to sightings of that day, seq 1 or more, that
// pack back to the same set, or to an error of errSightings; never a
// panic.
func FuzzDecodeSightings(f *testing.F) {
	f.Add(int64(20514), appendRun(nil, 20514, []sighting{{20514*dayNS + 5, 3}, {20514*dayNS + 5, 4}, {20514*dayNS + 900, 2}}))
	f.Add(dayOf(math.MinInt64), appendRun(nil, dayOf(math.MinInt64), []sighting{{math.MinInt64, 1}}))
	f.Add(dayOf(math.MaxInt64), appendRun(nil, dayOf(math.MaxInt64), []sighting{{math.MaxInt64, math.MaxInt64}}))
	f.Add(int64(-1), []byte{1, 2, 0, 1, 0, 0})
	f.Add(int64(0), []byte{1, 1, 0x80, 0x80, 0xbc, 0x8a, 0xc9, 0xd2, 0x13, 1})
	f.Fuzz(func(t *testing.T, day int64, b []byte) {
		day %= 1 << 31
		ss, err := decodeSightings(nil, day, b)
		if err != nil {
			if !errors.Is(err, errSightings) {
				t.Fatalf("error %v is not errSightings", err)
			}
			return
		}
		if len(ss) == 0 || len(ss) > maxDaySightings {
			t.Fatalf("%x read as %d sightings without an error", b, len(ss))
		}
		for _, s := range ss {
			if dayOf(s.timeNS) != day || s.seq < 1 {
				t.Fatalf("%x read as %+v of day %d", b, s, day)
			}
		}
		want := newestFirst(slices.Clone(ss))
		asc := slices.Clone(want)
		slices.Reverse(asc)
		again, err := decodeSightings(nil, day, appendRun(nil, day, asc))
		if err != nil || !slices.Equal(newestFirst(again), want) {
			t.Fatalf("%x: packed again read as %v, %v; want %v", b, again, err, want)
		}
	})
}

// FuzzSightingsRoundTrip: any sightings of one day, packed as the save
// packs them, read back the same.
func FuzzSightingsRoundTrip(f *testing.F) {
	f.Add(int64(20514), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add(dayOf(math.MinInt64), make([]byte, 32))
	f.Fuzz(func(t *testing.T, day int64, b []byte) {
		day %= 1 << 31
		lo := day * dayNS
		if day == dayOf(math.MinInt64) {
			lo = math.MinInt64
		}
		var ss []sighting
		for ; len(b) >= 16; b = b[16:] {
			off := int64(binary.LittleEndian.Uint64(b) % uint64(dayNS))
			seq := int64(binary.LittleEndian.Uint64(b[8:])>>1) | 1
			if t := lo + off; dayOf(t) == day {
				ss = append(ss, sighting{t, seq})
			}
		}
		if len(ss) == 0 {
			return
		}
		want := newestFirst(ss)
		asc := slices.Clone(want)
		slices.Reverse(asc)
		got, err := decodeSightings(nil, day, appendRun(nil, day, asc))
		if err != nil || !slices.Equal(got, asc) {
			t.Fatalf("day %d: %v read back as %v, %v", day, asc, got, err)
		}
	})
}

// packedOf is one run of n sightings of day, a nanosecond apart from the
// day's start, seqs from 1: two bytes a sighting.
func packedOf(day int64, n int) []byte {
	ss := make([]sighting, n)
	for i := range ss {
		ss[i] = sighting{day*dayNS + int64(i), int64(i + 1)}
	}
	return appendRun(nil, day, ss)
}

// A row is decoded only within its bounds (maxPackedBytes,
// maxDaySightings): beyond them it is refused as malformed, with its size
// or count, before its sightings are decoded, rather than decoded bounded
// only by its size (a hand-made gigabyte would be 500 million sightings,
// 8 GB). The bound counts the sightings of every run of the row.
func TestDecodeSightingsBounded(t *testing.T) {
	const day = 20514
	at := packedOf(day, maxDaySightings)
	ss, err := decodeSightings(nil, day, at)
	if err != nil || len(ss) != maxDaySightings {
		t.Fatalf("%d sightings: read %d, %v; want them all", maxDaySightings, len(ss), err)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"one run past the count", packedOf(day, maxDaySightings+1), "more than 1048576 sightings"},
		{"two runs past the count", append(packedOf(day, 1), at...), "more than 1048576 sightings"},
		{"past the size", append(packedOf(day, 1), make([]byte, maxPackedBytes)...), "bytes, more than the 8388608"},
	} {
		ss, err := decodeSightings(nil, day, c.b)
		if !errors.Is(err, errSightings) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %d sightings, %v; want an error saying %q", c.name, len(ss), err, c.want)
		}
		if len(ss) > 1 {
			t.Errorf("%s: %d sightings decoded before the refusal", c.name, len(ss))
		}
	}
}
