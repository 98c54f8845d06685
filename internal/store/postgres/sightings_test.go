package postgres

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
)

// FuzzDecodeSightings: any bytes a row may hold (a damaged disk, a
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
		if len(ss) == 0 {
			t.Fatalf("%x read as no sightings without an error", b)
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
