package web

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-oss/vigil/internal/web/i18n"
	"github.com/vigil-oss/vigil/internal/web/webtest"
)

// TestFiguresInBrowser loads the figures page in headless Chromium as the
// national analyst, in English and in French: three charts drawn (bars,
// axes, a <title> and a <desc> each), each followed by its table; the
// group selector redraws them by network; a local service's browser is
// refused. Screenshots go to $VIGIL_ARTIFACTS.
func TestFiguresInBrowser(t *testing.T) {
	b := webtest.Start(t, 180*time.Second)
	e := newEnv(t, "", 3000)
	run, text, eval, shot := b.Run, b.Text, b.Eval, b.Shot
	b.SignIn(e.URL, "analyst", e.Password["analyst"], "#fig-obs")

	check := func(lang string) {
		t.Helper()
		for _, id := range []string{"chart-observations", "chart-addresses", "chart-devices"} {
			q := "#" + id
			if n := eval(`document.querySelectorAll('` + q + ` svg rect.bar').length`); n.(float64) < 1 {
				t.Fatalf("%s %s: %v bars", lang, id, n)
			}
			for _, sel := range []string{"svg > title", "svg > desc", "svg text.axis-label", "table caption", "table tbody tr"} {
				if n := eval(`document.querySelectorAll('` + q + ` ` + sel + `').length`); n.(float64) < 1 {
					t.Fatalf("%s %s: no %s", lang, id, sel)
				}
			}
			// The chart is named by its title and description.
			if l := eval(`document.querySelector('` + q + ` svg').getAttribute('aria-labelledby').split(' ').map(i => document.getElementById(i).textContent).join(' | ')`); !strings.Contains(l.(string), "|") {
				t.Fatalf("%s %s: labelled by %q", lang, id, l)
			}
			// The chart is drawn: its bars have a size on the screen.
			if h := eval(`Math.max(...[...document.querySelectorAll('` + q + ` svg rect.bar')].map(r => r.getBoundingClientRect().height))`); h.(float64) < 5 {
				t.Fatalf("%s %s: the tallest bar is %v px", lang, id, h)
			}
		}
		if got, want := text("#chart-addresses h2"), i18n.T(lang, "figures.addrs"); got != want {
			t.Fatalf("%s: heading %q, want %q", lang, got, want)
		}
	}
	run("figures (en)", chromedp.Navigate(e.URL+"/figures"), chromedp.WaitVisible(chromedp.CSS("#chart-devices svg")), shot("figures-en"))
	check("en")
	run("by week and network",
		chromedp.SetValue(chromedp.CSS("#by"), "week"),
		chromedp.SetValue(chromedp.CSS("#group"), "network"),
		chromedp.Click(chromedp.CSS("#figures-apply")),
		chromedp.WaitVisible(chromedp.CSS(`#chart-observations svg text.legend`)),
		shot("figures-en-week-network"))
	check("en")
	if n := eval(`document.querySelectorAll('#chart-observations thead th').length`); n != float64(4) {
		t.Fatalf("the grouped table has %v columns, want 4 (period, network, observations, change)", n)
	}
	run("switch to French",
		chromedp.SetValue(chromedp.CSS("#lang-select"), "fr"),
		chromedp.Click(chromedp.CSS("#lang-submit")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="fr"] #chart-devices svg`)),
		shot("figures-fr"))
	check("fr")
	if s := text("#exports"); !strings.Contains(s, "publiables") {
		t.Fatalf("French exports: %q", s)
	}

	run("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.SignIn(e.URL, "paris", e.Password["paris"], "#fig-obs")
	run("paris: figures", chromedp.Navigate(e.URL+"/figures"), chromedp.WaitVisible(chromedp.CSS("#error-message")), shot("figures-paris-refused"))
	if n := eval(`document.querySelectorAll('svg.series, table.figures-table, a[href="/figures"]').length`); n != float64(0) {
		t.Fatalf("paris sees %v parts of the figures", n)
	}
	files, _ := filepath.Glob(filepath.Join(b.Shots, "figures-*.png"))
	t.Logf("%s", fmt.Sprint(len(files), " screenshots in ", b.Shots))
}
