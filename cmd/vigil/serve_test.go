package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeLogsInARealUser starts 'vigil serve' on an empty store: it says
// how to make the first account; once made, that account logs in through
// the form and reads the targets page.
func TestServeLogsInARealUser(t *testing.T) { serveLogsInARealUser(t, emptyStore(t), nil) }

// The same on an empty PostgreSQL database: accounts, sessions, the audit
// trail and the pages are all in it. The audit key goes where
// XDG_CONFIG_HOME says, named for the database, never beside the URL as
// if it were a path.
func TestServeLogsInARealUserOnPostgres(t *testing.T) {
	cfg := t.TempDir()
	serveLogsInARealUser(t, postgresDB(t), map[string]string{"XDG_CONFIG_HOME": cfg})
	keys, err := filepath.Glob(filepath.Join(cfg, "vigil", "127.0.0.1_5432_test_vigil_cli_*.audit-key"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("audit keys under XDG_CONFIG_HOME: %q, %v; want one named for the database", keys, err)
	}
}

func serveLogsInARealUser(t *testing.T, db string, env map[string]string) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--db", db, "serve", "--addr", "127.0.0.1:0", "--analysis-poll", "200ms", "--log-level", "warn"},
			strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exit %d: %s", code, errb.String())
			}
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
		t.Fatalf("serve printed no login address:\n%s\n%s", out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "No account exists yet") || !strings.Contains(out.String(), "vigil --db "+db+" user add") {
		t.Fatalf("serve does not say how to create the first account:\n%s", out.String())
	}
	if code, _, e := vigilRun(t, nil, "", "--db", db, "agency", "import", "--rules", "example:france"); code != exitOK {
		t.Fatalf("agency import: %s", e)
	}
	const pw = "a long enough password"
	if code, _, e := vigilRun(t, nil, pw+"\n", "--db", db, "user", "add", "--agency", "fr-ofmin", "--role", "analyst", "--name", "claire", "--lang", "en"); code != exitOK {
		t.Fatalf("user add: %s", e)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	base := "http://" + addr
	resp, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("login page without a CSRF token:\n%s", page)
	}
	resp, err = c.PostForm(base+"/login", url.Values{"name": {"claire"}, "password": {pw}, "next": {"/targets"}, "csrf_token": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="targets"`) || !strings.Contains(string(body), "claire") {
		t.Fatalf("after login: %d %s\n%.400s", resp.StatusCode, resp.Request.URL, body)
	}
}
