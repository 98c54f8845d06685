package obsblock

import (
	"encoding/binary"
	"math"
	"math/bits"
)

type colKind uint8

const (
	kindUints  colKind = iota // unsigned integers
	kindBlobs                 // byte strings, nil told apart
	kindFixed8                // 8 bytes a value
)

// The columns of versions 1 and 2, in their order in a block. A column's rows
// are the block's observations unless noted: "rows with F" are those
// whose flags have F, "elements" the members of a list whose counts are
// in the column before.
const (
	colFlags         = iota // flag bits below
	colIDHi                 // rows with flagUUID: zig-zag(UUID's high 8 bytes − what the time predicts)
	colIDLo                 // rows with flagUUID: the UUID's low 8 bytes
	colIDText               // rows without flagUUID: the id as written
	colTime                 // rows with flagTime: Unix ns, as uint64
	colSensorID             //
	colSensorVersion        //
	colSensorVantage        //
	colSensorCommit         //
	colSensorConfig         //
	colNetwork              //
	colMethod               //
	colClockOffset          // zig-zag ns
	colClockUnc             // zig-zag ns
	colClockSource          //
	colItem                 // kind byte and digest; nil for the zero hash
	colMatchCount           // 0 nil, k+1 for k matches
	colMatchList            // elements
	colMatchCategory        // elements
	colIP                   // netip.Addr.MarshalBinary; nil when invalid
	colPort                 //
	colTransport            //
	colLocal                // netip.AddrPort.MarshalBinary; nil when zero
	colPeerID               //
	colClientName           //
	colClientVersion        //
	colListenPort           //
	colNodeID               //
	colUserHash             //
	colGUID                 //
	colLevel                //
	colPiecesHave           // zig-zag
	colPiecesTotal          // zig-zag
	colMarkCount            // 0 nil, k+1 for k marks
	colMarks                // elements
	colTranscriptRef        //
	colTranscriptSHA        //
	colCountry              //
	colSubdivCount          // 0 nil, k+1 for k subdivisions
	colSubdivs              // elements
	colCity                 //
	colLat                  // float64 bits
	colLon                  // float64 bits
	colASN                  //
	colOrg                  //
	colGeoDB                //
	colGeoDBBuild           // rows with flagDBBuild: Unix ns, as uint64
	colAgency               //
	colRule                 //
	colChainKey             //
	colChainID              //
	colChainSeq             //
	colChainPrev            // version 2: rows without flagPrevDerived
	colChainSig             //
	colChainForm            //
	numCols
)

// Flag bits, one uvarint a row in colFlags.
const (
	flagClockKnown = 1 << iota
	flagModified
	flagVPN
	flagHosting
	flagUUID    // the id is a UUID in canonical lower-case form: colIDHi, colIDLo
	flagTime    // the time is not zero: colTime
	flagDBBuild // the geo database's build time is not zero: colGeoDBBuild
	// flagPrevDerived (version 2): the chain hash is not in colChainPrev
	// but computed from the row before in the chain (chain.go).
	flagPrevDerived
	flagAll = flagDBBuild<<1 - 1 // version 1's flags
)

// flagsOf is the flags a block of version v may hold.
func flagsOf(v byte) uint64 {
	if v >= version2 {
		return flagAll | flagPrevDerived
	}
	return flagAll
}

var colSpecs = [numCols]struct {
	name string
	kind colKind
	str  bool // a blob column of strings: no nil
}{
	colFlags: {"flags", kindUints, false}, colIDHi: {"id_hi", kindUints, false}, colIDLo: {"id_lo", kindFixed8, false},
	colIDText: {"id_text", kindBlobs, true}, colTime: {"time", kindUints, false},
	colSensorID: {"sensor_id", kindBlobs, true}, colSensorVersion: {"sensor_version", kindBlobs, true},
	colSensorVantage: {"sensor_vantage", kindBlobs, true}, colSensorCommit: {"sensor_commit", kindBlobs, true},
	colSensorConfig: {"sensor_config", kindBlobs, true}, colNetwork: {"network", kindBlobs, true},
	colMethod: {"method", kindBlobs, true}, colClockOffset: {"clock_offset", kindUints, false},
	colClockUnc: {"clock_uncertainty", kindUints, false}, colClockSource: {"clock_source", kindBlobs, true},
	colItem: {"item", kindBlobs, false}, colMatchCount: {"match_count", kindUints, false},
	colMatchList: {"match_list", kindBlobs, true}, colMatchCategory: {"match_category", kindBlobs, true},
	colIP: {"ip", kindBlobs, false}, colPort: {"port", kindUints, false}, colTransport: {"transport", kindBlobs, true},
	colLocal: {"local", kindBlobs, false}, colPeerID: {"peer_id", kindBlobs, false},
	colClientName: {"client_name", kindBlobs, true}, colClientVersion: {"client_version", kindBlobs, true},
	colListenPort: {"listen_port", kindUints, false}, colNodeID: {"node_id", kindBlobs, false},
	colUserHash: {"user_hash", kindBlobs, false}, colGUID: {"guid", kindBlobs, false},
	colLevel: {"level", kindUints, false}, colPiecesHave: {"pieces_have", kindUints, false},
	colPiecesTotal: {"pieces_total", kindUints, false}, colMarkCount: {"mark_count", kindUints, false},
	colMarks: {"marks", kindBlobs, true}, colTranscriptRef: {"transcript_ref", kindBlobs, true},
	colTranscriptSHA: {"transcript_sha256", kindBlobs, false}, colCountry: {"country", kindBlobs, true},
	colSubdivCount: {"subdivision_count", kindUints, false}, colSubdivs: {"subdivisions", kindBlobs, true},
	colCity: {"city", kindBlobs, true}, colLat: {"lat", kindFixed8, false}, colLon: {"lon", kindFixed8, false},
	colASN: {"asn", kindUints, false}, colOrg: {"org", kindBlobs, true}, colGeoDB: {"geo_db", kindBlobs, true},
	colGeoDBBuild: {"geo_db_build", kindUints, false}, colAgency: {"agency", kindBlobs, true},
	colRule: {"agency_rule", kindBlobs, true}, colChainKey: {"chain_key", kindBlobs, false},
	colChainID: {"chain_id", kindBlobs, true}, colChainSeq: {"chain_seq", kindUints, false},
	colChainPrev: {"chain_prev", kindBlobs, false}, colChainSig: {"chain_batch_sig", kindBlobs, false},
	colChainForm: {"chain_form", kindUints, false},
}

// Modes of a column's raw bytes (its first byte).
const (
	uintsPlain = 0 // the values
	uintsDelta = 1 // zig-zag(value − value before), the first from 0
	blobsPlain = 0 // a tag and the bytes, a value
	blobsDict  = 1 // d, d distinct values (tag and bytes), an index a value
	blobsFixed = 2 // w, a bitmap of the nil values (bit i%8 of byte i/8), w bytes a value not nil
)

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// appendUints appends the raw bytes of an unsigned-integer column: deltas
// when they take fewer bytes than the values (a tie keeps the values).
func appendUints(b []byte, vals []uint64) []byte {
	plain, delta := 0, 0
	prev := uint64(0)
	for _, v := range vals {
		plain += uvarintLen(v)
		delta += uvarintLen(zigzag(int64(v - prev)))
		prev = v
	}
	if delta < plain {
		b = append(b, uintsDelta)
		prev = 0
		for _, v := range vals {
			b = binary.AppendUvarint(b, zigzag(int64(v-prev)))
			prev = v
		}
		return b
	}
	b = append(b, uintsPlain)
	for _, v := range vals {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

// blobs is a blob column being built: values, nil ones marked.
type blobs struct {
	vals []string
	null []bool
}

func (c *blobs) add(s string, null bool) {
	c.vals = append(c.vals, s)
	c.null = append(c.null, null)
}

func appendBlob(b []byte, s string, null bool) []byte {
	if null {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s))+1)
	return append(b, s...)
}

// appendBlobs appends the raw bytes of a blob column in the mode that
// takes the fewest bytes: the values, a dictionary, or fixed-width values
// (every value of one length: hashes, keys, addresses of one family)
// behind a bitmap of the nil ones. A tie keeps the first of that order.
func appendBlobs(b []byte, c *blobs) []byte {
	plain, w, fixed := blobSizes(c)
	dict, order, idx := math.MaxInt, []blobKey(nil), []int(nil)
	if !allDistinct(c, 128) {
		dict, order, idx = dictionary(c)
	}
	switch {
	case dict < plain && dict <= fixed:
		b = append(b, blobsDict)
		b = binary.AppendUvarint(b, uint64(len(order)))
		for _, k := range order {
			b = appendBlob(b, k.s, k.null)
		}
		for _, id := range idx {
			b = binary.AppendUvarint(b, uint64(id))
		}
	case fixed < plain:
		b = append(b, blobsFixed)
		b = binary.AppendUvarint(b, uint64(w))
		bitmap := make([]byte, (len(c.vals)+7)/8)
		for i, null := range c.null {
			if null {
				bitmap[i/8] |= 1 << (i % 8)
			}
		}
		b = append(b, bitmap...)
		for i, s := range c.vals {
			if !c.null[i] {
				b = append(b, s...)
			}
		}
	default:
		b = append(b, blobsPlain)
		for i, s := range c.vals {
			b = appendBlob(b, s, c.null[i])
		}
	}
	return b
}

type blobKey struct {
	s    string
	null bool
}

// blobSizes is a blob column's size as values and, when every value that
// is not nil has one length w > 0, as fixed-width values (else MaxInt).
func blobSizes(c *blobs) (plain, w, fixed int) {
	w, fixed = -1, 0
	for i, s := range c.vals {
		if c.null[i] {
			plain++
			continue
		}
		plain += uvarintLen(uint64(len(s))+1) + len(s)
		switch {
		case w < 0:
			w = len(s)
		case w != len(s):
			fixed = math.MaxInt
		}
		if fixed != math.MaxInt {
			fixed += len(s)
		}
	}
	if w <= 0 || fixed == math.MaxInt {
		return plain, w, math.MaxInt
	}
	return plain, w, fixed + uvarintLen(uint64(w)) + (len(c.vals)+7)/8
}

// dictionary is a blob column's distinct values in order of first use,
// each row's index among them, and the size of both.
func dictionary(c *blobs) (size int, order []blobKey, idx []int) {
	ids := make(map[blobKey]int, 64)
	var last blobKey
	idx = make([]int, len(c.vals))
	for i, s := range c.vals {
		k := blobKey{s, c.null[i]}
		if i > 0 && k == last { // a run: the same value as the row before
			idx[i] = idx[i-1]
			size += uvarintLen(uint64(idx[i]))
			continue
		}
		last = k
		id, ok := ids[k]
		if !ok {
			id = len(order)
			ids[k] = id
			order = append(order, k)
			size++
			if !k.null {
				size += uvarintLen(uint64(len(s))+1) + len(s)
			}
		}
		idx[i] = id
		size += uvarintLen(uint64(id))
	}
	return size + uvarintLen(uint64(len(order))), order, idx
}

// allDistinct reports whether a column of more than k values has k
// distinct ones first (hashes, chain links, transcripts' digests): a
// dictionary would not pay, and building one costs a map of every value.
func allDistinct(c *blobs, k int) bool {
	if len(c.vals) <= k {
		return false
	}
	seen := make(map[string]struct{}, k)
	for i, s := range c.vals[:k] {
		if c.null[i] {
			return false
		}
		if _, ok := seen[s]; ok {
			return false
		}
		seen[s] = struct{}{}
	}
	return true
}

// reader reads one column's raw bytes, naming the column in its errors.
type reader struct {
	col int
	b   []byte
	off int
}

func (r *reader) name() string { return colSpecs[r.col].name }

func (r *reader) uvarint(what string, i int) (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		return 0, corrupt(r.name(), "%s %d at byte %d: not a varint", what, i, r.off)
	}
	r.off += n
	return v, nil
}

func (r *reader) end() error {
	if r.off != len(r.b) {
		return corrupt(r.name(), "%d bytes after its last value", len(r.b)-r.off)
	}
	return nil
}

// parseUints reads an unsigned-integer column of rows values.
func parseUints(col int, raw []byte, rows int) ([]uint64, error) {
	r := &reader{col: col, b: raw}
	if len(raw) < 1+rows { // a mode byte, at least a byte a value
		return nil, corrupt(r.name(), "%d bytes for %d values", len(raw), rows)
	}
	mode := raw[0]
	r.off = 1
	if mode != uintsPlain && mode != uintsDelta {
		return nil, corrupt(r.name(), "unknown mode %d", mode)
	}
	out := make([]uint64, rows)
	prev := uint64(0)
	for i := range out {
		v, err := r.uvarint("value", i)
		if err != nil {
			return nil, err
		}
		if mode == uintsDelta {
			v = prev + uint64(unzigzag(v))
			prev = v
		}
		out[i] = v
	}
	return out, r.end()
}

// span is one blob value within a column's raw bytes.
type span struct {
	off, n int32 // n < 0: nil
}

// blobCol is a parsed blob column: a value's span is vals[idx[i]] in a
// dictionary column and vals[i] in a plain one.
type blobCol struct {
	raw  []byte
	vals []span
	idx  []uint32 // nil: plain
	strs []string // a dictionary's values as strings, once made
}

func (c *blobCol) at(i int) (b []byte, null bool) {
	var s span
	if c.idx != nil {
		s = c.vals[c.idx[i]]
	} else {
		s = c.vals[i]
	}
	if s.n < 0 {
		return nil, true
	}
	return c.raw[s.off : s.off+s.n : s.off+s.n], false
}

func (r *reader) blob(what string, i int) (span, error) {
	tag, err := r.uvarint(what, i)
	if err != nil {
		return span{}, err
	}
	if tag == 0 {
		if colSpecs[r.col].str {
			return span{}, corrupt(r.name(), "%s %d is nil in a column of strings", what, i)
		}
		return span{n: -1}, nil
	}
	if tag-1 > uint64(len(r.b)-r.off) {
		return span{}, corrupt(r.name(), "%s %d of %d bytes at byte %d runs past the column's end (%d bytes)", what, i, tag-1, r.off, len(r.b))
	}
	s := span{off: int32(r.off), n: int32(tag - 1)}
	r.off += int(tag - 1)
	return s, nil
}

// parseBlobs reads a blob column of rows values.
func parseBlobs(col int, raw []byte, rows int) (*blobCol, error) {
	r := &reader{col: col, b: raw}
	if len(raw) < 1 {
		return nil, corrupt(r.name(), "empty")
	}
	mode := raw[0]
	r.off = 1
	c := &blobCol{raw: raw}
	if mode != blobsFixed && len(raw) < 1+rows { // a byte a value at least
		return nil, corrupt(r.name(), "%d bytes for %d values", len(raw), rows)
	}
	switch mode {
	case blobsFixed:
		if err := r.fixed(c, rows); err != nil {
			return nil, err
		}
	case blobsPlain:
		c.vals = make([]span, rows)
		for i := range c.vals {
			s, err := r.blob("value", i)
			if err != nil {
				return nil, err
			}
			c.vals[i] = s
		}
	case blobsDict:
		d, err := r.uvarint("dictionary size", 0)
		if err != nil {
			return nil, err
		}
		if d > uint64(len(raw)-r.off) || (rows > 0 && d == 0) {
			return nil, corrupt(r.name(), "a dictionary of %d values in %d bytes", d, len(raw))
		}
		c.vals = make([]span, d)
		for i := range c.vals {
			s, err := r.blob("dictionary value", i)
			if err != nil {
				return nil, err
			}
			c.vals[i] = s
		}
		if rows > len(raw)-r.off {
			return nil, corrupt(r.name(), "%d bytes left for %d indexes", len(raw)-r.off, rows)
		}
		c.idx = make([]uint32, rows)
		for i := range c.idx {
			v, err := r.uvarint("index", i)
			if err != nil {
				return nil, err
			}
			if v >= d {
				return nil, corrupt(r.name(), "index %d of value %d past the dictionary's %d values", v, i, d)
			}
			c.idx[i] = uint32(v)
		}
	default:
		return nil, corrupt(r.name(), "unknown mode %d", mode)
	}
	return c, r.end()
}

// fixed reads a fixed-width blob column of rows values after its mode.
func (r *reader) fixed(c *blobCol, rows int) error {
	w, err := r.uvarint("width", 0)
	if err != nil {
		return err
	}
	nb := (rows + 7) / 8
	if w == 0 || w > uint64(len(r.b)) || nb > len(r.b)-r.off {
		return corrupt(r.name(), "fixed width %d and a bitmap of %d bytes in %d", w, nb, len(r.b))
	}
	bitmap := r.b[r.off : r.off+nb]
	r.off += nb
	if rows%8 != 0 && bitmap[nb-1]>>(rows%8) != 0 {
		return corrupt(r.name(), "bits set past the last value in the bitmap of nil values")
	}
	notNil := 0
	for i := range rows {
		if bitmap[i/8]&(1<<(i%8)) == 0 {
			notNil++
		} else if colSpecs[r.col].str {
			return corrupt(r.name(), "value %d is nil in a column of strings", i)
		}
	}
	if uint64(len(r.b)-r.off) != uint64(notNil)*w {
		return corrupt(r.name(), "%d bytes for %d values of %d", len(r.b)-r.off, notNil, w)
	}
	c.vals = make([]span, rows)
	for i := range c.vals {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			c.vals[i] = span{n: -1}
			continue
		}
		c.vals[i] = span{off: int32(r.off), n: int32(w)}
		r.off += int(w)
	}
	return nil
}
