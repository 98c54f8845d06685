// Package ed2k is the eD2K and Kad part of the lab: a small eD2K server of
// Vigil's own (a stand-in for real servers), Kad nodes that route, store
// sources and answer source searches, and simulated clients that share
// synthetic files (seeded random bytes), offer them to the server, publish
// them in Kad, answer hellos, file requests and part requests, and move
// between addresses keeping their user hash; hostile clients lie about
// their parts, answer for another file, or send compressed bombs and
// oversized packets. Net assembles them with the ground truth.
//
// It must never listen on, send to or resolve anything outside
// 127.0.0.0/8 unless a test gives it addresses inside a network namespace
// it created with no default route. Its content is random bytes with
// neutral names; it must never hold real material or real hashes.
package ed2k

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// File is a synthetic file: its bytes are an AES-CTR keystream of a key
// derived from a seed, so that any range can be produced on demand and
// nothing is kept in memory but the part hashes.
type File struct {
	Name  string
	Size  int64
	Hash  [16]byte
	Parts [][16]byte // the hash set (HashSetCount entries; empty for one part)
	block cipher.Block
}

// NewFile makes the synthetic file of seed and size and hashes it.
func NewFile(seed uint64, size int64) *File {
	var key [16]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "vigil-lab")
	b, _ := aes.NewCipher(key[:])
	f := &File{Name: fmt.Sprintf("synthetic-%016x.bin", seed), Size: size, block: b}
	var parts [][16]byte
	buf := make([]byte, wire.PartSize)
	for i := 0; i < wire.Parts(size); i++ {
		s, e := wire.PartRange(size, i)
		f.ReadAt(buf[:e-s], s)
		parts = append(parts, wire.PartHash(buf[:e-s]))
	}
	if size%wire.PartSize == 0 {
		parts = append(parts, wire.PartHash(nil))
	}
	f.Hash = wire.FileHashOf(parts)
	if wire.HashSetCount(size) > 0 {
		f.Parts = parts
	}
	return f
}

// ReadAt fills p with the file's bytes from off (p must lie within the
// file).
func (f *File) ReadAt(p []byte, off int64) {
	var iv [16]byte
	binary.BigEndian.PutUint64(iv[8:], uint64(off/16))
	s := cipher.NewCTR(f.block, iv[:])
	skip := int(off % 16)
	if skip > 0 {
		var junk [16]byte
		s.XORKeyStream(junk[:skip], junk[:skip])
	}
	clear(p)
	s.XORKeyStream(p, p)
}

// HashSet is the file's OP_HASHSETANSWER.
func (f *File) HashSet() wire.HashSet { return wire.HashSet{Hash: f.Hash, Hashes: f.Parts} }
