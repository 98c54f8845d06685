package isp

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// TestARowCarriesItsMarks: a first-hand probe can still carry marks that
// a reader must know before relying on its level: a hostile peer whose
// bitfield set spare bits (malformed_bitfield), a have_none after its
// have_all (malformed_have), an exchange cut from the transcript
// (transcript_cut). Such a sighting is a row (nothing in the marks makes
// it second-hand), and its marks must travel with it into the JSON, the
// CSV and the PDF letter, and into the request id: a letter saying
// "complete" alone, where the observation says the peer broke the
// protocol to say it, overstates.
func TestARowCarriesItsMarks(t *testing.T) {
	at := fixedNow.Add(-time.Hour)
	marked := []string{observe.MarkMalformedBitfield, observe.MarkTranscriptCut}
	mk := func(id string, i int, marks []string) Sighting {
		return fh(Sighting{IP: netip.MustParseAddr("81.2.69.160"), Port: 51413, Time: at.Add(time.Duration(i) * time.Minute),
			ObservationID: id, ASN: 64496, Org: "A", Country: "FR", Level: observe.Complete, Marks: marks})
	}
	s := []Sighting{mk("marked", 0, marked), mk("plain", 1, nil)}
	req := Build(Target{ID: "T"}, s, fixedNow, DefaultRetention())
	if req.Kept != 2 {
		t.Fatalf("kept %d, want 2 rows (annex %+v)", req.Kept, req.Annex)
	}
	for _, r := range req.Groups[0].Rows {
		want := map[string][]string{"marked": marked}[r.ObservationID]
		if !slices.Equal(r.Marks, want) {
			t.Errorf("row %s: marks %v, want %v", r.ObservationID, r.Marks, want)
		}
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, &req); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Groups []struct {
			Rows []struct {
				ObservationID string   `json:"observation_id"`
				Marks         []string `json:"marks"`
			} `json:"rows"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Groups[0].Rows {
		want := map[string][]string{"marked": marked, "plain": {}}[r.ObservationID]
		if r.Marks == nil || !slices.Equal(r.Marks, want) {
			t.Errorf("JSON row %s: marks %#v, want %v (a list, [] when none)", r.ObservationID, r.Marks, want)
		}
	}

	var cs bytes.Buffer
	if err := WriteCSV(&cs, &req); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&cs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col, idCol := slices.Index(recs[0], "marks"), slices.Index(recs[0], "observation_id")
	if col < 0 {
		t.Fatalf("CSV header %v: no marks column", recs[0])
	}
	for _, rec := range recs[1:] {
		want := map[string]string{"marked": strings.Join(marked, " ")}[rec[idCol]]
		if rec[col] != want {
			t.Errorf("CSV row %s: marks %q, want %q", rec[idCol], rec[col], want)
		}
	}

	// The id covers the marks: the same rows without them are another
	// request.
	bare := slices.Clone(s)
	bare[0].Marks = nil
	if other := Build(Target{ID: "T"}, bare, fixedNow, DefaultRetention()); other.ID == req.ID {
		t.Errorf("request id %s unchanged when a row's marks are removed", req.ID)
	}

	// The PDF's reference table wraps the level cell: the marks are
	// found apart from it, once a letter (French and English) and the
	// legend says what they are.
	text := pdftotext(t, buildPDF(t, &req, LangBoth))
	if n := strings.Count(text, observe.MarkMalformedBitfield+" "+observe.MarkTranscriptCut); n != 2 {
		t.Errorf("the PDF prints the row's marks %d times, want once a letter:\n%s", n, text)
	}
	for _, want := range []string{"A word after the level", "Un mot après le niveau"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF's legend does not say %q", want)
		}
	}
}

// A sighting that a sensor before e97915c recorded complete although the
// peer's bitfield broke the format (malformed_bitfield) is a row at the
// level the current rule counts (partial, the pieces known; acknowledged
// when not): the letter's legend says the level counts only what the peer
// validly showed, and printing complete beside the mark would contradict
// it. Before the fix the row said complete.
func TestARowOfAnOlderMalformedBitfieldIsNotComplete(t *testing.T) {
	for _, c := range []struct {
		have, total int
		want        observe.Level
	}{{10, 10, observe.Partial}, {-1, -1, observe.Acknowledged}} {
		o := observe.Observation{ID: "old", Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe,
			Time: fixedNow.Add(-time.Hour), Endpoint: observe.Endpoint{IP: netip.MustParseAddr("81.2.69.160"), Port: 51413, Transport: "tcp"},
			Possession: observe.Possession{Level: observe.Complete, PiecesHave: c.have, PiecesTotal: c.total},
			Place:      observe.Place{ASN: 64496, Org: "A", Country: "FR"}}
		o.Mark(observe.MarkMalformedBitfield)
		sg := fh(FromObservation(&o))
		// A second instant of the address, so that both are rows.
		other := sg
		other.ObservationID, other.Time, other.Marks, other.TranscriptSHA256 = "other", sg.Time.Add(time.Minute), nil, ""
		req := Build(Target{ID: "T"}, []Sighting{sg, fh(other)}, fixedNow, DefaultRetention())
		if req.Kept != 2 {
			t.Fatalf("kept %d, want 2 rows (annex %+v)", req.Kept, req.Annex)
		}
		for _, r := range req.Groups[0].Rows {
			if r.ObservationID == "old" && (r.Level != c.want || !slices.Equal(r.Marks, []string{observe.MarkMalformedBitfield})) {
				t.Errorf("pieces %d/%d: row at %v marked %v, want %v marked malformed_bitfield", c.have, c.total, r.Level, r.Marks, c.want)
			}
		}
	}
}

// Every mark a row can carry is printed after its level in the letter,
// and the legend of each language names it and says what it means: a
// node_id_via_ping or node_id_unchecked row (a peer that sent a PORT
// message, a common client) must not be read under a legend saying that
// the peer broke the protocol. Before the fix the legend named only
// malformed_bitfield, malformed_have and transcript_cut, and said of
// every word after the level that the peer broke the protocol or the
// transcript lacks part of the exchange.
func TestTheLetterLegendNamesEveryMarkARowCanCarry(t *testing.T) {
	base := fh(Sighting{IP: netip.MustParseAddr("81.2.69.160"), Port: 51413, Time: fixedNow.Add(-time.Hour),
		ObservationID: "x", Method: observe.MethodPeerProbe, Level: observe.Complete})
	rowMarks := 0
	for _, k := range observe.KnownMarks {
		x := base
		x.Marks = []string{k.Name}
		if notRow(&x) != "" {
			continue // never a row: its annex entry says why
		}
		rowMarks++
		for _, l := range []*langText{&textFR, &textEN} {
			if !strings.Contains(l.legend, k.Name) {
				t.Errorf("a row can carry %s, and the legend does not name it: %q", k.Name, l.legend)
			}
		}
	}
	if rowMarks == 0 {
		t.Fatal("no mark can be a row's: the test checks nothing")
	}
}

// A sighting that is not a row keeps its marks in the JSON's annex,
// beside the level it gives: a probe seen once at its address, whose
// transcript was cut, or a tracker's listing (third_party), is not listed
// at a bare level. Before the fix the annex entries had a level and no
// marks.
func TestAnAnnexEntryCarriesItsMarks(t *testing.T) {
	at := fixedNow.Add(-time.Hour)
	cut := fh(Sighting{IP: netip.MustParseAddr("81.2.69.161"), Port: 51413, Time: at, ObservationID: "once",
		ASN: 64496, Org: "A", Country: "FR", Level: observe.Complete, Marks: []string{observe.MarkTranscriptCut}})
	listed := Sighting{IP: netip.MustParseAddr("81.2.69.162"), Port: 6881, Time: at, ObservationID: "listed", Method: observe.MethodTracker,
		ASN: 64496, Org: "A", Country: "FR", Level: observe.Announced, Marks: []string{observe.MarkThirdParty}}
	plain := fh(Sighting{IP: netip.MustParseAddr("81.2.69.163"), Port: 51413, Time: at, ObservationID: "plain",
		ASN: 64496, Org: "A", Country: "FR", Level: observe.Partial})
	req := Build(Target{ID: "T"}, []Sighting{cut, listed, plain}, fixedNow, DefaultRetention())
	if len(req.Annex) != 3 {
		t.Fatalf("annex %+v, want the three sightings", req.Annex)
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, &req); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Annex []struct {
			ObservationID string   `json:"observation_id"`
			Marks         []string `json:"marks"`
		} `json:"annex"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"once": {observe.MarkTranscriptCut}, "listed": {observe.MarkThirdParty}, "plain": {}}
	for _, a := range out.Annex {
		if a.Marks == nil || !slices.Equal(a.Marks, want[a.ObservationID]) {
			t.Errorf("annex %s: marks %#v, want %v (a list, [] when none)", a.ObservationID, a.Marks, want[a.ObservationID])
		}
	}
	// The id covers an annex entry's marks, as a row's.
	bare := []Sighting{cut, listed, plain}
	bare[0].Marks = nil
	if other := Build(Target{ID: "T"}, bare, fixedNow, DefaultRetention()); other.ID == req.ID {
		t.Errorf("request id %s unchanged when an annex entry's marks are removed", req.ID)
	}
}
