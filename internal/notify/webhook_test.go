package notify_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/notify"
	"github.com/vigil-oss/vigil/internal/notify/notifytest"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

func message(id string) notify.Message {
	return notify.Message{
		ID:      id,
		Rule:    "rule-1",
		Agency:  "ocrtis",
		At:      time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC),
		Subject: "Vigil: a watched file seen in your area",
		Text:    "A target matched rule-1.\nSee the overview.",
		JSON:    []byte(`{"id":"` + id + `","rule":"rule-1"}`),
	}
}

func TestWebhookDeliversSignedToReceiver(t *testing.T) {
	r := notifytest.NewReceiver(t, secret)
	w := notify.Webhook{URL: r.URL, Secret: secret}
	before := time.Now().Unix()
	if err := w.Send(context.Background(), message("d-1")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := r.Deliveries()
	if len(got) != 1 {
		t.Fatalf("receiver has %d deliveries, want 1 (rejected: %v)", len(got), r.Rejected())
	}
	d := got[0]
	if d.ID != "d-1" || string(d.Body) != `{"id":"d-1","rule":"rule-1"}` {
		t.Errorf("delivery %q body %s", d.ID, d.Body)
	}
	if ct := d.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	ts, err := strconv.ParseInt(d.Header.Get(notify.HeaderTimestamp), 10, 64)
	if err != nil || ts < before || ts > time.Now().Unix() {
		t.Errorf("timestamp %q, want unix seconds of now", d.Header.Get(notify.HeaderTimestamp))
	}
	// The signature is the documented one, computed here independently.
	want := notify.Sign(secret, d.Header.Get(notify.HeaderTimestamp), d.Body)
	if got := d.Header.Get(notify.HeaderSignature); got != want || !strings.HasPrefix(got, "v1=") || len(got) != 67 {
		t.Errorf("signature %q, want %q", got, want)
	}
}

// A receiver holding another secret refuses the delivery: the sender
// learns it as a permanent failure (401).
func TestWebhookWrongSecretIsRefusedPermanently(t *testing.T) {
	r := notifytest.NewReceiver(t, []byte(strings.Repeat("x", 40)))
	err := notify.Webhook{URL: r.URL, Secret: secret}.Send(context.Background(), message("d-2"))
	if !errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("Send to a receiver with another secret: %v, want a permanent error", err)
	}
	if len(r.Deliveries()) != 0 || len(r.Rejected()) != 1 {
		t.Fatalf("deliveries %d rejected %d, want 0 and 1", len(r.Deliveries()), len(r.Rejected()))
	}
}

func TestWebhookRetryAfterTemporaryFailure(t *testing.T) {
	r := notifytest.NewReceiver(t, secret)
	r.FailNext(2, http.StatusServiceUnavailable)
	w := notify.Webhook{URL: r.URL, Secret: secret}
	for i := 0; i < 2; i++ {
		err := w.Send(context.Background(), message("d-3"))
		if err == nil || errors.Is(err, notify.ErrPermanent) {
			t.Fatalf("try %d: %v, want a temporary error", i+1, err)
		}
	}
	if err := w.Send(context.Background(), message("d-3")); err != nil {
		t.Fatalf("third try: %v", err)
	}
	if n := r.Attempts(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if d := r.Deliveries(); len(d) != 1 || d[0].ID != "d-3" {
		t.Errorf("deliveries %v", d)
	}
}

func TestWebhookClassifiesAnswers(t *testing.T) {
	for _, tc := range []struct {
		status    int
		ok, perma bool
	}{
		{200, true, false}, {202, true, false}, {204, true, false},
		{408, false, false}, {429, false, false}, {500, false, false}, {502, false, false}, {503, false, false},
		{400, false, true}, {401, false, true}, {403, false, true}, {404, false, true}, {410, false, true}, {413, false, true},
		{301, false, true}, {302, false, true}, {307, false, true}, {308, false, true},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			err := notify.Webhook{URL: srv.URL, Secret: secret}.Send(context.Background(), message("c"))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("answer %d: %v, want delivered", tc.status, err)
			case !tc.ok && err == nil:
				t.Fatalf("answer %d: delivered, want an error", tc.status)
			case !tc.ok && errors.Is(err, notify.ErrPermanent) != tc.perma:
				t.Fatalf("answer %d: %v; permanent=%v, want %v", tc.status, err, errors.Is(err, notify.ErrPermanent), tc.perma)
			}
		})
	}
}

// A receiver (or whoever took over its address) answering with a
// redirect does not get the alert sent elsewhere, whatever the caller's
// client would do.
func TestWebhookDoesNotFollowRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/stolen", code)
		}))
		follows := &http.Client{} // the default policy follows redirects
		err := notify.Webhook{URL: srv.URL, Secret: secret, Client: follows}.Send(context.Background(), message("r"))
		srv.Close()
		if !errors.Is(err, notify.ErrPermanent) || !strings.Contains(err.Error(), "not followed") {
			t.Errorf("redirect %d: %v, want a permanent error saying it was not followed", code, err)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect's target got %d requests", n)
	}
}

// Plain http leaves the machine only when asked for, and only to a
// private address literal; a refused URL is never dialed.
func TestWebhookRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	for _, tc := range []struct {
		url          string
		allowPrivate bool
		ok           bool
	}{
		{"https://hooks.example.org/vigil", false, true},
		{"http://127.0.0.1:9/hook", false, true},
		{"http://[::1]:9/hook", false, true},
		{"http://localhost:9/hook", false, true},
		{"http://hooks.example.org/vigil", false, false},
		{"http://10.1.2.3/vigil", false, false},
		{"http://10.1.2.3/vigil", true, true},
		{"http://[fd00::1]/vigil", true, true},
		{"http://192.0.2.1/vigil", true, false},      // documentation range: public
		{"http://hooks.internal/vigil", true, false}, // a name may resolve anywhere
		{"ftp://127.0.0.1/x", false, false},
		{"https://user:pw@hooks.example.org/", false, false},
		{"https:///nohost", false, false},
	} {
		w := notify.Webhook{URL: tc.url, Secret: secret, AllowPrivateHTTP: tc.allowPrivate}
		err := w.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s (private http %v): %v, want ok=%v", tc.url, tc.allowPrivate, err, tc.ok)
		}
		if err != nil && !errors.Is(err, notify.ErrPermanent) {
			t.Errorf("%s: %v does not wrap ErrPermanent", tc.url, err)
		}
	}
	// Send checks before dialing: a listener standing for the public
	// host sees nothing because the URL is refused first.
	err := notify.Webhook{URL: "http://hooks.example.org/vigil", Secret: secret}.Send(context.Background(), message("p"))
	if !errors.Is(err, notify.ErrConfig) {
		t.Fatalf("Send over plain http to a public name: %v, want ErrConfig", err)
	}
}

func TestWebhookRefusesShortSecret(t *testing.T) {
	r := notifytest.NewReceiver(t, secret)
	err := notify.Webhook{URL: r.URL, Secret: secret[:31]}.Send(context.Background(), message("s"))
	if !errors.Is(err, notify.ErrConfig) {
		t.Fatalf("31-byte secret: %v, want ErrConfig", err)
	}
	if r.Attempts() != 0 {
		t.Fatalf("the receiver was reached %d times", r.Attempts())
	}
}

// A hostile delivery id (a header injection) or a body that is not JSON
// is refused before anything is sent.
func TestWebhookRefusesHostileMessage(t *testing.T) {
	r := notifytest.NewReceiver(t, secret)
	w := notify.Webhook{URL: r.URL, Secret: secret}
	for _, m := range []notify.Message{
		{ID: "d\r\nX-Vigil-Signature: v1=00", JSON: []byte(`{}`)},
		{ID: "d 1", JSON: []byte(`{}`)},
		{ID: "", JSON: []byte(`{}`)},
		{ID: "ok", JSON: []byte(`{"a":`)},
	} {
		if err := w.Send(context.Background(), m); !errors.Is(err, notify.ErrPermanent) {
			t.Errorf("id %q body %q: %v, want a permanent error", m.ID, m.JSON, err)
		}
	}
	if r.Attempts() != 0 {
		t.Fatalf("the receiver was reached %d times", r.Attempts())
	}
}

// The secret shows in no rendering of a Webhook: %v, %+v, %#v, slog.
func TestWebhookNeverPrintsItsSecret(t *testing.T) {
	w := notify.Webhook{URL: "https://hooks.example.org/x?token=abc", Secret: secret}
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("sending", "webhook", w)
	for _, s := range []string{fmt.Sprintf("%v", w), fmt.Sprintf("%+v", w), fmt.Sprintf("%#v", w), fmt.Sprint(&w), log.String(),
		fmt.Sprint(notify.Webhook{URL: "https://h", Secret: secret[:3]}.Validate())} {
		if strings.Contains(s, string(secret[:16])) || strings.Contains(s, fmt.Sprint(secret[:8])) || strings.Contains(s, "token=abc") {
			t.Errorf("a rendering shows the secret or the URL's query: %s", s)
		}
	}
}

func TestWebhookConnectionFailuresAreTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	err = notify.Webhook{URL: "http://" + addr + "/hook", Secret: secret}.Send(context.Background(), message("t"))
	if err == nil || errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("connection refused: %v, want a temporary error", err)
	}

	// A receiver that never answers is cut at Timeout.
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	start := time.Now()
	err = notify.Webhook{URL: srv.URL, Secret: secret, Timeout: 200 * time.Millisecond}.Send(context.Background(), message("t"))
	if err == nil || errors.Is(err, notify.ErrPermanent) || time.Since(start) > 5*time.Second {
		t.Fatalf("a silent receiver: %v after %v, want a temporary error after 200ms", err, time.Since(start))
	}
}

// A receiver's answer is read up to a small limit: an endless body
// neither holds the sender until its timeout nor fills its memory or its
// log line.
func TestWebhookReadsLittleOfTheAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		chunk := []byte(strings.Repeat("A", 4096))
		for { // until the client stops reading
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	start := time.Now()
	err := notify.Webhook{URL: srv.URL, Secret: secret, Timeout: 20 * time.Second}.Send(context.Background(), message("big"))
	if !errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("400 with an endless body: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Send read the answer for %v", d)
	}
	if len(err.Error()) > 600 {
		t.Fatalf("the error quotes %d bytes of the answer", len(err.Error()))
	}
}

// Over https the receiver's certificate is checked: a client that trusts
// it delivers, the default one (system roots) does not, temporarily.
func TestWebhookHTTPS(t *testing.T) {
	r := notifytest.NewTLSReceiver(t, secret)
	if !strings.HasPrefix(r.URL, "https://127.0.0.1:") {
		t.Fatalf("receiver URL %s", r.URL)
	}
	if err := (notify.Webhook{URL: r.URL, Secret: secret, Client: r.Client()}).Send(context.Background(), message("s-1")); err != nil {
		t.Fatalf("trusted certificate: %v", err)
	}
	err := notify.Webhook{URL: r.URL, Secret: secret}.Send(context.Background(), message("s-2"))
	if err == nil || errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("untrusted certificate: %v, want a temporary error", err)
	}
	if d := r.Deliveries(); len(d) != 1 || d[0].ID != "s-1" {
		t.Fatalf("deliveries %v, want s-1 alone", d)
	}
}
