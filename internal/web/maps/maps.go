// Package maps holds the outlines the web pages draw their maps with: the
// world's countries by ISO 3166-1 alpha-2 code and France's départements
// by code ("01"…"95", "2A", "2B", "971"…"976"), as SVG path data, embedded
// in the binary. It never fetches anything: the data were converted once
// from public data sets (see NOTICE.md and gen/), and a map must keep
// working on a machine with no network at all.
package maps

import (
	_ "embed"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
)

//go:generate go run ./gen -npm $VIGIL_MAPS_NPM -o .

//go:embed world.tsv
var worldTSV string

//go:embed france.tsv
var franceTSV string

// Box is a rectangle: MinX, MinY, MaxX, MaxY.
type Box [4]float64

// W is its width.
func (b Box) W() float64 { return b[2] - b[0] }

// H is its height.
func (b Box) H() float64 { return b[3] - b[1] }

// Union returns the smallest box holding b and o.
func (b Box) Union(o Box) Box {
	return Box{min(b[0], o[0]), min(b[1], o[1]), max(b[2], o[2]), max(b[3], o[3])}
}

// Shape is one area to draw.
type Shape struct {
	Key    string     // ISO 3166-1 alpha-2, or département code; "-" for land with no code
	Name   string     // English country name, or the département's (French) name
	NameFR string     // French country name, or the département's name
	Box    Box        // extent of D
	Main   Box        // extent of its largest part (a country without its far islands)
	At     [2]float64 // a point inside the largest part, for a marker or a label
	D      string     // SVG path data, integer coordinates
}

// Map is a set of shapes in one coordinate system.
type Map struct {
	W, H   float64 // extent: 0,0 to W,H
	Shapes []Shape
	index  map[string]int
}

// Shape returns the shape with key k.
func (m *Map) Shape(k string) (Shape, bool) {
	i, ok := m.index[k]
	if !ok {
		return Shape{}, false
	}
	return m.Shapes[i], true
}

// World is the world without Antarctica, projected with Equal Earth: 4000
// units wide, y down. France ("FR") is metropolitan France with Corsica;
// its overseas départements are the countries GP, MQ, GF, RE and YT, as
// geolocation databases name them.
func World() *Map { return world() }

// France is France's départements. The 96 metropolitan ones share one
// frame, 1226 by 1170 units; each overseas one (971, 972, 973, 974, 976,
// see Overseas) is in a frame of its own, 200 units on its longer side,
// for an inset.
func France() *Map { return france() }

var world = sync.OnceValue(func() *Map {
	m := parse("world.tsv", worldTSV)
	m.W = 4000
	_, m.H = EqualEarth(0, worldMinLat)
	return m
})

var france = sync.OnceValue(func() *Map {
	m := parse("france.tsv", franceTSV)
	m.W, m.H = 1226, 1170
	return m
})

func parse(name, text string) *Map {
	m := &Map{index: map[string]int{}}
	for n, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			panic(fmt.Sprintf("maps: %s line %d: %d fields", name, n+1, len(f)))
		}
		s := Shape{Key: f[0], Name: f[1], NameFR: f[2], D: f[6]}
		for i, v := range strings.Split(f[3], ",") {
			s.Box[i] = mustFloat(name, n, v)
		}
		for i, v := range strings.Split(f[4], ",") {
			s.Main[i] = mustFloat(name, n, v)
		}
		for i, v := range strings.Split(f[5], ",") {
			s.At[i] = mustFloat(name, n, v)
		}
		if s.Key != "-" {
			m.index[s.Key] = len(m.Shapes)
		}
		m.Shapes = append(m.Shapes, s)
	}
	return m
}

func mustFloat(name string, n int, s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(fmt.Sprintf("maps: %s line %d: %v", name, n+1, err))
	}
	return v
}

// worldMaxLat and worldMinLat bound the world map: the Arctic coasts to
// South Georgia.
const worldMaxLat, worldMinLat = 84, -60

// EqualEarth projects lon, lat (degrees) onto the world map's units.
// (Šavrič, Patterson, Jenny 2018.)
func EqualEarth(lon, lat float64) (x, y float64) {
	const a1, a2, a3, a4 = 1.340264, -0.081106, 0.000893, 0.003796
	ee := func(lon, lat float64) (float64, float64) {
		l, p := lon*math.Pi/180, lat*math.Pi/180
		th := math.Asin(math.Sqrt(3) / 2 * math.Sin(p))
		t2 := th * th
		t6 := t2 * t2 * t2
		x := 2 * math.Sqrt(3) * l * math.Cos(th) / (3 * (9*a4*t6*t2 + 7*a3*t6 + 3*a2*t2 + a1))
		y := th * (a1 + a2*t2 + t6*(a3+a4*t2))
		return x, y
	}
	xmax, _ := ee(180, 0)
	_, ytop := ee(0, worldMaxLat)
	px, py := ee(lon, lat)
	s := 4000 / (2 * xmax)
	return (px + xmax) * s, (ytop - py) * s
}

// Overseas lists the overseas départements: code, the country code that
// geolocation databases give them, and name.
var Overseas = []struct{ Code, Country, Name string }{
	{"971", "GP", "Guadeloupe"},
	{"972", "MQ", "Martinique"},
	{"973", "GF", "Guyane"},
	{"974", "RE", "La Réunion"},
	{"976", "YT", "Mayotte"},
}

// OverseasCountry returns the département code of an overseas
// département's ISO 3166-1 country code ("GP" gives "971").
func OverseasCountry(country string) (string, bool) {
	for _, o := range Overseas {
		if strings.EqualFold(o.Country, country) {
			return o.Code, true
		}
	}
	return "", false
}

// Departement returns the code of the département that s names: a code
// ("78", "2a", "FR-78", "971"), or a name as geolocation databases spell
// it, French or English, with or without accents ("Yvelines", "Paris",
// "Reunion", "French Guiana"). It reports false for anything else (a
// region, a typo), which the pages list without drawing.
func Departement(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 3 && strings.EqualFold(s[:3], "FR-") {
		s = s[3:]
	}
	u := strings.ToUpper(s)
	if _, ok := France().index[u]; ok {
		return u, true
	}
	if len(u) == 1 && u[0] >= '1' && u[0] <= '9' {
		if _, ok := France().index["0"+u]; ok {
			return "0" + u, true
		}
	}
	code, ok := byName()[fold(s)]
	return code, ok
}

var byName = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	for _, sh := range France().Shapes {
		out[fold(sh.Name)] = sh.Key
	}
	for _, o := range Overseas {
		out[fold(o.Name)] = o.Code
	}
	for k, v := range map[string]string{
		"paris": "75", "reunion": "974", "french guiana": "973", "guyane francaise": "973",
		"corse du sud": "2A", "south corsica": "2A", "haute corse": "2B", "upper corsica": "2B",
	} {
		out[k] = v
	}
	return out
})

// fold lowercases, drops accents of the letters French uses, and reads
// hyphens and apostrophes as spaces.
func fold(s string) string {
	r := strings.NewReplacer(
		"à", "a", "â", "a", "ä", "a", "ç", "c", "é", "e", "è", "e", "ê", "e", "ë", "e",
		"î", "i", "ï", "i", "ô", "o", "ö", "o", "ù", "u", "û", "u", "ü", "u", "ÿ", "y",
		"-", " ", "'", " ", "’", " ")
	s = r.Replace(strings.ToLower(strings.TrimSpace(s)))
	return strings.Join(strings.Fields(s), " ")
}
