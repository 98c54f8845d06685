package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// 'vigil serve --oidc-issuer' offers single sign-on: the login page links
// to it and /login/oidc sends the browser to the provider with PKCE, state
// and nonce. The provider here is a loopback stand-in that serves only its
// discovery document; the whole flow, tokens included, is tested in
// internal/access.
func TestServeOffersSingleSignOn(t *testing.T) {
	var issuer string
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": issuer, "authorization_endpoint": issuer + "/auth", "token_endpoint": issuer + "/token",
			"jwks_uri": issuer + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}))
	defer prov.Close()
	issuer = prov.URL

	dir := t.TempDir()
	db := emptyStore(t)
	secret := writeFile(t, dir, "secret", "s3cret\n")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--db", db, "serve", "--addr", "127.0.0.1:0", "--analysis-poll", "0", "--log-level", "warn",
			"--oidc-issuer", issuer, "--oidc-client-id", "vigil", "--oidc-client-secret-file", secret},
			strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	urlRE := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/login`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("serve did not start:\n%s\n%s", out.String(), errb.String())
	}
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get("http://" + addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	buf := make([]byte, 1<<16)
	n, _ := resp.Body.Read(buf)
	page.Write(buf[:n])
	resp.Body.Close()
	if !strings.Contains(page.String(), "/login/oidc") {
		t.Fatalf("the login page offers no single sign-on:\n%s", page.String())
	}
	resp, err = c.Get("http://" + addr + "/login/oidc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode/100 != 3 || err != nil || !strings.HasPrefix(loc.String(), issuer+"/auth") {
		t.Fatalf("GET /login/oidc: %d, Location %q; want a redirect to the provider", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if q.Get(k) == "" {
			t.Errorf("authorization request without %s: %s", k, loc)
		}
	}
	if q.Get("client_id") != "vigil" || q.Get("code_challenge_method") != "S256" || q.Get("redirect_uri") != "http://"+addr+"/login/oidc/callback" {
		t.Errorf("authorization request %s", loc)
	}
}

// An unreachable provider stops serve at start-up, naming it.
func TestServeRefusesAnUnreachableProvider(t *testing.T) {
	db := emptyStore(t)
	code, _, errOut := vigilRun(t, nil, "", "--db", db, "serve", "--addr", "127.0.0.1:0", "--analysis-poll", "0",
		"--oidc-issuer", "http://127.0.0.1:1/realms/x", "--oidc-client-id", "vigil")
	if code == exitOK || !strings.Contains(errOut, "127.0.0.1:1/realms/x") {
		t.Fatalf("exit %d, %s; want a failure naming the issuer", code, errOut)
	}
}
