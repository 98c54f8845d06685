package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/transparency-dev/merkle/rfc6962"
)

// readProofs reads proofs.json (Proofs) from src as it comes, calling
// each with every entry in turn, so that the entries are never all held:
// p and its hashes are valid only during the call.
//
// It reads what encoding/json reads into Proofs with unknown keys
// refused (but for an empty hash, which it may give as nil where
// encoding/json gives an empty slice: the same to a proof), and it is
// stricter: a key is spelled exactly (encoding/json would take "ID" for
// "id"), no key repeats, the file is one object and nothing follows it.
// FuzzReadProofs holds it to that: whatever readProofs reads,
// encoding/json reads the same.
func readProofs(src io.Reader, each func(i int, p *Proof)) (size uint64, entries int, err error) {
	r := &proofReader{jsonReader: newJSONReader(src, 64<<10)}
	err = r.object([]string{"size", "entries"}, func(k int) error {
		if k == 0 {
			size, err = r.uint()
			return err
		}
		if r.null() {
			return nil
		}
		return r.array(func() error {
			if err := r.entry(); err != nil {
				return err
			}
			each(entries, &r.p)
			entries++
			return nil
		})
	})
	if err != nil {
		return 0, 0, err
	}
	if r.ws(); r.i < len(r.b) {
		return 0, 0, r.fail("more after the object")
	}
	return size, entries, nil
}

// proofReader reads proofs.json's entries into p, one after another,
// reusing its memory.
type proofReader struct {
	jsonReader
	p      Proof
	hashes []byte // p.Hashes, decoded one after another
	ends   []int  // where each of p.Hashes ends in hashes
}

// entry reads one entry (an object, or null: an empty entry) into r.p.
func (r *proofReader) entry() error {
	r.p = Proof{Hashes: r.p.Hashes[:0]}
	if r.null() {
		return nil
	}
	return r.object([]string{"id", "leaf_index", "hashes"}, func(k int) error {
		var err error
		switch k {
		case 0:
			var s []byte
			s, err = r.str()
			r.p.ID = string(s)
		case 1:
			r.p.LeafIndex, err = r.uint()
		case 2:
			err = r.readHashes()
		}
		return err
	})
}

// readHashes reads an array of base64 hashes (or null) into r.p.Hashes.
func (r *proofReader) readHashes() error {
	r.p.Hashes, r.hashes, r.ends = r.p.Hashes[:0], r.hashes[:0], r.ends[:0]
	if r.null() {
		return nil
	}
	err := r.array(func() error {
		if !r.null() { // null: an empty hash
			s, err := r.str()
			if err != nil {
				return err
			}
			// encoding/json decodes a []byte from base64 with this call.
			start := len(r.hashes)
			r.hashes = append(r.hashes, make([]byte, base64.StdEncoding.DecodedLen(len(s)))...)
			n, err := base64.StdEncoding.Decode(r.hashes[start:], s)
			if err != nil {
				return err
			}
			r.hashes = r.hashes[:start+n]
		}
		r.ends = append(r.ends, len(r.hashes))
		return nil
	})
	if err != nil {
		return err
	}
	start := 0
	for _, end := range r.ends {
		r.p.Hashes = append(r.p.Hashes, r.hashes[start:end:end])
		start = end
	}
	return nil
}

// jsonReader reads JSON values from a stream, in a window of it (b) that
// moves on as it is read.
type jsonReader struct {
	src io.Reader
	b   []byte // the window: bytes read from src and not yet dropped
	i   int    // the next byte to read, in b
	tok int    // where the token being read starts, in b (kept when b moves on), or -1
	off int64  // the offset of b[0] in the stream
	err error  // src's error, once it gave one (io.EOF at the end)
}

func newJSONReader(src io.Reader, size int) jsonReader {
	return jsonReader{src: src, b: make([]byte, 0, size), tok: -1}
}

// more reads more of the stream into the window, dropping what is read
// but for the token being read; it reports whether it read any.
func (r *jsonReader) more() bool {
	if r.err != nil {
		return false
	}
	keep := r.i
	if r.tok >= 0 {
		keep = r.tok
		r.tok = 0
	}
	buf := r.b[:cap(r.b)]
	n := copy(buf, r.b[keep:])
	r.off, r.i = r.off+int64(keep), r.i-keep
	if n == len(buf) { // one token fills the window: make it larger
		buf = append(buf, make([]byte, len(buf))...)
		buf = buf[:cap(buf)]
	}
	m, err := io.ReadAtLeast(r.src, buf[n:], 1)
	r.b, r.err = buf[:n+m], err
	return m > 0
}

// fail is the problem at the current offset (or the stream's own, if it
// could not be read).
func (r *jsonReader) fail(what string) error {
	if r.err != nil && r.err != io.EOF {
		return r.err
	}
	return fmt.Errorf("offset %d: %s", r.off+int64(r.i), what)
}

// ws skips white space.
func (r *jsonReader) ws() {
	for r.i < len(r.b) || r.more() {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether c comes next, reading it if
// so.
func (r *jsonReader) next(c byte) bool {
	if r.ws(); r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// null reads null if it comes next.
func (r *jsonReader) null() bool {
	r.ws()
	r.tok = r.i
	for len(r.b)-r.i < len("null") && r.more() {
	}
	r.tok = -1
	if bytes.HasPrefix(r.b[r.i:], []byte("null")) {
		r.i += len("null")
		return true
	}
	return false
}

// object reads an object whose keys are among keys, each at most once,
// calling member with the key's index in keys to read its value.
func (r *jsonReader) object(keys []string, member func(k int) error) error {
	if !r.next('{') {
		return r.fail("want an object")
	}
	if r.next('}') {
		return nil
	}
	var seen uint64
	for {
		if r.ws(); r.i >= len(r.b) || r.b[r.i] != '"' {
			return r.fail("want a key")
		}
		s, err := r.str()
		if err != nil {
			return err
		}
		k := 0
		for k < len(keys) && keys[k] != string(s) {
			k++
		}
		switch {
		case k == len(keys):
			return r.fail("unknown key " + strconv.Quote(string(s)))
		case seen&(1<<k) != 0:
			return r.fail("key " + strconv.Quote(keys[k]) + " repeated")
		}
		seen |= 1 << k
		if !r.next(':') {
			return r.fail("want ':'")
		}
		if err := member(k); err != nil {
			return err
		}
		if r.next(',') {
			continue
		}
		if r.next('}') {
			return nil
		}
		return r.fail("want ',' or '}'")
	}
}

// array reads an array, calling elem to read each element.
func (r *jsonReader) array(elem func() error) error {
	if !r.next('[') {
		return r.fail("want an array")
	}
	if r.next(']') {
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		if r.next(',') {
			continue
		}
		if r.next(']') {
			return nil
		}
		return r.fail("want ',' or ']'")
	}
}

// str reads a string and returns it decoded, valid until the next read.
// A string of UTF-8 without escapes is its bytes; any other is decoded by
// encoding/json (escapes, U+FFFD for what is not UTF-8).
func (r *jsonReader) str() ([]byte, error) {
	if !r.next('"') {
		return nil, r.fail("want a string")
	}
	r.tok = r.i - 1
	defer func() { r.tok = -1 }()
	plain := true
	for r.i < len(r.b) || r.more() {
		switch c := r.b[r.i]; {
		case c == '"':
			r.i++
			if plain {
				return r.b[r.tok+1 : r.i-1], nil
			}
			var s string
			if err := json.Unmarshal(r.b[r.tok:r.i], &s); err != nil {
				return nil, err
			}
			return []byte(s), nil
		case c == '\\':
			// The escape and the byte after it (enough to find the end;
			// encoding/json reads the escape).
			plain = false
			r.i++
			if r.i == len(r.b) && !r.more() {
				return nil, r.fail("unterminated string")
			}
			r.i++
		case c < 0x20:
			return nil, r.fail("control character in a string")
		case c < utf8.RuneSelf:
			r.i++
		default:
			for !utf8.FullRune(r.b[r.i:]) && r.more() {
			}
			rn, size := utf8.DecodeRune(r.b[r.i:])
			plain = plain && !(rn == utf8.RuneError && size == 1)
			r.i += size
		}
	}
	return nil, r.fail("unterminated string")
}

// uint reads an unsigned integer (or null, as 0: encoding/json leaves the
// field as it was). Any other number is refused, as encoding/json refuses
// it for a uint64.
func (r *jsonReader) uint() (uint64, error) {
	if r.null() {
		return 0, nil
	}
	r.tok = r.i
	defer func() { r.tok = -1 }()
	for (r.i < len(r.b) || r.more()) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	d := r.b[r.tok:r.i]
	if len(d) == 0 || len(d) > 1 && d[0] == '0' {
		return 0, r.fail("want an unsigned integer")
	}
	if r.i < len(r.b) && bytes.IndexByte([]byte(".eE"), r.b[r.i]) >= 0 {
		return 0, r.fail("want an unsigned integer")
	}
	n, err := strconv.ParseUint(string(d), 10, 64)
	if err != nil {
		return 0, r.fail("want an unsigned integer of 64 bits")
	}
	return n, nil
}

// hasher is RFC 6962's SHA-256 tree hasher, rfc6962.DefaultHasher's
// hashes with one allocation a node instead of three (a bundle's proofs
// hash millions of nodes). TestHasherIsRFC6962 holds it to the library's.
type hasher struct{ *rfc6962.Hasher }

var treeHasher = hasher{rfc6962.DefaultHasher}

// HashChildren is SHA-256 over the node prefix (1), l and r.
func (hasher) HashChildren(l, r []byte) []byte {
	var in [1 + 2*sha256.Size]byte
	b := append(append(append(in[:0], rfc6962.RFC6962NodeHashPrefix), l...), r...)
	sum := sha256.Sum256(b)
	return sum[:]
}
