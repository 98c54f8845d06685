package pages

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
)

// svgShapes checks that svg is well-formed XML and returns, for each
// element with a data-key, its class and its <title>.
func svgShapes(t *testing.T, svg string) map[string][2]string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	out := map[string][2]string{}
	var key, class string
	inTitle := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML (escaping?): %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if e.Name.Local == "title" {
				inTitle = true
				continue
			}
			key, class = "", ""
			for _, a := range e.Attr {
				switch a.Name.Local {
				case "data-key":
					key = a.Value
				case "class":
					class = a.Value
				}
			}
			if key != "" {
				if _, dup := out[key]; dup {
					t.Fatalf("data-key %q twice", key)
				}
				out[key] = [2]string{class, ""}
			}
		case xml.CharData:
			if inTitle && key != "" {
				v := out[key]
				v[1] += string(e)
				out[key] = v
			}
		case xml.EndElement:
			if e.Name.Local == "title" {
				inTitle = false
			}
		}
	}
	return out
}

func TestShadeClassesAreDeterministicAndCoverEveryCount(t *testing.T) {
	for _, tc := range []struct{ n, max, want int }{
		{0, 10, 0}, {1, 1, 5}, {1, 2, 1}, {2, 2, 5}, {1, 100, 1}, {3, 100, 1}, {4, 100, 2}, {10, 100, 3}, {31, 100, 3}, {32, 100, 4}, {99, 100, 4}, {100, 100, 5},
	} {
		if got := shadeClass(tc.n, tc.max); got != tc.want {
			t.Errorf("shadeClass(%d, %d) = %d, want %d", tc.n, tc.max, got, tc.want)
		}
	}
	for _, maxN := range []int{1, 2, 3, 7, 100, 12345} {
		rg := classRanges(maxN)
		next := 1
		for k := 1; k <= shadeClasses; k++ {
			lo, hi := rg[k][0], rg[k][1]
			if lo > hi {
				continue
			}
			if lo != next {
				t.Fatalf("max %d: class %d starts at %d, want %d", maxN, k, lo, next)
			}
			for _, n := range []int{lo, hi} {
				if c := shadeClass(n, maxN); c != k {
					t.Fatalf("max %d: %d is in class %d, legend says %d", maxN, n, c, k)
				}
			}
			next = hi + 1
		}
		if next != maxN+1 {
			t.Fatalf("max %d: legend stops at %d", maxN, next-1)
		}
	}
}

// TestFranceMapShadesEveryDepartementWithACount: codes and names, the
// overseas départements given as countries, and a place no map can draw.
func TestFranceMapShadesEveryDepartementWithACount(t *testing.T) {
	v := &view{Lang: "fr"}
	ov := &Overview{
		BySubdivision: []PlaceCount{
			{Key: "78", Country: "FR", Count: 100},
			{Key: "2A", Country: "FR", Count: 1},
			{Key: "Bouches-du-Rhône", Country: "FR", Count: 10},
			{Key: "974", Country: "FR", Count: 4},
			{Key: "Ile-de-France", Country: "FR", Count: 7}, // a region: not drawn
			{Key: "<b>", Country: "FR", Count: 2},
		},
		ByCountry: []PlaceCount{
			{Key: "FR", Country: "FR", Count: 124},
			{Key: "GP", Country: "GP", Count: 32},
			{Key: "BE", Country: "BE", Count: 5},
			{Key: "ZZ", Country: "ZZ", Count: 1}, // no such country
		},
	}
	pm := v.overviewMaps(ov)
	fr := svgShapes(t, string(pm.France))
	want := map[string]struct {
		class string
		title string
	}{
		"78":  {"land c5", "78 Yvelines\u202f: 100"},
		"2A":  {"land c1", "2A Corse-du-Sud\u202f: 1"},
		"13":  {"land c3", "13 Bouches-du-Rhône\u202f: 10"},
		"974": {"land c2", "974 La Réunion\u202f: 4"},
		"971": {"land c4", "971 Guadeloupe\u202f: 32"},
	}
	for k, w := range want {
		if got := fr[k]; got[0] != w.class || got[1] != w.title {
			t.Errorf("département %s: class %q title %q, want %q %q", k, got[0], got[1], w.class, w.title)
		}
	}
	if len(fr) != len(want) {
		t.Errorf("shaded: %v, want only %v", fr, want)
	}
	for _, o := range []string{"971", "972", "973", "974", "976"} {
		if !strings.Contains(string(pm.France), `<text class="code"`) || !strings.Contains(string(pm.France), ">"+o+"</text>") {
			t.Errorf("no inset labelled %s", o)
		}
	}
	// The table beside it: the same figures, and the places not drawn.
	table := string(v.PlaceTable("by-sub", "d", pm.FranceRows))
	for _, row := range []string{
		`<tr data-shape="78"><td><span class="swatch c5" aria-hidden="true"></span> 78 Yvelines</td><td class="num">100</td></tr>`,
		`<tr data-shape="13"><td><span class="swatch c3" aria-hidden="true"></span> 13 Bouches-du-Rhône</td><td class="num">10</td></tr>`,
		`<tr data-shape="971"><td><span class="swatch c4" aria-hidden="true"></span> 971 Guadeloupe (GP)</td><td class="num">32</td></tr>`,
		`<tr><td>Ile-de-France <span class="notdrawn">(hors carte)</span></td><td class="num">7</td></tr>`,
		`<tr><td>&lt;b&gt; <span class="notdrawn">(hors carte)</span></td><td class="num">2</td></tr>`,
	} {
		if !strings.Contains(table, row) {
			t.Errorf("table lacks %s\n%s", row, table)
		}
	}
	world := svgShapes(t, string(pm.World))
	for k, w := range map[string]string{"FR": "land c5", "GP": "land c3", "BE": "land c2"} {
		if world[k][0] != w {
			t.Errorf("country %s: %q, want %q", k, world[k][0], w)
		}
	}
	if !strings.Contains(world["BE"][1], "Belgique\u202f: 5") {
		t.Errorf("BE title %q", world["BE"][1])
	}
	if tbl := string(v.PlaceTable("c", "c", pm.WorldRows)); !strings.Contains(tbl, `ZZ <span class="notdrawn">`) {
		t.Errorf("unknown country not listed as not drawn: %s", tbl)
	}
}

// TestTargetPlaceMapShowsAForeignCountry: a target seen only abroad gets
// the world map framed on its countries, not an empty France.
func TestTargetPlaceMapShowsAForeignCountry(t *testing.T) {
	v := &view{Lang: "en"}
	pm := v.targetMaps([]PlaceCount{{Key: "BRU", Country: "BE", Count: 3}, {Key: "DE", Country: "DE", Count: 1}})
	if pm.France != "" {
		t.Fatal("France map for a target seen only abroad")
	}
	w := svgShapes(t, string(pm.World))
	if w["BE"][0] != "land c5" || w["DE"][0] != "land c1" || w["BE"][1] != "Belgium: 3" {
		t.Fatalf("shades: %v", w)
	}
	var x, y, wd, ht float64
	if _, err := fmt.Sscanf(string(pm.World)[strings.Index(string(pm.World), `viewBox="`)+9:], "%g %g %g %g", &x, &y, &wd, &ht); err != nil {
		t.Fatal(err)
	}
	if wd >= 1000 || x <= 0 {
		t.Fatalf("view %v %v %v %v: not framed on Belgium and Germany", x, y, wd, ht)
	}
	if !strings.Contains(string(pm.World), ">Belgium</text>") {
		t.Fatal("framed map does not name the country")
	}
	tbl := string(v.PlaceTable("places", "place", pm.Rows()))
	if !strings.Contains(tbl, "BE Belgium (BRU)") || !strings.Contains(tbl, "DE Germany") {
		t.Fatalf("table: %s", tbl)
	}
	// A place with no outline in the data (Gibraltar) but a position: a
	// ring there, shaded, framed, and counted as drawn in the table.
	pm = v.targetMaps([]PlaceCount{{Key: "GI", Country: "GI", Lat: 36.14, Lon: -5.35, Count: 2}})
	if !strings.Contains(string(pm.World), `<circle class="mark c5"`) || !strings.Contains(string(pm.World), "<title>GI: 2</title>") {
		t.Fatalf("Gibraltar not ringed:\n%.600s", pm.World)
	}
	svgShapes(t, string(pm.World))
	if tbl := string(v.PlaceTable("p", "p", pm.Rows())); strings.Contains(tbl, "notdrawn") || !strings.Contains(tbl, "swatch c5") {
		t.Fatalf("Gibraltar's row: %s", tbl)
	}
	// Seen in France and abroad: both maps.
	pm = v.targetMaps([]PlaceCount{{Key: "69", Country: "FR", Count: 2}, {Key: "CA", Country: "CA", Count: 1}})
	if pm.France == "" || pm.World == "" || svgShapes(t, string(pm.France))["69"][0] != "land c5" {
		t.Fatalf("France and Canada: %v / %v", pm.FranceRows, pm.WorldRows)
	}
}

func TestBarChartHasOneBarPerDay(t *testing.T) {
	svg := string(barSVG("trend", []string{"11-17", "11-18", "11-19"}, []int{0, 5, 10}))
	if n := strings.Count(svg, `class="bar"`); n != 3 {
		t.Fatalf("%d bars", n)
	}
	if !strings.Contains(svg, `height="0.0"`) || !strings.Contains(svg, "11-19: 10") {
		t.Fatalf("bars:\n%s", svg)
	}
}

func TestParseTargetQuery(t *testing.T) {
	paris := zoneOf("Europe/Paris")
	for _, tc := range []struct {
		q       string
		wantErr string
		check   func(TargetQuery) bool
	}{
		{"", "", func(q TargetQuery) bool { return q.Sort == SortScore && !q.Asc && q.Limit == 50 && q.Offset == 0 }},
		{"page=3", "", func(q TargetQuery) bool { return q.Offset == 100 }},
		{"level=partial&vpn=no&minscore=12.5", "", func(q TargetQuery) bool { return q.MinLevel == 3 && q.VPN == "no" && q.MinScore == 12.5 }},
		{"from=2026-11-23&to=2026-11-23", "", func(q TargetQuery) bool {
			return q.From.Equal(time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC)) && q.Until.Equal(time.Date(2026, 11, 23, 23, 0, 0, 0, time.UTC))
		}},
		{"sort=last&order=asc", "", func(q TargetQuery) bool { return q.Sort == SortLast && q.Asc }},
		{"level=unknown", "level=", nil},
		{"minscore=NaN", "minscore=", nil},
		{"page=0", "page=", nil},
		{"sort=ip", "sort=", nil},
		{"vpn=maybe", "vpn=", nil},
		{"from=23/11/2026", "from=", nil},
		{"q=" + strings.Repeat("a", 300), "q=", nil},
	} {
		v, _ := url.ParseQuery(tc.q)
		q, err := ParseTargetQuery(v, paris, 50)
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want one naming %s", tc.q, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !tc.check(q) {
			t.Errorf("%s: %+v %v", tc.q, q, err)
		}
	}
}

func FuzzParseTargetQuery(f *testing.F) {
	f.Add("q=127.0.0.1&level=complete&page=2&sort=first&order=asc&from=2026-01-01&to=2026-02-01&minscore=3&vpn=yes&network=bittorrent")
	f.Add("page=99999999999999999999&minscore=1e400")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseTargetQuery(v, zoneOf("Europe/Paris"), 50)
		if err != nil {
			return
		}
		if q.Offset < 0 || q.Limit != 50 || q.MinScore < 0 || q.MinScore != q.MinScore || len(q.Search) > maxSearch {
			t.Fatalf("accepted %q as %+v", raw, q)
		}
		if q.Sort != SortScore && q.Sort != SortLast && q.Sort != SortFirst {
			t.Fatalf("sort %q", q.Sort)
		}
	})
}
