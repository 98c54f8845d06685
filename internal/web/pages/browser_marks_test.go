package pages

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/api"
	"github.com/vigil-oss/vigil/internal/web/webtest"
)

// cellsJS returns, for the first row of #live-rows that is fresh (a live
// row) or not (a rendered one) and contains the text want, each cell's
// text and the titles of its badges.
const cellsJS = `(function (fresh, want) {
  var rows = Array.prototype.slice.call(document.querySelectorAll('#live-rows tr'));
  var tr = rows.find(function (r) { return r.classList.contains('fresh') === fresh && r.textContent.indexOf(want) >= 0; });
  if (!tr) { return "[]"; }
  return JSON.stringify(Array.prototype.map.call(tr.cells, function (c) {
    var titles = Array.prototype.map.call(c.querySelectorAll('span'), function (s) { return s.className + '=' + s.title; });
    return c.className + '|' + c.textContent.replace(/\s+/g, ' ').trim() + '|' + titles.join(';');
  }));
})`

// A live row shows what the same observation's rendered row shows, cell
// for cell, in both languages: the whole hash (the live rows used to cut
// it at 16 digits), the level, where it comes from and its marks with
// their meaning, the address whole (issue 17 item 6, issue 10). The
// overview and a target page are photographed in English and French.
func TestBrowserLiveRowsMatchRenderedRows(t *testing.T) {
	b := webtest.Start(t, 240*time.Second)
	env := buildEnv(t)
	var sum [20]byte
	for i := range sum {
		sum[i] = byte(0x5a ^ i*7)
	}
	h := hashkind.MustNew(hashkind.BTIH, sum[:])
	o := observe.Observation{ID: "obs-live-1", Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe,
		Time: testNow.Add(-90 * time.Second), Item: observe.Item{Hash: h, Matched: []observe.Match{{List: "lab-watchlist", Category: "1"}}},
		Endpoint:     observe.Endpoint{IP: netip.MustParseAddr("127.0.1.10"), Port: 34035, Transport: "tcp"},
		Possession:   observe.Possession{Level: observe.Complete, PiecesHave: 12, PiecesTotal: 12},
		Jurisdiction: observe.Jurisdiction{Agency: agencyA}}
	o.Mark(observe.MarkTranscriptCut)
	o.Mark("mark_from_a_newer_vigil")
	third := o
	third.ID, third.Method, third.Marks = "obs-live-2", observe.MethodPEX, nil
	third.Possession = observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1}
	third.Endpoint.Port = 51414
	third.Mark(observe.MarkThirdParty)
	for _, x := range []*observe.Observation{&o, &third} {
		r := RowFromObservation(x)
		r.Target = env.TargetA
		env.backend.recent = append(env.backend.recent, r)
	}
	hexOf := h.String()

	b.SignIn(env.URL, "alice", env.Password["alice"], "#live-rows")
	for _, lang := range []string{"en", "fr"} {
		if lang == "fr" {
			b.Run("switch to French",
				chromedp.SetValue(chromedp.CSS("#lang-select"), "fr"),
				chromedp.Click(chromedp.CSS("#lang-submit")),
				chromedp.WaitVisible(chromedp.CSS(`html[lang="fr"] #live-rows`)))
		}
		// Publish until the page's stream delivers (it connects after the
		// page loads).
		for _, x := range []*observe.Observation{&o, &third} {
			ev := api.EventFromObservation(x, env.TargetA)
			deadline := time.Now().Add(15 * time.Second)
			port := ":" + strings.Split(ev.Endpoint, ":")[1]
			for {
				env.Hub.Publish(ev)
				if b.Eval(`Array.prototype.some.call(document.querySelectorAll('#live-rows tr.fresh'), function (r) { return r.textContent.indexOf('`+port+`') >= 0; })`) == true {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: no live row for %s", lang, ev.Endpoint)
				}
				time.Sleep(300 * time.Millisecond)
			}
			var live, rendered []string
			want := port
			if err := json.Unmarshal([]byte(b.Eval(cellsJS+`(true, '`+want+`')`).(string)), &live); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(b.Eval(cellsJS+`(false, '`+want+`')`).(string)), &rendered); err != nil {
				t.Fatal(err)
			}
			if len(live) == 0 || strings.Join(live, "\n") != strings.Join(rendered, "\n") {
				t.Fatalf("%s: the live row differs from the rendered one:\nlive     %q\nrendered %q", lang, live, rendered)
			}
			if !strings.Contains(strings.Join(live, " "), "btih:"+hexOf) {
				t.Fatalf("%s: the rows do not show the whole hash: %q", lang, live)
			}
		}
		b.Run("overview "+lang, b.Shot("marks-overview-"+lang))
		b.Run("target "+lang, chromedp.Navigate(env.URL+"/targets/"+env.TargetA), chromedp.WaitVisible(chromedp.CSS("#timeline")),
			b.Shot("marks-target-"+lang))
		// On a narrow screen the table squeezes, but no address or port
		// breaks across lines ("3403 5/tcp").
		b.Run("narrow", chromedp.EmulateViewport(640, 900))
		if got := b.Eval(`Array.prototype.filter.call(document.querySelectorAll('td.ep'), function (td) {
			var r = document.createRange(); r.selectNodeContents(td.firstChild); return r.getClientRects().length !== 1;
		}).length + '/' + document.querySelectorAll('td.ep').length`); got != "0/5" {
			t.Errorf("%s: addresses broken across lines (broken/all): %v", lang, got)
		}
		b.Run("wide", chromedp.EmulateViewport(1366, 900))
		tl := b.Text("#timeline")
		for _, want := range map[string][]string{"en": {"third party", "first-hand", "transcript cut", "12/12"},
			"fr": {"tiers", "direct", "transcription tronquée", "12/12"}}[lang] {
			if !strings.Contains(tl, want) {
				t.Errorf("%s timeline lacks %q", lang, want)
			}
		}
		b.Run("back to the overview", chromedp.Navigate(env.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#live-rows")))
	}
	// Leave the live stream, or closing the server waits for it.
	b.Run("leave", chromedp.Navigate("about:blank"))
}
