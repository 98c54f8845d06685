package observe

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

var heapRecord *record

// TestDecodeLineRecordStaysOffHeap: DecodeLine reads a line into a record
// on its own stack. json.Unmarshal (the slow path) keeps what it is
// given on the heap, and when unmarshalRecord handed it DecodeLine's
// record, every line allocated the record (872 bytes) on the heap, fast
// path or not. The fast path's allocations are the record's strings,
// slices and numbers, never the record.
func TestDecodeLineRecordStaysOffHeap(t *testing.T) {
	line := encodedLines(t)[0]
	var o Observation
	withRecord := testing.AllocsPerRun(50, func() {
		r := new(record) // on the heap, as DecodeLine's was before
		heapRecord = r
		if !fastRecord(line, r) {
			t.Fatal("fast path declined the line")
		}
		if err := r.observation(&o); err != nil {
			t.Fatal(err)
		}
	})
	got := testing.AllocsPerRun(50, func() {
		if err := DecodeLine(line, &o); err != nil {
			t.Fatal(err)
		}
	})
	if got >= withRecord {
		t.Fatalf("DecodeLine allocates %.0f times a line, as many as with the record (%d bytes) on the heap (%.0f)", got, unsafe.Sizeof(record{}), withRecord)
	}
}

// TestDecodeLineClosedFieldsAreConstants: the closed fields' known values
// (network, method, transport, possession, marks) are read as the
// package's constants, not as strings of their own, one allocation each
// fewer a line; values outside the vocabulary still read as written.
func TestDecodeLineClosedFieldsAreConstants(t *testing.T) {
	same := func(a, b string) bool { return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b) }
	var o Observation
	var line []byte
	for _, l := range encodedLines(t) {
		if err := DecodeLine(l, &o); err == nil && o.Method == MethodDHTAnnounce && o.Endpoint.Transport == "udp" && len(o.Marks) == 2 {
			line = l
			break
		}
	}
	if line == nil {
		t.Fatal("no dht_announce over udp with two marks among the samples")
	}
	var got Observation
	if err := DecodeLine(line, &got); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{got.Network, NetBitTorrent}, {got.Method, MethodDHTAnnounce}, {got.Endpoint.Transport, "udp"},
		{got.Marks[0], o.Marks[0]}, {got.Marks[1], o.Marks[1]}} {
		if !same(c[0], c[1]) {
			t.Errorf("%q read into a string of its own, not the constant", c[0])
		}
	}
	o.Method = "pex_v2"
	line, err := MarshalLine(&o)
	if err != nil {
		t.Fatal(err)
	}
	if err := DecodeLine(line, &got); err != nil || got.Method != "pex_v2" {
		t.Fatalf("a method outside the vocabulary read as %q (%v)", got.Method, err)
	}
}

// TestDecodeLineHexFromLineBytes: the item's and the client's hex, which
// the fast path decodes from the line's bytes into one array, read as
// json.Unmarshal's strings read them (the slow path, taken when a
// string holds an escape): the same observation, or the same error,
// for good and bad hex in each field.
func TestDecodeLineHexFromLineBytes(t *testing.T) {
	base := string(encodedLines(t)[0])
	if !strings.Contains(base, `"client":"Transmission"`) {
		t.Fatalf("sample line changed: %s", base)
	}
	var lines []string
	lines = append(lines, base)
	for _, f := range []struct{ key, good string }{
		{"item", "00112233445566778899aabbccddeeff00112233"}, {"peer_id", "2d5452333030302d6162636465666768696a6b6c"},
		{"node_id", "ffeeddccbbaa99887766554433221100ffeeddcc"}, {"user_hash", ""}, {"guid", ""},
		{"transcript_sha256", "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"},
	} {
		old := `"` + f.key + `":"` + f.good + `"`
		if !strings.Contains(base, old) {
			t.Fatalf("sample line has no %s", old)
		}
		for _, v := range []string{"abc", "zz", "00112233445566778899AABBCCDDEEFF00112233", "0011", "00112233445566778899aabbccddeeff0011223344", "0000000000000000000000000000000000000000"} {
			lines = append(lines, strings.Replace(base, old, `"`+f.key+`":"`+v+`"`, 1))
		}
	}
	for _, line := range lines {
		slow := strings.Replace(line, `"client":"Transmission"`, `"client":"Tr\u0061nsmission"`, 1)
		var fast, viaJSON Observation
		ferr := DecodeLine([]byte(line), &fast)
		serr := DecodeLine([]byte(slow), &viaJSON)
		if fmt.Sprint(ferr) != fmt.Sprint(serr) {
			t.Fatalf("%s\nfast path: %v\njson.Unmarshal: %v", line, ferr, serr)
		}
		if ferr == nil && !fast.Equal(&viaJSON) {
			t.Fatalf("%s\nfast path read %+v\njson.Unmarshal %+v", line, fast, viaJSON)
		}
	}
}
