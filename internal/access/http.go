package access

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
)

// Cookie names. With Config.SecureCookies the session and login cookies
// carry the __Host- prefix, which a browser accepts only with Secure,
// Path=/ and no Domain: a sibling host cannot plant or overwrite them.
const (
	SessionCookie = "vigil_session"
	loginCookie   = "vigil_login"
	oidcCookie    = "vigil_oidc"
	hostPrefix    = "__Host-"
)

// CSRFField is the form field, and CSRFHeader the header, that carry the
// CSRF token on a request that changes something.
const (
	CSRFField  = "csrf_token"
	CSRFHeader = "X-CSRF-Token"
)

// CookieSecureFor says whether cookies should be marked Secure for a
// server listening on addr: always with TLS; without TLS only on a
// loopback address, where browsers (Chromium, Firefox) and Go's cookie
// jar count http://127.0.0.1 and http://localhost as secure origins and
// still send Secure cookies. A plain-HTTP server on any other address
// gets no Secure cookie (it would never come back) and should not exist.
func CookieSecureFor(addr string, tls bool) bool {
	if tls {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (s *Service) cookieName(base string) string {
	if s.cfg.SecureCookies {
		return hostPrefix + base
	}
	return base
}

// SessionCookieName is the name of the session cookie under this config.
func (s *Service) SessionCookieName() string { return s.cookieName(SessionCookie) }

func (s *Service) setCookie(w http.ResponseWriter, base, value string, maxAge time.Duration, sameSite http.SameSite) {
	c := &http.Cookie{Name: s.cookieName(base), Value: value, Path: "/", HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: sameSite}
	if maxAge < 0 {
		c.MaxAge = -1
	} else if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

type ctxKey int

const (
	principalKey ctxKey = iota
	sessionKey
)

// WithPrincipal returns ctx carrying p (for tests and for the CLI).
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey, p)
}

// PrincipalFrom returns the request's principal, or nil when anonymous.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey).(*Principal)
	return p
}

type sessionInfo struct {
	id   string
	csrf []byte
}

// CSRFToken returns the token that forms of this request's session must
// carry in the field CSRFField (or scripts in the header CSRFHeader).
// Empty without a session.
func CSRFToken(ctx context.Context) string {
	si, _ := ctx.Value(sessionKey).(*sessionInfo)
	if si == nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(si.csrf)
}

// SecurityHeaders sets the headers every response carries: a Content
// Security Policy without inline script, no sniffing, no referrer, no
// framing, no caching of pages that may show targets.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// Authenticate establishes the request's principal from an
// "Authorization: Bearer" API token or the session cookie, and passes the
// request on with it in the context (PrincipalFrom). A request without a
// credential goes on anonymous; RequireLogin or RequireRole refuse it. A
// bad bearer token is refused here (401) and audited, since a client that
// sends one expects it to count.
func (s *Service) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if authz := r.Header.Get("Authorization"); authz != "" {
			tok, ok := strings.CutPrefix(authz, "Bearer ")
			if !ok {
				http.Error(w, "Authorization: want Bearer TOKEN", http.StatusUnauthorized)
				return
			}
			p, err := s.TokenPrincipal(ctx, strings.TrimSpace(tok), r.RemoteAddr)
			if err != nil {
				if !errors.Is(err, ErrUnauthenticated) {
					http.Error(w, "the account store did not answer", http.StatusInternalServerError)
					return
				}
				_ = s.Audit(ctx, &Principal{Name: "anonymous", Remote: r.RemoteAddr}, audit.ActionLoginFailed, "", "",
					map[string]any{"reason": "bad, expired or revoked API token", "path": r.URL.Path})
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
				http.Error(w, "invalid token", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(ctx, p)))
			return
		}
		if c, err := r.Cookie(s.SessionCookieName()); err == nil && c.Value != "" {
			p, ses, err := s.SessionPrincipal(ctx, c.Value, r.RemoteAddr)
			switch {
			case err == nil:
				ctx = WithPrincipal(ctx, p)
				ctx = context.WithValue(ctx, sessionKey, &sessionInfo{id: c.Value, csrf: ses.CSRF})
			case errors.Is(err, ErrUnauthenticated):
				s.setCookie(w, SessionCookie, "", -1, http.SameSiteStrictMode)
			default:
				http.Error(w, "the account store did not answer", http.StatusInternalServerError)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// CSRF refuses (403) a request that changes something (not GET, HEAD or
// OPTIONS) under a session cookie unless it carries the session's token
// in the form field CSRFField or the header CSRFHeader, or that a browser
// marks as cross-site (Sec-Fetch-Site). Requests with an API token are
// exempt: a bearer token is not an ambient credential a foreign page can
// make the browser send. The login form (Config.LoginPath) checks its own
// pre-session token. Mount it inside Authenticate.
func (s *Service) CSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safeMethod(r.Method) || r.URL.Path == s.cfg.LoginPath {
			next.ServeHTTP(w, r)
			return
		}
		p := PrincipalFrom(r.Context())
		if p != nil && p.Via == "token" {
			next.ServeHTTP(w, r)
			return
		}
		si, _ := r.Context().Value(sessionKey).(*sessionInfo)
		if si == nil {
			// No session: nothing ambient to protect; RequireLogin refuses
			// what needs one.
			next.ServeHTTP(w, r)
			return
		}
		// A cross-site request is refused before its body is read; the
		// body was bounded by the edge (web.Edge) before it got here.
		crossSite := r.Header.Get("Sec-Fetch-Site") == "cross-site"
		got := r.Header.Get(CSRFHeader)
		if got == "" && !crossSite {
			got = r.PostFormValue(CSRFField)
			// A multipart form may have spooled files to disk: remove
			// them when the request is done (the server only cleans up
			// the request it made, not this copy).
			defer func() {
				if r.MultipartForm != nil {
					_ = r.MultipartForm.RemoveAll()
				}
			}()
		}
		want := base64.RawURLEncoding.EncodeToString(si.csrf)
		if crossSite || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			_ = s.Audit(r.Context(), p, audit.ActionDenied, r.Method+" "+r.URL.Path, "", map[string]any{"reason": "CSRF token missing or wrong"})
			http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RequireLogin refuses an anonymous request: 401 for the API (a path under
// /api/ or a request that accepts JSON), else a redirect to the login page.
func (s *Service) RequireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if PrincipalFrom(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "application/json") || !safeMethod(r.Method) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, s.cfg.LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	})
}

// RequireRole lets through only principals with one of roles; others get
// 403, audited (anonymous requests are handled as RequireLogin does).
func (s *Service) RequireRole(roles ...Role) func(http.Handler) http.Handler {
	return s.require(func(p *Principal) bool {
		for _, r := range roles {
			if p.Role == r {
				return true
			}
		}
		return false
	})
}

// RequirePermission lets through only principals whose role has perm.
func (s *Service) RequirePermission(perm Permission) func(http.Handler) http.Handler {
	return s.require(func(p *Principal) bool { return p.Can(perm) })
}

func (s *Service) require(ok func(*Principal) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return s.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := PrincipalFrom(r.Context())
			if !ok(p) {
				_ = s.Audit(r.Context(), p, audit.ActionDenied, r.Method+" "+r.URL.Path, "", map[string]any{"reason": "role " + string(p.Role) + " may not"})
				http.Error(w, "your role does not allow this", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		}))
	}
}

// AuditRequest appends a record for the request's principal (action on
// object, with the stated purpose and a detail value marshalled to JSON).
// Handlers call it for every view of a target, list, search and export.
func (s *Service) AuditRequest(r *http.Request, action, object, purpose string, detail any) error {
	p := PrincipalFrom(r.Context())
	if p == nil {
		p = &Principal{Name: "anonymous", Remote: r.RemoteAddr}
	}
	return s.Audit(r.Context(), p, action, object, purpose, detail)
}

// NotFound answers a request for an object outside the principal's scope
// exactly as for one that does not exist (404), and audits the refusal.
func (s *Service) NotFound(w http.ResponseWriter, r *http.Request, object string) {
	_ = s.AuditRequest(r, audit.ActionDenied, object, "", map[string]any{"reason": "outside the need-to-know scope", "path": r.URL.Path})
	http.NotFound(w, r)
}

// MaxLoginBody bounds the body of POST /login: a name, a password, a
// token and a path.
const MaxLoginBody = 16 << 10

// LoginPage is what a login form shows.
type LoginPage struct {
	CSRFToken string // the pre-session token for the form field CSRFField
	Next      string // where to go after logging in (a local path)
	Error     string // why the last attempt failed (always the same words)
	OIDC      bool   // offer the single sign-on button (GET /login/oidc)
	Status    int    // HTTP status to answer with
}

// RenderLogin writes a login page. The form must POST to the login path
// with fields "name", "password", "next" and CSRFField.
type RenderLogin func(w http.ResponseWriter, r *http.Request, page LoginPage)

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vigil - log in</title></head>
<body><main><h1>Vigil</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{.CSRFToken}}">
<input type="hidden" name="next" value="{{.Next}}">
<p><label>User name <input name="name" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button type="submit">Log in</button></p>
</form>
{{if .OIDC}}<p><a href="/login/oidc?next={{.Next}}">Log in with your service's single sign-on</a></p>{{end}}
</main></body></html>
`))

// DefaultLoginForm is a minimal login page (no script, no style) for the
// web package to replace with its own.
func DefaultLoginForm(w http.ResponseWriter, r *http.Request, page LoginPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if page.Status != 0 {
		w.WriteHeader(page.Status)
	}
	_ = loginTmpl.Execute(w, page)
}

func (s *Service) mac(parts ...[]byte) []byte {
	m := hmac.New(sha256.New, s.cfg.Key)
	for _, p := range parts {
		m.Write(p)
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// loginToken sets (or reuses) the pre-session cookie and returns the form
// token bound to it: HMAC(Key, cookie value). A foreign page can neither
// read the token nor plant a cookie under the __Host- prefix.
func (s *Service) loginToken(w http.ResponseWriter, r *http.Request) string {
	var nonce string
	if c, err := r.Cookie(s.cookieName(loginCookie)); err == nil && len(c.Value) == 22 {
		nonce = c.Value
	} else {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		nonce = base64.RawURLEncoding.EncodeToString(b)
		s.setCookie(w, loginCookie, nonce, time.Hour, http.SameSiteStrictMode)
	}
	return base64.RawURLEncoding.EncodeToString(s.mac([]byte("login"), []byte(nonce)))
}

func (s *Service) checkLoginToken(r *http.Request) bool {
	c, err := r.Cookie(s.cookieName(loginCookie))
	if err != nil || c.Value == "" {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(r.PostFormValue(CSRFField))
	return err == nil && hmac.Equal(got, s.mac([]byte("login"), []byte(c.Value)))
}

// LocalPath returns next if it is a plain path on this site (with an
// optional query), else "/". Refused: anything with a scheme, host or
// user; "//" or "/\\" at the start (a protocol-relative URL); dot
// segments; spaces,
// control characters, backslashes and non-ASCII bytes, raw or
// percent-encoded in the path (browsers strip tabs and newlines, so
// "/\t/host" would be read as "//host"), and control characters encoded
// in the query.
func LocalPath(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' || (len(next) > 1 && (next[1] == '/' || next[1] == '\\')) {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("\\\"<>`{}|^", c) >= 0 {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return "/"
	}
	if strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.Path, "/\\") || badPathByte(u.Path) {
		return "/"
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." { // raw or encoded: a browser resolves both
			return "/"
		}
	}
	if q, err := url.QueryUnescape(u.RawQuery); err != nil || strings.ContainsFunc(q, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "/"
	}
	return next
}

func badPathByte(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return true
		}
	}
	return false
}

// LoginHandler serves the login form (GET) and checks it (POST): the
// pre-session CSRF token first, then the password. On success it sets the
// session cookie (HttpOnly, SameSite=Strict, Secure and __Host- per
// Config.SecureCookies) and redirects to the form's "next" local path.
// render nil: DefaultLoginForm.
func (s *Service) LoginHandler(render RenderLogin) http.Handler {
	if render == nil {
		render = DefaultLoginForm
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The query alone on GET; on POST the body, bounded before the
		// first parse.
		page := LoginPage{Next: LocalPath(r.URL.Query().Get("next")), OIDC: s.oidc != nil}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			page.CSRFToken = s.loginToken(w, r)
			render(w, r, page)
			return
		case http.MethodPost:
		default:
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxLoginBody)
		if err := r.ParseForm(); err != nil {
			code := http.StatusBadRequest
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, "the login form could not be read", code)
			return
		}
		page.Next = LocalPath(r.PostForm.Get("next"))
		if !s.checkLoginToken(r) {
			_ = s.Audit(r.Context(), &Principal{Name: "anonymous", Remote: r.RemoteAddr}, audit.ActionDenied, "login", "",
				map[string]any{"reason": "login form without a valid CSRF token"})
			page.CSRFToken = s.loginToken(w, r)
			page.Error, page.Status = "The form expired. Please try again.", http.StatusForbidden
			render(w, r, page)
			return
		}
		id, _, err := s.Login(r.Context(), r.PostFormValue("name"), r.PostFormValue("password"), r.RemoteAddr)
		if err != nil {
			page.CSRFToken = s.loginToken(w, r)
			page.Error, page.Status = "Wrong user name or password, or the account is locked or disabled.", http.StatusUnauthorized
			if !errors.Is(err, ErrLoginFailed) {
				page.Error, page.Status = "The login could not be checked. Try again later.", http.StatusInternalServerError
			}
			render(w, r, page)
			return
		}
		// The browser's previous session (another user left it signed
		// in) ends as a logout would: the new cookie replaces it, and it
		// must not go on behind it (its live feeds re-check it).
		if si, _ := r.Context().Value(sessionKey).(*sessionInfo); si != nil && si.id != id {
			if err := s.Logout(r.Context(), si.id, PrincipalFrom(r.Context())); err != nil {
				_ = s.st.DeleteSession(r.Context(), hashSecret(id))
				page.CSRFToken = s.loginToken(w, r)
				page.Error, page.Status = "The login could not be checked. Try again later.", http.StatusInternalServerError
				render(w, r, page)
				return
			}
		}
		s.setCookie(w, SessionCookie, id, s.cfg.SessionTTL, http.SameSiteStrictMode)
		s.setCookie(w, loginCookie, "", -1, http.SameSiteStrictMode)
		http.Redirect(w, r, page.Next, http.StatusSeeOther)
	})
}

// LogoutHandler ends the session (POST, under Authenticate and CSRF) and
// redirects to the login page.
func (s *Service) LogoutHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "log out with POST", http.StatusMethodNotAllowed)
			return
		}
		si, _ := r.Context().Value(sessionKey).(*sessionInfo)
		if si != nil {
			if err := s.Logout(r.Context(), si.id, PrincipalFrom(r.Context())); err != nil {
				http.Error(w, "the account store did not answer", http.StatusInternalServerError)
				return
			}
		}
		s.setCookie(w, SessionCookie, "", -1, http.SameSiteStrictMode)
		http.Redirect(w, r, s.cfg.LoginPath, http.StatusSeeOther)
	})
}

// Mount registers the login and logout routes on mux: GET and POST
// Config.LoginPath, POST /logout, and with OpenID Connect GET /login/oidc
// and GET /login/oidc/callback. The mux must be served under
// SecurityHeaders(s.Authenticate(s.CSRF(mux))).
func (s *Service) Mount(mux *http.ServeMux, render RenderLogin) {
	lh := s.LoginHandler(render)
	mux.Handle("GET "+s.cfg.LoginPath, lh)
	mux.Handle("POST "+s.cfg.LoginPath, lh)
	mux.Handle("POST /logout", s.LogoutHandler())
	if s.oidc != nil {
		mux.Handle("GET /login/oidc", s.OIDCStartHandler())
		mux.Handle("GET /login/oidc/callback", s.OIDCCallbackHandler(render))
	}
}

// Wrap returns h under the middleware chain in the order it must run:
// SecurityHeaders, then Authenticate, then Confine(platformRoutes...),
// then CSRF. A platform principal reaches only platformRoutes and
// logging out.
func (s *Service) Wrap(h http.Handler, platformRoutes ...string) http.Handler {
	return SecurityHeaders(s.Authenticate(s.Confine(platformRoutes...)(s.CSRF(h))))
}

// Confine refuses a platform principal (RolePlatform) every request but
// routes (method and path, exactly: "POST /api/v1/…", which the web tree
// names) and POST /logout, with 403 audited as denied: no page, no
// target, no export, no live feed, no audit trail, not even whoami. It
// decides before any handler runs, so that a route added later without a
// permission check is still closed to a platform. Other principals pass
// untouched. Mount it inside Authenticate.
func (s *Service) Confine(routes ...string) func(http.Handler) http.Handler {
	allowed := append(slices.Clone(routes), "POST /logout")
	return func(next http.Handler) http.Handler {
		return s.confine(next, allowed)
	}
}

func (s *Service) confine(next http.Handler, allowed []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := PrincipalFrom(r.Context())
		if p == nil || p.Role != RolePlatform || slices.Contains(allowed, r.Method+" "+r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		path := r.URL.Path
		if len(path) > 256 {
			path = path[:256] + "…"
		}
		_ = s.Audit(r.Context(), p, audit.ActionDenied, r.Method+" "+strings.ReplaceAll(strings.ToValidUTF8(path, "\uFFFD"), "\x00", "\uFFFD"), "",
			map[string]any{"reason": "a platform may only check addresses", "allowed": allowed})
		http.Error(w, "a platform account may only check addresses: "+strings.Join(allowed, ", "), http.StatusForbidden)
	})
}
