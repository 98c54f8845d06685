package verify

import (
	"strings"
	"testing"
)

// Attack (review of h-nul): a gap's signed_from and missing are the
// store's word, written by whoever made the bundle (the manifest's log
// key covers them, no sensor's signature does: the sensor signs a head,
// never where its batch began), and a position the store lacks may be an
// observation deleted after it was stored, which the store's
// observations table does not refuse. The report must say both, not
// present the batch's start as the sensor's and the cause as benign.
// Before, it read "its sensor signed seqs 5 to 8 as one batch; seq 6 not
// in the store (refused at ingest, never received, or stored marked
// signature_failed)".
func TestAGapSaysWhoseWordItIsAndThatItMayBeADeletion(t *testing.T) {
	s := Gap{Chain: "c", SignedFrom: 5, FirstSeq: 7, Head: 8, Missing: []uint64{6}}.String()
	for _, want := range []string{"the store says", "deleted", "seqs 5 to 8", "seq 6 not in the store", "from seq 7"} {
		if !strings.Contains(s, want) {
			t.Errorf("the gap in words %q: want %q in it", s, want)
		}
	}
}
