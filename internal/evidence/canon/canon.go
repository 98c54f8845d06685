// Package canon is the canonical form of an observation's JSON object, the
// bytes the evidence log and a sensor's hash chain commit to. It is small
// on purpose: 'vigil verify' and the store compute the same hash from it,
// the first from the line in a bundle, the second from the observation it
// stores.
//
// The form (vigil-canon/v1): the object is read with numbers kept as
// written; a member whose value is null, "", [] or {} (after this rule is
// applied inside it) is dropped; what remains is written with object keys
// in byte order, no spaces, and strings escaped as Go's encoding/json does
// with HTML escaping off. Dropping empty members lets a later Vigil add a
// key (empty in older records) without changing the hash of an older
// record; 0 and false are kept, because they are facts (zero pieces is
// not an unknown count).
//
// It must never do I/O.
package canon

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNotObject is returned for input that is not one JSON object.
var ErrNotObject = errors.New("not a JSON object")

// Form returns the canonical form of the JSON object in line. Keys listed
// in drop are removed from the top level first (a sensor's hash leaves out
// what ingest adds).
func Form(line []byte, drop ...string) ([]byte, error) {
	m, err := decode(line)
	if err != nil {
		return nil, err
	}
	for _, k := range drop {
		delete(m, k)
	}
	return encode(m)
}

// Forms returns the canonical form of line, and that form without the
// top-level keys in drop, reading line once, without maps (fast.go; the
// same bytes as Form, TestFastIsForm).
func Forms(line []byte, drop []string) (full, without []byte, err error) {
	return fastForms(line, drop)
}

func decode(line []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	if m == nil {
		return nil, ErrNotObject
	}
	if d.More() {
		return nil, fmt.Errorf("%w: more after the object", ErrNotObject)
	}
	return m, nil
}

func encode(m map[string]any) ([]byte, error) {
	prune(m)
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// empty reports whether v is dropped from an object after pruning.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		prune(x)
		return len(x) == 0
	}
	return false
}

func prune(m map[string]any) {
	for k, v := range m {
		if a, ok := v.([]any); ok {
			for _, e := range a {
				if o, ok := e.(map[string]any); ok {
					prune(o)
				}
			}
		}
		if empty(v) {
			delete(m, k)
		}
	}
}

// LeafHash is the RFC 6962 leaf hash of data: SHA-256 over a zero byte
// and data. The evidence log's leaves are the leaf hashes of observations'
// canonical forms.
func LeafHash(data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// IngestKeys are the keys ingest adds to an observation (where the address
// was placed, the agency it was routed to): a sensor cannot sign them, so
// a sensor's hash leaves them out, with the signature fields themselves.
var IngestKeys = []string{
	"country", "subdivisions", "city", "latitude", "longitude", "asn", "org",
	"vpn", "hosting", "geo_db", "geo_db_build", "agency", "agency_rule",
	"batch_sig",
}

// IngestMarks are the marks ingest sets after a sensor signed
// (observe.IngestMarks, the same list: time_implausible, a time ingest
// found impossible when it stored it). A sensor's hash leaves them out of
// "marks" (Object.AppendSensorForm), as it leaves out IngestKeys; an
// evidence form 2 leaf covers them, as IngestMarksKey.
var IngestMarks = []string{"time_implausible"}

// IngestMarksKey is the member a form 2 leaf adds when the line's marks
// hold any of IngestMarks: those marks, in the line's order. Absent (and
// so every leaf from before it unchanged) when they hold none.
const IngestMarksKey = "ingest_marks"

// FormKey is the line's key for its evidence form (docs/evidence.md,
// "Evidence forms"): absent in form 1, 2 in form 2.
const FormKey = "evidence_form"

// SensorDrop returns the keys a sensor's hash leaves out in evidence
// form (1 or 2): IngestKeys, and in form 2 transcript too (its
// transcript_sha256 stands for it).
func SensorDrop(form int) []string {
	if form == 2 {
		return sensorDrop2
	}
	return IngestKeys
}

var sensorDrop2 = append(IngestKeys[:len(IngestKeys):len(IngestKeys)], "transcript")

// SensorHashKey is the member a form 2 leaf adds to the keys of
// IngestKeys: the sensor hash, in hex.
const SensorHashKey = "sensor_sha256"
