package observe

import (
	"bytes"
	"os"
	"testing"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// TestLeafIgnoresKeysAddedEmpty: a record written before a key existed
// (here, the sensor chain's keys) hashes to the same leaf as the same
// record written now with that key empty, so that an older store's leaves
// still prove its rows; and a value set in the new key changes the leaf.
func TestLeafIgnoresKeysAddedEmpty(t *testing.T) {
	b, err := os.ReadFile("testdata/observations.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.SplitN(b, []byte("\n"), 2)[0]
	i := bytes.Index(line, []byte(`,"sensor_key"`))
	if i < 0 {
		t.Fatal("golden line has no sensor_key")
	}
	older := append(bytes.Clone(line[:i]), '}')
	now, err := canon.Form(line)
	if err != nil {
		t.Fatal(err)
	}
	before, err := canon.Form(older)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(now, before) {
		t.Fatalf("canonical forms differ:\n%s\n%s", now, before)
	}
	var o Observation
	d := NewDecoder(bytes.NewReader(line))
	if err := d.Decode(&o); err != nil {
		t.Fatal(err)
	}
	l1, _ := o.LeafHash()
	o.Chain.Seq = 1
	l2, _ := o.LeafHash()
	if l1 == l2 || l1 != canon.LeafHash(before) {
		t.Fatalf("leaf does not follow the record: %x %x %x", l1, l2, canon.LeafHash(before))
	}
}
