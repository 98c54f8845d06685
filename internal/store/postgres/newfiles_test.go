package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
)

// File rows the engine marks New go in with a plain INSERT; one that
// the store holds after all (it outlived its observations, or another
// process wrote it) must not fail the save: the save ends with every row
// as given, the stored one updated, as an upsert leaves it.
func TestNewFileRowsAlreadyStoredAreUpdated(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	file := func(ep int64, n byte, obs int, isNew bool) analysis.EndpointFileRow {
		b := make([]byte, 20)
		b[0] = n
		h, err := hashkind.New(hashkind.BTIH, b)
		if err != nil {
			t.Fatal(err)
		}
		return analysis.EndpointFileRow{Endpoint: ep, New: isNew, File: analysis.FileInfo{Hash: h, Kind: h.Kind().String(),
			Severity: 2, MaxLevel: 3, Intent: "sharing", FirstSeen: at, LastSeen: at.Add(time.Duration(obs) * time.Minute), Observations: obs}}
	}
	stored := func() []string {
		t.Helper()
		var out []string
		if err := eachRow(ctx, st.db(), `SELECT endpoint, get_byte(hash, 0), observations, last_ns FROM analysis_endpoint_files`, func(r pgx.Rows) error {
			var ep, n, obs, last int64
			if err := r.Scan(&ep, &n, &obs, &last); err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("ep %d file %d: %d observations, last %s", ep, n, obs, time.Unix(0, last).UTC().Format("15:04")))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	saves := [][]analysis.EndpointFileRow{
		{file(1, 1, 1, true), file(1, 2, 1, true)},
		// File 1 of endpoint 1 is stored, though marked New; file 2 is
		// upserted as usual; endpoint 2's file 1 is new indeed.
		{file(1, 1, 2, true), file(1, 2, 3, false), file(2, 1, 1, true)},
	}
	for v, files := range saves {
		if err := st.AnalysisSave(ctx, &analysis.Changes{Version: int64(v), Files: files}); err != nil {
			t.Fatalf("save %d: %v", v+1, err)
		}
	}
	want := []string{
		"ep 1 file 1: 2 observations, last 10:02",
		"ep 1 file 2: 3 observations, last 10:03",
		"ep 2 file 1: 1 observations, last 10:01",
	}
	if got := stored(); !slices.Equal(got, want) {
		t.Errorf("stored files:\n%q\nwant\n%q", got, want)
	}
	// The transaction went on after the savepoint: the save's state was
	// written with it.
	snap, err := st.AnalysisLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != int64(len(saves)) {
		t.Errorf("analysis version %d after %d saves", snap.Version, len(saves))
	}
}
