package main

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/vigil-oss/vigil/internal/casework"
)

// An operation's name is free text a user typed: in the outcomes CSV it
// must not be read as a formula by a spreadsheet.
func TestOutcomesCSVKeepsOperationNamesFromBeingFormulas(t *testing.T) {
	rep := &casework.OutcomeReport{Group: "operation", Rows: []casework.OutcomeRow{{Group: "=HYPERLINK(\"http://127.0.0.1/\")"}}}
	var buf bytes.Buffer
	if err := writeOutcomesCSV(&buf, rep); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[1][0]; got != "'=HYPERLINK(\"http://127.0.0.1/\")" {
		t.Fatalf("group cell %q", got)
	}
	if got := recs[2][0]; got != "total" {
		t.Fatalf("total row %q", got)
	}
}
