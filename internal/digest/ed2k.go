package digest

// ED2KChunkSize is the eD2K chunk ("part") length: 9,728,000 bytes.
const ED2KChunkSize = 9728000

// ED2KSize is the length of an eD2K digest in bytes.
const ED2KSize = md4Size

// ED2K is the eD2K file hash: the MD4 of each 9,728,000-byte chunk; for a
// file of one chunk that chunk's MD4 is the hash, otherwise the hash is the
// MD4 of the chunk MD4s concatenated.
//
// Two conventions exist for a file whose length is an exact multiple of the
// chunk size. The original eDonkey client and eMule count a trailing empty
// chunk: MD4("") is appended to the list, so a file of exactly 9,728,000
// bytes has two chunk hashes and its hash is MD4(MD4(data) || MD4("")).
// Some later tools (the "new"/"blue" convention) omit it. ED2K implements
// the eMule ("red") convention, which is what eD2K networks and ed2k://
// links carry and what rhash --ed2k computes; ED2KBlue gives the other for
// comparison with lists made by such tools.
//
// Put simply: a file of n bytes always has n/ED2KChunkSize+1 chunks, the
// last one holding n%ED2KChunkSize bytes, possibly none.
type ED2K struct {
	chunk  md4 // MD4 of the chunk being filled
	inChnk int // bytes in the current chunk
	outer  md4 // MD4 over the chunk hashes completed so far
	nfull  int // completed chunks
	first  [md4Size]byte
	blue   bool
}

// NewED2K returns an eD2K hash with eMule's convention.
func NewED2K() *ED2K {
	e := new(ED2K)
	e.Reset()
	return e
}

// NewED2KBlue returns an eD2K hash that does not append the empty chunk's
// MD4 for lengths that are exact multiples of the chunk size. Vigil matches
// on the eMule form; this exists to recognise lists made the other way.
func NewED2KBlue() *ED2K {
	e := NewED2K()
	e.blue = true
	return e
}

// Reset implements hash.Hash.
func (e *ED2K) Reset() {
	e.chunk.Reset()
	e.outer.Reset()
	e.inChnk = 0
	e.nfull = 0
}

// Size implements hash.Hash.
func (e *ED2K) Size() int { return ED2KSize }

// BlockSize implements hash.Hash.
func (e *ED2K) BlockSize() int { return md4BlockSize }

// Write implements hash.Hash; it never fails.
func (e *ED2K) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), ED2KChunkSize-e.inChnk)
		e.chunk.Write(p[:k])
		e.inChnk += k
		p = p[k:]
		if e.inChnk == ED2KChunkSize {
			var d [md4Size]byte
			e.chunk.sum(&d)
			if e.nfull == 0 {
				e.first = d
			}
			e.outer.Write(d[:])
			e.nfull++
			e.chunk.Reset()
			e.inChnk = 0
		}
	}
	return n, nil
}

// Sum implements hash.Hash: it appends the digest and leaves e unchanged.
func (e *ED2K) Sum(in []byte) []byte {
	var d [md4Size]byte
	switch {
	case e.nfull == 0:
		e.chunk.sum(&d)
	case e.blue && e.inChnk == 0 && e.nfull == 1:
		d = e.first
	case e.blue && e.inChnk == 0:
		e.outer.sum(&d)
	default:
		var last [md4Size]byte
		e.chunk.sum(&last)
		o := e.outer
		o.Write(last[:])
		o.sum(&d)
	}
	return append(in, d[:]...)
}
