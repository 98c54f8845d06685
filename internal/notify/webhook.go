package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The webhook's headers.
const (
	HeaderDelivery  = "X-Vigil-Delivery"  // the delivery's id (Message.ID)
	HeaderTimestamp = "X-Vigil-Timestamp" // unix seconds, decimal
	HeaderSignature = "X-Vigil-Signature" // "v1=" + hex HMAC-SHA256
)

// MinSecret is the shortest webhook secret accepted, in bytes.
const MinSecret = 32

// DefaultTimeout bounds one delivery when a sender's Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxAnswer is how much of a receiver's answer is read (and quoted in an
// error); the rest is not read.
const maxAnswer = 1024

// ErrConfig marks a sender's settings that can never deliver (a short
// secret, plain HTTP to a public host, a bad address). It wraps
// ErrPermanent.
var ErrConfig = fmt.Errorf("%w: configuration", ErrPermanent)

// Webhook POSTs a message's JSON, signed, to one URL. Its zero Client
// and Timeout are usable; URL and Secret are required.
type Webhook struct {
	// URL is where to POST: https, or http to a loopback host
	// (127.0.0.0/8, ::1, localhost), or http to a private address
	// literal when AllowPrivateHTTP is set.
	URL string
	// Secret is the HMAC-SHA256 key the receiver shares, at least
	// MinSecret bytes. It never appears in an error, in String or in a
	// log record of the Webhook.
	Secret []byte
	// Client sends the request; nil: a client of its own. Redirects are
	// never followed, whatever the client's CheckRedirect says.
	Client *http.Client
	// Timeout bounds one delivery, answer included (0: DefaultTimeout).
	Timeout time.Duration
	// AllowPrivateHTTP lets URL be plain http to a private address
	// literal (10/8, 172.16/12, 192.168/16, fc00::/7): for a receiver on
	// a network the operator trusts not to be read. Off by default.
	AllowPrivateHTTP bool
}

var _ Sender = Webhook{}

// String names the webhook's URL, never its secret.
func (w Webhook) String() string { return "webhook " + redactURL(w.URL) }

// GoString is String, so that %#v does not print the secret either.
func (w Webhook) GoString() string { return w.String() }

// Validate says why the webhook cannot deliver, wrapping ErrConfig.
func (w Webhook) Validate() error {
	if len(w.Secret) < MinSecret {
		return fmt.Errorf("%w: webhook %s: secret of %d bytes, at least %d needed", ErrConfig, redactURL(w.URL), len(w.Secret), MinSecret)
	}
	u, err := url.Parse(w.URL)
	if err != nil {
		return fmt.Errorf("%w: webhook URL: %v", ErrConfig, err)
	}
	if u.User != nil {
		return fmt.Errorf("%w: webhook %s: credentials in the URL (the signature authenticates Vigil)", ErrConfig, redactURL(w.URL))
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: webhook %q: no host", ErrConfig, redactURL(w.URL))
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		if w.AllowPrivateHTTP {
			if a, err := netip.ParseAddr(u.Hostname()); err == nil && a.Unmap().IsPrivate() {
				return nil
			}
			return fmt.Errorf("%w: webhook %s: plain http is allowed only to a private address literal (AllowPrivateHTTP), not %q", ErrConfig, redactURL(w.URL), u.Hostname())
		}
		return fmt.Errorf("%w: webhook %s: plain http to a host that is not loopback: use https", ErrConfig, redactURL(w.URL))
	default:
		return fmt.Errorf("%w: webhook %s: scheme %q (https, or http to loopback)", ErrConfig, redactURL(w.URL), u.Scheme)
	}
}

// Send POSTs m.JSON once, signed at the current time. A 2xx answer is a
// delivery; 408, 429, 5xx and failures to connect are temporary; any
// other answer (3xx included: a redirect is not followed) is permanent.
func (w Webhook) Send(ctx context.Context, m Message) error {
	if err := w.Validate(); err != nil {
		return err
	}
	if err := checkID(m.ID); err != nil {
		return err
	}
	if !json.Valid(m.JSON) {
		return fmt.Errorf("%w: delivery %s: the webhook body is not JSON", ErrPermanent, m.ID)
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(m.JSON))
	if err != nil {
		return fmt.Errorf("%w: webhook %s: %v", ErrConfig, redactURL(w.URL), err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil-notify/1")
	req.Header.Set(HeaderDelivery, m.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.Secret, ts, m.JSON))

	resp, err := w.client().Do(req)
	if err != nil {
		// Connection refused, reset, timeout, TLS: another try may pass.
		return fmt.Errorf("webhook %s: delivery %s: %w", redactURL(w.URL), m.ID, scrub(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	return classify(resp, answer, redactURL(w.URL), m.ID)
}

// client is the caller's client, or one of our own, never following a
// redirect: a receiver must not be able to send the alert elsewhere.
func (w Webhook) client() *http.Client {
	c := &http.Client{}
	if w.Client != nil {
		*c = *w.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// classify turns a receiver's answer into nil, a temporary or a
// permanent error.
func classify(resp *http.Response, answer []byte, where, id string) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	what := fmt.Sprintf("webhook %s: delivery %s: answer %s", where, id, resp.Status)
	if loc := resp.Header.Get("Location"); code >= 300 && code < 400 && loc != "" {
		what += fmt.Sprintf(" to %q, not followed", clip(loc))
	}
	if len(answer) > 0 {
		what += fmt.Sprintf(": %q", clip(string(answer)))
	}
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		return errors.New(what)
	}
	return fmt.Errorf("%w: %s", ErrPermanent, what)
}

// clip shortens what a receiver said to something fit for a log line.
func clip(s string) string {
	const n = 200
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// scrub keeps an error and drops its copy of the full URL (which may
// carry a token in its query) for the redacted one.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// redactURL is the URL without its query, fragment or user information.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}

// isLoopback reports whether host names this machine: localhost, or an
// address in 127.0.0.0/8 or ::1. A name that resolves to loopback does
// not count: the check is on what was configured.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// checkID refuses a delivery id that could not travel in a header or a
// Message-ID as it is: empty, longer than 200 bytes, or with a byte
// outside printable ASCII.
func checkID(id string) error {
	if id == "" || len(id) > 200 {
		return fmt.Errorf("%w: delivery id of %d bytes (1 to 200)", ErrPermanent, len(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("%w: delivery id %q: byte %#x at %d (printable ASCII only)", ErrPermanent, id, id[i], i)
		}
	}
	return nil
}

// Sign is the X-Vigil-Signature of body sent at timestamp (unix seconds,
// decimal): "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Sign(secret []byte, timestamp string, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
