package notifytest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/notify"
)

// Delivery is one webhook request the receiver accepted: its signature
// verified.
type Delivery struct {
	ID     string      // X-Vigil-Delivery
	Header http.Header // the request's header
	Body   []byte
}

// Receiver is a webhook endpoint on 127.0.0.1 (plain HTTP, or https
// with NewTLSReceiver) that checks
// each request with notify.VerifyWebhook, as a real receiver must, and
// records what passes. Requests that fail verification are answered 401
// and counted; it can be told to answer the next requests with an error.
type Receiver struct {
	URL string // where to send: http://127.0.0.1:port/hook (https with NewTLSReceiver)

	secret    []byte
	tolerance time.Duration
	srv       *httptest.Server

	mu         sync.Mutex
	deliveries []Delivery
	rejected   []error
	attempts   int
	failN      int
	failCode   int
	now        func() time.Time
}

// NewReceiver starts a receiver that verifies with secret; it stops when
// the test ends.
func NewReceiver(t testing.TB, secret []byte) *Receiver {
	t.Helper()
	r := newReceiver(secret)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL + "/hook"
	t.Cleanup(r.srv.Close)
	return r
}

// NewTLSReceiver is NewReceiver over https, with a certificate of its own
// that only Client trusts.
func NewTLSReceiver(t testing.TB, secret []byte) *Receiver {
	t.Helper()
	r := newReceiver(secret)
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL + "/hook"
	t.Cleanup(r.srv.Close)
	return r
}

func newReceiver(secret []byte) *Receiver {
	return &Receiver{secret: append([]byte(nil), secret...), tolerance: notify.DefaultTolerance, now: time.Now}
}

// Client is an HTTP client that trusts the receiver's certificate.
func (r *Receiver) Client() *http.Client { return r.srv.Client() }

// FailNext answers the next n verified requests with status (and does
// not record them).
func (r *Receiver) FailNext(n, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failN, r.failCode = n, status
}

// SetClock makes the receiver judge timestamps against now.
func (r *Receiver) SetClock(now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = now
}

// Deliveries is a copy of the verified deliveries, in order, duplicates
// included (a receiver deduplicates on ID; a test may count retries).
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Rejected is why each refused request failed verification.
func (r *Receiver) Rejected() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.rejected...)
}

// Attempts counts every request that reached the receiver.
func (r *Receiver) Attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if err := notify.VerifyWebhook(r.secret, req.Header, body, r.now(), r.tolerance); err != nil {
		r.rejected = append(r.rejected, err)
		http.Error(w, "signature", http.StatusUnauthorized)
		return
	}
	if r.failN > 0 {
		r.failN--
		http.Error(w, "injected failure", r.failCode)
		return
	}
	r.deliveries = append(r.deliveries, Delivery{ID: req.Header.Get("X-Vigil-Delivery"), Header: req.Header.Clone(), Body: body})
	w.WriteHeader(http.StatusNoContent)
}
