package observe

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// The JSON Lines form: one flat JSON object a line, every key always
// present, in this order. It is what 'vigil observations export' writes and
// 'import' reads, and what people load into jq, spreadsheets and other
// tools, so it is flat and spelled out:
//
//	id                 the observation id (UUIDv7)
//	time               UTC, RFC 3339 with exactly 9 fractional digits
//	sensor             sensor instance
//	network, method    "bittorrent", "dht_announce", ...
//	ip, port, transport  the endpoint
//	sensor_address     the sensor's own "ip:port" in the conversation, "" when
//	                   the endpoint never talked to the sensor
//	item_kind, item    the hash kind ("btih") and the digest in lower-case hex
//	possession         level name: announced, acknowledged, partial, complete, verified
//	pieces_have, pieces_total  numbers, or null where unknown (see below)
//	marks              what a reader must know before relying on the line
//	                   (third_party, malformed_bitfield, ...; marks.go), sorted
//	peer_id            raw BitTorrent peer id, hex
//	client             decoded client name
//	listen_port        port the peer says it listens on
//	node_id            DHT node id, hex
//	matched            watch-list names the item matched
//	matched_categories the category on each of those lists, same order and length
//	sensor_version, vantage
//	clock_offset_ms    the sensor clock minus the reference clock when the
//	                   observation was made, in milliseconds (exact to the
//	                   nanosecond: at most six decimals), or null when it
//	                   is unknown (no server configured, or none answered
//	                   in a way that could be trusted): never 0 for unknown
//	clock_uncertainty_ms  the true offset lies within clock_offset_ms ± this;
//	                   null exactly when clock_offset_ms is null
//	clock_source       how the offset was measured ("ntp:127.0.0.1:123"),
//	                   or why it is unknown ("none", "ntp:... failed: ...")
//	build              the sensor's exact build: {"version", "commit" (the
//	                   VCS revision, "" when the build recorded none),
//	                   "modified" (the tree had uncommitted changes)};
//	                   version is sensor_version
//	sensor_config      SHA-256 (hex) of the sensor's effective configuration
//	                   in its canonical form (docs/evidence.md), "" unknown
//	client_version, user_hash (hex), guid (hex), transcript (standard base64),
//	transcript_ref, transcript_sha256 (hex)
//	country, subdivisions (list, largest first), city, latitude, longitude,
//	asn, org, vpn, hosting, geo_db, geo_db_build (RFC 3339): where the
//	address was placed at ingest, and by which database edition
//	agency, agency_rule  the agency it was routed to, and the rule that did
//	sensor_key, chain, chain_seq, chain_prev, batch_sig  where the sensor's
//	                   signed hash chain holds it (hex; chain_seq a number
//	                   from 1, null when no sensor signed it): see
//	                   internal/evidence and docs/evidence.md
//	evidence_form      2 when the sensor hashed it in evidence form 2
//	                   (docs/evidence.md); absent in form 1, never 0 or 1
//
// Where the protocol gave nothing a key holds its empty value: "" for text
// and hex, 0 for numbers, [] for lists. Piece counts are the exception:
// zero pieces is a fact (a peer that has none), so an unknown count is
// null, never 0; in Go it is -1. A count is read back as -1 from null or
// from a missing key. The clock offset is the same: null when unknown, and
// a line without clock_offset_ms (written before it existed, with
// clock_offset_ns) reads as unknown. Keys the decoder does not know are ignored, so that
// files from a newer Vigil still load.
//
// Text is JSON text, so a client name that is not valid UTF-8 (peers send
// what they like) is written with U+FFFD in place of the bad bytes; the
// transcript keeps the exact bytes.

// DefaultMaxLineBytes bounds one line of the JSON Lines form, so that a
// damaged or hostile file cannot make the decoder buffer without end. A
// bounded transcript fits well within it.
const DefaultMaxLineBytes = 1 << 20

// ErrLineTooLong is returned for a line longer than the decoder's (or
// encoder's) limit.
var ErrLineTooLong = errors.New("line too long")

// timeLayout is RFC 3339 with nanoseconds always written out, so that lines
// sort and compare as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// record is the flat JSON object. Field order is key order on output.
type record struct {
	ID                string       `json:"id"`
	Time              string       `json:"time"`
	Sensor            string       `json:"sensor"`
	Network           string       `json:"network"`
	Method            string       `json:"method"`
	IP                string       `json:"ip"`
	Port              uint16       `json:"port"`
	Transport         string       `json:"transport"`
	SensorAddress     string       `json:"sensor_address"`
	ItemKind          string       `json:"item_kind"`
	Item              string       `json:"item"`
	Possession        string       `json:"possession"`
	PiecesHave        *int         `json:"pieces_have"`
	PiecesTotal       *int         `json:"pieces_total"`
	Marks             []string     `json:"marks"`
	PeerID            string       `json:"peer_id"`
	Client            string       `json:"client"`
	ListenPort        uint16       `json:"listen_port"`
	NodeID            string       `json:"node_id"`
	Matched           []string     `json:"matched"`
	MatchedCategories []string     `json:"matched_categories"`
	SensorVersion     string       `json:"sensor_version"`
	Vantage           string       `json:"vantage"`
	ClockOffsetMS     *json.Number `json:"clock_offset_ms"`
	ClockUncertainty  *json.Number `json:"clock_uncertainty_ms"`
	ClockSource       string       `json:"clock_source"`
	Build             Build        `json:"build"`
	SensorConfig      string       `json:"sensor_config"`
	ClientVersion     string       `json:"client_version"`
	UserHash          string       `json:"user_hash"`
	GUID              string       `json:"guid"`
	Transcript        string       `json:"transcript"`
	TranscriptRef     string       `json:"transcript_ref"`
	TranscriptSHA256  string       `json:"transcript_sha256"`
	Country           string       `json:"country"`
	Subdivisions      []string     `json:"subdivisions"`
	City              string       `json:"city"`
	Latitude          float64      `json:"latitude"`
	Longitude         float64      `json:"longitude"`
	ASN               uint32       `json:"asn"`
	Org               string       `json:"org"`
	VPN               bool         `json:"vpn"`
	Hosting           bool         `json:"hosting"`
	GeoDB             string       `json:"geo_db"`
	GeoDBBuild        string       `json:"geo_db_build"`
	Agency            string       `json:"agency"`
	AgencyRule        string       `json:"agency_rule"`
	SensorKey         string       `json:"sensor_key"`
	Chain             string       `json:"chain"`
	ChainSeq          *uint64      `json:"chain_seq"`
	ChainPrev         string       `json:"chain_prev"`
	BatchSig          string       `json:"batch_sig"`
	EvidenceForm      *uint8       `json:"evidence_form,omitempty"` // nil: absent (form 1)

	// raw holds the hex of sensor_key, chain_prev and batch_sig as
	// fastRecord found them in the line (json.Unmarshal never sets it):
	// chain decodes them from the line's bytes, without a string of
	// each first. The line must outlive the record's observation call.
	raw rawChain
}

// rawChain is the hex of a record's chain fields in the line's bytes; set
// says fastRecord read them (the strings are then left empty).
type rawChain struct {
	sensorKey, chainPrev, batchSig []byte
	set                            bool
	// The hex of item, peer_id, node_id, user_hash, guid and
	// transcript_sha256 as fastRecord found them (nil when it did not,
	// the string fields then hold them).
	item, peerID, nodeID, userHash, guid, transcriptSHA256 []byte
}

// hexOf is hexFieldIn of a field the record holds as a string (s) or
// as the line's bytes (raw, read by fastRecord: s is then empty).
func hexOf(name, s string, raw, buf []byte) (field, rest []byte, err error) {
	if len(raw) > 0 {
		return hexFieldIn(name, raw, buf)
	}
	return hexFieldIn(name, s, buf)
}

// Millis writes d in milliseconds, exactly: the integer nanoseconds with
// the decimal point moved, trailing zeros dropped ("-1.5", "0.000001").
func Millis(d time.Duration) *json.Number {
	n := json.Number(appendMillis(nil, d))
	return &n
}

// appendMillis appends d in milliseconds: the integer part, then a point
// and the fraction's digits up to the last that is not 0, if any.
func appendMillis(b []byte, d time.Duration) []byte {
	u := uint64(d)
	if d < 0 {
		b, u = append(b, '-'), -u
	}
	b = strconv.AppendUint(b, u/1e6, 10)
	if f := u % 1e6; f != 0 {
		var digits [6]byte
		for i := 5; i >= 0; i-- {
			digits[i] = byte('0' + f%10)
			f /= 10
		}
		n := 6
		for digits[n-1] == '0' {
			n--
		}
		b = append(b, '.')
		b = append(b, digits[:n]...)
	}
	return b
}

// parseMillis reads a number of milliseconds, rounded to the nearest
// nanosecond, refusing one no Duration holds.
func parseMillis(name string, n json.Number) (time.Duration, error) {
	if d, ok := exactMillis(string(n)); ok {
		return d, nil
	}
	return parseMillisRat(name, n)
}

// exactMillis reads what appendMillis writes (and any number of
// milliseconds with at most six decimals and no exponent, below 10^12):
// a whole number of nanoseconds, no rounding, no big.Rat. It declines
// anything else (parseMillisRat reads it).
func exactMillis(s string) (time.Duration, bool) {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	if len(whole) == 0 || len(whole) > 12 || (len(whole) > 1 && whole[0] == '0') || (dot && (len(frac) == 0 || len(frac) > 6)) {
		return 0, false
	}
	var ns int64
	for _, c := range []byte(whole) {
		if c < '0' || c > '9' {
			return 0, false
		}
		ns = ns*10 + int64(c-'0')
	}
	ns *= 1e6
	scale := int64(1e5)
	for _, c := range []byte(frac) {
		if c < '0' || c > '9' {
			return 0, false
		}
		ns += int64(c-'0') * scale
		scale /= 10
	}
	if neg {
		ns = -ns
	}
	return time.Duration(ns), true
}

// parseMillisRat is parseMillis for any number JSON allows, exactly.
func parseMillisRat(name string, n json.Number) (time.Duration, error) {
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return 0, invalidf("%s %s: not a number", name, n)
	}
	num := new(big.Int).Mul(r.Num(), big.NewInt(1e6))
	q, m := new(big.Int).QuoRem(num, r.Denom(), new(big.Int))
	if m.Abs(m).Lsh(m, 1).Cmp(r.Denom()) >= 0 {
		q.Add(q, big.NewInt(int64(num.Sign())))
	}
	if !q.IsInt64() {
		return 0, invalidf("%s %s: out of range", name, n)
	}
	return time.Duration(q.Int64()), nil
}

// addrPortText is "" for the zero AddrPort, its usual text otherwise.
func addrPortText(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func pieces(n int) *int {
	if n < 0 {
		return nil
	}
	return &n
}

func toRecord(o *Observation) record {
	r := record{
		ID:                o.ID,
		Time:              o.Time.UTC().Format(timeLayout),
		Sensor:            o.Sensor.ID,
		Network:           o.Network,
		Method:            o.Method,
		IP:                o.Endpoint.IP.String(),
		Port:              o.Endpoint.Port,
		Transport:         o.Endpoint.Transport,
		SensorAddress:     addrPortText(o.Endpoint.Local),
		ItemKind:          o.Item.Hash.Kind().String(),
		Item:              o.Item.Hash.Hex(),
		Possession:        o.Possession.Level.String(),
		PiecesHave:        pieces(o.Possession.PiecesHave),
		PiecesTotal:       pieces(o.Possession.PiecesTotal),
		Marks:             o.Marks,
		PeerID:            hex.EncodeToString(o.Client.PeerID),
		Client:            o.Client.Name,
		ListenPort:        o.Client.ListenPort,
		NodeID:            hex.EncodeToString(o.Client.NodeID),
		Matched:           make([]string, len(o.Item.Matched)),
		MatchedCategories: make([]string, len(o.Item.Matched)),
		SensorVersion:     o.Sensor.Version,
		Vantage:           o.Sensor.Vantage,
		ClockSource:       o.ClockSource,
		Build:             Build{Version: o.Sensor.Version, Commit: o.Sensor.Commit, Modified: o.Sensor.Modified},
		SensorConfig:      o.Sensor.Config,
		ClientVersion:     o.Client.Version,
		UserHash:          hex.EncodeToString(o.Client.UserHash),
		GUID:              hex.EncodeToString(o.Client.GUID),
		Transcript:        base64.StdEncoding.EncodeToString(o.Transcript.Bytes),
		TranscriptRef:     o.Transcript.Ref,
		TranscriptSHA256:  hex.EncodeToString(o.Transcript.SHA256),
		Country:           o.Place.Country,
		Subdivisions:      o.Place.Subdivisions,
		City:              o.Place.City,
		Latitude:          o.Place.Lat,
		Longitude:         o.Place.Lon,
		ASN:               o.Place.ASN,
		Org:               o.Place.Org,
		VPN:               o.Place.VPN,
		Hosting:           o.Place.Hosting,
		GeoDB:             o.Place.DB,
		Agency:            o.Jurisdiction.Agency,
		AgencyRule:        o.Jurisdiction.Rule,
		SensorKey:         hex.EncodeToString(o.Chain.Key),
		Chain:             o.Chain.ID,
		ChainPrev:         hex.EncodeToString(o.Chain.Prev),
		BatchSig:          hex.EncodeToString(o.Chain.BatchSig),
	}
	if o.Chain.Form != 0 {
		r.EvidenceForm = formPtr(o.Chain.Form)
	}
	if o.Chain.Seq > 0 {
		seq := o.Chain.Seq
		r.ChainSeq = &seq
	}
	if o.ClockKnown {
		r.ClockOffsetMS, r.ClockUncertainty = Millis(o.ClockOffset), Millis(o.ClockUncertainty)
	}
	if r.Subdivisions == nil {
		r.Subdivisions = []string{}
	}
	if r.Marks == nil {
		r.Marks = []string{}
	}
	if !o.Place.DBBuild.IsZero() {
		r.GeoDBBuild = o.Place.DBBuild.UTC().Format(time.RFC3339Nano)
	}
	for i, m := range o.Item.Matched {
		r.Matched[i], r.MatchedCategories[i] = m.List, m.Category
	}
	return r
}

// form2 is what a record's EvidenceForm points to in form 2 (formPtr):
// nothing writes through it.
var form2 uint8 = Form2

// formPtr is a pointer to f for a record's EvidenceForm, without an
// allocation in form 2.
func formPtr(f uint8) *uint8 {
	if f == Form2 {
		return &form2
	}
	return &f
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func hexField(name, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, invalidf("%s %q: not hex", name, s)
	}
	return b, nil
}

// hexFieldIn is hexField, decoding into buf's room: the field is buf's
// next bytes (its capacity its length, so that an append to it never
// writes over what follows), rest is buf with them.
func hexFieldIn[S ~string | ~[]byte](name string, s S, buf []byte) (field, rest []byte, err error) {
	if len(s) == 0 {
		return nil, buf, nil
	}
	if len(s)%2 != 0 {
		return nil, buf, invalidf("%s %q: not hex", name, s)
	}
	start := len(buf)
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return nil, buf, invalidf("%s %q: not hex", name, s)
		}
		buf = append(buf, hi<<4|lo)
	}
	return buf[start:len(buf):len(buf)], buf, nil
}

// unhex is the value of a hexadecimal digit, either case (as
// encoding/hex reads it).
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (r *record) observation(o *Observation) error {
	*o = Observation{
		ID: r.ID,
		Sensor: Sensor{ID: r.Sensor, Version: r.SensorVersion, Vantage: r.Vantage,
			Commit: r.Build.Commit, Modified: r.Build.Modified, Config: r.SensorConfig},
		Network:     r.Network,
		Method:      r.Method,
		ClockSource: r.ClockSource,
		Endpoint:    Endpoint{Port: r.Port, Transport: r.Transport},
		Client:      Client{Name: r.Client, Version: r.ClientVersion, ListenPort: r.ListenPort},
		Possession:  Possession{PiecesHave: -1, PiecesTotal: -1},
		Transcript:  Transcript{Ref: r.TranscriptRef},
		Place: Place{Country: r.Country, City: r.City, Lat: r.Latitude, Lon: r.Longitude,
			ASN: r.ASN, Org: r.Org, VPN: r.VPN, Hosting: r.Hosting, DB: r.GeoDB},
		Jurisdiction: Jurisdiction{Agency: r.Agency, Rule: r.AgencyRule},
	}
	if len(r.Subdivisions) > 0 {
		o.Place.Subdivisions = r.Subdivisions
	}
	if err := r.clock(o); err != nil {
		return err
	}
	marks, err := normalizeMarks(r.Marks)
	if err != nil {
		return err
	}
	o.Marks = marks
	if r.GeoDBBuild != "" {
		b, err := time.Parse(time.RFC3339Nano, r.GeoDBBuild)
		if err != nil {
			return invalidf("geo_db_build %q: want RFC 3339", r.GeoDBBuild)
		}
		o.Place.DBBuild = b.UTC()
	}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return invalidf("time %q: want RFC 3339 such as 2026-11-23T13:34:13.123456789Z", r.Time)
	}
	o.Time = t.UTC()
	if o.Endpoint.IP, err = netip.ParseAddr(r.IP); err != nil {
		return invalidf("ip %q: not an IP address", r.IP)
	}
	if r.SensorAddress != "" {
		if o.Endpoint.Local, err = netip.ParseAddrPort(r.SensorAddress); err != nil {
			return invalidf("sensor_address %q: want ip:port", r.SensorAddress)
		}
	}
	kind, err := hashkind.ParseKind(r.ItemKind)
	if err != nil {
		return invalidf("item_kind: %v", err)
	}
	// The item's and the client's hex decoded into one array (an
	// allocation a line, not one a field).
	rw := &r.raw
	buf := make([]byte, 0, (len(r.Item)+len(rw.item)+len(r.PeerID)+len(rw.peerID)+len(r.NodeID)+len(rw.nodeID)+
		len(r.UserHash)+len(rw.userHash)+len(r.GUID)+len(rw.guid)+len(r.TranscriptSHA256)+len(rw.transcriptSHA256))/2)
	digest, buf, err := hexOf("item", r.Item, rw.item, buf)
	if err != nil {
		return err
	}
	if o.Item.Hash, err = hashkind.New(kind, digest); err != nil {
		item := r.Item
		if len(rw.item) > 0 {
			item = string(rw.item)
		}
		return invalidf("item %q: %v", item, err)
	}
	if o.Possession.Level, err = ParseLevel(r.Possession); err != nil {
		return invalidf("possession: %v", err)
	}
	if r.PiecesHave != nil {
		if *r.PiecesHave < 0 {
			return invalidf("pieces_have %d: want a count or null", *r.PiecesHave)
		}
		o.Possession.PiecesHave = *r.PiecesHave
	}
	if r.PiecesTotal != nil {
		if *r.PiecesTotal < 0 {
			return invalidf("pieces_total %d: want a count or null", *r.PiecesTotal)
		}
		o.Possession.PiecesTotal = *r.PiecesTotal
	}
	if len(r.MatchedCategories) != 0 && len(r.MatchedCategories) != len(r.Matched) {
		return invalidf("matched_categories has %d names for %d in matched", len(r.MatchedCategories), len(r.Matched))
	}
	if len(r.Matched) > 0 {
		o.Item.Matched = make([]Match, len(r.Matched))
		for i, l := range r.Matched {
			o.Item.Matched[i].List = l
			if len(r.MatchedCategories) > 0 {
				o.Item.Matched[i].Category = r.MatchedCategories[i]
			}
		}
	}
	if o.Client.PeerID, buf, err = hexOf("peer_id", r.PeerID, rw.peerID, buf); err != nil {
		return err
	}
	if o.Client.NodeID, buf, err = hexOf("node_id", r.NodeID, rw.nodeID, buf); err != nil {
		return err
	}
	if o.Client.UserHash, buf, err = hexOf("user_hash", r.UserHash, rw.userHash, buf); err != nil {
		return err
	}
	if o.Client.GUID, buf, err = hexOf("guid", r.GUID, rw.guid, buf); err != nil {
		return err
	}
	if o.Transcript.SHA256, _, err = hexOf("transcript_sha256", r.TranscriptSHA256, rw.transcriptSHA256, buf); err != nil {
		return err
	}
	if err := r.chain(o); err != nil {
		return err
	}
	if r.Transcript != "" {
		if o.Transcript.Bytes, err = base64.StdEncoding.Strict().DecodeString(r.Transcript); err != nil {
			return invalidf("transcript: not standard base64: %v", err)
		}
	}
	return o.Validate()
}

// clock reads the clock and build keys into o: an offset with its
// uncertainty, or neither (unknown); one version, however many keys name it.
func (r *record) clock(o *Observation) error {
	switch {
	case (r.ClockOffsetMS == nil) != (r.ClockUncertainty == nil):
		return invalidf("clock_offset_ms and clock_uncertainty_ms: both numbers or both null")
	case r.Build.Version != "" && r.SensorVersion != "" && r.Build.Version != r.SensorVersion:
		return invalidf("build version %q is not sensor_version %q", r.Build.Version, r.SensorVersion)
	}
	if o.Sensor.Version == "" {
		o.Sensor.Version = r.Build.Version
	}
	if r.ClockOffsetMS == nil {
		return nil
	}
	var err error
	if o.ClockOffset, err = parseMillis("clock_offset_ms", *r.ClockOffsetMS); err != nil {
		return err
	}
	if o.ClockUncertainty, err = parseMillis("clock_uncertainty_ms", *r.ClockUncertainty); err != nil {
		return err
	}
	if o.ClockUncertainty < 0 {
		return invalidf("clock_uncertainty_ms %s: negative", *r.ClockUncertainty)
	}
	o.ClockKnown = true
	return nil
}

// Encoder writes observations as JSON Lines.
type Encoder struct {
	w       *bufio.Writer
	buf     bytes.Buffer
	je      *json.Encoder
	maxLine int
}

// NewEncoder returns an Encoder writing to w through a buffer: call Flush
// when done.
func NewEncoder(w io.Writer) *Encoder {
	e := &Encoder{w: bufio.NewWriterSize(w, 64<<10), maxLine: DefaultMaxLineBytes}
	e.je = json.NewEncoder(&e.buf)
	e.je.SetEscapeHTML(false)
	return e
}

// SetMaxLineBytes sets the longest line Encode writes (the newline
// excluded); a longer observation is refused with ErrLineTooLong rather than
// written where no Decoder with the same limit could read it back.
func (e *Encoder) SetMaxLineBytes(n int) { e.maxLine = n }

// Encode writes o as one line. It refuses an observation that Validate
// rejects: what an Encoder writes, a Decoder reads.
func (e *Encoder) Encode(o *Observation) error {
	if err := e.line(o); err != nil {
		return err
	}
	_, err := e.w.Write(e.buf.Bytes())
	return err
}

// line puts o's line, newline included, in e.buf.
func (e *Encoder) line(o *Observation) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("observation %s: %w", o.ID, err)
	}
	e.buf.Reset()
	r := toRecord(o)
	if err := e.je.Encode(&r); err != nil {
		return fmt.Errorf("observation %s: %w", o.ID, err)
	}
	if n := e.buf.Len() - 1; n > e.maxLine {
		return fmt.Errorf("observation %s: %d bytes, more than %d: %w", o.ID, n, e.maxLine, ErrLineTooLong)
	}
	return nil
}

// MarshalLine returns o's line, newline included, as an Encoder with the
// default limit writes it (the same bytes, the same errors), without the
// Encoder's 64 KiB write buffer: for a message body, encoded by the
// thousand.
func MarshalLine(o *Observation) ([]byte, error) {
	e := Encoder{maxLine: DefaultMaxLineBytes}
	e.je = json.NewEncoder(&e.buf)
	e.je.SetEscapeHTML(false)
	if err := e.line(o); err != nil {
		return nil, err
	}
	return e.buf.Bytes(), nil
}

// Flush writes out what Encode buffered.
func (e *Encoder) Flush() error { return e.w.Flush() }

// LineError is a decoding error with the 1-based line it stands on.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Decoder reads observations from JSON Lines. Blank lines are skipped.
type Decoder struct {
	r       io.Reader
	sc      *bufio.Scanner
	maxLine int
	line    int
	err     error // sticky: a broken stream stays broken
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r, maxLine: DefaultMaxLineBytes}
}

// SetMaxLineBytes sets the longest line Decode accepts (newline excluded).
// Call it before the first Decode.
func (d *Decoder) SetMaxLineBytes(n int) { d.maxLine = n }

// Line is the number of the line last read.
func (d *Decoder) Line() int { return d.line }

// Decode reads the next observation into o. It returns io.EOF at the end
// of the input, and a *LineError (wrapping ErrInvalid, ErrLineTooLong, a
// JSON syntax error or the reader's error) for anything else. After a line
// that does not parse the caller may go on to the next; after a line too
// long or a read error, every later call returns the same error.
func (d *Decoder) Decode(o *Observation) error {
	if d.err != nil {
		return d.err
	}
	if d.sc == nil {
		d.sc = bufio.NewScanner(d.r)
		// The scanner holds a line and its newline (and perhaps a \r).
		d.sc.Buffer(make([]byte, 0, min(64<<10, d.maxLine+2)), d.maxLine+2)
	}
	for {
		if !d.sc.Scan() {
			err := d.sc.Err()
			switch {
			case err == nil:
				d.err = io.EOF
			case errors.Is(err, bufio.ErrTooLong):
				d.err = &LineError{Line: d.line + 1, Err: fmt.Errorf("more than %d bytes: %w", d.maxLine, ErrLineTooLong)}
			default:
				d.err = &LineError{Line: d.line + 1, Err: err}
			}
			return d.err
		}
		d.line++
		b := bytes.TrimSuffix(d.sc.Bytes(), []byte("\r"))
		if len(b) > d.maxLine {
			d.err = &LineError{Line: d.line, Err: fmt.Errorf("more than %d bytes: %w", d.maxLine, ErrLineTooLong)}
			return d.err
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var r record
		if err := unmarshalRecord(b, &r); err != nil {
			return &LineError{Line: d.line, Err: err}
		}
		if err := r.observation(o); err != nil {
			return &LineError{Line: d.line, Err: err}
		}
		return nil
	}
}

// DecodeLine reads one observation from b as a Decoder with the default
// limit reads the first line of b (the same observation, the same errors),
// without the Decoder's 64 KiB read buffer: for a message body that holds
// one line, such as a bus message, decoded by the thousand.
func DecodeLine(b []byte, o *Observation) error {
	line := bytes.TrimSuffix(b, []byte("\n"))
	if bytes.IndexByte(line, '\n') >= 0 || len(bytes.TrimSpace(line)) == 0 {
		return NewDecoder(bytes.NewReader(b)).Decode(o) // blank or several lines: the Decoder's rules
	}
	// The Scanner drops a carriage return before the end of a line, then
	// Decode drops one more.
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\r")), []byte("\r"))
	if len(line) > DefaultMaxLineBytes {
		return &LineError{Line: 1, Err: fmt.Errorf("more than %d bytes: %w", DefaultMaxLineBytes, ErrLineTooLong)}
	}
	var r record
	if err := unmarshalRecord(line, &r); err != nil {
		return &LineError{Line: 1, Err: err}
	}
	if err := r.observation(o); err != nil {
		return &LineError{Line: 1, Err: err}
	}
	return nil
}

// decodeChainHex decodes sensor_key, chain_prev and batch_sig into one
// array (hexFieldIn), from strings or from the line's bytes.
func decodeChainHex[S ~string | ~[]byte](o *Observation, key, prev, sig S) error {
	var err error
	buf := make([]byte, 0, (len(key)+len(prev)+len(sig))/2)
	if o.Chain.Key, buf, err = hexFieldIn("sensor_key", key, buf); err != nil {
		return err
	}
	if o.Chain.Prev, buf, err = hexFieldIn("chain_prev", prev, buf); err != nil {
		return err
	}
	o.Chain.BatchSig, _, err = hexFieldIn("batch_sig", sig, buf)
	return err
}

func (r *record) chain(o *Observation) error {
	// The three in one array (an allocation a signed line, not three).
	var err error
	if r.raw.set { // read by fastRecord: straight from the line's bytes
		err = decodeChainHex(o, r.raw.sensorKey, r.raw.chainPrev, r.raw.batchSig)
	} else {
		err = decodeChainHex(o, r.SensorKey, r.ChainPrev, r.BatchSig)
	}
	if err != nil {
		return err
	}
	o.Chain.ID = r.Chain
	if f := r.EvidenceForm; f != nil {
		// Form 1 is written without the key: 0 or 1 here is not
		// form 1, whose canonical form has no evidence_form.
		if *f != Form2 {
			return invalidf("evidence_form %d: not an evidence form (form 1 has none, form 2 is 2)", *f)
		}
		o.Chain.Form = Form2
	}
	if r.ChainSeq != nil {
		o.Chain.Seq = *r.ChainSeq
	}
	return nil
}
