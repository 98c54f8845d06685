package pages

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// The web import used to report only the first invalid line of a bad
// file; the person fixing the file needs every one (up to a bound) with
// its line number and reason, as the command line gives them.
func TestWebImportListsEveryRejectedLine(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b strings.Builder
	b.WriteString(strings.Repeat("ab", 20) + "\n")
	bad := 0
	for i := range MaxRejectedShown + 20 {
		fmt.Fprintf(&b, "not-a-hash-%d\n", i)
		bad++
	}
	u := &User{Name: "analyst", Role: RoleAnalyst}
	_, err = storeLists{st: st}.Import(ctx, u, ListUpload{Name: "national", Filename: "bad.txt", Body: strings.NewReader(b.String())}, nil)
	var rej *ImportRejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Import of a bad file: %v, want *ImportRejectedError", err)
	}
	if rej.Total != bad || len(rej.Lines) != MaxRejectedShown {
		t.Fatalf("%d rejected, %d listed; want %d and %d", rej.Total, len(rej.Lines), bad, MaxRejectedShown)
	}
	for i, l := range rej.Lines {
		if l.Line != i+2 || l.Reason == "" {
			t.Fatalf("rejected line %d: %+v, want line %d with a reason", i, l, i+2)
		}
	}
}
