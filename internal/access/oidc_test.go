package access_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

// fakeOP is an OpenID provider on loopback: discovery, JWKS, and a token
// endpoint that checks the PKCE verifier and issues an ID token signed
// with a key made for the test. claims decides the ID token's content.
type fakeOP struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	mu     sync.Mutex
	codes  map[string]pending
	claims func(p pending) map[string]any
}

type pending struct{ challenge, nonce string }

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{key: key, codes: map[string]pending{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := op.srv.URL
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": u, "authorization_endpoint": u + "/authorize",
			"token_endpoint": u + "/token", "jwks_uri": u + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		p, ok := op.codes[r.FormValue("code")]
		delete(op.codes, r.FormValue("code"))
		op.mu.Unlock()
		sum := sha256.Sum256([]byte(r.FormValue("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != p.challenge {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		payload, _ := json.Marshal(op.claims(p))
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Error(err)
			return
		}
		obj, err := signer.Sign(payload)
		if err != nil {
			t.Error(err)
			return
		}
		raw, _ := obj.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": raw})
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

// authorize plays the browser at the provider: it reads the request the
// start handler sent and issues a code for it.
func (op *fakeOP) authorize(t *testing.T, loc string) (code, state string) {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, op.srv.URL+"/authorize") {
		t.Fatalf("start redirected to %q", loc)
	}
	q := u.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" || !strings.Contains(q.Get("scope"), "openid") {
		t.Fatalf("authorization request lacks PKCE, nonce, state or scope: %s", loc)
	}
	op.mu.Lock()
	op.codes["code-1"] = pending{challenge: q.Get("code_challenge"), nonce: q.Get("nonce")}
	op.mu.Unlock()
	return "code-1", q.Get("state")
}

func TestOIDCLogin(t *testing.T) {
	type tc struct {
		name      string
		claims    func(f *fixture, op *fakeOP, p pending) map[string]any
		state     func(s string) string
		provision *access.Provision
		wantUser  string // "" : refused
		wantWhy   string
	}
	base := func(f *fixture, op *fakeOP, p pending) map[string]any {
		now := f.clk.Now()
		return map[string]any{"iss": op.srv.URL, "aud": "vigil", "sub": "s-123", "nonce": p.nonce, "email": "alice@police.test",
			"email_verified": true, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	}
	with := func(k string, v any) func(*fixture, *fakeOP, pending) map[string]any {
		return func(f *fixture, op *fakeOP, p pending) map[string]any {
			c := base(f, op, p)
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
			return c
		}
	}
	cases := []tc{
		{name: "linked identity", claims: base, wantUser: "alice"},
		{name: "wrong nonce", claims: with("nonce", "n-other"), wantWhy: "nonce"},
		{name: "wrong audience", claims: with("aud", "someone-else"), wantWhy: "audience"},
		{name: "expired token", claims: func(f *fixture, op *fakeOP, p pending) map[string]any {
			c := base(f, op, p)
			c["iat"], c["exp"] = f.clk.Now().Add(-time.Hour).Unix(), f.clk.Now().Add(-time.Minute).Unix()
			return c
		}, wantWhy: "expired"},
		{name: "wrong issuer", claims: with("iss", "https://other.test"), wantWhy: "issuer"},
		{name: "unknown user", claims: with("email", "mallory@police.test"), wantWhy: "no local user"},
		{name: "unverified email", claims: with("email_verified", false), wantWhy: "not verified"},
		{name: "no claim", claims: with("email", nil), wantWhy: "no claim email"},
		{name: "forged state", claims: base, state: func(string) string { return "forged" }, wantWhy: "state"},
		{name: "user name matches the claim", claims: with("email", "bob@police.test"), wantUser: "bob@police.test"},
		{name: "provisioned", claims: with("email", "new@police.test"), provision: &access.Provision{Agency: "fr-b", Role: access.RoleInvestigator}, wantUser: "new@police.test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, nil)
			f.user(t, "alice", "fr-a", access.RoleInvestigator)
			f.user(t, "bob@police.test", "fr-a", access.RoleInvestigator)
			op := newFakeOP(t)
			op.claims = func(p pending) map[string]any { return c.claims(f, op, p) }
			if err := f.svc.LinkIdentity(ctx, f.admin, "alice", op.srv.URL, "alice@police.test"); err != nil {
				t.Fatal(err)
			}
			srv := f.server(t)
			if err := f.svc.EnableOIDC(ctx, access.OIDCConfig{Issuer: op.srv.URL, ClientID: "vigil", ClientSecret: "s",
				RedirectURL: srv.URL + "/login/oidc/callback", Provision: c.provision}); err != nil {
				t.Fatal(err)
			}
			// Mount again now that OIDC is on.
			mux := http.NewServeMux()
			f.svc.Mount(mux, nil)
			mux.Handle("GET /me", f.svc.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(access.PrincipalFrom(r.Context()).Name))
			})))
			srv.Config.Handler = f.svc.Wrap(mux)

			cl := client(t)
			resp, err := cl.Get(srv.URL + "/login/oidc?next=/me")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			code, state := op.authorize(t, resp.Header.Get("Location"))
			if c.state != nil {
				state = c.state(state)
			}
			st, page := rd(t)(cl.Get(srv.URL + "/login/oidc/callback?code=" + code + "&state=" + url.QueryEscape(state)))
			if c.wantUser == "" {
				if st != http.StatusUnauthorized {
					t.Fatalf("callback: %d, want 401\n%s", st, page)
				}
				rs := f.records(t, audit.Filter{Action: audit.ActionOIDCRefused})
				if len(rs) != 1 || !strings.Contains(string(rs[0].Detail), c.wantWhy) {
					t.Fatalf("refusal audit %v, want %q", reasons(rs), c.wantWhy)
				}
				if st, _ := rd(t)(cl.Get(srv.URL + "/me")); st != http.StatusSeeOther {
					t.Fatalf("refused login still opened a session: %d", st)
				}
				return
			}
			if st != 200 || !strings.Contains(page, `url=/me`) {
				t.Fatalf("callback: %d\n%s", st, page)
			}
			if st, who := rd(t)(cl.Get(srv.URL + "/me")); st != 200 || who != c.wantUser {
				t.Fatalf("/me after OIDC: %d %q, want %q", st, who, c.wantUser)
			}
			rs := f.records(t, audit.Filter{Action: audit.ActionLogin})
			if len(rs) != 1 || rs[0].Actor != c.wantUser || !strings.Contains(string(rs[0].Detail), `"method":"oidc"`) {
				t.Fatalf("login audit %+v", rs)
			}
			// The code is single-use: replaying the callback fails.
			if st, _ := rd(t)(cl.Get(srv.URL + "/login/oidc/callback?code=" + code + "&state=" + url.QueryEscape(state))); st != http.StatusUnauthorized {
				t.Fatalf("replayed callback: %d", st)
			}
		})
	}
}
