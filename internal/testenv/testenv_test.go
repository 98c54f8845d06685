package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how it was ended instead of
// ending the test that runs it.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestMissingSkipsUnlessRequired(t *testing.T) {
	t.Setenv("VIGIL_REQUIRE_QPDF", "")
	r := &recorder{TB: t}
	Missing(r, "QPDF", "qpdf not found")
	if r.failed != "" || !strings.Contains(r.skipped, "qpdf not found") || !strings.Contains(r.skipped, "Debian package qpdf") {
		t.Fatalf("not required: skipped %q, failed %q; want a skip naming what is missing and how to get it", r.skipped, r.failed)
	}
	t.Setenv("VIGIL_REQUIRE_QPDF", "1")
	r = &recorder{TB: t}
	Missing(r, "QPDF", "qpdf not found")
	if r.skipped != "" || !strings.Contains(r.failed, "qpdf not found") || !strings.Contains(r.failed, "VIGIL_REQUIRE_QPDF") {
		t.Fatalf("required: skipped %q, failed %q; want a failure naming the switch", r.skipped, r.failed)
	}
}

func TestNeedFindsAProgramOrEndsTheTest(t *testing.T) {
	t.Setenv("VIGIL_REQUIRE_QPDF", "1")
	r := &recorder{TB: t}
	if p := Need(r, "QPDF", "sh"); p == "" || r.failed != "" || r.skipped != "" {
		t.Fatalf("Need(sh) = %q, failed %q, skipped %q", p, r.failed, r.skipped)
	}
	r = &recorder{TB: t}
	Need(r, "QPDF", "vigil-no-such-program")
	if !strings.Contains(r.failed, "vigil-no-such-program not found") {
		t.Fatalf("Need of a missing program, required: failed %q, skipped %q", r.failed, r.skipped)
	}
}

func TestUnknownPartPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Required of an unknown part did not panic: a misspelt switch would let a test skip")
		}
	}()
	Required("QPFD")
}
