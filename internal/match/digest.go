package match

import (
	"bytes"
	"unsafe"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// hashView mirrors hashkind.Hash's layout so that the hot path reads the
// digest in place: Hash.Bytes copies, which costs more than a lookup.
// checkHashLayout verifies the mirror at start-up; if the layout ever
// changes, lookups fall back to Bytes (and TestDigestIsReadInPlace fails).
// TODO: use hashkind's Hash.Digest view and drop the mirror.
type hashView struct {
	kind hashkind.Kind
	sum  [32]byte
}

var inPlaceDigest = checkHashLayout()

func checkHashLayout() bool {
	if unsafe.Sizeof(hashkind.Hash{}) != unsafe.Sizeof(hashView{}) {
		return false
	}
	var pattern [32]byte
	for i := range pattern {
		pattern[i] = byte(0xa5 ^ i*7)
	}
	for _, k := range hashkind.All() {
		h := hashkind.MustNew(k, pattern[:k.Size()])
		v := (*hashView)(unsafe.Pointer(&h))
		if v.kind != k || !bytes.Equal(v.sum[:k.Size()], h.Bytes()) {
			return false
		}
	}
	return true
}

// digest returns h's first n digest bytes, in place when the layout allows.
func digest(h *hashkind.Hash, n int) []byte {
	if inPlaceDigest {
		return (*hashView)(unsafe.Pointer(h)).sum[:n:n]
	}
	return h.Bytes()
}
