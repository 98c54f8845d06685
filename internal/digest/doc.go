// Package digest computes the file digests that Vigil matches on and that
// the standard library lacks: eD2K (MD4 over 9,728,000-byte chunks), Tiger,
// the THEX Tiger Tree Hash (TTH) and the BitTorrent v2 per-file merkle root
// (BEP 52 "pieces root"). New returns a hash.Hash for any file kind of
// internal/hashkind, standard ones included.
//
// Every digest here is a streaming hash.Hash: data is fed with Write in any
// split and Sum never changes the state. The package does no I/O and must
// never open files, start goroutines or allocate per block: the reference
// hasher (internal/hasher) owns reading, and the digests are its hot loop.
package digest

//go:generate go run gen_amd64.go

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// ErrNotFileDigest is returned by New for kinds that are not a digest of one
// file's bytes (the torrent info-hashes btih and btih2 hash a torrent's info
// dictionary, not a file).
var ErrNotFileDigest = errors.New("hash kind is not a digest of file bytes")

// FileKinds lists the kinds New accepts, in display order.
func FileKinds() []hashkind.Kind {
	return []hashkind.Kind{hashkind.MD5, hashkind.SHA1, hashkind.SHA256, hashkind.ED2K, hashkind.TTH, hashkind.BTV2}
}

// New returns a fresh streaming hash for kind k. Its Sum is the raw digest
// (k.Size() bytes), ready for hashkind.New. For BTV2, see NewBTV2 about the
// empty input.
func New(k hashkind.Kind) (hash.Hash, error) {
	switch k {
	case hashkind.MD5:
		return md5.New(), nil
	case hashkind.SHA1:
		return sha1.New(), nil
	case hashkind.SHA256:
		return sha256.New(), nil
	case hashkind.ED2K:
		return NewED2K(), nil
	case hashkind.TTH:
		return NewTTH(), nil
	case hashkind.BTV2:
		return NewBTV2(), nil
	}
	return nil, fmt.Errorf("digest for %s: %w", k, ErrNotFileDigest)
}

// The package's own digests are complete hash.Hash implementations.
var (
	_ hash.Hash = (*ED2K)(nil)
	_ hash.Hash = (*TTH)(nil)
	_ hash.Hash = (*BTV2)(nil)
	_ hash.Hash = (*Tiger)(nil)
)
