package observe

import (
	"bytes"
	"crypto/sha256"
	"os"
	"slices"
	"testing"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// TestIngestMarksAreLeftOutOfTheSensorHash: ingest marks a signed
// observation time_implausible after its sensor signed it. The sensor
// hash (what the chain and the batch signature cover) must not change,
// in either evidence form, whether computed from the observation or, as
// 'vigil verify' does, from its line; the log's leaf must cover the mark
// (a mark stripped from a bundle's line changes its leaf).
func TestIngestMarksAreLeftOutOfTheSensorHash(t *testing.T) {
	b, err := os.ReadFile("testdata/observations.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var plain Observation
	if err := NewDecoder(bytes.NewReader(b)).Decode(&plain); err != nil {
		t.Fatal(err)
	}
	plain.Mark(MarkSpoofableSource)
	for _, o := range []Observation{plain, asForm2(plain)} {
		marked := o
		marked.Marks = append([]string(nil), o.Marks...)
		marked.Mark(MarkTimeImplausible)
		want, err := o.SensorHash()
		if err != nil {
			t.Fatal(err)
		}
		got, err := marked.SensorHash()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("form %d: the mark changed the sensor hash", o.Chain.Form)
		}
		line, err := marked.Line()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := canon.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		form := max(1, int(o.Chain.Form))
		if fromLine := sha256.Sum256(obj.AppendSensorForm(nil, form)); fromLine != want {
			t.Errorf("form %d: the line's sensor hash is not the sensor's", form)
		}
		var leafOfLine [32]byte
		if form == 1 {
			leafOfLine = canon.LeafHash(obj.AppendForm(nil, nil))
		} else {
			leafOfLine = canon.LeafHash(obj.AppendLeaf2(nil, want[:]))
		}
		leaf, err := marked.LeafHash()
		if err != nil {
			t.Fatal(err)
		}
		if leaf != leafOfLine {
			t.Errorf("form %d: the observation's leaf is not its line's", form)
		}
		unmarkedLeaf, err := o.LeafHash()
		if err != nil {
			t.Fatal(err)
		}
		if leaf == unmarkedLeaf {
			t.Errorf("form %d: the leaf does not cover the mark", form)
		}
		// The mark is not first-hand, and the fingerprint of the
		// remembered sensor hash survives it.
		if marked.FirstHand() {
			t.Errorf("form %d: a time_implausible observation is first-hand", form)
		}
		o.RememberSensorHash(want)
		o.Mark(MarkTimeImplausible)
		if _, _, remembered, err := o.knownSensorHash(); err != nil || !remembered {
			t.Errorf("form %d: marking forgot the remembered sensor hash (%v)", form, err)
		}
	}
}

// TestIngestMarksAreCanonsList: verify reads a line with canon's list,
// the store hashes an observation with observe's: one list.
func TestIngestMarksAreCanonsList(t *testing.T) {
	if !slices.Equal(IngestMarks, canon.IngestMarks) {
		t.Fatalf("observe.IngestMarks %v, canon.IngestMarks %v", IngestMarks, canon.IngestMarks)
	}
}
