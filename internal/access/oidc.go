package access

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/vigil-oss/vigil/internal/audit"
)

// OIDCConfig sets up login through a force's OpenID Connect provider
// (authorization-code flow with PKCE, state and nonce).
type OIDCConfig struct {
	Issuer       string // the provider's issuer URL; discovery is fetched from it
	ClientID     string
	ClientSecret string
	RedirectURL  string   // this server's /login/oidc/callback, as registered at the provider
	Scopes       []string // beyond "openid"; default "email", "profile"
	// Claim names the ID token claim that identifies the user (default
	// "email"). Its value is looked up among the identities linked to
	// local users (vigil user link), then among user names. With "email",
	// a token whose email_verified is false is refused.
	Claim string
	// Provision, if set, creates an unknown identity as a new user of
	// that agency and role (no local password). Nil: unknown identities
	// are refused and audited.
	Provision *Provision
	// HTTPClient talks to the provider (nil: http.DefaultClient).
	HTTPClient *http.Client
	// FlowTimeout bounds the time between leaving for the provider and
	// coming back (default 10 minutes).
	FlowTimeout time.Duration
}

// Provision is the agency and role given to auto-provisioned users.
type Provision struct {
	Agency string
	Role   Role
}

type oidcState struct {
	cfg      OIDCConfig
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	client   *http.Client
}

// EnableOIDC fetches the provider's discovery document and turns on the
// OpenID Connect routes.
func (s *Service) EnableOIDC(ctx context.Context, cfg OIDCConfig) error {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return errors.New("oidc: Issuer, ClientID and RedirectURL are required")
	}
	if cfg.Claim == "" {
		cfg.Claim = "email"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"email", "profile"}
	}
	if cfg.FlowTimeout <= 0 {
		cfg.FlowTimeout = 10 * time.Minute
	}
	if cfg.Provision != nil {
		if _, err := ParseRole(string(cfg.Provision.Role)); err != nil {
			return fmt.Errorf("oidc provision: %w", err)
		}
	}
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.Issuer)
	if err != nil {
		return fmt.Errorf("oidc provider %s: %w", cfg.Issuer, err)
	}
	s.oidc = &oidcState{
		cfg: cfg,
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Endpoint: prov.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, cfg.Scopes...)},
		verifier: prov.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: s.cfg.Now}),
		client:   client,
	}
	return nil
}

// flow is what the state cookie remembers between leaving for the
// provider and coming back. It is signed with Config.Key.
type flow struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Next     string    `json:"x"`
	Expires  time.Time `json:"e"`
}

func (s *Service) sealFlow(f flow) string {
	b, _ := json.Marshal(f)
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac([]byte("oidc"), []byte(p)))
}

func (s *Service) openFlow(v string) (flow, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return flow{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac([]byte("oidc"), []byte(p))) {
		return flow{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	var f flow
	if err != nil || json.Unmarshal(b, &f) != nil || !s.cfg.Now().Before(f.Expires) {
		return flow{}, false
	}
	return f, true
}

// OIDCStartHandler sends the browser to the provider with a fresh state,
// nonce and PKCE challenge, remembered in a signed cookie.
func (s *Service) OIDCStartHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := s.oidc
		if o == nil {
			http.NotFound(w, r)
			return
		}
		_, state, err1 := randomID()
		_, nonce, err2 := randomID()
		if err := errors.Join(err1, err2); err != nil {
			http.Error(w, "no randomness", http.StatusInternalServerError)
			return
		}
		f := flow{State: state, Nonce: nonce, Verifier: oauth2.GenerateVerifier(), Next: LocalPath(r.URL.Query().Get("next")),
			Expires: s.cfg.Now().Add(o.cfg.FlowTimeout)}
		// Lax, not Strict: the provider sends the browser back with a
		// cross-site top-level GET, on which a Strict cookie is withheld.
		s.setCookie(w, oidcCookie, s.sealFlow(f), o.cfg.FlowTimeout, http.SameSiteLaxMode)
		http.Redirect(w, r, o.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
	})
}

// OIDCError says why a login through the provider was refused.
type OIDCError struct{ Reason string }

func (e *OIDCError) Error() string { return "single sign-on refused: " + e.Reason }

// OIDCLogin completes the flow: it checks state against the cookie's,
// exchanges the code with the PKCE verifier, verifies the ID token
// (signature, issuer, audience, expiry) and its nonce, maps the claim to a
// local user and opens a session. Refusals are audited.
func (s *Service) OIDCLogin(ctx context.Context, cookie, state, code, remote string) (string, *Principal, string, error) {
	o := s.oidc
	if o == nil {
		return "", nil, "", errors.New("oidc is not enabled")
	}
	refuse := func(name, reason string, extra map[string]any) (string, *Principal, string, error) {
		d := map[string]any{"reason": reason, "issuer": o.cfg.Issuer}
		for k, v := range extra {
			d[k] = v
		}
		if name == "" {
			name = "anonymous"
		}
		if err := s.Audit(ctx, &Principal{Name: name, Remote: remote}, audit.ActionOIDCRefused, "", "", d); err != nil {
			return "", nil, "", err
		}
		return "", nil, "", &OIDCError{Reason: reason}
	}
	f, ok := s.openFlow(cookie)
	if !ok {
		return refuse("", "no valid login in progress (state cookie missing, forged or expired)", nil)
	}
	if !hmac.Equal([]byte(state), []byte(f.State)) {
		return refuse("", "state does not match", nil)
	}
	cctx := context.WithValue(ctx, oauth2.HTTPClient, o.client)
	tok, err := o.oauth.Exchange(cctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return refuse("", "code exchange failed: "+err.Error(), nil)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return refuse("", "no id_token in the token response", nil)
	}
	idt, err := o.verifier.Verify(oidc.ClientContext(ctx, o.client), raw)
	if err != nil {
		return refuse("", "ID token: "+err.Error(), nil)
	}
	if !hmac.Equal([]byte(idt.Nonce), []byte(f.Nonce)) {
		return refuse("", "ID token nonce does not match", map[string]any{"subject": idt.Subject})
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return refuse("", "ID token claims: "+err.Error(), nil)
	}
	val, _ := claims[o.cfg.Claim].(string)
	if val == "" {
		return refuse("", "ID token has no claim "+o.cfg.Claim, map[string]any{"subject": idt.Subject})
	}
	if o.cfg.Claim == "email" {
		if v, ok := claims["email_verified"].(bool); ok && !v {
			return refuse(val, "email not verified by the provider", nil)
		}
	}
	u, err := s.oidcUser(ctx, val)
	if errors.Is(err, ErrNotFound) {
		return refuse(val, "no local user for this identity", map[string]any{"claim": o.cfg.Claim})
	}
	if err != nil {
		return "", nil, "", err
	}
	p := principalOf(u, "session", remote)
	if u.Disabled {
		return refuse(val, "user "+u.Name+" is disabled", nil)
	}
	id, err := s.openSession(ctx, u, remote)
	if err != nil {
		return "", nil, "", err
	}
	if err := s.Audit(ctx, p, audit.ActionLogin, "user:"+u.Name, "",
		map[string]any{"method": "oidc", "issuer": o.cfg.Issuer, "claim": o.cfg.Claim, "value": val}); err != nil {
		return "", nil, "", err
	}
	return id, p, f.Next, nil
}

func (s *Service) oidcUser(ctx context.Context, val string) (User, error) {
	o := s.oidc
	if uid, err := s.st.IdentityUser(ctx, o.cfg.Issuer, val); err == nil {
		return s.st.UserByID(ctx, uid)
	} else if !errors.Is(err, ErrNotFound) {
		return User{}, err
	}
	u, err := s.st.UserByName(ctx, val)
	if !errors.Is(err, ErrNotFound) || o.cfg.Provision == nil {
		return u, err
	}
	actor := &Principal{Name: "oidc:" + o.cfg.Issuer, Via: "cli", Remote: "oidc"}
	return s.AddUser(ctx, actor, User{Name: val, Agency: o.cfg.Provision.Agency, Role: o.cfg.Provision.Role}, "")
}

var continueTmpl = template.Must(template.New("c").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={{.}}"><title>Vigil</title></head>
<body><p>Logged in. <a href="{{.}}">Continue</a></p></body></html>
`))

// OIDCCallbackHandler completes the login and sets the session cookie. It
// answers with a page that moves on to the target (a same-site
// navigation), because a redirect at the end of a cross-site chain would
// not carry the SameSite=Strict session cookie.
func (s *Service) OIDCCallbackHandler(render RenderLogin) http.Handler {
	if render == nil {
		render = DefaultLoginForm
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cookie string
		if c, err := r.Cookie(s.cookieName(oidcCookie)); err == nil {
			cookie = c.Value
		}
		s.setCookie(w, oidcCookie, "", -1, http.SameSiteLaxMode)
		q := r.URL.Query()
		if e := q.Get("error"); e != "" {
			_ = s.Audit(r.Context(), &Principal{Name: "anonymous", Remote: r.RemoteAddr}, audit.ActionOIDCRefused, "", "",
				map[string]any{"reason": "provider error", "error": e, "description": q.Get("error_description")})
			render(w, r, LoginPage{CSRFToken: s.loginToken(w, r), Next: "/", OIDC: true, Error: "The single sign-on provider refused the login.", Status: http.StatusUnauthorized})
			return
		}
		id, _, next, err := s.OIDCLogin(r.Context(), cookie, q.Get("state"), q.Get("code"), r.RemoteAddr)
		if err != nil {
			var oe *OIDCError
			status, msg := http.StatusInternalServerError, "The login could not be checked. Try again later."
			if errors.As(err, &oe) {
				status, msg = http.StatusUnauthorized, "Single sign-on did not identify a Vigil user. Ask your administrator."
			}
			render(w, r, LoginPage{CSRFToken: s.loginToken(w, r), Next: "/", OIDC: true, Error: msg, Status: status})
			return
		}
		s.setCookie(w, SessionCookie, id, s.cfg.SessionTTL, http.SameSiteStrictMode)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = continueTmpl.Execute(w, next)
	})
}
