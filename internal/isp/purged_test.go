package isp

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// A row whose raw exchange Vigil's retention purged still names the
// conversation, but says, in the letters (French and English), the JSON
// and the CSV, that its transcript was purged and on which day; the
// letter no longer tells the ISP that every exchange's transcript is
// kept; the other rows are untouched.
func TestARowWhoseTranscriptWasPurgedSaysSo(t *testing.T) {
	tg, s := fixture()
	req := Build(tg, s, fixedNow, testRetention())
	purgedRow := req.Groups[0].Rows[1]
	at := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	if n := req.MarkTranscriptsPurged(map[string]time.Time{purgedRow.ObservationID: at, "not-a-row": at}); n != 1 {
		t.Fatalf("marked %d rows, want 1", n)
	}
	if n, first, last := req.TranscriptsPurged(); n != 1 || !first.Equal(at) || !last.Equal(at) {
		t.Fatalf("TranscriptsPurged = %d, %v, %v", n, first, last)
	}
	g := req.Groups[0]
	if !g.Has(NoteTranscriptPurged) || req.Groups[1].Has(NoteTranscriptPurged) {
		t.Fatalf("notes: group 1 %+v, group 2 %+v", g.Notes, req.Groups[1].Notes)
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, &req); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Groups []struct {
			Notes []Note `json:"notes"`
			Rows  []struct {
				ObservationID    string `json:"observation_id"`
				TranscriptPurged string `json:"transcript_purged"`
			} `json:"rows"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	for gi, jg := range out.Groups {
		for _, r := range jg.Rows {
			want := ""
			if r.ObservationID == purgedRow.ObservationID {
				want = "2027-03-04T05:06:07.000Z"
			}
			if r.TranscriptPurged != want {
				t.Errorf("JSON group %d row %s: transcript_purged %q, want %q", gi, r.ObservationID, r.TranscriptPurged, want)
			}
		}
	}
	if !strings.Contains(js.String(), `"code": "transcript-purged"`) {
		t.Errorf("the JSON has no transcript-purged note")
	}

	var cb bytes.Buffer
	if err := WriteCSV(&cb, &req); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&cb).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(recs[0], "transcript_purged")
	if col < 0 {
		t.Fatalf("CSV header %v", recs[0])
	}
	for _, rec := range recs[1:] {
		want := ""
		if rec[22] == purgedRow.ObservationID {
			want = "2027-03-04T05:06:07.000Z"
		}
		if rec[col] != want {
			t.Errorf("CSV row %s: transcript_purged %q, want %q", rec[22], rec[col], want)
		}
	}

	text := pdftotext(t, buildPDF(t, &req, LangBoth))
	for _, want := range []string{
		// The cell wraps: its digest, set smaller, is on a line of its own.
		"transcript purged on 2027-03-04; recorded digest:",
		"transcription purgée le 2027-03-04 ; empreinte enregistrée :",
		purgedRow.TranscriptSHA256,
		"the raw protocol exchange (transcript) was purged under the requesting service's retention (line 2 on 2027-03-04)",
		"l'échange de protocole brut (transcription) a été purgé au titre de la durée de conservation du service requérant (ligne 2 le 2027-03-04)",
		"except on the lines that say it was purged",
		"sauf sur les lignes qui la disent purgée",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the letters lack %q", want)
		}
	}
	// Group 1's letters no longer say that every transcript is kept; the
	// other groups' still do (one letter per group and language).
	if got, want := strings.Count(text, "The transcript of each exchange is kept; its SHA-256 digest lets anyone check it."), len(req.Groups)-1; got != want {
		t.Errorf("%d English letters say every transcript is kept, want %d", got, want)
	}
}
