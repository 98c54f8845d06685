package obsblock

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/vigil-oss/vigil/internal/observe"
)

// builder gathers a block's columns before they are written.
type builder struct {
	u     [numCols][]uint64
	b     [numCols]blobs
	f     [numCols][]byte
	arena []byte // bytes made here (the items' kind and digest), viewed by b
}

func (w *builder) str(c int, s string) { w.b[c].add(s, false) }

// bytes adds v to blob column c as a view of v's memory, not a copy: the
// caller's observations are not changed while Encode runs, and the views
// are gone when it returns.
func (w *builder) bytes(c int, v []byte) {
	w.b[c].add(unsafe.String(unsafe.SliceData(v), len(v)), v == nil)
}

// made adds to blob column c bytes that the builder made; a later append
// to the arena may move it, but leaves what earlier views see as it was.
func (w *builder) made(c int, v ...[]byte) {
	start := len(w.arena)
	for _, p := range v {
		w.arena = append(w.arena, p...)
	}
	w.bytes(c, w.arena[start:len(w.arena):len(w.arena)])
}

func (w *builder) fixed8(c int, v uint64) { w.f[c] = binary.LittleEndian.AppendUint64(w.f[c], v) }

// list adds a list's count (0 nil, k+1 for k) to column c.
func (w *builder) count(c int, k int, null bool) {
	if null {
		w.u[c] = append(w.u[c], 0)
		return
	}
	w.u[c] = append(w.u[c], uint64(k)+1)
}

// Encode appends to dst the block of obs, in their order, and returns it,
// in the newest version (2: the chain hashes that follow from the row
// before are derived, not stored). The same observations give the same
// bytes (for one version of this package and of the zstd library). The
// transcripts' bytes are left out: they are stored apart.
func Encode(dst []byte, obs []observe.Observation) ([]byte, error) {
	return encode(dst, obs, version)
}

// encode is Encode in version v (1 or 2): version 1 for the tests and
// benchmarks that compare the two.
func encode(dst []byte, obs []observe.Observation, v byte) ([]byte, error) {
	if len(obs) == 0 || len(obs) > MaxObservations {
		return dst, fmt.Errorf("%w: %d observations (1..%d a block)", ErrUnencodable, len(obs), MaxObservations)
	}
	w := &builder{}
	for c := range numCols { // room for a value a row; lists and optional columns grow as they need
		switch colSpecs[c].kind {
		case kindUints:
			w.u[c] = make([]uint64, 0, len(obs))
		case kindBlobs:
			w.b[c] = blobs{vals: make([]string, 0, len(obs)), null: make([]bool, 0, len(obs))}
		}
	}
	w.arena = make([]byte, 0, 40*len(obs))
	var derive []bool
	if v >= version2 {
		derive = derivable(obs)
	}
	for i := range obs {
		if err := w.add(&obs[i], derive != nil && derive[i]); err != nil {
			return dst, fmt.Errorf("observation %d (%s): %w", i, obs[i].ID, err)
		}
	}
	var raws [numCols][]byte
	total := 0
	for c := range raws {
		switch colSpecs[c].kind {
		case kindUints:
			raws[c] = appendUints(nil, w.u[c])
		case kindBlobs:
			raws[c] = appendBlobs(nil, &w.b[c])
		case kindFixed8:
			raws[c] = w.f[c]
		}
		total += len(raws[c])
	}
	if total > MaxRawBytes {
		return dst, fmt.Errorf("%w: %d bytes of columns (at most %d a block)", ErrUnencodable, total, MaxRawBytes)
	}
	var stored [numCols][]byte
	var modes [numCols]byte
	for c, raw := range raws {
		stored[c], modes[c] = raw, storeRaw
		if len(raw) >= 32 {
			if z := encoder.EncodeAll(raw, nil); len(z) < len(raw) {
				stored[c], modes[c] = z, storeZstd
			}
		}
	}
	dst = append(dst, magic[0], magic[1], magic[2], v)
	dst = binary.AppendUvarint(dst, uint64(len(obs)))
	dst = binary.AppendUvarint(dst, numCols)
	for c := range raws {
		dst = append(dst, modes[c])
		dst = binary.AppendUvarint(dst, uint64(len(raws[c])))
		dst = binary.AppendUvarint(dst, uint64(len(stored[c])))
	}
	for _, s := range stored {
		dst = append(dst, s...)
	}
	return dst, nil
}

// add puts one observation in the columns; derived: its chain hash is
// left out (chain.go).
func (w *builder) add(o *observe.Observation, derived bool) error {
	var flags uint64
	set := func(f uint64, on bool) {
		if on {
			flags |= f
		}
	}
	set(flagClockKnown, o.ClockKnown)
	set(flagModified, o.Sensor.Modified)
	set(flagVPN, o.Place.VPN)
	set(flagHosting, o.Place.Hosting)
	set(flagPrevDerived, derived)
	var tns int64
	if !o.Time.IsZero() {
		ns, err := unixNano(o.Time, "time")
		if err != nil {
			return err
		}
		tns = ns
		flags |= flagTime
		w.u[colTime] = append(w.u[colTime], uint64(ns))
	}
	if id, ok := parseUUID(o.ID); ok {
		flags |= flagUUID
		hi := binary.BigEndian.Uint64(id[:8])
		w.u[colIDHi] = append(w.u[colIDHi], zigzag(int64(hi-predictHi(tns))))
		w.fixed8(colIDLo, binary.LittleEndian.Uint64(id[8:]))
	} else {
		w.str(colIDText, o.ID)
	}
	if !o.Place.DBBuild.IsZero() {
		ns, err := unixNano(o.Place.DBBuild, "geo database build time")
		if err != nil {
			return err
		}
		flags |= flagDBBuild
		w.u[colGeoDBBuild] = append(w.u[colGeoDBBuild], uint64(ns))
	}
	w.u[colFlags] = append(w.u[colFlags], flags)
	w.str(colSensorID, o.Sensor.ID)
	w.str(colSensorVersion, o.Sensor.Version)
	w.str(colSensorVantage, o.Sensor.Vantage)
	w.str(colSensorCommit, o.Sensor.Commit)
	w.str(colSensorConfig, o.Sensor.Config)
	w.str(colNetwork, o.Network)
	w.str(colMethod, o.Method)
	w.u[colClockOffset] = append(w.u[colClockOffset], zigzag(int64(o.ClockOffset)))
	w.u[colClockUnc] = append(w.u[colClockUnc], zigzag(int64(o.ClockUncertainty)))
	w.str(colClockSource, o.ClockSource)
	if o.Item.Hash.IsZero() {
		w.bytes(colItem, nil)
	} else {
		w.made(colItem, []byte{byte(o.Item.Hash.Kind())}, o.Item.Hash.Digest())
	}
	w.count(colMatchCount, len(o.Item.Matched), o.Item.Matched == nil)
	for _, m := range o.Item.Matched {
		w.str(colMatchList, m.List)
		w.str(colMatchCategory, m.Category)
	}
	w.addEndpointClient(o)
	w.u[colLevel] = append(w.u[colLevel], uint64(o.Possession.Level))
	w.u[colPiecesHave] = append(w.u[colPiecesHave], zigzag(int64(o.Possession.PiecesHave)))
	w.u[colPiecesTotal] = append(w.u[colPiecesTotal], zigzag(int64(o.Possession.PiecesTotal)))
	w.count(colMarkCount, len(o.Marks), o.Marks == nil)
	for _, m := range o.Marks {
		w.str(colMarks, m)
	}
	w.str(colTranscriptRef, o.Transcript.Ref)
	w.bytes(colTranscriptSHA, o.Transcript.SHA256)
	w.addPlaceChain(o, derived)
	return nil
}

func (w *builder) addEndpointClient(o *observe.Observation) {
	if o.Endpoint.IP.IsValid() {
		b, _ := o.Endpoint.IP.MarshalBinary() // never fails
		w.made(colIP, b)
	} else {
		w.bytes(colIP, nil)
	}
	w.u[colPort] = append(w.u[colPort], uint64(o.Endpoint.Port))
	w.str(colTransport, o.Endpoint.Transport)
	if o.Endpoint.Local.IsValid() || o.Endpoint.Local.Port() != 0 {
		b, _ := o.Endpoint.Local.MarshalBinary()
		w.made(colLocal, b)
	} else {
		w.bytes(colLocal, nil)
	}
	c := &o.Client
	w.bytes(colPeerID, c.PeerID)
	w.str(colClientName, c.Name)
	w.str(colClientVersion, c.Version)
	w.u[colListenPort] = append(w.u[colListenPort], uint64(c.ListenPort))
	w.bytes(colNodeID, c.NodeID)
	w.bytes(colUserHash, c.UserHash)
	w.bytes(colGUID, c.GUID)
}

func (w *builder) addPlaceChain(o *observe.Observation, derived bool) {
	p := &o.Place
	w.str(colCountry, p.Country)
	w.count(colSubdivCount, len(p.Subdivisions), p.Subdivisions == nil)
	for _, s := range p.Subdivisions {
		w.str(colSubdivs, s)
	}
	w.str(colCity, p.City)
	w.fixed8(colLat, math.Float64bits(p.Lat))
	w.fixed8(colLon, math.Float64bits(p.Lon))
	w.u[colASN] = append(w.u[colASN], uint64(p.ASN))
	w.str(colOrg, p.Org)
	w.str(colGeoDB, p.DB)
	w.str(colAgency, o.Jurisdiction.Agency)
	w.str(colRule, o.Jurisdiction.Rule)
	ch := &o.Chain
	w.bytes(colChainKey, ch.Key)
	w.str(colChainID, ch.ID)
	w.u[colChainSeq] = append(w.u[colChainSeq], ch.Seq)
	if !derived {
		w.bytes(colChainPrev, ch.Prev)
	}
	w.bytes(colChainSig, ch.BatchSig)
	w.u[colChainForm] = append(w.u[colChainForm], uint64(ch.Form))
}

// unixNano is t in Unix nanoseconds, or an error when that does not give
// t back (a time before 1677 or after 2262).
func unixNano(t time.Time, what string) (int64, error) {
	ns := t.UnixNano()
	if !time.Unix(0, ns).Equal(t) {
		return 0, fmt.Errorf("%w: %s %s is outside what 64-bit nanoseconds since 1970 hold", ErrUnencodable, what, t.UTC().Format(time.RFC3339))
	}
	return ns, nil
}

// predictHi is the high 8 bytes of the UUIDv7 that observe.NewID gives
// for a time of ns Unix nanoseconds: its 48 bits of milliseconds, version 7
// and 12 bits of the millisecond's fraction. Only a prediction: an id
// that differs costs a few bytes more, never exactness.
func predictHi(ns int64) uint64 {
	if ns < 0 {
		return 0
	}
	ms := uint64(ns / 1e6)
	frac := uint64(ns%1e6) * 4096 / 1e6
	return (ms&(1<<48-1))<<16 | 7<<12 | frac
}

// parseUUID reads an id in canonical lower-case 8-4-4-4-12 form; any other
// id is kept as written.
func parseUUID(s string) (id [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, false
	}
	var h [32]byte
	n := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return id, false
		}
		h[n] = c
		n++
	}
	if _, err := hex.Decode(id[:], h[:]); err != nil {
		return id, false
	}
	return id, true
}

// formatUUID writes id in canonical lower-case form.
func formatUUID(id [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], id[10:16])
	return string(b[:])
}
