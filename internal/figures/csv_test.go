package figures

import (
	"bytes"
	"encoding/csv"
	"testing"
)

// A group label is free text (a watch-list category, an operation's name
// in 'vigil stats --outcomes'): a spreadsheet must not read it as a
// formula. The unknown group's "-" stays as it is.
func TestWriteCSVKeepsGroupLabelsFromBeingFormulas(t *testing.T) {
	n := int64(12)
	r := &Report{Group: "category", Rows: []Row{
		{Period: "2026-11", Group: "=HYPERLINK(\"http://127.0.0.1/\",\"x\")", Observations: &n},
		{Period: "2026-11", Group: "+1", Observations: &n},
		{Period: "2026-11", Group: "@SUM(A1)", Observations: &n},
		{Period: "2026-11", Group: "\tx", Observations: &n},
		{Period: "2026-11", Group: "", Observations: &n},
		{Period: "2026-11", Group: "plain", Observations: &n},
	}}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, r); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"'=HYPERLINK(\"http://127.0.0.1/\",\"x\")", "'+1", "'@SUM(A1)", "'\tx", "-", "plain"}
	for i, w := range want {
		if got := recs[i+1][1]; got != w {
			t.Errorf("row %d group %q, want %q", i, got, w)
		}
	}
}

func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{"": "", "-": "-", "-1": "'-1", "=1": "'=1", "\r=": "'\r=", "a=b": "a=b", "Paris": "Paris"} {
		if got := SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}
