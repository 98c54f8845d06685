package web

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/retention"
)

// After retention purged the transcripts, the ISP request form of a
// target says, in the user's language, that rows of its request rest on
// an exchange purged on that day, and the CSV it gives marks those rows
// with the purge's time; before the purge it says nothing of the kind.
func TestISPFormSaysTranscriptsWerePurged(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, "", 600)
	b := newBrowser(t, e)
	b.login("paris")
	if code, body := b.get("/targets/" + e.TargetA + "/isp"); code != http.StatusOK || strings.Contains(body, `id="isp-purged"`) {
		t.Fatalf("ISP form before any purge: %d, purged note %v", code, strings.Contains(body, `id="isp-purged"`))
	}
	// The fixture's observations keep no transcript bytes: give them some
	// (synthetic), for the purge to remove.
	raw, err := sql.Open("sqlite", e.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE observations SET transcript = X'00010203' WHERE transcript_sha256 IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	at := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	for {
		got, err := e.Store.PurgeChunk(ctx, retention.KindTranscripts, at, 500, at)
		if err != nil {
			t.Fatal(err)
		}
		if got.N == 0 {
			break
		}
	}
	code, body := b.get("/targets/" + e.TargetA + "/isp")
	if code != http.StatusOK || !strings.Contains(body, `id="isp-purged"`) || !strings.Contains(body, "purged under retention on 2031-05-06") {
		t.Fatalf("ISP form after the purge: %d\n%s", code, body)
	}
	code, csv, _ := b.do("POST", "/targets/"+e.TargetA+"/isp", url.Values{"format": {"csv"}, "purpose": {"PV 2031/00001"}, "csrf_token": {b.csrf}})
	if code != http.StatusOK || !strings.Contains(csv, ",2031-05-06T07:08:09.000Z,") { // transcript_purged, then marks
		t.Fatalf("ISP CSV after the purge: %d\n%.800s", code, csv)
	}
	b.do("POST", "/lang", url.Values{"lang": {"fr"}, "csrf_token": {b.csrf}, "next": {"/targets/" + e.TargetA + "/isp"}})
	if _, body := b.get("/targets/" + e.TargetA + "/isp"); !strings.Contains(body, "purgée au titre de la durée de conservation le 2031-05-06") {
		t.Fatalf("the French form lacks the purge:\n%s", body)
	}
}
