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

// LeafHash is the evidence log's leaf for o. In evidence form 1 (Chain.Form
// 0) it is the RFC 6962 leaf hash of the canonical form (package canon) of
// its JSON line; in form 2 the RFC 6962 leaf hash of the canonical form of
// the keys ingest adds (canon.IngestKeys) and sensor_sha256, its sensor
// hash in hex. 'vigil verify' computes the same from the line in a bundle.
func (o *Observation) LeafHash() ([32]byte, error) {
	leaf, _, err := o.Hashes()
	return leaf, err
}

// Hashes returns o's leaf (LeafHash) and, in form 2, its sensor hash
// (SensorHash), computed once for both; in form 1 the sensor hash is not
// computed (zero), the leaf not needing it.
func (o *Observation) Hashes() (leaf, sensor [32]byte, err error) {
	if o.Chain.Form != Form2 {
		err = o.appendCanonical(false, func(b []byte) { leaf = canon.LeafHash(b) })
		return leaf, sensor, err
	}
	if sensor, err = o.SensorHash(); err != nil {
		return leaf, sensor, err
	}
	o.appendLeaf2(sensor, func(b []byte) { leaf = canon.LeafHash(b) })
	return leaf, sensor, nil
}

// SensorHash is what a sensor's hash chain commits to for o: SHA-256 of
// the canonical form of its JSON line without canon.IngestKeys (and, in
// form 2, without transcript: transcript_sha256 stands for it).
func (o *Observation) SensorHash() ([32]byte, error) {
	var h [32]byte
	err := o.appendCanonical(true, func(b []byte) { h = sha256.Sum256(b) })
	return h, err
}

// RememberSensorHash keeps h, o's sensor hash as Hashes computed it, for
// KnownSensorHash: a store that hashed o's form 2 leaf hands ingest's
// check the hash it already has. It is held in o's memory only (a copy
// of o keeps it) and must be set only from o's own Hashes, after o is
// final: a field changed later is not seen by KnownSensorHash.
func (o *Observation) RememberSensorHash(h [32]byte) { o.sensorHash = &h }

// KnownSensorHash is o's sensor hash: the one a store remembered
// (RememberSensorHash), else SensorHash.
func (o *Observation) KnownSensorHash() ([32]byte, error) {
	if o.sensorHash != nil {
		return *o.sensorHash, nil
	}
	return o.SensorHash()
}
