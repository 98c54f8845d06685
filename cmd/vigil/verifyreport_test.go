package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
)

// Attack (review of h-nul): a bundle is hostile input to 'vigil verify'
// (anyone may make one with keys of their own), and its report prints
// what the bundle says: the target, a gap's chain, a problem's detail. A
// terminal escape in them ("\x1b[8m" conceals all the text after it,
// the FAILED line included), a carriage return or a bidi override would
// let the bundle rewrite what the reader sees. The report writes every
// character that is not printable as observe.EscapeText writes it; its
// own line breaks stay.
func TestVerifyReportShowsABundlesControlCharactersVisibly(t *testing.T) {
	var out bytes.Buffer
	a := &app{stdout: &out}
	rep := &verify.Report{Target: "T-1\x1b[8m", LogKey: "k\r", Checkpoint: "c\u202e",
		Gaps:     []verify.Gap{{Chain: "ab\x1b[2K\rOK: everything checks", SignedFrom: 5, FirstSeq: 7, Head: 8, Missing: []uint64{6}}},
		Problems: []verify.Problem{{File: "batches.json", Detail: "chain x\x1b[8m"}}}
	printVerifyReport(a, "b.zip", rep)
	s := out.String()
	for _, c := range []string{"\x1b", "\r", "\u202e"} {
		if strings.Contains(s, c) {
			t.Errorf("the report holds the bundle's %q as it is:\n%s", c, s)
		}
	}
	if !strings.Contains(s, `T-1\u001b[8m`) || !strings.Contains(s, "FAILED: 1 problems\n") {
		t.Errorf("the report:\n%s", s)
	}
}
