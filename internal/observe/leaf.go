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
// (KnownSensorHash: the one remembered, if what it covers did not
// change), computed once for both; in form 1 the sensor hash is not
// computed (zero), the leaf not needing it.
func (o *Observation) Hashes() (leaf, sensor [32]byte, err error) {
	leaf, sensor, _, err = o.HashesRemembered()
	return leaf, sensor, err
}

// HashesRemembered is Hashes, and says whether the sensor hash is the one
// o remembers (RememberSensorHash) with a fingerprint that still holds:
// remembering it again would change nothing, and a store that hands the
// sensor hash on in o (so that ingest's check need not compute it) may
// skip that, and the fingerprint it would take again.
func (o *Observation) HashesRemembered() (leaf, sensor [32]byte, remembered bool, err error) {
	if o.Chain.Form != Form2 {
		err = o.appendCanonical(false, func(b []byte) { leaf = canon.LeafHash(b) })
		return leaf, sensor, false, err
	}
	if sensor, _, remembered, err = o.knownSensorHash(); err != nil {
		return leaf, sensor, false, err
	}
	o.appendLeaf2(sensor, func(b []byte) { leaf = canon.LeafHash(b) })
	return leaf, sensor, remembered, nil
}

// SensorHash is what a sensor's hash chain commits to for o: SHA-256 of
// the canonical form of its JSON line without canon.IngestKeys (and, in
// form 2, without transcript: transcript_sha256 stands for it).
func (o *Observation) SensorHash() ([32]byte, error) {
	var h [32]byte
	err := o.appendCanonical(true, func(b []byte) { h = sha256.Sum256(b) })
	return h, err
}

// RememberSensorHash keeps h, o's sensor hash as o is now (SensorHash,
// or Hashes), for KnownSensorHash: ingest's gate hashes each signed
// observation it takes, and the store's leaf and ingest's check then use
// that hash instead of computing it again. It is kept in o's memory only
// (a copy of o keeps it; never written to a line or a store) with a
// fingerprint of every field the sensor hash covers (sensorPrint): once
// any of them changes, by whatever code, KnownSensorHash no longer gives
// it and computes the hash afresh. The keys ingest adds
// (canon.IngestKeys: the place, the agency, batch_sig) may change: the
// sensor hash does not cover them.
func (o *Observation) RememberSensorHash(h [32]byte) {
	p := o.sensorPrint()
	if o.memo.set && o.memo.print == p && o.memo.hash == h {
		return // what was known of the transcript stays known
	}
	o.memo = sensorMemo{hash: h, print: p, set: true}
}

// RememberSensorHashAndTranscript is RememberSensorHash, and keeps that
// o's transcript bytes were found to be the ones its transcript_sha256
// names (evidence form 2): TranscriptChecked then says so while neither
// they nor any field the sensor hash covers changed.
func (o *Observation) RememberSensorHashAndTranscript(h [32]byte) {
	o.memo = sensorMemo{hash: h, print: o.sensorPrint(), set: true, transcript: true}
}

// TranscriptChecked reports whether o's transcript bytes were found to be
// the ones its transcript_sha256 names (RememberSensorHashAndTranscript)
// and nothing changed since.
func (o *Observation) TranscriptChecked() bool {
	_, checked, _ := o.KnownSensorHashChecked()
	return checked
}

// KnownSensorHash is o's sensor hash: the one remembered
// (RememberSensorHash) if no field it covers changed since, else
// SensorHash.
func (o *Observation) KnownSensorHash() ([32]byte, error) {
	h, _, err := o.KnownSensorHashChecked()
	return h, err
}

// KnownSensorHashChecked is KnownSensorHash, and whether the transcript
// is known to be the one transcript_sha256 names (TranscriptChecked).
func (o *Observation) KnownSensorHashChecked() (h [32]byte, transcriptChecked bool, err error) {
	h, transcriptChecked, _, err = o.knownSensorHash()
	return h, transcriptChecked, err
}

// knownSensorHash is KnownSensorHashChecked, and whether the hash is the
// one remembered (its fingerprint holds).
func (o *Observation) knownSensorHash() (h [32]byte, transcriptChecked, remembered bool, err error) {
	if o.memo.set {
		if err := o.Validate(); err != nil {
			return h, false, false, fmt.Errorf("observation %s: %w", o.ID, err)
		}
		if o.memo.print == o.sensorPrint() {
			return o.memo.hash, o.memo.transcript, true, nil
		}
	}
	h, err = o.SensorHash()
	return h, false, false, err
}
