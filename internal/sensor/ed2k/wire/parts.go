package wire

import (
	"crypto/subtle"

	"golang.org/x/crypto/md4"
)

// PartSize is the eD2K part ("chunk") length: 9,728,000 bytes. Each part
// has its own MD4; the file hash is the MD4 of the part hashes.
const PartSize = 9728000

// BlockSize is the largest range eMule asks for in one OP_REQUESTPARTS
// slot (EMBLOCKSIZE).
const BlockSize = 184320

// Parts is the number of data parts of a file of size bytes: the parts
// that hold bytes, the last one possibly short. 0 for an empty file.
func Parts(size int64) int {
	if size <= 0 {
		return 0
	}
	return int((size + PartSize - 1) / PartSize)
}

// StatusPartCount is the part count eMule puts in OP_FILESTATUS:
// size/PartSize+1. For a size that is an exact multiple of PartSize it is
// one more than Parts (a part of no bytes that eMule also counts).
func StatusPartCount(size int64) int {
	if size <= 0 {
		return 0
	}
	return int(size/PartSize + 1)
}

// HashSetCount is the number of part hashes eMule sends in
// OP_HASHSETANSWER: none for a file of one part (its file hash is its only
// part hash), otherwise size/PartSize+1 (with the MD4 of no bytes last for
// an exact multiple of PartSize).
func HashSetCount(size int64) int {
	if size < PartSize {
		return 0
	}
	return int(size/PartSize + 1)
}

// PartRange is the byte range [start, end) of part i of a file of size
// bytes.
func PartRange(size int64, i int) (start, end int64) {
	start = int64(i) * PartSize
	end = min(start+PartSize, size)
	return start, end
}

// PartHash is the MD4 of one part's bytes. MD4 comes from
// golang.org/x/crypto/md4, already a dependency (the digest package's
// oracle): one part hashed per verification is not a hot loop, and the
// digest package's faster MD4 is internal to it.
func PartHash(data []byte) [16]byte {
	h := md4.New()
	h.Write(data)
	var out [16]byte
	h.Sum(out[:0])
	return out
}

// FileHashOf is the eD2K file hash of part hashes: the one hash itself for
// a file of one part, else the MD4 of the hashes concatenated.
func FileHashOf(parts [][16]byte) [16]byte {
	if len(parts) == 1 {
		return parts[0]
	}
	h := md4.New()
	for _, p := range parts {
		h.Write(p[:])
	}
	var out [16]byte
	h.Sum(out[:0])
	return out
}

// CheckHashSet reports whether a hash set answer belongs to the file hash
// fileHash: it names the file, and (unless empty, as for a file of one
// part) its hashes hash to it. Part hashes taken from a set that fails are
// worth nothing.
func CheckHashSet(fileHash [16]byte, hs HashSet) bool {
	if hs.Hash != fileHash {
		return false
	}
	if len(hs.Hashes) == 0 {
		return true
	}
	if len(hs.Hashes) == 1 {
		return false // a file of one part sends no set; one hash proves nothing
	}
	got := FileHashOf(hs.Hashes)
	return subtle.ConstantTimeCompare(got[:], fileHash[:]) == 1
}

// ExpectedPartHash is the hash part i of a file must have: the file hash
// itself for a file of one part, else entry i of a set that CheckHashSet
// accepted. ok is false when the set cannot say.
func ExpectedPartHash(fileHash [16]byte, size int64, hs HashSet, i int) (h [16]byte, ok bool) {
	n := Parts(size)
	switch {
	case i < 0 || i >= n:
		return h, false
	case n == 1 && size < PartSize:
		return fileHash, true
	case len(hs.Hashes) != HashSetCount(size) || !CheckHashSet(fileHash, hs):
		return h, false
	}
	return hs.Hashes[i], true
}

// PartMap is what a client's file status establishes, judged against the
// file's size.
type PartMap struct {
	// All: the client said it shares the whole file (count 0).
	All bool
	// Have is the number of data parts the map sets, counting only parts
	// in range of a known size; -1 when the size is unknown and the map
	// named parts (nothing could be checked).
	Have int
	// Total is the file's data parts, -1 when the size is unknown.
	Total int
	// Malformed: the count is not the file's (StatusPartCount), or bits
	// past the count are set. Only bits of real data parts were counted,
	// and such a map is never Complete, even if it sets all of them.
	Malformed bool
}

// Judge judges a file status for a file of size bytes (-1: unknown).
//
// A count of 0 is the client's word that it holds the whole file, which
// names no part that could be out of range: All. Otherwise, with the size
// known, the count must be StatusPartCount(size) and the bits past the
// count (the spare bits of the last byte) clear; a map that breaks either
// rule is Malformed, and then only bits of real data parts are counted and
// Have never reaches Total. The bit of the empty part eMule counts for a
// size that is an exact multiple of PartSize is ignored either way.
func (m FileStatus) Judge(size int64) PartMap {
	if m.Count == 0 {
		pm := PartMap{All: true, Have: -1, Total: -1}
		if size >= 0 {
			pm.Total = Parts(size)
			pm.Have = pm.Total
		}
		return pm
	}
	if size < 0 {
		return PartMap{Have: -1, Total: -1}
	}
	pm := PartMap{Total: Parts(size)}
	if int(m.Count) != StatusPartCount(size) {
		pm.Malformed = true
	}
	for i := int(m.Count); i < len(m.Bits)*8; i++ {
		if m.Has(i) {
			pm.Malformed = true
		}
	}
	for i := 0; i < pm.Total && i < int(m.Count); i++ {
		if m.Has(i) {
			pm.Have++
		}
	}
	return pm
}

// Complete reports whether the map shows the whole file: All, or every
// data part set in a map that is not Malformed. A malformed map is never
// complete, whatever it sets in range: a client that breaks the format is
// not taken at its highest word.
func (pm PartMap) Complete() bool {
	return pm.All || !pm.Malformed && pm.Total > 0 && pm.Have == pm.Total
}

// FirstPart returns the lowest data part the map sets (any part for All),
// or -1.
func (m FileStatus) FirstPart(size int64) int {
	n := Parts(size)
	if m.Count == 0 {
		if n > 0 {
			return 0
		}
		return -1
	}
	for i := 0; i < n && i < int(m.Count); i++ {
		if m.Has(i) {
			return i
		}
	}
	return -1
}
