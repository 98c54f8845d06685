// Package webtest drives Debian's headless Chromium for the pages' tests:
// one browser per test, confined to loopback (every other host name fails
// to resolve), screenshots into $VIGIL_ARTIFACTS, and short helpers that
// fail the test with what they were doing.
package webtest

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-oss/vigil/internal/testenv"
)

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// Step is one browser action.
type Step = chromedp.Action[chromedp.Void]

// Browser is a headless Chromium for one test.
type Browser struct {
	t         *testing.T
	Ctx       context.Context
	Shots     string // where screenshots go
	Downloads string // a directory for downloads
}

// Start launches Chromium for t, or skips t (naming the package to install)
// where it is missing (fails it under VIGIL_REQUIRE_CHROMIUM=1) or in
// -short mode. The browser lives until the test ends or timeout passes.
//
// One browser test runs at a time on the machine: `go test ./...` runs
// packages side by side, and two Chromiums on a loaded 2-core machine made
// a test miss its budget (CI, TestMapsInBrowser). Start waits for the lock
// (a file in the temporary directory) before it launches the browser, and
// timeout counts from then.
func Start(t *testing.T, timeout time.Duration) *Browser {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	if _, err := os.Stat(ChromiumPath); err != nil {
		testenv.Missingf(t, "CHROMIUM", "headless browser test needs %s: %v", ChromiumPath, err)
	}
	shots := os.Getenv("VIGIL_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)
	lockBrowser(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelT(); cancel(); cancelA() })
	return &Browser{t: t, Ctx: ctx, Shots: shots, Downloads: t.TempDir()}
}

// Shot saves a full-page screenshot as NAME.png.
func (b *Browser) Shot(name string) Step {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.Shots, name+".png"), buf, 0o644)
	})
}

// Run runs steps, failing the test with what on error.
func (b *Browser) Run(what string, steps ...Step) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// Text is the text of the element sel selects.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// Eval evaluates js in the page, awaiting a promise.
func (b *Browser) Eval(js string) any {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// SignIn logs user in through the login form at base and waits for sel,
// an element of the page that follows.
func (b *Browser) SignIn(base, user, password, sel string) {
	b.t.Helper()
	b.Run("sign in as "+user,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(sel)),
	)
}

// lockBrowser holds the machine's browser-test lock until t ends.
func lockBrowser(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "vigil-webtest-chromium.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("browser lock: %v", err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("browser lock: %v", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("waited %v for another package's browser test", waited.Round(time.Second))
	}
	t.Cleanup(func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() })
}
