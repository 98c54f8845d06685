package isp

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestANonPublicRowSaysSo: the sensors mark a non-public address only on
// a third party's claim; the endpoint itself, talking to the sensor from
// a private, CGNAT (100.64.0.0/10) or loopback address, is kept as a row
// (docs/evidence.md). Such a row names no subscriber of a public network:
// it must say so on the row (JSON non_public, CSV non_public, the PDF's
// reference table) and in a note of its group, in both languages, which
// the letter prints; a public row of the same request says nothing.
func TestANonPublicRowSaysSo(t *testing.T) {
	at := fixedNow.Add(-time.Hour)
	mk := func(ip, id, class string, i int) Sighting {
		return fh(Sighting{IP: netip.MustParseAddr(ip), Port: 51413, Time: at.Add(time.Duration(i) * time.Minute),
			ObservationID: id, ASN: 64496, Org: "A", Country: "FR", NonPublic: class})
	}
	s := []Sighting{mk("100.64.7.9", "cgnat-1", "cgnat", 0), mk("100.64.7.9", "cgnat-2", "cgnat", 1),
		mk("81.2.69.160", "public-1", "", 2), mk("81.2.69.160", "public-2", "", 3)}
	req := Build(Target{ID: "T"}, s, fixedNow, DefaultRetention())
	if req.Kept != 4 || len(req.Groups) != 1 {
		t.Fatalf("kept %d in %d groups, want 4 rows in one group", req.Kept, len(req.Groups))
	}
	g := &req.Groups[0]
	for _, r := range g.Rows {
		want := ""
		if strings.HasPrefix(r.ObservationID, "cgnat") {
			want = "cgnat"
		}
		if r.NonPublic != want {
			t.Errorf("row %s: non_public %q, want %q", r.ObservationID, r.NonPublic, want)
		}
	}
	var note *Note
	for i := range g.Notes {
		if g.Notes[i].Code == NoteNonPublic {
			note = &g.Notes[i]
		}
	}
	if note == nil || !strings.Contains(note.EN, "2 row(s)") || !strings.Contains(note.EN, "cgnat") || !strings.Contains(note.FR, "cgnat") {
		t.Fatalf("group notes %+v: want a %s note counting 2 rows and naming the class", g.Notes, NoteNonPublic)
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, &req); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Groups []struct {
			Rows []map[string]any `json:"rows"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Groups[0].Rows {
		_, has := r["non_public"]
		if got := strings.HasPrefix(r["observation_id"].(string), "cgnat"); has != got || (has && r["non_public"] != "cgnat") {
			t.Errorf("JSON row %v: non_public %v", r["observation_id"], r["non_public"])
		}
	}

	var cs bytes.Buffer
	if err := WriteCSV(&cs, &req); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(cs.String()), "\n")
	head := strings.Split(lines[0], ",")
	col := -1
	for i, h := range head {
		if h == "non_public" {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("CSV header %v: no non_public column", head)
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if want := map[bool]string{true: "cgnat", false: ""}[strings.Contains(l, "100.64.7.9")]; f[col] != want {
			t.Errorf("CSV line %s: non_public %q, want %q", l, f[col], want)
		}
	}

	text := strings.Join(strings.Fields(pdftotext(t, buildPDF(t, &req, LangBoth))), " ")
	for _, want := range []string{"not publicly routable", "non routable publiquement", "non-public", "non publique"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF does not say %q", want)
		}
	}
}
