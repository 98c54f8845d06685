package observe

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// unmarshalRecord reads one line into r as json.Unmarshal does. Most
// lines are what an Encoder wrote: fastRecord reads those without
// reflection (json.Unmarshal was most of ingest's CPU for a bus message,
// docs/benchmarks.md); anything it does not take on, json.Unmarshal reads
// from the start, so that the record and the error are json.Unmarshal's.
func unmarshalRecord(b []byte, r *record) error {
	if fastRecord(b, r) {
		return nil
	}
	// json.Unmarshal keeps what it is given on the heap: decoding into a
	// record of its own keeps r (each line's, in DecodeLine) off it on
	// the fast path.
	h := new(record)
	err := json.Unmarshal(b, h)
	*r = *h
	return err
}

// fastRecord parses b into r, which must be the zero record, and reports
// whether it did: true only where json.Unmarshal would fill r with the
// same values and return no error (FuzzFastRecord). It takes the JSON an
// Encoder writes and declines the rest: a key that is not exactly one of
// the record's (json.Unmarshal also matches keys without regard to case,
// and skips unknown ones), a key given twice, a string with an escape or
// bytes that are not UTF-8, null where the field is not a pointer, a
// number its field would refuse, or anything that is not JSON.
func fastRecord(b []byte, r *record) bool {
	p := fastParser{b: b}
	ok := p.object(func(key []byte) bool { return p.field(r, key) })
	if !ok {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

// fastParser walks the bytes of one line.
type fastParser struct {
	b    []byte
	i    int
	seen uint64 // the record's keys already read, one bit each
}

// ws skips JSON whitespace.
func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips whitespace and reports whether the next byte is c, taking it
// if so.
func (p *fastParser) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object reads an object whose values member reads, given each key.
func (p *fastParser) object(member func(key []byte) bool) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		return true
	}
	for {
		p.ws()
		key, ok := p.rawString()
		if !ok || !p.next(':') {
			return false
		}
		p.ws()
		if !member(key) {
			return false
		}
		if p.next(',') {
			continue
		}
		return p.next('}')
	}
}

// rawString reads a string without escapes or control characters, and
// valid UTF-8, and returns its bytes (in b).
func (p *fastParser) rawString() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	ascii := true
	for j := start; j < len(p.b); j++ {
		c := p.b[j]
		switch {
		case c == '"':
			s := p.b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			p.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// vocabulary is the values of the line's closed fields (network, method,
// transport, item kind, possession, marks) as their constants: word and
// words read a known value as the constant, without a string of its own
// (of about fifty a line). Any other value is read as str reads it.
var vocabulary = func() map[string]string {
	v := map[string]string{}
	for _, w := range []string{
		NetBitTorrent, NetED2K, NetKad, NetGnutella,
		MethodDHTAnnounce, MethodDHTGetPeers, MethodTracker, MethodPEX, MethodPeerProbe, MethodED2KServerSources, MethodKadSources,
		"tcp", "udp", "utp",
		MarkMalformedBitfield, MarkMalformedHave, MarkInfohashMismatch, MarkSpoofableSource, MarkThirdParty, MarkTranscriptCut,
		MarkTranscriptPaused, MarkNodeIDUnchecked, MarkNodeIDViaPing, MarkNonPublicAddress, MarkUnsigned, MarkSignatureFailed,
	} {
		v[w] = w
	}
	for _, n := range levelNames {
		v[n] = n
	}
	for _, k := range hashkind.All() {
		v[k.String()] = k.String()
	}
	return v
}()

// word is str for a closed field: a value of the vocabulary is its
// constant.
func (p *fastParser) word(dst *string) bool {
	s, ok := p.rawString()
	if ok {
		if w, known := vocabulary[string(s)]; known {
			*dst = w
		} else {
			*dst = string(s)
		}
	}
	return ok
}

func (p *fastParser) str(dst *string) bool {
	s, ok := p.rawString()
	if ok {
		*dst = string(s)
	}
	return ok
}

// rawHex reads a string as str does, keeping its bytes in the line
// (dst) instead of a string of them: the chain fields' hex, which
// record.chain decodes from there (raw.set says so; the record's string
// fields stay empty).
func (p *fastParser) rawHex(raw *rawChain, dst *[]byte) bool {
	s, ok := p.rawString()
	if ok {
		*dst, raw.set = s, true
	}
	return ok
}

// rawField reads a string as str does, keeping its bytes in the line
// (dst) instead of a string of them: the item's and the client's hex,
// which record.observation decodes from there into one array (the
// record's string fields stay empty).
func (p *fastParser) rawField(dst *[]byte) bool {
	s, ok := p.rawString()
	if ok {
		*dst = s
	}
	return ok
}

// strings reads an array of strings; [] is an empty slice, not nil, as
// json.Unmarshal makes it.
func (p *fastParser) strings(dst *[]string) bool { return p.stringList(dst, false) }

// words is strings for a list of closed values (marks): a value of the
// vocabulary is its constant.
func (p *fastParser) words(dst *[]string) bool { return p.stringList(dst, true) }

func (p *fastParser) stringList(dst *[]string, closed bool) bool {
	if !p.next('[') {
		return false
	}
	out := []string{}
	if p.next(']') {
		*dst = out
		return true
	}
	for {
		p.ws()
		s, ok := p.rawString()
		if !ok {
			return false
		}
		w, known := "", false
		if closed {
			w, known = vocabulary[string(s)]
		}
		if !known {
			w = string(s)
		}
		out = append(out, w)
		if p.next(',') {
			continue
		}
		if !p.next(']') {
			return false
		}
		*dst = out
		return true
	}
}

func (p *fastParser) boolean(dst *bool) bool {
	switch {
	case p.literal("true"):
		*dst = true
	case p.literal("false"):
		*dst = false
	default:
		return false
	}
	return true
}

// literal takes the word w if it comes next and is not followed by more
// of a word (json.Unmarshal would call "nullx" a syntax error).
func (p *fastParser) literal(w string) bool {
	end := p.i + len(w)
	if end > len(p.b) || string(p.b[p.i:end]) != w {
		return false
	}
	if end < len(p.b) && isWordByte(p.b[end]) {
		return false
	}
	p.i = end
	return true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= utf8.RuneSelf
}

// number reads a JSON number and returns its text, with whether it has a
// fraction or exponent.
func (p *fastParser) number() (lit []byte, integer bool, ok bool) {
	start, j := p.i, p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	switch {
	case j < len(p.b) && p.b[j] == '0':
		j++
	case j < len(p.b) && p.b[j] >= '1' && p.b[j] <= '9':
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
	default:
		return nil, false, false
	}
	integer = true
	if j < len(p.b) && p.b[j] == '.' {
		integer = false
		j++
		d := j
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
		if j == d {
			return nil, false, false
		}
	}
	if j < len(p.b) && (p.b[j] == 'e' || p.b[j] == 'E') {
		integer = false
		j++
		if j < len(p.b) && (p.b[j] == '+' || p.b[j] == '-') {
			j++
		}
		d := j
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
		if j == d {
			return nil, false, false
		}
	}
	// A number ends at a delimiter: what follows is whitespace, a comma,
	// a closing bracket or the end.
	if j < len(p.b) {
		switch p.b[j] {
		case ' ', '\t', '\n', '\r', ',', '}', ']':
		default:
			return nil, false, false
		}
	}
	p.i = j
	return p.b[start:j], integer, true
}

// uint reads an integer of at most bits bits, as json.Unmarshal does into
// an unsigned field.
func (p *fastParser) uint(bits int) (uint64, bool) {
	lit, integer, ok := p.number()
	if !ok || !integer {
		return 0, false
	}
	v, err := strconv.ParseUint(string(lit), 10, bits)
	return v, err == nil
}

// optInt reads null (nil) or an integer into an *int field.
func (p *fastParser) optInt(dst **int) bool {
	if p.literal("null") {
		*dst = nil
		return true
	}
	lit, integer, ok := p.number()
	if !ok || !integer {
		return false
	}
	v, err := strconv.ParseInt(string(lit), 10, strconv.IntSize)
	if err != nil {
		return false
	}
	n := int(v)
	*dst = &n
	return true
}

func (p *fastParser) float(dst *float64) bool {
	lit, _, ok := p.number()
	if !ok {
		return false
	}
	v, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return false
	}
	*dst = v
	return true
}

// optNumber reads null (nil) or a number, kept as its text.
func (p *fastParser) optNumber(dst **json.Number) bool {
	if p.literal("null") {
		*dst = nil
		return true
	}
	lit, _, ok := p.number()
	if !ok {
		return false
	}
	n := json.Number(lit)
	*dst = &n
	return true
}

func (p *fastParser) build(dst *Build) bool {
	var seen uint8
	return p.object(func(key []byte) bool {
		var bit uint8
		var ok bool
		switch string(key) {
		case "version":
			bit, ok = 1, p.str(&dst.Version)
		case "commit":
			bit, ok = 2, p.str(&dst.Commit)
		case "modified":
			bit, ok = 4, p.boolean(&dst.Modified)
		}
		if bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		return ok
	})
}

// field reads the value of key into r; false for a key that is not
// exactly one of the record's, one already read, or a value its field
// does not take as json.Unmarshal would.
func (p *fastParser) field(r *record, key []byte) bool {
	n, ok := -1, false
	switch string(key) {
	case "id":
		n, ok = 0, p.str(&r.ID)
	case "time":
		n, ok = 1, p.str(&r.Time)
	case "sensor":
		n, ok = 2, p.str(&r.Sensor)
	case "network":
		n, ok = 3, p.word(&r.Network)
	case "method":
		n, ok = 4, p.word(&r.Method)
	case "ip":
		n, ok = 5, p.str(&r.IP)
	case "port":
		var v uint64
		v, ok = p.uint(16)
		n, r.Port = 6, uint16(v)
	case "transport":
		n, ok = 7, p.word(&r.Transport)
	case "sensor_address":
		n, ok = 8, p.str(&r.SensorAddress)
	case "item_kind":
		n, ok = 9, p.word(&r.ItemKind)
	case "item":
		n, ok = 10, p.rawField(&r.raw.item)
	case "possession":
		n, ok = 11, p.word(&r.Possession)
	case "pieces_have":
		n, ok = 12, p.optInt(&r.PiecesHave)
	case "pieces_total":
		n, ok = 13, p.optInt(&r.PiecesTotal)
	case "marks":
		n, ok = 14, p.words(&r.Marks)
	case "peer_id":
		n, ok = 15, p.rawField(&r.raw.peerID)
	case "client":
		n, ok = 16, p.str(&r.Client)
	case "listen_port":
		var v uint64
		v, ok = p.uint(16)
		n, r.ListenPort = 17, uint16(v)
	case "node_id":
		n, ok = 18, p.rawField(&r.raw.nodeID)
	case "matched":
		n, ok = 19, p.strings(&r.Matched)
	case "matched_categories":
		n, ok = 20, p.strings(&r.MatchedCategories)
	case "sensor_version":
		n, ok = 21, p.str(&r.SensorVersion)
	case "vantage":
		n, ok = 22, p.str(&r.Vantage)
	case "clock_offset_ms":
		n, ok = 23, p.optNumber(&r.ClockOffsetMS)
	case "clock_uncertainty_ms":
		n, ok = 24, p.optNumber(&r.ClockUncertainty)
	case "clock_source":
		n, ok = 25, p.str(&r.ClockSource)
	case "build":
		n, ok = 26, p.build(&r.Build)
	case "sensor_config":
		n, ok = 27, p.str(&r.SensorConfig)
	case "client_version":
		n, ok = 28, p.str(&r.ClientVersion)
	case "user_hash":
		n, ok = 29, p.rawField(&r.raw.userHash)
	case "guid":
		n, ok = 30, p.rawField(&r.raw.guid)
	case "transcript":
		n, ok = 31, p.str(&r.Transcript)
	case "transcript_ref":
		n, ok = 32, p.str(&r.TranscriptRef)
	case "transcript_sha256":
		n, ok = 33, p.rawField(&r.raw.transcriptSHA256)
	case "country":
		n, ok = 34, p.str(&r.Country)
	case "subdivisions":
		n, ok = 35, p.strings(&r.Subdivisions)
	case "city":
		n, ok = 36, p.str(&r.City)
	case "latitude":
		n, ok = 37, p.float(&r.Latitude)
	case "longitude":
		n, ok = 38, p.float(&r.Longitude)
	case "asn":
		var v uint64
		v, ok = p.uint(32)
		n, r.ASN = 39, uint32(v)
	case "org":
		n, ok = 40, p.str(&r.Org)
	case "vpn":
		n, ok = 41, p.boolean(&r.VPN)
	case "hosting":
		n, ok = 42, p.boolean(&r.Hosting)
	case "geo_db":
		n, ok = 43, p.str(&r.GeoDB)
	case "geo_db_build":
		n, ok = 44, p.str(&r.GeoDBBuild)
	case "agency":
		n, ok = 45, p.str(&r.Agency)
	case "agency_rule":
		n, ok = 46, p.str(&r.AgencyRule)
	case "sensor_key":
		n, ok = 47, p.rawHex(&r.raw, &r.raw.sensorKey)
	case "chain":
		n, ok = 48, p.str(&r.Chain)
	case "chain_seq":
		n = 49
		if p.literal("null") {
			r.ChainSeq, ok = nil, true
		} else {
			var v uint64
			if v, ok = p.uint(64); ok {
				r.ChainSeq = &v
			}
		}
	case "chain_prev":
		n, ok = 50, p.rawHex(&r.raw, &r.raw.chainPrev)
	case "batch_sig":
		n, ok = 51, p.rawHex(&r.raw, &r.raw.batchSig)
	case "evidence_form":
		var v uint64
		n = 52
		if v, ok = p.uint(8); ok {
			r.EvidenceForm = formPtr(uint8(v))
		}
	}
	if n < 0 || p.seen&(1<<n) != 0 {
		return false
	}
	p.seen |= 1 << n
	return ok
}
