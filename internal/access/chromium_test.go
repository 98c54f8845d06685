package access_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-oss/vigil/internal/testenv"
)

// TestChromiumKeepsSecureHostCookieOnLoopback checks the premise of
// CookieSecureFor: a real browser stores a Secure __Host- cookie set by
// http://127.0.0.1 and sends it back.
func TestChromiumKeepsSecureHostCookieOnLoopback(t *testing.T) {
	path := testenv.Need(t, "CHROMIUM", "chromium")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "__Host-t", Value: "v1", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
			return
		}
		c, err := r.Cookie("__Host-t")
		if err != nil {
			_, _ = w.Write([]byte("<p id=r>none</p>"))
			return
		}
		_, _ = w.Write([]byte("<p id=r>" + c.Value + "</p>"))
	}))
	defer srv.Close()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("no-proxy-server", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(srv.URL+"/set")); err != nil {
		testenv.Missingf(t, "CHROMIUM", "chromium did not run: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(srv.URL+"/get")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text("#r"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(got) != "v1" {
		t.Fatalf("chromium sent %q back to %s, want the Secure __Host- cookie", got, srv.URL)
	}
}
