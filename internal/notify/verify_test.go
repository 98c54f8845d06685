package notify_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/notify"
)

// signed is the header of body sent at when, as Webhook.Send makes it.
func signed(key []byte, when time.Time, body []byte) http.Header {
	ts := strconv.FormatInt(when.Unix(), 10)
	h := http.Header{}
	h.Set(notify.HeaderTimestamp, ts)
	h.Set(notify.HeaderSignature, notify.Sign(key, ts, body))
	h.Set(notify.HeaderDelivery, "d-1")
	return h
}

func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"d-1","rule":"r"}`)
	tol := 5 * time.Minute
	for _, tc := range []struct {
		name   string
		header func() http.Header
		body   []byte
		ok     bool
	}{
		{"valid", func() http.Header { return signed(secret, now, body) }, body, true},
		{"valid, sent 4 minutes ago", func() http.Header { return signed(secret, now.Add(-4*time.Minute), body) }, body, true},
		{"valid, sender's clock 4 minutes ahead", func() http.Header { return signed(secret, now.Add(4*time.Minute), body) }, body, true},
		{"tampered body", func() http.Header { return signed(secret, now, body) }, []byte(`{"id":"d-1","rule":"x"}`), false},
		{"body with a byte added", func() http.Header { return signed(secret, now, body) }, append(append([]byte{}, body...), ' '), false},
		{"tampered timestamp", func() http.Header {
			h := signed(secret, now.Add(-time.Minute), body)
			h.Set(notify.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
			return h
		}, body, false},
		{"replayed after the tolerance", func() http.Header { return signed(secret, now.Add(-6*time.Minute), body) }, body, false},
		{"from the future", func() http.Header { return signed(secret, now.Add(6*time.Minute), body) }, body, false},
		{"another secret", func() http.Header { return signed([]byte(strings.Repeat("k", 32)), now, body) }, body, false},
		{"no signature", func() http.Header {
			h := signed(secret, now, body)
			h.Del(notify.HeaderSignature)
			return h
		}, body, false},
		{"no timestamp", func() http.Header {
			h := signed(secret, now, body)
			h.Del(notify.HeaderTimestamp)
			return h
		}, body, false},
		{"a forged signature beside the right one", func() http.Header {
			h := signed(secret, now, body)
			h.Add(notify.HeaderSignature, "v1="+strings.Repeat("0", 64))
			return h
		}, body, false},
		{"the right signature twice", func() http.Header {
			h := signed(secret, now, body)
			h.Add(notify.HeaderSignature, h.Get(notify.HeaderSignature))
			return h
		}, body, false},
		{"two timestamps", func() http.Header {
			h := signed(secret, now, body)
			h.Add(notify.HeaderTimestamp, h.Get(notify.HeaderTimestamp))
			return h
		}, body, false},
		{"signature list in one header", func() http.Header {
			h := signed(secret, now, body)
			h.Set(notify.HeaderSignature, h.Get(notify.HeaderSignature)+",v1="+strings.Repeat("0", 64))
			return h
		}, body, false},
		{"uppercase hex", func() http.Header {
			h := signed(secret, now, body)
			h.Set(notify.HeaderSignature, "v1="+strings.ToUpper(h.Get(notify.HeaderSignature)[3:]))
			return h
		}, body, false},
		{"another version", func() http.Header {
			h := signed(secret, now, body)
			h.Set(notify.HeaderSignature, "v0="+h.Get(notify.HeaderSignature)[3:])
			return h
		}, body, false},
		{"truncated signature", func() http.Header {
			h := signed(secret, now, body)
			h.Set(notify.HeaderSignature, h.Get(notify.HeaderSignature)[:40])
			return h
		}, body, false},
		{"timestamp with a sign", func() http.Header {
			ts := "+" + strconv.FormatInt(now.Unix(), 10)
			h := signed(secret, now, body)
			h.Set(notify.HeaderTimestamp, ts)
			h.Set(notify.HeaderSignature, notify.Sign(secret, ts, body))
			return h
		}, body, false},
		{"timestamp with a leading zero", func() http.Header {
			ts := "0" + strconv.FormatInt(now.Unix(), 10)
			h := signed(secret, now, body)
			h.Set(notify.HeaderTimestamp, ts)
			h.Set(notify.HeaderSignature, notify.Sign(secret, ts, body))
			return h
		}, body, false},
		{"timestamp in milliseconds", func() http.Header {
			ts := strconv.FormatInt(now.UnixMilli(), 10)
			h := signed(secret, now, body)
			h.Set(notify.HeaderTimestamp, ts)
			h.Set(notify.HeaderSignature, notify.Sign(secret, ts, body))
			return h
		}, body, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := notify.VerifyWebhook(secret, tc.header(), tc.body, now, tol)
			if (err == nil) != tc.ok {
				t.Fatalf("VerifyWebhook: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, notify.ErrUnverified) {
				t.Fatalf("%v does not wrap ErrUnverified", err)
			}
		})
	}
}

func TestVerifyWebhookRefusesShortSecret(t *testing.T) {
	key := []byte("short")
	now := time.Now()
	if err := notify.VerifyWebhook(key, signed(key, now, nil), nil, now, 0); !errors.Is(err, notify.ErrUnverified) {
		t.Fatalf("a 5-byte secret: %v", err)
	}
}

// FuzzVerifyWebhook feeds the header parser anything: it must not panic,
// and it must accept exactly one signature value (the HMAC of the given
// timestamp and body) with one canonical timestamp within the tolerance.
func FuzzVerifyWebhook(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"id":"d-1"}`)
	f.Add(ts, notify.Sign(secret, ts, body), body)
	f.Add(ts, "v1=", body)
	f.Add("", "", []byte{})
	f.Add("-1", "v1="+strings.Repeat("g", 64), body)
	f.Add("99999999999999999999", notify.Sign(secret, ts, body), body)
	f.Add(ts+" ", notify.Sign(secret, ts, body)+" ", body)
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		h := http.Header{}
		h[notify.HeaderTimestamp] = []string{ts}
		h[notify.HeaderSignature] = []string{sig}
		err := notify.VerifyWebhook(secret, h, body, now, time.Minute)
		if err != nil {
			if !errors.Is(err, notify.ErrUnverified) {
				t.Fatalf("%v does not wrap ErrUnverified", err)
			}
		} else {
			if sig != notify.Sign(secret, ts, body) {
				t.Fatalf("accepted %q for timestamp %q, not the signature of the body", sig, ts)
			}
			n, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil || strconv.FormatInt(n, 10) != ts || n < now.Unix()-60 || n > now.Unix()+60 {
				t.Fatalf("accepted timestamp %q", ts)
			}
		}
		// The sender's own signature of any timestamp near now verifies.
		good := http.Header{}
		good.Set(notify.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		good.Set(notify.HeaderSignature, notify.Sign(secret, good.Get(notify.HeaderTimestamp), body))
		if err := notify.VerifyWebhook(secret, good, body, now, time.Minute); err != nil {
			t.Fatalf("a good signature of %q: %v", body, err)
		}
	})
}
