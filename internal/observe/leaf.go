package observe

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// Line returns o as one line of the JSON Lines form, without its newline:
// the bytes an Encoder writes for it.
func (o *Observation) Line() ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("observation %s: %w", o.ID, err)
	}
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	r := toRecord(o)
	if err := e.Encode(&r); err != nil {
		return nil, fmt.Errorf("observation %s: %w", o.ID, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// LeafHash is the evidence log's leaf for o: the RFC 6962 leaf hash of the
// canonical form (package canon) of its JSON line. 'vigil verify' computes
// the same from the line in a bundle.
func (o *Observation) LeafHash() ([32]byte, error) {
	var h [32]byte
	err := o.appendCanonical(false, func(b []byte) { h = canon.LeafHash(b) })
	return h, err
}

// SensorHash is what a sensor's hash chain commits to for o: SHA-256 of
// the canonical form of its JSON line without canon.IngestKeys.
func (o *Observation) SensorHash() ([32]byte, error) {
	var h [32]byte
	err := o.appendCanonical(true, func(b []byte) { h = sha256.Sum256(b) })
	return h, err
}
