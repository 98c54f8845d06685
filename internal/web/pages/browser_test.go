package pages

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/vigil-oss/vigil/internal/web/api"
	"github.com/vigil-oss/vigil/internal/web/webtest"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// TestBrowser drives headless Chromium through the pages as an
// investigator of agency A would, then as an auditor. It runs against
// buildEnv (the fake backend here; the lead can point it at the demo store
// and the access layer). Screenshots of each page go to $VIGIL_ARTIFACTS
// (default: a temporary directory, logged).
func TestBrowser(t *testing.T) {
	b := webtest.Start(t, 240*time.Second)
	env := buildEnv(t)
	ctx, shots, downloads := b.Ctx, b.Shots, b.Downloads
	shot, run, text, eval := b.Shot, b.Run, b.Text, b.Eval
	signIn := func(user string) { b.SignIn(env.URL, user, env.Password[user], "#fig-obs") }

	// Sign in.
	run("login page", chromedp.Navigate(env.URL+"/targets"), chromedp.WaitVisible(chromedp.CSS("#login-form")), shot("01-login"))
	signIn("alice")
	if who := text("#whoami"); !strings.Contains(who, "alice") {
		t.Fatalf("signed in as %q", who)
	}
	run("overview", shot("02-overview"))

	// The map shows A's département, never B's.
	if n := eval(`document.querySelectorAll('svg.map path[data-key="78"]').length`); n != float64(1) {
		t.Fatalf("overview map: %v dots for 78", n)
	}
	if n := eval(`document.querySelectorAll('svg.map path[data-key="13"]').length`); n != float64(0) {
		t.Fatalf("overview map shows agency B's département 13 to alice")
	}

	// Live: an event for A appears without a reload; one for B never does.
	if env.Hub != nil {
		for deadline := time.Now().Add(10 * time.Second); env.Hub.Len() == 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		env.Hub.Publish(
			api.Event{Kind: api.EventObservation, Time: testNow, Agency: agencyB, Level: observe.Verified, Network: "bittorrent", Method: "peer_probe", Item: "btih:bbbbbbbbbbbbbbbb…", Endpoint: "127.0.2.99:1/tcp"},
			api.Event{Kind: api.EventObservation, Time: testNow, Agency: agencyA, Level: observe.Partial, Network: "bittorrent", Method: "peer_probe", Item: "btih:livelivelive0000…", Endpoint: "127.0.1.99:6881/tcp", Target: env.TargetA},
		)
		run("live row", chromedp.WaitVisible(chromedp.CSS(`#live-rows tr.fresh`)))
		rows := text("#live-rows")
		if !strings.Contains(rows, "btih:livelivelive") || !strings.Contains(rows, "partial") || strings.Contains(rows, "127.0.2.99") ||
			!strings.Contains(rows, "2026-11-23 16:00:00") {
			t.Fatalf("live rows: %q", rows)
		}
		run("overview live", shot("03-overview-live"))
	}

	// Targets: A's, not B's.
	run("targets", chromedp.Navigate(env.URL+"/targets"), chromedp.WaitVisible(chromedp.CSS("#targets")), shot("04-targets"))
	list := text("#targets")
	if !strings.Contains(list, env.TargetA) || strings.Contains(list, env.TargetB) {
		t.Fatalf("targets table for alice: %q", list)
	}
	run("search B", chromedp.Navigate(env.URL+"/targets?q="+env.TargetB), chromedp.WaitVisible(chromedp.CSS("#targets")))
	if s := text("#targets"); strings.Contains(s, env.TargetB) {
		t.Fatalf("search shows B's target to alice: %q", s)
	}

	// Open A's target.
	run("open target",
		chromedp.Navigate(env.URL+"/targets"),
		chromedp.WaitVisible(chromedp.CSS("#targets")),
		chromedp.Click(chromedp.CSS(`#targets a[href="/targets/`+env.TargetA+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#target-title")),
		shot("05-target"),
	)
	if tl := text("#timeline"); !strings.Contains(tl, "announced") || !strings.Contains(tl, "complete") {
		t.Fatalf("timeline without levels: %q", tl)
	}

	// Download its ISP request, with a purpose.
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
		shot("06-isp-form"),
		chromedp.Click(chromedp.CSS("#isp-download")),
	)
	got := waitDownload(downloads, 20*time.Second)
	if !strings.Contains(string(got), "127.0.1.10") || !strings.Contains(string(got), "PV 2026/00123") {
		t.Fatalf("ISP request download: %q", got)
	}
	exported := false
	for _, r := range env.Records() {
		exported = exported || (r.Actor == "alice" && r.Action == ActionExport && r.Purpose == "PV 2026/00123")
	}
	if !exported {
		t.Fatal("the download is not in the audit trail")
	}

	// A POST without the CSRF token is refused, from inside the page.
	if st := eval(`fetch('/lang', {method: 'POST', body: new URLSearchParams({lang: 'fr', next: '/'})}).then(r => r.status)`); st != float64(403) {
		t.Fatalf("CSRF-less POST from the page: %v", st)
	}

	// Switch language.
	run("switch to French",
		chromedp.Navigate(env.URL+"/targets/"+env.TargetA),
		chromedp.WaitVisible(chromedp.CSS("#lang-select")),
		chromedp.SetValue(chromedp.CSS("#lang-select"), "fr"),
		chromedp.Click(chromedp.CSS("#lang-submit")),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="fr"] #target-title`)),
	)
	attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("html"), "lang"))
	if err != nil {
		t.Fatal(err)
	}
	lang := attr.Value
	if title := text("#target-title"); lang != "fr" || !strings.Contains(title, "Cible") || !strings.Contains(text("#timeline"), "complet") {
		t.Fatalf("after the switch: lang %q, title %q", lang, title)
	}
	run("French page", shot("07-target-fr"))

	// B's target by URL: the same 404 as a missing one.
	run("B by URL", chromedp.Navigate(env.URL+"/targets/"+env.TargetB), chromedp.WaitVisible(chromedp.CSS("#error-message")), shot("08-target-b-denied"))
	if msg := text("#error-message"); msg != i18n.T("fr", "target.notfound") {
		t.Fatalf("B's target by URL: %q", msg)
	}

	run("lists", chromedp.Navigate(env.URL+"/lists"), chromedp.WaitVisible(chromedp.CSS("#lists")), shot("09-lists"))
	run("sensors", chromedp.Navigate(env.URL+"/sensors"), chromedp.WaitVisible(chromedp.CSS("main h1")), shot("10-sensors"))

	// The auditor sees the trail, with alice's denied read in it.
	run("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	signIn("audrey")
	run("audit", chromedp.Navigate(env.URL+"/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")), shot("11-audit"))
	trail := text("#audit")
	for _, want := range []string{"denied", "target:" + env.TargetB, "export", "PV 2026/00123"} {
		if !strings.Contains(trail, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(shots, "*.png"))
	if len(files) < 10 {
		t.Fatalf("%d screenshots", len(files))
	}
	fmt.Fprintf(os.Stderr, "browser test: %d screenshots in %s\n", len(files), shots)
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
