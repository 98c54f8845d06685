// Package hashkind names the kinds of file and torrent hash that Vigil
// matches on, and parses and prints each in the forms users already have:
// hex, base32, urn:sha1:, urn:btih:, magnet links and ed2k:// links.
//
// It does no I/O and computes no digests (see internal/digest): bytes and
// strings in, values out.
package hashkind

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Kind is a kind of hash. The zero value is Unknown.
type Kind uint8

// The kinds, in the order the reference hasher prints them.
const (
	Unknown Kind = iota
	MD5          // 16 bytes
	SHA1         // 20 bytes
	SHA256       // 32 bytes
	ED2K         // 16 bytes: MD4 over 9,728,000-byte chunks (eMule's convention)
	TTH          // 24 bytes: Tiger Tree Hash (THEX), printed in base32
	BTV2         // 32 bytes: BitTorrent v2 per-file merkle root (BEP 52 "pieces root")
	BTIH         // 20 bytes: BitTorrent v1 info-hash
	BTIH2        // 32 bytes: BitTorrent v2 info-hash
	numKinds
)

var kindNames = [...]string{
	Unknown: "unknown", MD5: "md5", SHA1: "sha1", SHA256: "sha256", ED2K: "ed2k",
	TTH: "tth", BTV2: "btv2", BTIH: "btih", BTIH2: "btih2",
}

var kindSizes = [...]int{
	Unknown: 0, MD5: 16, SHA1: 20, SHA256: 32, ED2K: 16, TTH: 24, BTV2: 32, BTIH: 20, BTIH2: 32,
}

// All lists every known kind, in display order.
func All() []Kind {
	out := make([]Kind, 0, numKinds-1)
	for k := MD5; k < numKinds; k++ {
		out = append(out, k)
	}
	return out
}

// String returns the kind's name as used in flags, CSV and JSON ("sha1").
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Size is the digest length in bytes.
func (k Kind) Size() int {
	if int(k) < len(kindSizes) {
		return kindSizes[k]
	}
	return 0
}

// Valid reports whether k is a known kind other than Unknown.
func (k Kind) Valid() bool { return k > Unknown && k < numKinds }

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ErrUnknownKind is returned for a kind name Vigil does not know.
var ErrUnknownKind = errors.New("unknown hash kind")

// ParseKind parses a kind name, case-insensitively. A few customary aliases
// are accepted ("sha-1", "tiger-tree", "infohash").
func ParseKind(s string) (Kind, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	switch n {
	case "sha-1":
		n = "sha1"
	case "sha-256":
		n = "sha256"
	case "tigertree", "tiger-tree", "tree:tiger", "tth-tiger":
		n = "tth"
	case "infohash", "btih1", "info-hash":
		n = "btih"
	case "btmh", "infohash2":
		n = "btih2"
	case "pieces-root", "pieces_root", "btv2-root":
		n = "btv2"
	}
	for k := MD5; k < numKinds; k++ {
		if kindNames[k] == n {
			return k, nil
		}
	}
	return Unknown, fmt.Errorf("%w %q (known: md5, sha1, sha256, ed2k, tth, btv2, btih, btih2)", ErrUnknownKind, s)
}

// ParseKinds parses a comma-separated list of kinds ("md5,sha1").
func ParseKinds(s string) ([]Kind, error) {
	var out []Kind
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, err := ParseKind(part)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty kind list", ErrUnknownKind)
	}
	return out, nil
}

// Hash is one digest of a known kind. It is comparable and can be a map key.
type Hash struct {
	kind Kind
	sum  [32]byte
}

// ErrBadLength is returned when a digest's length does not fit its kind.
var ErrBadLength = errors.New("wrong digest length for kind")

// New returns the hash of kind k with digest b.
func New(k Kind, b []byte) (Hash, error) {
	if !k.Valid() {
		return Hash{}, fmt.Errorf("%w %d", ErrUnknownKind, uint8(k))
	}
	if len(b) != k.Size() {
		return Hash{}, fmt.Errorf("%w: %s wants %d bytes, got %d", ErrBadLength, k, k.Size(), len(b))
	}
	var h Hash
	h.kind = k
	copy(h.sum[:], b)
	return h, nil
}

// MustNew is New for digests known to be well formed (tests, constants).
func MustNew(k Kind, b []byte) Hash {
	h, err := New(k, b)
	if err != nil {
		panic(err)
	}
	return h
}

// Kind returns the hash's kind.
func (h Hash) Kind() Kind { return h.kind }

// IsZero reports whether h is the zero Hash.
func (h Hash) IsZero() bool { return h.kind == Unknown }

// Bytes returns a copy of the digest.
func (h Hash) Bytes() []byte {
	b := make([]byte, h.kind.Size())
	copy(b, h.sum[:])
	return b
}

// Hex returns the digest in lower-case hex, whatever the kind.
func (h Hash) Hex() string { return hex.EncodeToString(h.sum[:h.kind.Size()]) }

// Digest returns the digest without copying it: a read-only view into h,
// for hot paths such as the matcher. Callers must not modify it; use Bytes
// for a copy.
func (h *Hash) Digest() []byte {
	n := h.kind.Size()
	return h.sum[:n:n]
}
