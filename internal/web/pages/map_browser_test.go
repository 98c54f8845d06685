package pages

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-oss/vigil/internal/web/webtest"
)

// mapsBackend is the fake backend with places abroad and overseas, for
// the maps.
type mapsBackend struct{ *fakeBackend }

func (b mapsBackend) Overview(ctx context.Context, u *User, since time.Time) (*Overview, error) {
	o, err := b.fakeBackend.Overview(ctx, u, since)
	if err != nil || o.Observations == 0 {
		return o, err
	}
	o.BySubdivision = append(o.BySubdivision,
		PlaceCount{Key: "75", Country: "FR", Count: 40}, PlaceCount{Key: "Bouches-du-Rhône", Country: "FR", Count: 2},
		PlaceCount{Key: "974", Country: "FR", Count: 1}, PlaceCount{Key: "Ile-de-France", Country: "FR", Count: 5})
	o.ByCountry = append(o.ByCountry, PlaceCount{Key: "BE", Country: "BE", Count: 9}, PlaceCount{Key: "CA", Country: "CA", Count: 3},
		PlaceCount{Key: "GP", Country: "GP", Count: 2}, PlaceCount{Key: "SG", Country: "SG", Count: 1})
	return o, nil
}

// TestMapsInBrowser draws the overview's maps and a foreign target's place
// map in headless Chromium: the shaded outlines are there and visible, and
// the tables carry the same figures. Screenshots: maps-*.png.
func TestMapsInBrowser(t *testing.T) {
	b := webtest.Start(t, 240*time.Second)
	env := fakeEnvWith(t, func(c *Config) { c.Targets = mapsBackend{c.Targets.(*fakeBackend)} })
	fb := env.backend
	fb.mu.Lock()
	foreign := *fb.targets[env.TargetA]
	foreign.ID, foreign.Country, foreign.Subdivision = "T-A9", "BE", "Brussels"
	foreign.Places = []PlaceCount{{Key: "Brussels", Country: "BE", Count: 5}, {Key: "DE", Country: "DE", Count: 1}}
	fb.targets[foreign.ID] = &foreign
	fb.mu.Unlock()

	b.SignIn(env.URL, "alice", env.Password["alice"], "#fig-obs")
	b.Run("overview", chromedp.WaitVisible(chromedp.CSS("svg.map-world")), b.Shot("maps-overview"),
		elementShot(b, ".split.maps", "maps-overview-maps"))
	// Shaded, visible, and the same figure in the table.
	size := func(sel string) float64 {
		t.Helper()
		v := b.Eval(`(() => { const e = document.querySelector('` + sel + `'); if (!e) return -1; const r = e.getBoundingClientRect(); return Math.min(r.width, r.height); })()`)
		return v.(float64)
	}
	for sel, min := range map[string]float64{
		`svg.map-france path.c5[data-key="75"]`: 1, // small, and the largest count
		`svg.map-france path[data-key="78"]`:    8,
		`svg.map-france path[data-key="974"]`:   8, // an inset
		`svg.map-france path[data-key="971"]`:   8,
		`svg.map-world path[data-key="BE"]`:     1,
		`svg.map-world path[data-key="CA"]`:     30,
		`svg.map-world circle.mark`:             4, // Singapore, ringed
		`svg.map-france .legend`:                20,
		`svg.map-world .legend`:                 20,
	} {
		if got := size(sel); got < min {
			t.Errorf("%s: drawn %vpx across, want at least %v", sel, got, min)
		}
	}
	if s := b.Text("#by-sub"); !strings.Contains(s, "75 Ville de Paris") || !strings.Contains(s, "40") || !strings.Contains(s, "971 Guadeloupe (GP)") {
		t.Errorf("département table: %q", s)
	}
	if s := b.Eval(`document.querySelector('svg.map-france path[data-key="75"] title').textContent`); s != "75 Ville de Paris: 40" {
		t.Errorf("title of 75: %q", s)
	}

	b.Run("foreign target", chromedp.Navigate(env.URL+"/targets/T-A9"), chromedp.WaitVisible(chromedp.CSS("#target-title")), b.Shot("maps-target-foreign"),
		elementShot(b, "svg.map-world", "maps-target-foreign-map"))
	if n := b.Eval(`document.querySelectorAll('svg.map-france').length`); n != float64(0) {
		t.Errorf("a target seen only abroad gets a France map")
	}
	if got := size(`svg.map-world path.c5[data-key="BE"]`); got < 20 {
		t.Errorf("Belgium drawn %vpx across on its target's map: not framed on it", got)
	}
	if s := b.Text("#places"); !strings.Contains(s, "BE Belgium (Brussels)") || !strings.Contains(s, "DE Germany") {
		t.Errorf("places table: %q", s)
	}
	b.Run("French target", chromedp.Navigate(env.URL+"/targets/"+env.TargetA), chromedp.WaitVisible(chromedp.CSS("#target-title")), b.Shot("maps-target-fr"),
		elementShot(b, "svg.map-france", "maps-target-fr-map"))
	if got := size(`svg.map-france path.c5[data-key="78"]`); got < 8 {
		t.Errorf("78 drawn %vpx across on its target's map", got)
	}

	// In French: country names, legend and captions.
	b.Run("overview in French",
		chromedp.Navigate(env.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#lang-select")),
		chromedp.SetValue(chromedp.CSS("#lang-select"), "fr"), chromedp.Click(chromedp.CSS("#lang-submit")),
		// The English page has the same map: wait for the French one, or
		// the wait and the shot race the reload (CI: "No node with given
		// id found", and a wait that never ended).
		chromedp.WaitVisible(chromedp.CSS(`html[lang="fr"] svg.map-world`)),
		elementShot(b, ".split.maps", "maps-overview-maps-fr"))
	if s := b.Text("#by-country"); !strings.Contains(s, "BE Belgique") || !strings.Contains(s, "SG Singapour") {
		t.Errorf("country table in French: %q", s)
	}
	if s := b.Eval(`document.querySelector('svg.map-world path[data-key="BE"] title').textContent`); s != "Belgique\u202f: 9" {
		t.Errorf("title of BE in French: %q", s)
	}
	// Leave the overview, whose live feed would hold the test server open.
	b.Run("leave", chromedp.Navigate("about:blank"))
}

// elementShot saves a screenshot of the element sel selects, at twice the
// page's scale, as NAME.png beside the page shots.
func elementShot(b *webtest.Browser, sel, name string) webtest.Step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.ScreenshotScale(chromedp.CSS(sel), 2)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.Shots, name+".png"), buf, 0o644)
	})
}
