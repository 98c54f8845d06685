package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// Two probes of one address make two rows; retention then purges the
// first one's transcript. 'vigil isp-request' still makes both rows, and
// the first says, in the JSON and the CSV, that its raw exchange was
// purged, when (the purge record's time), with a note; the second does not.
func TestISPRequestSaysARowsTranscriptWasPurged(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "vigil.db")
	st, err := sqlite.Open(ctx, db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Millisecond)
	obs := []observe.Observation{ispObs(observe.MethodPeerProbe, 51413, at), ispObs(observe.MethodPeerProbe, 51413, at.Add(2*time.Hour))}
	for i := range obs {
		obs[i].Transcript.Bytes = []byte("transcript")
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	args := []string{"--db", db, "isp-request", "--target", "T-1", "--format", "json", "--case", "2026/0002"}
	if code, _, errOut := vigilRun(t, nil, "", args...); code != exitOK { // the analysis reads them
		t.Fatalf("isp-request: exit %d %s", code, errOut)
	}
	st, err = sqlite.Open(ctx, db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	purgedAt := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	if got, err := st.PurgeChunk(ctx, retention.KindTranscripts, at.Add(time.Hour), 10, purgedAt); err != nil || got.N != 1 {
		t.Fatalf("purge of the first transcript: %+v, %v", got, err)
	}
	st.Close()
	code, out, errOut := vigilRun(t, nil, "", args...)
	if code != exitOK {
		t.Fatalf("isp-request after the purge: exit %d %s", code, errOut)
	}
	var req struct {
		Groups []struct {
			Notes []struct{ Code, EN, FR string } `json:"notes"`
			Rows  []struct {
				ObservationID    string `json:"observation_id"`
				TranscriptSHA256 string `json:"transcript_sha256"`
				TranscriptPurged string `json:"transcript_purged"`
			} `json:"rows"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(out), &req); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(req.Groups) != 1 || len(req.Groups[0].Rows) != 2 {
		t.Fatalf("request %s: want one group of two rows", out)
	}
	want := map[string]string{obs[0].ID: purgedAt.Format("2006-01-02T15:04:05.000Z07:00"), obs[1].ID: ""}
	for _, r := range req.Groups[0].Rows {
		if r.TranscriptPurged != want[r.ObservationID] || r.TranscriptSHA256 == "" {
			t.Errorf("row %s: transcript_purged %q (digest %q), want %q", r.ObservationID, r.TranscriptPurged, r.TranscriptSHA256, want[r.ObservationID])
		}
	}
	noted := false
	for _, n := range req.Groups[0].Notes {
		noted = noted || n.Code == "transcript-purged" && strings.Contains(n.EN, purgedAt.Format("2006-01-02")) && strings.Contains(n.FR, "purgé")
	}
	if !noted {
		t.Errorf("no transcript-purged note: %+v", req.Groups[0].Notes)
	}
	args[len(args)-3] = "csv"
	code, out, errOut = vigilRun(t, nil, "", args...)
	if code != exitOK || !strings.Contains(out, obs[0].ID) || !strings.Contains(out, purgedAt.Format("2006-01-02T15:04:05.000Z")) {
		t.Fatalf("csv: exit %d %s\n%s", code, errOut, out)
	}
}
