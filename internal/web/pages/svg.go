package pages

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-oss/vigil/internal/web/i18n"
	"github.com/vigil-oss/vigil/internal/web/maps"
)

// Maps and charts are drawn here as SVG, on the server: no tile server, no
// CDN, no script. The outlines are the embedded ones of package maps. Each
// country or département with a count is shaded by that count and carries
// a <title> with its figure; the same figures are in a table beside the
// map, which also lists the places the map cannot draw.

// placeRow is one row of the table beside a map, and what the map did
// with it.
type placeRow struct {
	Key   string // as the backend gave it
	Label string // as shown
	Count int
	Shape string // key of the outline it is counted in; "" when not drawn
	Class int    // shade class 1…shadeClasses of that outline; 0 when not drawn
	// At is where a place with no outline of its own (Gibraltar, a
	// country too new for the data) is drawn as a ring, from the
	// position the geolocation database gave; its Shape is then "@" and
	// its country or key.
	At [2]float64
}

// shadeClasses is the number of shades; the classes are cut on a log
// scale of the largest count on the map, so that one busy place does not
// leave all others in the palest shade.
const shadeClasses = 5

// shadeClass returns the class (1…shadeClasses) of n on a map whose
// largest count is maxN; 0 for n <= 0.
func shadeClass(n, maxN int) int {
	switch {
	case n <= 0:
		return 0
	case n >= maxN:
		return shadeClasses
	}
	c := 1 + int(math.Floor(float64(shadeClasses-1)*math.Log(float64(n))/math.Log(float64(maxN))))
	return max(1, min(shadeClasses, c))
}

// classRanges returns, for each class 1…shadeClasses, the counts it
// covers on a map whose largest count is maxN (lo > hi when it covers
// none).
func classRanges(maxN int) [shadeClasses + 1][2]int {
	var r [shadeClasses + 1][2]int
	for k := 1; k <= shadeClasses; k++ {
		// smallest n in 1…maxN with class >= k
		lo := sort.Search(maxN, func(i int) bool { return shadeClass(i+1, maxN) >= k }) + 1
		r[k][0] = lo
	}
	for k := 1; k <= shadeClasses; k++ {
		if k < shadeClasses {
			r[k][1] = r[k+1][0] - 1
		} else {
			r[k][1] = maxN
		}
	}
	return r
}

// shading sums the rows by outline and gives each outline its class; it
// sets each row's Class.
type shading struct {
	sum    map[string]int
	titles map[string][]string
	max    int
}

func shade(rows []placeRow) shading {
	s := shading{sum: map[string]int{}, titles: map[string][]string{}}
	for _, r := range rows {
		if r.Shape == "" || r.Count <= 0 {
			continue
		}
		s.sum[r.Shape] += r.Count
		s.titles[r.Shape] = append(s.titles[r.Shape], r.Label)
	}
	for _, n := range s.sum {
		s.max = max(s.max, n)
	}
	for i := range rows {
		rows[i].Class = s.class(rows[i].Shape)
	}
	return s
}

func (s shading) class(shape string) int {
	if shape == "" {
		return 0
	}
	return shadeClass(s.sum[shape], s.max)
}

// mapDraw collects the SVG of one map.
type mapDraw struct {
	b    strings.Builder
	s    shading
	num  func(int) string
	name func(maps.Shape) string
	// colon goes between a name and its count: ": ", or " : " with a
	// narrow no-break space in French.
	colon string
}

func (d *mapDraw) open(name string, vb maps.Box, title string) {
	fmt.Fprintf(&d.b, `<svg class="map map-%s" viewBox="%s %s %s %s" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		name, f1(vb[0]), f1(vb[1]), f1(vb.W()), f1(vb.H()), html.EscapeString(title))
	fmt.Fprintf(&d.b, `<title>%s</title>`, html.EscapeString(title))
	fmt.Fprintf(&d.b, `<rect class="sea" x="%s" y="%s" width="%s" height="%s"/>`, f1(vb[0]), f1(vb[1]), f1(vb.W()), f1(vb.H()))
}

// shape draws one outline: shaded, named (data-key) and titled when it
// has a count; keyed is false for a second copy (an inset), which is not
// named. Outlines without a count carry no key: the page says nothing of
// places the viewer has no figure for.
func (d *mapDraw) shape(sh maps.Shape, keyed bool) {
	n, counted := d.s.sum[sh.Key]
	counted = counted && sh.Key != "-"
	if !counted {
		d.b.WriteString(`<path class="land" d="` + sh.D + `"/>`)
		return
	}
	d.b.WriteString(`<path class="land c` + strconv.Itoa(d.s.class(sh.Key)) + `"`)
	if keyed {
		d.b.WriteString(` data-key="` + html.EscapeString(sh.Key) + `"`)
	}
	d.b.WriteString(` d="` + sh.D + `"><title>`)
	d.b.WriteString(html.EscapeString(d.name(sh) + d.colon + d.num(n)))
	d.b.WriteString(`</title></path>`)
}

// marker draws a ring around a shaded outline too small to see at this
// scale, so that its shade shows.
func (d *mapDraw) marker(sh maps.Shape, r float64) {
	fmt.Fprintf(&d.b, `<circle class="mark c%d" cx="%s" cy="%s" r="%s"><title>%s</title></circle>`,
		d.s.class(sh.Key), f1(sh.At[0]), f1(sh.At[1]), f1(r), html.EscapeString(d.name(sh)+d.colon+d.num(d.s.sum[sh.Key])))
}

// legend draws the classes in use at x, y; u is the size of a CSS pixel
// in the map's units.
func (d *mapDraw) legend(x, y, u float64, heading string) {
	if d.s.max == 0 {
		return
	}
	rg := classRanges(d.s.max)
	rows, wide := 0, len(heading)
	for k := 1; k <= shadeClasses; k++ {
		if rg[k][0] <= rg[k][1] {
			rows++
			wide = max(wide, 3+len(d.num(rg[k][0]))+len(d.num(rg[k][1])))
		}
	}
	fmt.Fprintf(&d.b, `<g class="legend" font-size="%s">`, f1(11*u))
	fmt.Fprintf(&d.b, `<rect class="bg" x="%s" y="%s" width="%s" height="%s"/>`, f1(x-4*u), f1(y-2*u), f1(float64(wide)*7.2*u+10*u), f1((20+float64(rows)*15)*u))
	fmt.Fprintf(&d.b, `<text class="head" x="%s" y="%s">%s</text>`, f1(x), f1(y+10*u), html.EscapeString(heading))
	row := 0
	for k := 1; k <= shadeClasses; k++ {
		lo, hi := rg[k][0], rg[k][1]
		if lo > hi {
			continue
		}
		yy := y + (16+float64(row)*15)*u
		txt := d.num(lo)
		if hi > lo {
			txt += "–" + d.num(hi)
		}
		fmt.Fprintf(&d.b, `<rect class="key c%d" x="%s" y="%s" width="%s" height="%s"/><text x="%s" y="%s">%s</text>`,
			k, f1(x), f1(yy), f1(14*u), f1(11*u), f1(x+19*u), f1(yy+9.5*u), html.EscapeString(txt))
		row++
	}
	d.b.WriteString(`</g>`)
}

func (d *mapDraw) close() template.HTML {
	d.b.WriteString(`</svg>`)
	return template.HTML(d.b.String())
}

func f1(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

// shapeName names an outline in the viewer's language: "78 Yvelines",
// "Belgique".
func shapeName(lang string) func(maps.Shape) string {
	return func(sh maps.Shape) string {
		n := sh.Name
		if lang == "fr" {
			n = sh.NameFR
		}
		if sh.Key != "" && sh.Key[0] >= '0' && sh.Key[0] <= '9' {
			return sh.Key + " " + n
		}
		return n
	}
}

// franceRows places French places: a place counts in the département its
// key names (a code or a name, as geolocation databases give it); an
// overseas département that a database gives as a country of its own
// (GP, MQ, GF, RE, YT) counts in its département. ok is false for a place
// that is neither (it belongs to the world map).
func franceRow(lang string, p PlaceCount) (placeRow, bool) {
	name := shapeName(lang)
	if code, ok := maps.OverseasCountry(p.Country); ok {
		sh, _ := maps.France().Shape(code)
		return placeRow{Key: p.Key, Label: name(sh) + " (" + strings.ToUpper(p.Country) + ")", Count: p.Count, Shape: code}, true
	}
	if !strings.EqualFold(p.Country, "FR") || strings.EqualFold(p.Key, "FR") || p.Key == "" {
		return placeRow{}, false
	}
	code, ok := maps.Departement(p.Key)
	if !ok {
		return placeRow{}, false
	}
	sh, _ := maps.France().Shape(code)
	label := name(sh)
	if !strings.EqualFold(p.Key, code) && !strings.EqualFold(p.Key, "FR-"+code) && !strings.EqualFold(p.Key, sh.Name) {
		label += " (" + p.Key + ")"
	}
	return placeRow{Key: p.Key, Label: label, Count: p.Count, Shape: code}, true
}

// worldRow places a place by its country.
func worldRow(lang string, p PlaceCount) placeRow {
	cc := strings.ToUpper(p.Country)
	r := placeRow{Key: p.Key, Label: p.Key, Count: p.Count}
	if p.Label != "" {
		r.Label = p.Key + " " + p.Label
	}
	if cc == "" {
		return r
	}
	sh, ok := maps.World().Shape(cc)
	if !ok {
		if p.Lat != 0 || p.Lon != 0 {
			r.Shape = "@" + cc
			r.At[0], r.At[1] = maps.EqualEarth(p.Lon, p.Lat)
		}
		return r
	}
	r.Shape = cc
	n := shapeName(lang)(sh)
	switch {
	case strings.EqualFold(p.Key, cc) || p.Key == "":
		r.Label = cc + " " + n
	default: // a subdivision the France map could not place, or abroad
		r.Label = cc + " " + n + " (" + p.Key + ")"
	}
	return r
}

// franceInsetW, franceInsetH: the strip of insets under metropolitan
// France.
const franceStripY, franceStripH = 1185.0, 250.0

// franceSVG draws the départements shaded by rows (whose Shape is a
// département code), with insets for the five overseas départements and
// for Paris and its inner suburbs, and a legend.
func franceSVG(lang, title string, rows []placeRow, num func(int) string, legend string) template.HTML {
	m := maps.France()
	d := &mapDraw{s: shade(rows), num: num, name: shapeName(lang), colon: i18n.T(lang, "common.colon") + " "}
	vb := maps.Box{0, 0, m.W, franceStripY + franceStripH}
	d.open("france", vb, title)
	for _, sh := range m.Shapes {
		if len(sh.Key) < 3 {
			d.shape(sh, true)
		}
	}
	// Insets: the overseas départements, then Paris.
	slots := len(maps.Overseas) + 1
	sw := m.W / float64(slots)
	inset := func(i int, name, codes string, box maps.Box, draw func()) {
		x0, y0 := float64(i)*sw+5, franceStripY
		w, h := sw-10, franceStripH-8
		fmt.Fprintf(&d.b, `<g class="inset" font-size="25"><rect class="frame" x="%s" y="%s" width="%s" height="%s"/>`, f1(x0), f1(y0), f1(w), f1(h))
		fmt.Fprintf(&d.b, `<text x="%s" y="%s">%s</text><text class="code" x="%s" y="%s">%s</text>`,
			f1(x0+w/2), f1(y0+27), html.EscapeString(name), f1(x0+w/2), f1(y0+53), html.EscapeString(codes))
		aw, ah := w-24, h-74
		s := min(aw/box.W(), ah/box.H())
		tx := x0 + 12 + (aw-box.W()*s)/2 - box[0]*s
		ty := y0 + 64 + (ah-box.H()*s)/2 - box[1]*s
		fmt.Fprintf(&d.b, `<g transform="translate(%s %s) scale(%s)">`, f1(tx), f1(ty), strconv.FormatFloat(s, 'f', 3, 64))
		draw()
		d.b.WriteString(`</g></g>`)
	}
	for i, o := range maps.Overseas {
		sh, ok := m.Shape(o.Code)
		if !ok {
			continue
		}
		inset(i, o.Name, o.Code, sh.Box, func() { d.shape(sh, true) })
	}
	var pbox maps.Box
	var psh []maps.Shape
	for _, k := range []string{"75", "92", "93", "94"} {
		if sh, ok := m.Shape(k); ok {
			if len(psh) == 0 {
				pbox = sh.Box
			}
			pbox = pbox.Union(sh.Box)
			psh = append(psh, sh)
		}
	}
	if len(psh) > 0 {
		inset(slots-1, "Paris", "75 92 93 94", pbox, func() {
			for _, sh := range psh {
				d.shape(sh, false)
			}
		})
	}
	d.legend(20, 20, m.W/440, legend)
	return d.close()
}

// worldSVG draws the countries shaded by rows (whose Shape is an ISO
// alpha-2 code). zoom: frame the shaded countries (their main parts) and
// their neighbours instead of the whole world, and name them.
func worldSVG(lang, title string, rows []placeRow, num func(int) string, legend string, zoom bool) template.HTML {
	m := maps.World()
	d := &mapDraw{s: shade(rows), num: num, name: shapeName(lang), colon: i18n.T(lang, "common.colon") + " "}
	vb := maps.Box{0, 0, m.W, m.H}
	dots := map[string]placeRow{}
	for _, r := range rows {
		if strings.HasPrefix(r.Shape, "@") && r.Count > 0 {
			dots[r.Shape] = r
		}
	}
	if zoom && len(d.s.sum) > 0 {
		vb = zoomBox(m, d.s.sum, dots)
	}
	const px = 640.0 // the width the overview gives the map, in CSS pixels
	u := vb.W() / px
	d.open("world", vb, title)
	overlaps := func(b maps.Box) bool { return b[2] >= vb[0] && b[0] <= vb[2] && b[3] >= vb[1] && b[1] <= vb[3] }
	for _, sh := range m.Shapes {
		if overlaps(sh.Box) {
			d.shape(sh, true)
		}
	}
	var shaded []maps.Shape
	for k := range d.s.sum {
		if sh, ok := m.Shape(k); ok {
			shaded = append(shaded, sh)
		}
	}
	sort.Slice(shaded, func(i, j int) bool { return shaded[i].Key < shaded[j].Key })
	for _, sh := range shaded {
		if max(sh.Main.W(), sh.Main.H()) < 6*u {
			d.marker(sh, 5*u)
		}
	}
	for _, k := range sortedKeys(dots) {
		r := dots[k]
		d.marker(maps.Shape{Key: k, Name: r.Label, NameFR: r.Label, At: r.At}, 5*u)
	}
	if zoom {
		fmt.Fprintf(&d.b, `<g class="names" font-size="%s">`, f1(11*u))
		for _, sh := range shaded {
			fmt.Fprintf(&d.b, `<text x="%s" y="%s">%s</text>`, f1(sh.At[0]), f1(sh.At[1]-6*u), html.EscapeString(d.name(sh)))
		}
		d.b.WriteString(`</g>`)
		d.legend(vb[0]+8*u, vb[1]+6*u, u, legend)
	} else {
		d.legend(vb[0]+40*u, vb[3]-100*u, u, legend)
	}
	return d.close()
}

// zoomBox frames the main parts of the shaded countries with a margin, no
// smaller than a tenth of the world's width, in the world map's
// proportions, inside the world.
func zoomBox(m *maps.Map, keys map[string]int, dots map[string]placeRow) maps.Box {
	var b maps.Box
	first := true
	add := func(o maps.Box) {
		if first {
			b, first = o, false
		}
		b = b.Union(o)
	}
	for k := range keys {
		if sh, ok := m.Shape(k); ok {
			add(sh.Main)
		}
	}
	for _, r := range dots {
		add(maps.Box{r.At[0], r.At[1], r.At[0], r.At[1]})
	}
	if first {
		return maps.Box{0, 0, m.W, m.H}
	}
	cx, cy := (b[0]+b[2])/2, (b[1]+b[3])/2
	w := max(b.W()*1.6, b.H()*1.6*m.W/m.H, m.W/10)
	w = min(w, m.W)
	h := w * m.H / m.W
	x0 := min(max(cx-w/2, 0), m.W-w)
	y0 := min(max(cy-h/2, 0), m.H-h)
	return maps.Box{x0, y0, x0 + w, y0 + h}
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

// placeMaps is what a page shows of its places: the maps, and the rows of
// the tables beside them.
type placeMaps struct {
	France, World         template.HTML // empty when the page shows no such map
	FranceRows, WorldRows []placeRow
}

// overviewMaps draws the overview's two maps: départements (overseas
// départements given as countries included) and countries.
func (v *view) overviewMaps(ov *Overview) placeMaps {
	var pm placeMaps
	for _, p := range ov.BySubdivision {
		r, ok := franceRow(v.Lang, p)
		if !ok {
			r = placeRow{Key: p.Key, Label: p.Key, Count: p.Count}
			if p.Label != "" {
				r.Label += " " + p.Label
			}
		}
		pm.FranceRows = append(pm.FranceRows, r)
	}
	for _, p := range ov.ByCountry {
		if _, ok := maps.OverseasCountry(p.Country); ok {
			r, _ := franceRow(v.Lang, p)
			pm.FranceRows = append(pm.FranceRows, r)
		}
		pm.WorldRows = append(pm.WorldRows, worldRow(v.Lang, p))
	}
	pm.France = franceSVG(v.Lang, v.T("overview.mapfr"), pm.FranceRows, v.Num, v.T("map.legend"))
	pm.World = worldSVG(v.Lang, v.T("overview.mapworld"), pm.WorldRows, v.Num, v.T("map.legend"), false)
	return pm
}

// targetMaps draws where a target's addresses were placed: the
// département map for places in France, and the world map framed on the
// countries for places elsewhere (or in France without a département).
func (v *view) targetMaps(places []PlaceCount) placeMaps {
	var pm placeMaps
	for _, p := range places {
		if r, ok := franceRow(v.Lang, p); ok {
			pm.FranceRows = append(pm.FranceRows, r)
			continue
		}
		pm.WorldRows = append(pm.WorldRows, worldRow(v.Lang, p))
	}
	if len(pm.FranceRows) > 0 {
		pm.France = franceSVG(v.Lang, v.T("target.places"), pm.FranceRows, v.Num, v.T("map.legend"))
	}
	if len(pm.WorldRows) > 0 {
		pm.World = worldSVG(v.Lang, v.T("target.places"), pm.WorldRows, v.Num, v.T("map.legend"), true)
	}
	return pm
}

// PlaceTable is the table beside a map: each place as given, its count,
// the shade it has on the map (or that the map does not draw it).
func (v *view) PlaceTable(id, heading string, rows []placeRow) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<table class="narrow places" id="%s"><thead><tr><th>%s</th><th class="num">%s</th></tr></thead><tbody>`,
		html.EscapeString(id), html.EscapeString(heading), html.EscapeString(v.T("common.count")))
	for _, r := range rows {
		b.WriteString(`<tr`)
		if r.Shape != "" {
			fmt.Fprintf(&b, ` data-shape="%s"`, html.EscapeString(r.Shape))
		}
		b.WriteString(`><td>`)
		if r.Class > 0 {
			fmt.Fprintf(&b, `<span class="swatch c%d" aria-hidden="true"></span> `, r.Class)
		}
		b.WriteString(html.EscapeString(r.Label))
		if r.Shape == "" {
			fmt.Fprintf(&b, ` <span class="notdrawn">(%s)</span>`, html.EscapeString(v.T("map.notdrawn")))
		}
		fmt.Fprintf(&b, `</td><td class="num">%s</td></tr>`, html.EscapeString(v.Num(r.Count)))
	}
	if len(rows) == 0 {
		fmt.Fprintf(&b, `<tr><td colspan="2">%s</td></tr>`, html.EscapeString(v.T("common.none")))
	}
	b.WriteString(`</tbody></table>`)
	return template.HTML(b.String())
}

// Rows is every row, France's first.
func (pm placeMaps) Rows() []placeRow {
	return append(append([]placeRow(nil), pm.FranceRows...), pm.WorldRows...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
