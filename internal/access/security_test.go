package access_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

func TestCheckPasswordRefusesCommonAndBreachedPasswords(t *testing.T) {
	for _, pw := range []string{
		"aaaaaaaaaaaa",     // one character
		"AAAAAAAAAAAAAAAA", // one character, any case
		"abababababab",     // two
		"abcabcabcabc",     // a repeated piece
		"123456789012",     // a run
		"abcdefghijklm",    // a run
		"zyxwvutsrqpo",     // a run down
		"1qaz2wsx3edc",     // in the list as it is
		"1QAZ2WSX3EDC",     // in the list, another case
		"password123456",   // a listed password with digits added
		"!!Sunshine2026!!", // with symbols and digits around it
		"qwertyuiop1234",   // likewise
	} {
		if err := access.CheckPassword(pw); !errors.Is(err, access.ErrWeakPassword) {
			t.Errorf("CheckPassword(%q) = %v, want refused", pw, err)
		} else if strings.Contains(err.Error(), pw) {
			t.Errorf("the refusal echoes the password: %v", err)
		}
	}
	for _, pw := range []string{"correct horse battery", "a long enough password", "Vigil-7f3k!Qp9zL", "lune rousse sur le quai 12"} {
		if err := access.CheckPassword(pw); err != nil {
			t.Errorf("CheckPassword(%q) = %v, want accepted", pw, err)
		}
	}
}

func TestAddUserRefusesACommonPassword(t *testing.T) {
	f := newFixture(t, nil)
	_, err := f.svc.AddUser(context.Background(), f.admin, access.User{Name: "bob", Agency: "fr-a", Role: access.RoleAnalyst}, "aaaaaaaaaaaa")
	if !errors.Is(err, access.ErrWeakPassword) {
		t.Fatalf("aaaaaaaaaaaa accepted: %v", err)
	}
}

func TestLocalPathRefusesEveryWayOff(t *testing.T) {
	for _, next := range []string{
		"", "targets", "https://evil.example/", "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
		"/\t/evil.example", "/%09/evil.example", "/%0a/evil.example", "/%0d%0a/x", "/\n/evil.example", "/\r/x", " /x",
		"/%2f/evil.example", "/%2F%2Fevil.example", "/%5cevil.example", "/%5C%5Cevil.example", "/x\\y",
		"/x y", "/x\x00", "/%00", "/x?y=%00", "/x?y=%0d%0aSet-Cookie:a=b", "/x#frag", "/\u00a0/evil", "/\u3000",
		"/x\"onload=", "/<script>", "javascript:alert(1)", "/" + strings.Repeat("a", 3000), "%2F%2Fevil.example",
		"/.%2e/%2e%2e//evil", "/\x7f",
	} {
		if got := access.LocalPath(next); got != "/" {
			t.Errorf("LocalPath(%q) = %q, want /", next, got)
		}
	}
	for _, next := range []string{"/", "/targets", "/targets/T-2?since=2026-11-01T00%3A00%3A00Z&page=2", "/lists/a.b_c-d", "/audit?actor=j.dupont%40x"} {
		if got := access.LocalPath(next); got != next {
			t.Errorf("LocalPath(%q) = %q, want it kept", next, got)
		}
	}
}

// The login form's next: at 8846f19, next=/%09/host gave Location
// "/\t/host", which browsers read as //host.
func TestLoginRedirectsOnlyToALocalPath(t *testing.T) {
	f := newFixture(t, nil)
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	srv := f.server(t)
	for _, next := range []string{"/\t/evil.example", "/%09/evil.example", "//evil.example", "/\\evil.example"} {
		c := client(t)
		tok := loginForm(t, c, srv.URL)
		body := "name=alice&password=" + url.QueryEscape(goodPW) + "&csrf_token=" + url.QueryEscape(tok) + "&next=" + next
		if next == "/\t/evil.example" {
			body = "name=alice&password=" + url.QueryEscape(goodPW) + "&csrf_token=" + url.QueryEscape(tok) + "&next=" + url.QueryEscape(next)
		}
		resp, err := c.Post(srv.URL+"/login", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("next=%q: %d Location %q, want /", next, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func TestTokensHaveAMaximumLifetime(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user(t, "svc", "fr-nat", access.RoleAnalyst)
	for _, ttl := range []time.Duration{0, -time.Hour, access.DefaultMaxTokenTTL + time.Hour} {
		if _, _, err := f.svc.CreateToken(ctx, f.admin, "svc", "", ttl); !errors.Is(err, access.ErrTokenLifetime) {
			t.Errorf("ttl %s: %v, want ErrTokenLifetime", ttl, err)
		}
	}
	_, tk, err := f.svc.CreateToken(ctx, f.admin, "svc", "", access.DefaultMaxTokenTTL)
	if err != nil || tk.Expires.IsZero() {
		t.Fatalf("90 days: %+v %v", tk, err)
	}
}

// The lifetime was checked only when a token was made: a token stored
// without an expiry (by a Vigil that allowed '--expires never') or with a
// longer one stayed valid for ever after the upgrade.
func TestTokenLifetimeIsEnforcedAtUse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	u := f.user(t, "svc", "fr-nat", access.RoleAnalyst)
	f.clk.Add(time.Minute)
	now := f.clk.Now()
	for i, exp := range []time.Time{{}, now.AddDate(5, 0, 0)} {
		tok := fmt.Sprintf("%sold-token-%d", access.TokenPrefix, i)
		h := sha256.Sum256([]byte(tok))
		if _, err := f.st.AddToken(ctx, access.Token{Hash: h[:], UserID: u.ID, Label: "old", Created: now, Expires: exp}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.TokenPrincipal(ctx, tok, ""); err != nil {
			t.Fatalf("token %d, fresh: %v", i, err)
		}
	}
	f.clk.Add(access.DefaultMaxTokenTTL)
	for i := range 2 {
		tok := fmt.Sprintf("%sold-token-%d", access.TokenPrefix, i)
		if _, err := f.svc.TokenPrincipal(ctx, tok, ""); !errors.Is(err, access.ErrUnauthenticated) {
			t.Errorf("token %d still works %s after it was made: %v", i, access.DefaultMaxTokenTTL, err)
		}
	}
}

func TestPasswordChangeRevokesTokens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user(t, "svc", "fr-nat", access.RoleAnalyst)
	tok, _, err := f.svc.CreateToken(ctx, f.admin, "svc", "ci", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TokenPrincipal(ctx, tok, ""); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(time.Minute)
	if err := f.svc.SetPassword(ctx, f.admin, "svc", "another good password"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TokenPrincipal(ctx, tok, ""); !errors.Is(err, access.ErrUnauthenticated) {
		t.Fatalf("a token made before the password change still works: %v", err)
	}
	toks, _ := f.st.Tokens(ctx, 0)
	if len(toks) != 1 || toks[0].Revoked.IsZero() {
		t.Fatalf("the token is not marked revoked: %+v", toks)
	}
	rs := f.records(t, audit.Filter{Action: audit.ActionUserPasswd})
	if len(rs) != 1 || !strings.Contains(string(rs[0].Detail), `"tokens_revoked":[1]`) {
		t.Fatalf("passwd audit: %+v", rs)
	}
}

// emptyDir says what files dir holds (none is the answer wanted).
func leftFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// multipartBody returns a multipart form with fields and one file of n
// random bytes.
func multipartBody(t *testing.T, fields map[string]string, n int64) (io.Reader, string) {
	t.Helper()
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if _, err := mw.CreateFormFile("file", "upload.bin"); err != nil {
		t.Fatal(err)
	}
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	return io.MultiReader(bytes.NewReader(head.Bytes()), io.LimitReader(rand.Reader, n), strings.NewReader(tail)), mw.FormDataContentType()
}

// At 8846f19, POST /login parsed the body (FormValue("next")) before its
// size limit: a 40 MiB multipart file was spooled to the temp folder and
// left there.
func TestLoginBoundsTheBodyBeforeParsing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f := newFixture(t, nil)
	srv := f.server(t)
	body, ct := multipartBody(t, map[string]string{"name": "x", "next": "/"}, 40<<20)
	resp, err := http.Post(srv.URL+"/login", ct, body)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("a 40 MiB login accepted: %d", resp.StatusCode)
		}
	}
	srv.CloseClientConnections()
	if left := leftFiles(t, tmp); len(left) != 0 {
		t.Fatalf("files left in TMPDIR: %v", left)
	}
}

// The CSRF check parses a session's multipart form to find its token;
// at 8846f19 the spooled files were never removed.
func TestCSRFRemovesMultipartSpools(t *testing.T) {
	tmp := t.TempDir()
	f := newFixture(t, nil)
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	srv := f.server(t)
	c := client(t)
	if resp := login(t, c, srv.URL, "alice", goodPW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	_, me := rd(t)(c.Get(srv.URL + "/me"))
	csrf := me[strings.Index(me, "csrf=")+5:]
	t.Setenv("TMPDIR", tmp)
	for _, tok := range []string{csrf, "wrong"} {
		body, ct := multipartBody(t, map[string]string{"csrf_token": tok}, 40<<20)
		code, _ := rd(t)(c.Post(srv.URL+"/change", ct, body))
		if want := map[bool]int{true: 200, false: 403}[tok == csrf]; code != want {
			t.Fatalf("token %q: %d, want %d", tok, code, want)
		}
		if left := leftFiles(t, tmp); len(left) != 0 {
			t.Fatalf("token %q: files left in TMPDIR: %v", tok, left)
		}
	}
}

func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/targets?x=1", "/%09/evil", "//evil", "/\\evil", "/./x", "/%2e%2e/x", "https://evil/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := access.LocalPath(next)
		if got == "/" {
			return
		}
		if got != next {
			t.Fatalf("LocalPath(%q) = %q: neither kept nor refused", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n ") {
			t.Fatalf("LocalPath kept %q", got)
		}
		// What a browser does: strip tabs and newlines, then resolve
		// against the site. It must stay on the site.
		base, _ := url.Parse("https://vigil.test/")
		ref, err := url.Parse(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(got))
		if err == nil && base.ResolveReference(ref).Host != "vigil.test" {
			t.Fatalf("LocalPath kept %q, which leaves the site", got)
		}
	})
}
