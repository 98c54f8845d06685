package observe

import (
	"bytes"
	"crypto/sha256"
	"os"
	"testing"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// asForm2 is o as a signing sensor writes it in evidence form 2: signed,
// with its transcript's SHA-256.
func asForm2(o Observation) Observation {
	o.Chain.Form = Form2
	if len(o.Chain.Key) == 0 {
		o.Chain.Key = bytes.Repeat([]byte{7}, 32)
	}
	if len(o.Transcript.Bytes) == 0 {
		o.Transcript.Bytes = []byte{1, 2, 3}
	}
	sum := sha256.Sum256(o.Transcript.Bytes)
	o.Transcript.SHA256 = sum[:]
	return o
}

// goldens are the golden records.
func goldens(t *testing.T) []Observation {
	t.Helper()
	b, err := os.ReadFile("testdata/observations.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var obs []Observation
	d := NewDecoder(bytes.NewReader(b))
	for {
		var o Observation
		if err := d.Decode(&o); err != nil {
			break
		}
		obs = append(obs, o)
	}
	return obs
}

// TestForm2HashesAreCanonOfTheLine: in evidence form 2 the sensor hash is
// SHA-256 of the line's canonical form without canon.SensorDrop(2), and
// the leaf the RFC 6962 leaf hash of the ingest keys' canonical form with
// sensor_sha256: what 'vigil verify' computes from the line through
// package canon. Form 1's are as before.
func TestForm2HashesAreCanonOfTheLine(t *testing.T) {
	for _, o1 := range goldens(t) {
		o := asForm2(o1)
		line, err := o.Line()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(line, []byte(`"evidence_form":2`)) {
			t.Fatalf("form 2 line without its form: %s", line)
		}
		obj, err := canon.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		wantSensor := sha256.Sum256(obj.AppendForm(nil, canon.SensorDrop(2)))
		wantLeaf := canon.LeafHash(obj.AppendLeaf2(nil, wantSensor[:]))
		leaf, sensor, err := o.Hashes()
		if err != nil {
			t.Fatal(err)
		}
		if sensor != wantSensor || leaf != wantLeaf {
			t.Errorf("%s: form 2 leaf %x sensor %x, canon of the line %x %x", o.ID, leaf, sensor, wantLeaf, wantSensor)
		}
		if s2, _ := o.SensorHash(); s2 != sensor {
			t.Errorf("%s: SensorHash %x, Hashes %x", o.ID, s2, sensor)
		}
		// The same observation in form 1 hashes to other values.
		o.Chain.Form = 0
		l1, _ := o.LeafHash()
		s1, _ := o.SensorHash()
		if l1 == leaf || s1 == sensor {
			t.Errorf("%s: form 1 and form 2 share a hash", o.ID)
		}
	}
}

// TestForm2TranscriptIsBoundBySHA256: in form 2 the transcript's bytes
// are outside both hashes (transcript_sha256 stands for them: ingest and
// 'vigil verify' compare the two), transcript_sha256 is inside both.
func TestForm2TranscriptIsBoundBySHA256(t *testing.T) {
	o := asForm2(goldens(t)[0])
	leaf0, sens0, _ := o.Hashes()
	p := o
	p.Transcript.Bytes = append(bytes.Clone(o.Transcript.Bytes), 9)
	if leaf, sens, _ := p.Hashes(); leaf != leaf0 || sens != sens0 {
		t.Errorf("form 2: the transcript's bytes changed the hashes")
	}
	p = o
	p.Transcript.SHA256 = bytes.Repeat([]byte{1}, 32)
	if leaf, sens, _ := p.Hashes(); leaf == leaf0 || sens == sens0 {
		t.Errorf("form 2: transcript_sha256 changed and a hash kept")
	}
	p = o
	p.Transcript.SHA256 = nil
	if err := p.Validate(); err == nil {
		t.Errorf("form 2 with a transcript and no transcript_sha256 is valid")
	}
	p = o
	p.Chain.Form = 1
	if err := p.Validate(); err == nil {
		t.Errorf("evidence form 1 written out is valid (form 1 has no key)")
	}
	p = o
	p.Chain.Key = nil
	if err := p.Validate(); err == nil {
		t.Errorf("unsigned form 2 is valid")
	}
}

// TestKnownSensorHash: a remembered sensor hash is reused; without one
// the hash is computed.
func TestKnownSensorHash(t *testing.T) {
	o := asForm2(goldens(t)[0])
	_, sens, _ := o.Hashes()
	if h, _ := o.KnownSensorHash(); h != sens {
		t.Fatalf("KnownSensorHash %x without a remembered one, SensorHash %x", h, sens)
	}
	o.RememberSensorHash([32]byte{1})
	if h, _ := o.KnownSensorHash(); h != [32]byte{1} {
		t.Fatalf("KnownSensorHash %x, remembered 01...", h)
	}
}

// TestDecoderRefusesEvidenceFormZero: form 1 is written without
// evidence_form, form 2 as 2, and docs/evidence.md says a line whose
// evidence_form is anything else is refused by the decoder, as 'vigil
// verify' refuses it. 0 (and 1) must not be read as form 1: the line's
// canonical form (with the member) would then not be the one stored
// (without it). Absent and null are form 1, as in the canonical form.
func TestDecoderRefusesEvidenceFormZero(t *testing.T) {
	o := goldens(t)[0]
	line, err := o.Line()
	if err != nil {
		t.Fatal(err)
	}
	with := func(v string) []byte {
		return append(append(bytes.Clone(bytes.TrimSuffix(line, []byte("}"))), `,"evidence_form":`+v...), '}')
	}
	for _, v := range []string{"0", "1", "3"} {
		var p Observation
		if err := DecodeLine(with(v), &p); err == nil {
			t.Errorf("evidence_form %s: decoded (form %d)", v, p.Chain.Form)
		}
	}
	var p Observation
	if err := DecodeLine(with("null"), &p); err != nil || p.Chain.Form != 0 {
		t.Errorf("evidence_form null: %v, form %d", err, p.Chain.Form)
	}
	f2 := asForm2(o)
	line2, err := f2.Line()
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodeLine(line2, &p); err != nil || p.Chain.Form != Form2 {
		t.Errorf("form 2: %v, form %d", err, p.Chain.Form)
	}
}
