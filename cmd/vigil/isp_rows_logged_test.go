package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// TestISPRequestRefusesAnEditedRow: someone with the database moves a
// probe's time by an hour (at a shared address, another subscriber's hour);
// the observation no longer hashes to its leaf in the evidence log, and
// 'vigil isp-request' refuses to make a row of it rather than send the ISP
// the edited time.
func TestISPRequestRefusesAnEditedRow(t *testing.T) {
	db := filepath.Join(t.TempDir(), "vigil.db")
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Millisecond)
	obs := []observe.Observation{
		ispObs(observe.MethodTracker, 51413, at),
		ispObs(observe.MethodPeerProbe, 51413, at.Add(2*time.Hour)),
	}
	if err := st.InsertObservations(context.Background(), obs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if code, _, errOut := vigilRun(t, nil, "", "--db", db, "isp-request", "--target", "T-1", "--format", "json", "--case", "2026/0001"); code != exitOK {
		t.Fatalf("isp-request before the edit: exit %d %s", code, errOut)
	}
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE observations SET time_ns = time_ns + 3600000000000`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	code, out, errOut := vigilRun(t, nil, "", "--db", db, "isp-request", "--target", "T-1", "--format", "json", "--case", "2026/0001")
	if code == exitOK || !strings.Contains(errOut, obs[1].ID) || !strings.Contains(errOut, "no longer hashes to its leaf") {
		t.Fatalf("isp-request after a row was edited: exit %d\n%s\n%s", code, out, errOut)
	}
}
