package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/web/api"
)

// addPlatform adds a platform account to e, with a password and a token.
func addPlatform(t *testing.T, e *env, name string) {
	t.Helper()
	ctx := context.Background()
	cli := access.CLIActor("test")
	pw := randomPassword()
	if err := e.Access.AddAgency(ctx, cli, access.Agency{ID: "host-1", Name: "File host", Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Access.AddUser(ctx, cli, access.User{Name: name, Agency: "host-1", Role: access.RolePlatform, Lang: access.LangEN, TimeZone: "Europe/Paris"}, pw); err != nil {
		t.Fatal(err)
	}
	tok, _, err := e.Access.CreateToken(ctx, cli, name, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.Password[name], e.Token[name] = pw, tok
}

// A platform account reaches no page and no API route but the check,
// with its token or its session: every other request of the route census
// answers 403, shows no target and no address, and is recorded as
// refused. The check itself answers it.
func TestPlatformIsRefusedEveryPageAndRoute(t *testing.T) {
	e := newEnv(t, "", 600)
	addPlatform(t, e, "plat")
	k := learnStore(t, e)
	epA, _ := targetEndpoint(t, e, e.TargetA)
	epB, fileB := targetEndpoint(t, e, e.TargetB)
	fill := strings.NewReplacer("{A}", e.TargetA, "{B}", e.TargetB, "{EPA}", epA.String(), "{EPB}", epB.String(),
		"{IPB}", epB.Addr().String(), "{HB}", fileB.Hex)
	routes := e.App.Routes()
	for _, via := range []string{"token", "session"} {
		t.Run(via, func(t *testing.T) {
			b := newBrowser(t, e)
			if via == "session" {
				// The login form takes the account (a session), but no page
				// opens to it: not even the one it is sent to.
				if code, _ := b.get("/login"); code != http.StatusOK || b.csrf == "" {
					t.Fatalf("login page: %d", code)
				}
				code, _, h := b.do("POST", "/login", url.Values{"name": {"plat"}, "password": {e.Password["plat"]}, "next": {"/targets"}, "csrf_token": {b.csrf}})
				if code != http.StatusSeeOther {
					t.Fatalf("login as a platform: %d to %q", code, h.Get("Location"))
				}
			}
			for _, pattern := range routes {
				if slices.Contains(api.PlatformRoutes, pattern) || pattern == "POST /logout" {
					continue
				}
				for _, rq := range census[pattern] {
					path := fill.Replace(rq.path)
					var form url.Values
					if rq.method == "POST" {
						form = url.Values{"csrf_token": {b.csrf}}
						for f, vs := range rq.form {
							form[f] = []string{fill.Replace(vs[0])}
						}
					}
					before := lastSeq(t, e)
					code, body := platformDo(t, e, b, via, rq.method, path, form)
					where := fmt.Sprintf("%s %s as a platform (%s)", rq.method, path, via)
					if code != http.StatusForbidden {
						t.Errorf("%s: %d %.200s, want 403", where, code, body)
					}
					if ids, ips := k.shown(body, path); len(ids)+len(ips) > 0 {
						t.Errorf("%s: shows targets %v, addresses %v", where, ids, ips)
					}
					if _, recs := trailSince(t, e, "plat", before); !slices.ContainsFunc(recs, func(r audit.Record) bool { return r.Action == audit.ActionDenied }) {
						t.Errorf("%s: refused without a record", where)
					}
				}
			}
		})
	}
	// The check answers it, and names nothing of the target.
	req, _ := http.NewRequest("POST", e.URL+"/api/v1/check", strings.NewReader(fmt.Sprintf(
		`{"purpose": "ticket 42", "checks": [{"address": %q, "port": %d, "time": %q}]}`, epB.Addr(), epB.Port(), time.Now().UTC().Format(time.RFC3339))))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.Token["plat"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ans api.CheckAnswer
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ans) != nil || len(ans.Results) != 1 {
		t.Fatalf("the check as a platform: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), e.TargetB) || strings.Contains(string(body), fileB.Hex) {
		t.Fatalf("the check names the target or its file: %s", body)
	}
}

// platformDo makes one request as the platform, by token or in the
// browser's session.
func platformDo(t *testing.T, e *env, b *client, via, method, path string, form url.Values) (int, string) {
	t.Helper()
	if via == "session" {
		if method == "GET" && strings.HasPrefix(path, "/api/v1/events") {
			return streamStatus(t, e, b.c, nil)
		}
		code, body, _ := b.do(method, path, form)
		return code, body
	}
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, e.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+e.Token["plat"])
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

// streamStatus opens the live feed with c and returns its status and the
// start of its body (a stream that opened is cut).
func streamStatus(t *testing.T, e *env, c *http.Client, _ http.Header) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/api/v1/events", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /api/v1/events: %v", err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	return resp.StatusCode, string(buf[:n])
}

// TestCheckRefusalsCountedAreRecordedWhenTheServerStops: past
// --check-refusal-records refusals of an account in a minute, the others
// are counted and recorded in one summary once the minute ends. A server
// that stopped within the minute lost that count: the stop (App.Close,
// serve's FlushRefusals) now records it, the minute cut short.
func TestCheckRefusalsCountedAreRecordedWhenTheServerStops(t *testing.T) {
	e := newEnvDeps(t, "", 600, nil, func(d *Deps) { d.Check = api.CheckConfig{PerMinute: 1, RefusalRecords: 1} })
	addPlatform(t, e, "plat")
	const sent = 10
	refused := 0
	for range sent {
		req, _ := http.NewRequest("POST", e.URL+"/api/v1/check", strings.NewReader(fmt.Sprintf(
			`{"purpose": "ticket 43", "checks": [{"address": "127.31.0.1", "port": 6881, "time": %q}]}`, time.Now().UTC().Format(time.RFC3339))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.Token["plat"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused != sent-1 {
		t.Fatalf("%d of %d requests refused, want %d", refused, sent, sent-1)
	}
	records := func() (one, summaries, summed int, stopped bool) {
		err := e.Store.AuditRecords(context.Background(), audit.Filter{Actor: "plat", Action: audit.ActionDenied}, func(r audit.Record) error {
			var d struct {
				Summary bool `json:"summary"`
				Refused int  `json:"refused"`
				Stopped bool `json:"server_stopped"`
			}
			if err := json.Unmarshal(r.Detail, &d); err != nil {
				return err
			}
			if d.Summary {
				summaries, summed, stopped = summaries+1, summed+d.Refused, d.Stopped
			} else {
				one++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	if one, s, _, _ := records(); one != 1 || s != 0 {
		t.Fatalf("within the minute: %d refusals recorded one by one and %d summaries, want 1 and none yet", one, s)
	}
	if err := e.App.Close(); err != nil {
		t.Fatal(err)
	}
	one, s, summed, stopped := records()
	if one != 1 || s != 1 || one+summed != refused || !stopped {
		t.Fatalf("after the server stopped: %d recorded one by one, %d summaries counting %d (server_stopped %v); want 1, 1 and %d in all",
			one, s, summed, stopped, refused)
	}
}
