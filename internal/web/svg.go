package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Maps and charts are drawn here as SVG, on the server: no tile server, no
// CDN, no script. Every mark carries a <title> with its figure, and the
// same figures are in a table beside it.

// mapView is an equirectangular projection of a lon/lat box, with
// longitudes scaled by the cosine of a standard parallel so that shapes at
// that latitude keep their proportions.
type mapView struct {
	Name                           string
	W                              float64 // width in SVG units; height follows
	MinLon, MaxLon, MinLat, MaxLat float64
	Parallel                       float64 // standard parallel, degrees
	Step                           float64 // graticule step, degrees
	Outline                        [][][2]float64
}

var (
	franceView = mapView{Name: "france", W: 420, MinLon: -5.5, MaxLon: 10, MinLat: 41, MaxLat: 51.5,
		Parallel: 46, Step: 2, Outline: franceOutline}
	worldView = mapView{Name: "world", W: 560, MinLon: -180, MaxLon: 180, MinLat: -60, MaxLat: 84,
		Parallel: 0, Step: 30}
)

// franceOutline is a coarse outline of metropolitan France and Corsica,
// drawn by hand from a few dozen coastal and border points (lon, lat): for
// orientation only.
var franceOutline = [][][2]float64{
	{{2.55, 51.09}, {4.15, 50.28}, {4.87, 49.8}, {5.8, 49.55}, {6.36, 49.46}, {8.2, 48.97}, {7.6, 47.58},
		{6.9, 47.35}, {6.1, 46.4}, {6.8, 46.0}, {7.0, 45.2}, {6.6, 44.3}, {7.5, 43.78}, {6.2, 43.1}, {5.0, 43.35},
		{4.0, 43.5}, {3.1, 43.1}, {3.17, 42.43}, {1.7, 42.5}, {-0.7, 42.9}, {-1.78, 43.37}, {-1.25, 44.6},
		{-1.2, 46.0}, {-2.2, 47.1}, {-4.5, 47.9}, {-4.75, 48.4}, {-3.0, 48.8}, {-1.6, 48.65}, {-1.9, 49.7},
		{-1.2, 49.35}, {0.1, 49.45}, {1.6, 50.2}, {1.6, 50.9}},
	{{9.4, 43.0}, {9.55, 42.1}, {9.2, 41.37}, {8.6, 41.9}, {8.6, 42.6}},
}

func (v mapView) k() float64 { return math.Cos(v.Parallel * math.Pi / 180) }

// H returns the height in SVG units.
func (v mapView) H() float64 {
	return v.W * (v.MaxLat - v.MinLat) / ((v.MaxLon - v.MinLon) * v.k())
}

// xy projects a point.
func (v mapView) xy(lon, lat float64) (x, y float64) {
	x = (lon - v.MinLon) / (v.MaxLon - v.MinLon) * v.W
	y = (v.MaxLat - lat) / (v.MaxLat - v.MinLat) * v.H()
	return
}

func (v mapView) contains(lon, lat float64) bool {
	return lon >= v.MinLon && lon <= v.MaxLon && lat >= v.MinLat && lat <= v.MaxLat
}

// mapSVG draws points sized by count (area proportional to count). Points
// with no position (0, 0) or outside the view are not drawn; the table
// beside the map lists them.
func mapSVG(v mapView, title string, points []PlaceCount, label func(PlaceCount) string) template.HTML {
	var b strings.Builder
	h := v.H()
	fmt.Fprintf(&b, `<svg class="map map-%s" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		v.Name, v.W, h, html.EscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(title))
	fmt.Fprintf(&b, `<rect class="frame" x="0" y="0" width="%.0f" height="%.0f"/>`, v.W, h)
	for lon := math.Ceil(v.MinLon/v.Step) * v.Step; lon <= v.MaxLon; lon += v.Step {
		x, _ := v.xy(lon, 0)
		fmt.Fprintf(&b, `<line class="grat" x1="%.1f" y1="0" x2="%.1f" y2="%.1f"/>`, x, x, h)
	}
	for lat := math.Ceil(v.MinLat/v.Step) * v.Step; lat <= v.MaxLat; lat += v.Step {
		_, y := v.xy(0, lat)
		cls := "grat"
		if lat == 0 {
			cls = "grat eq"
		}
		fmt.Fprintf(&b, `<line class="%s" x1="0" y1="%.1f" x2="%.1f" y2="%.1f"/>`, cls, y, v.W, y)
	}
	for _, poly := range v.Outline {
		b.WriteString(`<polygon class="land" points="`)
		for i, p := range poly {
			x, y := v.xy(p[0], p[1])
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x, y)
		}
		b.WriteString(`"/>`)
	}
	maxN := 0
	for _, p := range points {
		maxN = max(maxN, p.Count)
	}
	for _, p := range points {
		if (p.Lat == 0 && p.Lon == 0) || !v.contains(p.Lon, p.Lat) || p.Count <= 0 {
			continue
		}
		x, y := v.xy(p.Lon, p.Lat)
		r := 2.5 + 12*math.Sqrt(float64(p.Count)/float64(maxN))
		fmt.Fprintf(&b, `<circle class="pt" cx="%.1f" cy="%.1f" r="%.1f" data-key="%s"><title>%s: %d</title></circle>`,
			x, y, r, html.EscapeString(p.Key), html.EscapeString(label(p)), p.Count)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// barSVG draws a bar chart of values with a label under each bar and the
// value above it.
func barSVG(title string, labels []string, values []int) template.HTML {
	return barChart(title, labels, values, strconv.Itoa, ":")
}

// barChart is barSVG with the values written by num and the colon of
// the viewer's language in each bar's title.
func barChart(title string, labels []string, values []int, num func(int) string, colon string) template.HTML {
	const w, h, top, bottom = 560.0, 170.0, 18.0, 22.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, w, h, html.EscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(title))
	maxV := 0
	for _, v := range values {
		maxV = max(maxV, v)
	}
	n := len(values)
	fmt.Fprintf(&b, `<line class="axis" x1="0" y1="%.1f" x2="%.0f" y2="%.1f"/>`, h-bottom, w, h-bottom)
	if n == 0 {
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	slot := w / float64(n)
	bw := slot * 0.7
	for i, v := range values {
		bh := 0.0
		if maxV > 0 {
			bh = float64(v) / float64(maxV) * (h - top - bottom)
		}
		x := float64(i)*slot + (slot-bw)/2
		y := h - bottom - bh
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s%s %s</title></rect>`,
			x, y, bw, bh, html.EscapeString(labels[i]), html.EscapeString(colon), html.EscapeString(num(v)))
		fmt.Fprintf(&b, `<text class="val" x="%.1f" y="%.1f">%s</text>`, x+bw/2, y-4, html.EscapeString(num(v)))
		fmt.Fprintf(&b, `<text class="lbl" x="%.1f" y="%.1f">%s</text>`, x+bw/2, h-6, html.EscapeString(labels[i]))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
