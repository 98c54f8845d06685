package obsblock

import (
	"encoding/binary"
	"fmt"
	"math"

	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Block is an opened block. Its columns are decompressed and parsed when
// first read, so that a reader of a few columns (Times, Endpoints) pays for
// those alone. A Block is not safe for concurrent use.
type Block struct {
	n       int
	version byte // 1 or 2
	stored  [numCols][]byte
	mode    [numCols]byte
	rawLen  [numCols]int
	raw     [numCols][]byte // decompressed; nil until read
	u       [numCols][]uint64
	b       [numCols]*blobCol
	rows    [numCols]int // each column's row count, once the flags are read
	flags   []uint64
	all     bool // every column parsed and checked against the others
	err     error

	derived int      // rows whose chain hash is derived (version 2)
	pred    []int32  // a derived row's predecessor in its chain, once parsed
	prevs   [][]byte // derived chain hashes At computed, by row
}

// Open reads a block's header and column directory; the columns are read
// when wanted. It keeps b: the caller must not change it while the Block
// is in use.
func Open(b []byte) (*Block, error) {
	if len(b) < len(magic) || [3]byte(b[:3]) != [3]byte(magic[:3]) || b[3] < version1 || b[3] > version2 {
		return nil, fmt.Errorf("%w: no block magic (want %q version %d..%d)", ErrCorrupt, magic[:3], version1, version2)
	}
	off := 4
	next := func(what string) (uint64, error) {
		v, k := binary.Uvarint(b[off:])
		if k <= 0 {
			return 0, fmt.Errorf("%w: header: %s at byte %d is not a varint", ErrCorrupt, what, off)
		}
		off += k
		return v, nil
	}
	n, err := next("observation count")
	if err != nil {
		return nil, err
	}
	if n == 0 || n > MaxObservations {
		return nil, fmt.Errorf("%w: header: %d observations (1..%d a block)", ErrCorrupt, n, MaxObservations)
	}
	c, err := next("column count")
	if err != nil {
		return nil, err
	}
	if c != numCols {
		return nil, fmt.Errorf("%w: header: %d columns, version %d has %d", ErrCorrupt, c, b[3], numCols)
	}
	blk := &Block{n: int(n), version: b[3]}
	var rawTotal, storedTotal uint64
	lens := [numCols]uint64{}
	for i := range numCols {
		if off >= len(b) {
			return nil, fmt.Errorf("%w: header: the directory ends at column %s", ErrCorrupt, colSpecs[i].name)
		}
		blk.mode[i] = b[off]
		off++
		raw, err := next("raw length of " + colSpecs[i].name)
		if err != nil {
			return nil, err
		}
		st, err := next("stored length of " + colSpecs[i].name)
		if err != nil {
			return nil, err
		}
		switch {
		case blk.mode[i] > storeZstd:
			return nil, corrupt(colSpecs[i].name, "unknown storage mode %d", blk.mode[i])
		case blk.mode[i] == storeRaw && raw != st:
			return nil, corrupt(colSpecs[i].name, "stored raw in %d bytes but %d long", st, raw)
		case raw > MaxRawBytes || st > uint64(len(b)):
			return nil, corrupt(colSpecs[i].name, "%d bytes, %d stored: longer than a block may be", raw, st)
		}
		rawTotal += raw
		storedTotal += st
		lens[i] = st
		blk.rawLen[i] = int(raw)
	}
	if rawTotal > MaxRawBytes {
		return nil, fmt.Errorf("%w: header: %d bytes of columns, at most %d a block", ErrCorrupt, rawTotal, MaxRawBytes)
	}
	if storedTotal != uint64(len(b)-off) {
		return nil, fmt.Errorf("%w: the directory names %d bytes of columns, the block holds %d after it", ErrCorrupt, storedTotal, len(b)-off)
	}
	for i := range numCols {
		blk.stored[i] = b[off : off+int(lens[i]) : off+int(lens[i])]
		off += int(lens[i])
	}
	return blk, nil
}

// Len is the number of observations in the block.
func (b *Block) Len() int { return b.n }

// column returns column c's raw bytes, decompressing them once.
func (b *Block) column(c int) ([]byte, error) {
	if b.raw[c] != nil || b.rawLen[c] == 0 {
		if b.rawLen[c] == 0 && b.mode[c] == storeZstd {
			return nil, corrupt(colSpecs[c].name, "compressed but empty")
		}
		return b.raw[c], nil
	}
	if b.mode[c] == storeRaw {
		b.raw[c] = b.stored[c]
		return b.raw[c], nil
	}
	// The capacity is the directory's length, or less when that is far
	// more than the stored bytes could plausibly give: an edited length
	// then costs no large allocation before the frame disproves it.
	raw, err := decoder.DecodeAll(b.stored[c], make([]byte, 0, min(b.rawLen[c], 64*len(b.stored[c])+4096)))
	if err != nil {
		return nil, corrupt(colSpecs[c].name, "zstd: %v", err)
	}
	if len(raw) != b.rawLen[c] {
		return nil, corrupt(colSpecs[c].name, "%d bytes decompressed, the directory says %d", len(raw), b.rawLen[c])
	}
	b.raw[c] = raw
	return raw, nil
}

// readFlags reads the flags column and the row counts it decides.
func (b *Block) readFlags() error {
	if b.flags != nil {
		return nil
	}
	raw, err := b.column(colFlags)
	if err != nil {
		return err
	}
	flags, err := parseUints(colFlags, raw, b.n)
	if err != nil {
		return err
	}
	var uuid, tm, db int
	known := flagsOf(b.version)
	for i, f := range flags {
		if f&^known != 0 {
			return corrupt("flags", "row %d has flags %#x unknown in version %d", i, f&^known, b.version)
		}
		uuid += int(f & flagUUID / flagUUID)
		tm += int(f & flagTime / flagTime)
		db += int(f & flagDBBuild / flagDBBuild)
	}
	for c := range numCols {
		b.rows[c] = b.n
	}
	b.rows[colIDHi], b.rows[colIDLo], b.rows[colIDText] = uuid, uuid, b.n-uuid
	b.rows[colTime], b.rows[colGeoDBBuild] = tm, db
	b.derived = derivedRows(flags)
	b.rows[colChainPrev] = b.n - b.derived
	b.flags = flags
	return nil
}

// load parses column c, whose row count is known.
func (b *Block) load(c int) error {
	if b.u[c] != nil || b.b[c] != nil {
		return nil
	}
	raw, err := b.column(c)
	if err != nil {
		return err
	}
	switch colSpecs[c].kind {
	case kindUints:
		v, err := parseUints(c, raw, b.rows[c])
		if err != nil {
			return err
		}
		b.u[c] = v
	case kindBlobs:
		v, err := parseBlobs(c, raw, b.rows[c])
		if err != nil {
			return err
		}
		b.b[c] = v
	case kindFixed8:
		if len(raw) != 8*b.rows[c] {
			return corrupt(colSpecs[c].name, "%d bytes for %d values of 8", len(raw), b.rows[c])
		}
	}
	return nil
}

// listRows reads a list's count column and sets its element columns' row
// counts to the sum of its counts.
func (b *Block) listRows(count int, elems ...int) error {
	if err := b.load(count); err != nil {
		return err
	}
	var sum uint64
	for i, k := range b.u[count] {
		if k > 0 {
			sum += k - 1
		}
		if sum > MaxRawBytes {
			return corrupt(colSpecs[count].name, "row %d: %d elements so far, more than a block may hold", i, sum)
		}
	}
	for _, e := range elems {
		b.rows[e] = int(sum)
	}
	return nil
}

// parseAll parses every column once, checking each against the others.
func (b *Block) parseAll() error {
	if b.all || b.err != nil {
		return b.err
	}
	b.err = func() error {
		if err := b.readFlags(); err != nil {
			return err
		}
		for _, l := range [][]int{{colMatchCount, colMatchList, colMatchCategory}, {colMarkCount, colMarks}, {colSubdivCount, colSubdivs}} {
			if err := b.listRows(l[0], l[1:]...); err != nil {
				return err
			}
		}
		for c := range numCols {
			if err := b.load(c); err != nil {
				return err
			}
		}
		if err := b.check(); err != nil {
			return err
		}
		return b.linkChains()
	}()
	b.all = b.err == nil
	return b.err
}

// check refuses values no observation can have given: they would come
// back otherwise than they went in.
func (b *Block) check() error {
	for c, max := range map[int]uint64{colPort: math.MaxUint16, colListenPort: math.MaxUint16, colLevel: math.MaxUint8,
		colASN: math.MaxUint32, colChainForm: math.MaxUint8} {
		for i, v := range b.u[c] {
			if v > max {
				return corrupt(colSpecs[c].name, "row %d: %d is more than %d", i, v, max)
			}
		}
	}
	for _, c := range []int{colPiecesHave, colPiecesTotal} {
		for i, v := range b.u[c] {
			if x := unzigzag(v); x != int64(int(x)) {
				return corrupt(colSpecs[c].name, "row %d: %d does not fit an int", i, x)
			}
		}
	}
	return nil
}

// Decode decodes a whole block.
func Decode(blk []byte) ([]observe.Observation, error) {
	b, err := Open(blk)
	if err != nil {
		return nil, err
	}
	return b.All()
}

// All decodes every observation of the block, in order.
func (b *Block) All() ([]observe.Observation, error) {
	if err := b.parseAll(); err != nil {
		return nil, err
	}
	out := make([]observe.Observation, b.n)
	cur := cursor{}
	for i := range out {
		if err := b.build(&out[i], i, &cur); err != nil {
			return nil, err
		}
		if b.flags[i]&flagPrevDerived != 0 {
			prev, err := stepFrom(&out[b.pred[i]], i)
			if err != nil {
				return nil, err
			}
			out[i].Chain.Prev = prev
		}
	}
	return out, nil
}

// At decodes observation i alone. The first call parses every column (no
// observation is built but i); later calls only build theirs.
func (b *Block) At(i int) (observe.Observation, error) {
	var o observe.Observation
	if i < 0 || i >= b.n {
		return o, fmt.Errorf("obsblock: observation %d of a block of %d", i, b.n)
	}
	if err := b.parseAll(); err != nil {
		return o, err
	}
	cur := b.cursorAt(i)
	if err := b.build(&o, i, &cur); err != nil {
		return o, err
	}
	if b.flags[i]&flagPrevDerived != 0 {
		prev, err := b.derivedPrev(i)
		if err != nil {
			return o, err
		}
		o.Chain.Prev = prev
	}
	return o, nil
}

// cursor is where row i's values are in the columns that do not hold a
// value a row: the optional columns and the lists' elements.
type cursor struct {
	uuid, time, db, derived, match, mark, subdiv int
}

func (b *Block) cursorAt(i int) cursor {
	var c cursor
	for _, f := range b.flags[:i] {
		c.uuid += int(f & flagUUID / flagUUID)
		c.time += int(f & flagTime / flagTime)
		c.db += int(f & flagDBBuild / flagDBBuild)
		c.derived += int(f & flagPrevDerived / flagPrevDerived)
	}
	sum := func(counts []uint64) int {
		s := 0
		for _, k := range counts {
			if k > 0 {
				s += int(k - 1)
			}
		}
		return s
	}
	c.match, c.mark, c.subdiv = sum(b.u[colMatchCount][:i]), sum(b.u[colMarkCount][:i]), sum(b.u[colSubdivCount][:i])
	return c
}

// advance moves c past row i without building it.
func (b *Block) advance(c *cursor, i int) {
	f := b.flags[i]
	c.uuid += int(f & flagUUID / flagUUID)
	c.time += int(f & flagTime / flagTime)
	c.db += int(f & flagDBBuild / flagDBBuild)
	c.derived += int(f & flagPrevDerived / flagPrevDerived)
	elems := func(count int) int { return int(max(b.u[count][i], 1) - 1) }
	c.match += elems(colMatchCount)
	c.mark += elems(colMarkCount)
	c.subdiv += elems(colSubdivCount)
}

// str is row i of string column c. A dictionary's strings are made once
// and shared by the rows (strings do not change).
func (b *Block) str(c, i int) string {
	col := b.b[c]
	if col.idx == nil {
		v, _ := col.at(i)
		return string(v)
	}
	if col.strs == nil {
		col.strs = make([]string, len(col.vals))
		for k, s := range col.vals {
			if s.n > 0 {
				col.strs[k] = string(col.raw[s.off : s.off+s.n])
			}
		}
	}
	return col.strs[col.idx[i]]
}

func (b *Block) bytes(c, i int) []byte {
	v, null := b.b[c].at(i)
	if null {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

func (b *Block) fixed8(c, i int) uint64 { return binary.LittleEndian.Uint64(b.raw[c][8*i:]) }

// list returns the count of list column c at row i (-1 for nil).
func (b *Block) list(c, i int) int { return int(b.u[c][i]) - 1 }

// build fills o with row i; cur holds where row i's optional and list
// values start, and moves past them.
func (b *Block) build(o *observe.Observation, i int, cur *cursor) error {
	f := b.flags[i]
	o.ClockKnown, o.Sensor.Modified = f&flagClockKnown != 0, f&flagModified != 0
	o.Place.VPN, o.Place.Hosting = f&flagVPN != 0, f&flagHosting != 0
	var tns int64
	if f&flagTime != 0 {
		tns = int64(b.u[colTime][cur.time])
		o.Time = time.Unix(0, tns).UTC()
		cur.time++
	}
	if f&flagUUID != 0 {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], predictHi(tns)+uint64(unzigzag(b.u[colIDHi][cur.uuid])))
		binary.LittleEndian.PutUint64(id[8:], b.fixed8(colIDLo, cur.uuid))
		o.ID = formatUUID(id)
		cur.uuid++
	} else {
		o.ID = b.str(colIDText, i-cur.uuid)
	}
	if f&flagDBBuild != 0 {
		o.Place.DBBuild = time.Unix(0, int64(b.u[colGeoDBBuild][cur.db])).UTC()
		cur.db++
	}
	o.Sensor.ID, o.Sensor.Version = b.str(colSensorID, i), b.str(colSensorVersion, i)
	o.Sensor.Vantage, o.Sensor.Commit, o.Sensor.Config = b.str(colSensorVantage, i), b.str(colSensorCommit, i), b.str(colSensorConfig, i)
	o.Network, o.Method = b.str(colNetwork, i), b.str(colMethod, i)
	o.ClockOffset = time.Duration(unzigzag(b.u[colClockOffset][i]))
	o.ClockUncertainty = time.Duration(unzigzag(b.u[colClockUnc][i]))
	o.ClockSource = b.str(colClockSource, i)
	if v, null := b.b[colItem].at(i); !null {
		if len(v) == 0 {
			return corrupt("item", "row %d: an empty hash", i)
		}
		h, err := hashkind.New(hashkind.Kind(v[0]), v[1:])
		if err != nil {
			return corrupt("item", "row %d: %v", i, err)
		}
		o.Item.Hash = h
	}
	if k := b.list(colMatchCount, i); k >= 0 {
		o.Item.Matched = make([]observe.Match, k)
		for j := range o.Item.Matched {
			o.Item.Matched[j] = observe.Match{List: b.str(colMatchList, cur.match), Category: b.str(colMatchCategory, cur.match)}
			cur.match++
		}
	}
	if err := b.buildEndpoint(o, i); err != nil {
		return err
	}
	o.Client.PeerID, o.Client.NodeID = b.bytes(colPeerID, i), b.bytes(colNodeID, i)
	o.Client.UserHash, o.Client.GUID = b.bytes(colUserHash, i), b.bytes(colGUID, i)
	o.Client.Name, o.Client.Version = b.str(colClientName, i), b.str(colClientVersion, i)
	o.Client.ListenPort = uint16(b.u[colListenPort][i])
	o.Possession = observe.Possession{Level: observe.Level(b.u[colLevel][i]),
		PiecesHave: int(unzigzag(b.u[colPiecesHave][i])), PiecesTotal: int(unzigzag(b.u[colPiecesTotal][i]))}
	o.Marks = b.strings(colMarkCount, colMarks, i, &cur.mark)
	o.Transcript = observe.Transcript{Ref: b.str(colTranscriptRef, i), SHA256: b.bytes(colTranscriptSHA, i)}
	p := &o.Place
	p.Country, p.City, p.Org, p.DB = b.str(colCountry, i), b.str(colCity, i), b.str(colOrg, i), b.str(colGeoDB, i)
	p.Subdivisions = b.strings(colSubdivCount, colSubdivs, i, &cur.subdiv)
	p.Lat, p.Lon = math.Float64frombits(b.fixed8(colLat, i)), math.Float64frombits(b.fixed8(colLon, i))
	p.ASN = uint32(b.u[colASN][i])
	o.Jurisdiction = observe.Jurisdiction{Agency: b.str(colAgency, i), Rule: b.str(colRule, i)}
	o.Chain = observe.Chain{Key: b.bytes(colChainKey, i), ID: b.str(colChainID, i), Seq: b.u[colChainSeq][i],
		BatchSig: b.bytes(colChainSig, i), Form: uint8(b.u[colChainForm][i])}
	if f&flagPrevDerived == 0 { // else the caller computes it
		o.Chain.Prev = b.bytes(colChainPrev, i-cur.derived)
	} else {
		cur.derived++
	}
	return nil
}

func (b *Block) strings(count, elems, i int, at *int) []string {
	k := b.list(count, i)
	if k < 0 {
		return nil
	}
	out := make([]string, k)
	for j := range out {
		out[j] = b.str(elems, *at)
		*at++
	}
	return out
}

func (b *Block) buildEndpoint(o *observe.Observation, i int) error {
	e, err := b.endpoint(i)
	o.Endpoint = e
	return err
}

func (b *Block) endpoint(i int) (observe.Endpoint, error) {
	var e observe.Endpoint
	if v, null := b.b[colIP].at(i); !null {
		if err := e.IP.UnmarshalBinary(v); err != nil || !e.IP.IsValid() {
			return e, corrupt("ip", "row %d: %d bytes are no address", i, len(v))
		}
	}
	if v, null := b.b[colLocal].at(i); !null {
		var ap netip.AddrPort
		if err := ap.UnmarshalBinary(v); err != nil || (!ap.IsValid() && ap.Port() == 0) {
			return e, corrupt("local", "row %d: %d bytes are no address and port", i, len(v))
		}
		e.Local = ap
	}
	if p := b.u[colPort][i]; p > math.MaxUint16 {
		return e, corrupt("port", "row %d: %d", i, p)
	}
	e.Port = uint16(b.u[colPort][i])
	e.Transport = b.str(colTransport, i)
	return e, nil
}

// Times reads the observations' times alone (zero where an observation
// has none), decompressing two columns. It checks those columns only: a
// block whose other columns are broken still gives its times (All and At
// refuse it).
func (b *Block) Times() ([]time.Time, error) {
	if err := b.readFlags(); err != nil {
		return nil, err
	}
	if err := b.load(colTime); err != nil {
		return nil, err
	}
	out := make([]time.Time, b.n)
	k := 0
	for i, f := range b.flags {
		if f&flagTime != 0 {
			out[i] = time.Unix(0, int64(b.u[colTime][k])).UTC()
			k++
		}
	}
	return out, nil
}

// IDs reads the observations' ids alone, decompressing five columns
// (the flags, the times a UUID's high half is predicted from, the id
// columns): what a store's check that an id is stored, or its lookup of
// an id's seq, reads of a block. Like Times, it checks the columns it
// reads only.
func (b *Block) IDs() ([]string, error) {
	if err := b.readFlags(); err != nil {
		return nil, err
	}
	for _, c := range []int{colTime, colIDHi, colIDLo, colIDText} {
		if err := b.load(c); err != nil {
			return nil, err
		}
	}
	out := make([]string, b.n)
	var cur cursor
	for i, f := range b.flags {
		var tns int64
		if f&flagTime != 0 {
			tns = int64(b.u[colTime][cur.time])
			cur.time++
		}
		if f&flagUUID != 0 {
			var id [16]byte
			binary.BigEndian.PutUint64(id[:8], predictHi(tns)+uint64(unzigzag(b.u[colIDHi][cur.uuid])))
			binary.LittleEndian.PutUint64(id[8:], b.fixed8(colIDLo, cur.uuid))
			out[i] = formatUUID(id)
			cur.uuid++
		} else {
			out[i] = b.str(colIDText, i-cur.uuid)
		}
	}
	return out, nil
}

// Endpoints reads the observations' endpoints alone (address, port,
// transport, the sensor's own address), decompressing four columns: what
// a platform's check of its addresses or an ISP scan reads. Like Times,
// it checks the columns it reads only.
func (b *Block) Endpoints() ([]observe.Endpoint, error) {
	for _, c := range []int{colIP, colPort, colTransport, colLocal} {
		b.rows[c] = b.n
		if err := b.load(c); err != nil {
			return nil, err
		}
	}
	out := make([]observe.Endpoint, b.n)
	for i := range out {
		e, err := b.endpoint(i)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}
