package observe

import (
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
