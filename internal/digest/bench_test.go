package digest

import (
	"hash"
	"testing"

	xmd4 "golang.org/x/crypto/md4"
)

// BenchmarkDigest reports MB/s for each digest on 1 MiB writes, with
// x/crypto's MD4 beside ours as the baseline for the eD2K inner loop.
func BenchmarkDigest(b *testing.B) {
	buf := synthetic(1, 1<<20)
	run := func(name string, h hash.Hash) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				h.Write(buf)
			}
			_ = h.Sum(nil)
		})
	}
	for _, k := range FileKinds() {
		h, _ := New(k)
		run(k.String(), h)
	}
	run("tiger", NewTiger())
	run("md4-ours", &md4Hash{})
	run("md4-xcrypto", xmd4.New())
}

// md4Hash adapts md4 to hash.Hash for the benchmark only.
type md4Hash struct{ m md4 }

func (h *md4Hash) Write(p []byte) (int, error) { h.m.Write(p); return len(p), nil }
func (h *md4Hash) Sum(b []byte) []byte {
	var d [md4Size]byte
	h.m.sum(&d)
	return append(b, d[:]...)
}
func (h *md4Hash) Reset()         { h.m.Reset() }
func (h *md4Hash) Size() int      { return md4Size }
func (h *md4Hash) BlockSize() int { return md4BlockSize }
