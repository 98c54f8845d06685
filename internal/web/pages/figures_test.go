package pages

import (
	"strconv"
	"strings"
	"testing"
)

func TestNiceMaxIsRoundAndAtLeastTheValue(t *testing.T) {
	for _, c := range []struct{ v, want int64 }{{0, 0}, {1, 1}, {3, 4}, {7, 10}, {10, 10}, {11, 20}, {2371, 4000}, {416, 500}, {135, 200}} {
		if got := niceMax(c.v); got != c.want {
			t.Errorf("niceMax(%d) = %d, want %d", c.v, got, c.want)
		}
	}
}

// A chart names itself (title, desc, axis labels), draws one bar a
// figure it has, and none for a figure left out (suppressed): a bar of
// height 0 would read as a zero.
func TestSeriesSVGDrawsNoBarForALeftOutFigure(t *testing.T) {
	v := func(n int64) *int64 { return &n }
	svg := string(seriesSVG(seriesSpec{title: "Unique devices", desc: "Unique devices by month <b>", xLabel: "Month (UTC)", yLabel: "Unique devices",
		periods: []string{"2026-01", "2026-02", "2026-03"}, groups: []string{""}, groupLabels: []string{""},
		values: map[[2]string]*int64{{"2026-01", ""}: v(5), {"2026-02", ""}: nil, {"2026-03", ""}: v(0)},
		num:    func(n int64) string { return strconv.FormatInt(n, 10) }, colon: ":"}))
	for _, want := range []string{`role="img"`, `<title id="cuniquedevices-t">Unique devices</title>`, `<desc id="cuniquedevices-d">Unique devices by month &lt;b&gt;</desc>`,
		`aria-labelledby="cuniquedevices-t cuniquedevices-d"`, ">Month (UTC)</text>", "<title>2026-01: 5</title>", "<title>2026-03: 0</title>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %s:\n%s", want, svg)
		}
	}
	if n := strings.Count(svg, `<rect class="bar`); n != 2 {
		t.Fatalf("%d bars, want 2 (none for the figure left out):\n%s", n, svg)
	}
	if strings.Contains(svg, "2026-02:") || strings.Contains(svg, "legend") {
		t.Fatalf("a bar for the figure left out, or a legend for an ungrouped chart:\n%s", svg)
	}
}

// The axis' gridlines are evenly spaced: their labels must be too.
func TestSeriesSVGTicksAreEven(t *testing.T) {
	for _, top := range []int64{1, 2, 3, 5, 7, 10, 50, 135, 2371} {
		v := top
		svg := string(seriesSVG(seriesSpec{title: "T", periods: []string{"p"}, groups: []string{""}, groupLabels: []string{""},
			values: map[[2]string]*int64{{"p", ""}: &v}, num: func(n int64) string { return strconv.FormatInt(n, 10) }}))
		var ticks []int64
		for _, part := range strings.Split(svg, `<text class="tick y"`)[1:] {
			s := part[strings.Index(part, ">")+1 : strings.Index(part, "<")]
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("tick %q", s)
			}
			ticks = append(ticks, n)
		}
		if len(ticks) < 2 || ticks[0] != 0 || ticks[len(ticks)-1] < top {
			t.Fatalf("max %d: ticks %v", top, ticks)
		}
		for i := 1; i < len(ticks); i++ {
			if ticks[i]-ticks[i-1] != ticks[1] {
				t.Fatalf("max %d: uneven ticks %v", top, ticks)
			}
		}
	}
}
