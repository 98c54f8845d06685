package web

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestMapProjectsPointsInsideTheView(t *testing.T) {
	pts := []PlaceCount{
		{Key: "78", Lat: 48.8, Lon: 1.98, Count: 10},
		{Key: "2A", Lat: 41.9, Lon: 8.7, Count: 1},
		{Key: "<x>", Lat: 43.5, Lon: 5.4, Count: 5},
		{Key: "none", Count: 3},                    // no position: not drawn
		{Key: "US", Lat: 38, Lon: -97, Count: 100}, // outside France: not drawn
	}
	svg := string(mapSVG(franceView, "t & t", pts, func(p PlaceCount) string { return p.Key }))
	d := xml.NewDecoder(strings.NewReader(svg))
	circles := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML (escaping?): %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "circle" {
			circles++
			var cx, cy float64
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "cx":
					cx = atof(t, a.Value)
				case "cy":
					cy = atof(t, a.Value)
				}
			}
			if cx < 0 || cx > franceView.W || cy < 0 || cy > franceView.H() {
				t.Fatalf("point outside the view: %v,%v", cx, cy)
			}
		}
	}
	if circles != 3 {
		t.Fatalf("%d circles, want 3", circles)
	}
	// Paris-ish (78) is north of Corsica (2A): smaller y.
	x78, y78 := franceView.xy(1.98, 48.8)
	x2a, y2a := franceView.xy(8.7, 41.9)
	if !(y78 < y2a && x78 < x2a) {
		t.Fatalf("projection orientation wrong: 78 at %v,%v; 2A at %v,%v", x78, y78, x2a, y2a)
	}
}

func atof(t *testing.T, s string) float64 {
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		t.Fatal(err)
	}
	return f
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
