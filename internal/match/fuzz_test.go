package match

import (
	"bytes"
	"testing"
)

// FuzzIndex builds an Index from keys the fuzzer describes and checks every
// lookup against a map of the same pairs. The input is: one byte choosing
// the key size and layout, then per key a control byte (low five bits: how
// many leading bytes to keep from the previous key; high three: the value)
// and the key's remaining bytes. Keeping prefixes lets the fuzzer reach
// long shared prefixes, full buckets and overflow, which random keys never
// do.
func FuzzIndex(f *testing.F) {
	f.Add([]byte{0x01, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		size := [4]int{16, 20, 24, 32}[data[0]&3]
		skip := [4]int{-1, 0, 1, 2}[data[0]>>2&3]
		data = data[1:]
		var pairs []pair
		prev := make([]byte, size)
		for len(data) > 0 && len(pairs) < 4000 {
			ctl := data[0]
			data = data[1:]
			keep := min(int(ctl&31), size)
			k := make([]byte, size)
			copy(k, prev[:keep])
			n := copy(k[keep:], data)
			data = data[n:]
			pairs = append(pairs, pair{k, uint32(ctl >> 5)})
			prev = k
		}
		x, o := buildBoth(t, size, pairs, func(b *IndexBuilder) { b.forceSkip = skip })
		probes := [][]byte{make([]byte, size), bytes.Repeat([]byte{0xff}, size)}
		for _, p := range pairs {
			probes = append(probes, p.key)
			for _, bit := range []int{0, 8*size/2 + 1, 8*size - 16, 8*size - 1} {
				k := bytes.Clone(p.key)
				k[bit/8] ^= 0x80 >> (bit % 8)
				probes = append(probes, k)
			}
		}
		for _, mode := range probeModes() {
			restore := mode.set()
			agree(t, x, o, probes)
			restore()
		}
	})
}
