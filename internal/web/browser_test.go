package web

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/vigil-oss/vigil/internal/web/webtest"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// TestBrowserRealBackend drives headless Chromium through the pages on the
// real backend (SQLite store scored by the analysis engine, access layer
// with real passwords, hash-chained audit trail): an investigator of
// agency A signs in, sees A's targets, opens one, downloads its ISP
// request, switches to French, and cannot reach agency B's target by the
// list, a search, the map or its URL; a CSRF-less POST from the page is
// refused; the auditor then finds it all in the trail. Screenshots of each
// page go to $VIGIL_ARTIFACTS (default: a temporary directory, logged).
func TestBrowserRealBackend(t *testing.T) {
	b := webtest.Start(t, 240*time.Second)
	e := newEnv(t, "", 3000)
	shots, downloads := b.Shots, b.Downloads
	shot, run, text, eval := b.Shot, b.Run, b.Text, b.Eval
	signIn := func(user string) { b.SignIn(e.URL, user, e.Password[user], "#fig-obs") }
	dB, err := e.Store.Target(context.Background(), e.TargetB, analysis.AllAgencies)
	if err != nil {
		t.Fatal(err)
	}

	run("login page", chromedp.Navigate(e.URL+"/targets"), chromedp.WaitVisible(chromedp.CSS("#login-form")), shot("01-login"))
	signIn("paris")
	if who := text("#whoami"); !strings.Contains(who, "paris") || !strings.Contains(who, agencyParis) {
		t.Fatalf("signed in as %q", who)
	}
	run("overview", shot("02-overview"))
	// The map: Paris, never B's départements.
	if n := eval(`document.querySelectorAll('svg.map path[data-key="75"]').length`); n != float64(1) {
		t.Fatalf("overview map: %v dots for 75", n)
	}
	for _, k := range []string{"13", "31"} {
		if n := eval(`document.querySelectorAll('svg.map path[data-key="` + k + `"]').length`); n != float64(0) {
			t.Fatalf("overview map shows agency B's département %s to paris", k)
		}
	}

	// Live: a committed batch with one observation for A and one for B;
	// only A's appears, without a reload.
	for deadline := time.Now().Add(10 * time.Second); e.App.Hub().Len() == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	dA, err := e.Store.Target(context.Background(), e.TargetA, analysis.AllAgencies)
	if err != nil {
		t.Fatal(err)
	}
	e.App.Publish([]observe.Observation{partialAt(dB, agencySud), partialAt(dA, agencyParis)})
	run("live row", chromedp.WaitVisible(chromedp.CSS(`#live-rows tr.fresh`)))
	rows := text("#live-rows")
	if !strings.Contains(rows, dA.Endpoints[0].IP.String()) || !strings.Contains(rows, "partial") || strings.Contains(rows, dB.Endpoints[0].IP.String()+":") {
		t.Fatalf("live rows: %q", rows)
	}
	run("overview live", shot("03-overview-live"))

	// Targets: A's, not B's.
	run("targets", chromedp.Navigate(e.URL+"/targets"), chromedp.WaitVisible(chromedp.CSS("#targets")), shot("04-targets"))
	if list := text("#targets"); !strings.Contains(list, e.TargetA) || strings.Contains(list, e.TargetB) {
		t.Fatalf("targets table for paris: %q", list)
	}
	for _, q := range []string{e.TargetB, dB.Endpoints[0].IP.String()} {
		run("search B", chromedp.Navigate(e.URL+"/targets?q="+q), chromedp.WaitVisible(chromedp.CSS("#targets")))
		if s := text("#targets"); strings.Contains(s, e.TargetB) {
			t.Fatalf("search %s shows B's target to paris: %q", q, s)
		}
	}
	run("search shot", shot("05-search-b-empty"))

	// Open A's target.
	run("open target",
		chromedp.Navigate(e.URL+"/targets"),
		chromedp.WaitVisible(chromedp.CSS("#targets")),
		chromedp.Click(chromedp.CSS(`#targets a[href="/targets/`+e.TargetA+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#target-title")),
		shot("06-target"),
	)
	tl := text("#timeline")
	if !strings.Contains(tl, dA.Endpoints[0].IP.String()) || !strings.Contains(tl, dA.Timeline[0].Level.String()) {
		t.Fatalf("timeline without the address or its levels: %.300q", tl)
	}

	// Download its ISP request, with a case number.
	run("download ISP request",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			yes := true
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads, EventsEnabled: &yes})
			return err
		}),
		chromedp.Click(chromedp.CSS("#isp-button")),
		chromedp.WaitVisible(chromedp.CSS("#purpose")),
		chromedp.SendKeys(chromedp.CSS("#purpose"), "PV 2026/00123"),
		chromedp.SetValue(chromedp.CSS("#format"), "csv"),
		shot("07-isp-form"),
		chromedp.Click(chromedp.CSS("#isp-download")),
	)
	got := waitDownload(downloads, 20*time.Second)
	if !strings.HasPrefix(string(got), "request_id,") || !strings.Contains(string(got), dA.Endpoints[0].IP.String()) {
		t.Fatalf("ISP request download: %.300q", got)
	}
	var exported bool
	_ = e.Store.AuditRecords(context.Background(), audit.Filter{Actor: "paris", Action: audit.ActionExport}, func(r audit.Record) error {
		exported = exported || (r.Object == "target:"+e.TargetA && r.Purpose == "PV 2026/00123")
		return nil
	})
	if !exported {
		t.Fatal("the download is not in the audit trail")
	}

	// A POST without the CSRF token is refused, from inside the page.
	if st := eval(`fetch('/lang', {method: 'POST', body: new URLSearchParams({lang: 'fr', next: '/'})}).then(r => r.status)`); st != float64(403) {
		t.Fatalf("CSRF-less POST from the page: %v", st)
	}

	// Switch language: stored on the account.
	run("switch to French",
		chromedp.Navigate(e.URL+"/targets/"+e.TargetA),
		chromedp.WaitVisible(chromedp.CSS("#lang-select")),
		chromedp.SetValue(chromedp.CSS("#lang-select"), "fr"),
		chromedp.Click(chromedp.CSS("#lang-submit")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="fr"] #target-title`)),
	)
	if title := text("#target-title"); !strings.Contains(title, "Cible") {
		t.Fatalf("after the switch: title %q", title)
	}
	run("French page", shot("08-target-fr"))
	if tl := text("#timeline"); !strings.Contains(tl, "Transmission 3.00") || !strings.Contains(tl, "direct") {
		t.Fatalf("French timeline without its client or source: %.300q", tl)
	}
	run("French overview", chromedp.Navigate(e.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#fig-obs")), shot("08b-overview-fr"))

	// B's target by URL: the same 404 as a missing one.
	run("B by URL", chromedp.Navigate(e.URL+"/targets/"+e.TargetB), chromedp.WaitVisible(chromedp.CSS("#error-message")), shot("09-target-b-denied"))
	if msg := text("#error-message"); msg != i18n.T("fr", "target.notfound") {
		t.Fatalf("B's target by URL: %q", msg)
	}
	run("missing by URL", chromedp.Navigate(e.URL+"/targets/T-ZZZZZZZ"), chromedp.WaitVisible(chromedp.CSS("#error-message")))
	if msg := text("#error-message"); msg != i18n.T("fr", "target.notfound") {
		t.Fatalf("a missing target by URL: %q", msg)
	}

	run("lists", chromedp.Navigate(e.URL+"/lists"), chromedp.WaitVisible(chromedp.CSS("#lists")), shot("10-lists"))
	run("sensors", chromedp.Navigate(e.URL+"/sensors"), chromedp.WaitVisible(chromedp.CSS("main h1")), shot("11-sensors"))

	// The auditor sees the trail, with paris's denied read and export.
	run("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	signIn("auditor")
	run("audit", chromedp.Navigate(e.URL+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")), shot("12-audit"))
	trail := text("#audit")
	for _, want := range []string{"denied", "target:" + e.TargetB, "export", "PV 2026/00123", "login"} {
		if !strings.Contains(trail, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(shots, "*.png"))
	if len(files) < 12 {
		t.Fatalf("%d screenshots", len(files))
	}
	t.Logf("browser test: %d screenshots in %s", len(files), shots)
}

// partialAt is a fresh observation of d's first file at its first
// endpoint, partial, routed to agency.
func partialAt(d *analysis.TargetDetail, agency string) observe.Observation {
	return observe.Observation{ID: observe.NewID(time.Now()), Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe,
		Time: time.Now().UTC(), Item: observe.Item{Hash: d.Files[0].Hash},
		Endpoint:     observe.Endpoint{IP: d.Endpoints[0].IP, Port: d.Endpoints[0].Port, Transport: "tcp"},
		Possession:   observe.Possession{Level: observe.Partial, PiecesHave: 3, PiecesTotal: 64},
		Jurisdiction: observe.Jurisdiction{Agency: agency}}
}

// waitDownload returns the first finished file in dir, waiting for one
// at most within (nil when none arrives).
func waitDownload(dir string, within time.Duration) []byte {
	var got []byte
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			if !strings.HasSuffix(f, ".crdownload") {
				got, _ = os.ReadFile(f)
			}
		}
		if len(got) > 0 {
			return got
		}
	}
	return got
}
