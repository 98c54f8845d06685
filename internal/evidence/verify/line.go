package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// obsLine is what the verifier reads of an observation line, for the
// checks of that line alone (its hashes, its transcript); the line itself
// is what the hashes cover.
type obsLine struct {
	ID               string
	Network          string
	Method           string
	IP               string
	Port             uint16
	ItemKind         string
	Item             string
	Possession       string
	PiecesHave       *int
	PiecesTotal      *int
	Marks            []string
	PeerID           string
	ListenPort       uint16
	UserHash         string
	Transcript       []byte
	TranscriptSHA256 string
	TranscriptRef    string
	SensorKey        string
	Sensor           string // the sensor's name (its --id)
	Chain            string
	ChainSeq         uint64
	ChainPrev        string
	BatchSig         string
	Form             *int // evidence_form: nil in form 1
}

// read sets o's fields from the line's members (as canon read them: the
// same reading the hashes are computed from), each by its exact key, each
// value decoded as encoding/json decodes it into the field's type. A key
// the verifier does not read is left alone.
func (o *obsLine) read(obj canon.Object) error {
	for _, f := range []struct {
		key string
		dst any
	}{
		{"id", &o.ID}, {"network", &o.Network}, {"method", &o.Method},
		{"ip", &o.IP}, {"port", &o.Port}, {"item_kind", &o.ItemKind}, {"item", &o.Item},
		{"possession", &o.Possession}, {"pieces_have", &o.PiecesHave}, {"pieces_total", &o.PiecesTotal},
		{"marks", &o.Marks}, {"peer_id", &o.PeerID}, {"listen_port", &o.ListenPort}, {"user_hash", &o.UserHash},
		{"transcript", &o.Transcript}, {"transcript_sha256", &o.TranscriptSHA256},
		{"transcript_ref", &o.TranscriptRef},
		{"sensor_key", &o.SensorKey}, {"sensor", &o.Sensor}, {"chain", &o.Chain}, {"chain_seq", &o.ChainSeq},
		{"chain_prev", &o.ChainPrev}, {"batch_sig", &o.BatchSig}, {canon.FormKey, &o.Form},
	} {
		raw, ok := obj.Value(f.key)
		if !ok {
			continue
		}
		if err := decodeValue(raw, f.dst); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	return nil
}

// decodeValue decodes raw (a value in canonical form) into dst as
// json.Unmarshal does. The common cases are read here, the same way
// (a string without escapes is its bytes between the quotes; an integer
// of digits only is strconv's); the rest is json.Unmarshal's.
func decodeValue(raw []byte, dst any) error {
	switch d := dst.(type) {
	case *string:
		if s, ok := plainString(raw); ok {
			*d = string(s)
			return nil
		}
	case *[]byte:
		// encoding/json decodes a []byte from base64 with this call.
		if s, ok := plainString(raw); ok {
			b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
			n, err := base64.StdEncoding.Decode(b, s)
			if err != nil {
				return err
			}
			*d = b[:n]
			return nil
		}
	case *uint16:
		if digits(raw) {
			if n, err := strconv.ParseUint(string(raw), 10, 16); err == nil {
				*d = uint16(n)
				return nil
			}
		}
	case *uint64:
		if digits(raw) {
			if n, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
				*d = n
				return nil
			}
		}
	case **int:
		if digits(raw) {
			if n, err := strconv.ParseInt(string(raw), 10, 0); err == nil {
				i := int(n)
				*d = &i
				return nil
			}
		}
	case *[]string:
		if string(raw) == "[]" {
			*d = []string{}
			return nil
		}
	}
	return json.Unmarshal(raw, dst)
}

// plainString is the content of raw, a string in canonical form without
// an escape (canonical form escapes nothing but with a backslash).
func plainString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return nil, false
	}
	return raw[1 : len(raw)-1], true
}

// digits reports whether raw is an integer of digits only (a number in
// canonical form is as written, and JSON's grammar: no leading zero).
func digits(raw []byte) bool {
	for _, c := range raw {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(raw) > 0
}

// observation is what the later checks need of a line that read: its
// place, its hashes and its place in a sensor's chain, and what its own
// checks (the transcript's) found. The line's other fields are not held.
type observation struct {
	n                int // 1-based line number
	id               string
	form             int // evidence form: 1 or 2
	leaf, sensorHash [32]byte
	sensorKey, chain string
	sensor           string // the sensor it names
	chainSeq         uint64
	chainPrev        string
	signatureFailed  bool // marked signature_failed
	transcript       transcriptResult
}

func (o *observation) field(key string) string {
	return fmt.Sprintf("line %d (observation %s) %s", o.n, o.id, key)
}

// lineReader reads lines one after another, reusing its memory.
type lineReader struct {
	p   canon.Parser
	buf []byte
}

// read reads one line: its members, its evidence form, its two hashes,
// and its transcript's check. In form 1 (no evidence_form) the sensor's
// hash is SHA-256 of the line's canonical form without what ingest added
// (canon.IngestKeys, and canon.IngestMarks of its marks), the log's leaf the RFC 6962 leaf hash of the whole
// canonical form. In form 2 (evidence_form 2) the sensor's hash also
// leaves out the transcript's bytes (transcript_sha256, which the
// transcript's check compares with them, stands for them), and the leaf
// covers what ingest added and sensor_sha256, the sensor's hash.
func (r *lineReader) read(line []byte, n int) (observation, error) {
	obj, err := r.p.Parse(line)
	if err != nil {
		return observation{n: n}, err
	}
	var l obsLine
	if err := l.read(obj); err != nil {
		return observation{n: n}, fmt.Errorf("not an observation: %v", err)
	}
	o := observation{
		n: n, id: l.ID, form: 1, sensorKey: l.SensorKey, sensor: l.Sensor, chain: l.Chain, chainSeq: l.ChainSeq, chainPrev: l.ChainPrev,
		signatureFailed: hasMark(l.Marks, "signature_failed"),
	}
	switch {
	case l.Form == nil:
		r.buf = obj.AppendForm(r.buf[:0], nil)
		o.leaf = canon.LeafHash(r.buf)
		r.buf = obj.AppendSensorForm(r.buf[:0], 1)
		o.sensorHash = sha256.Sum256(r.buf)
	case *l.Form == 2 && l.SensorKey == "":
		// Only a signing sensor writes form 2: no store keeps it
		// unsigned (observe.Validate), and verify is never looser.
		return observation{n: n}, fmt.Errorf("observation %s: evidence form 2 without a sensor_key (only a signing sensor writes form 2)", l.ID)
	case *l.Form == 2:
		o.form = 2
		r.buf = obj.AppendSensorForm(r.buf[:0], 2)
		o.sensorHash = sha256.Sum256(r.buf)
		r.buf = obj.AppendLeaf2(r.buf[:0], o.sensorHash[:])
		o.leaf = canon.LeafHash(r.buf)
	default:
		return observation{n: n}, fmt.Errorf("observation %s: %s %d: not an evidence form (form 1 has none, form 2 is 2)", l.ID, canon.FormKey, *l.Form)
	}
	o.transcript = checkTranscript(&l)
	return o, nil
}
