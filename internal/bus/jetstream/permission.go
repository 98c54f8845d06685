package jetstream

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// ErrPermission is NATS refusing this connection's user something its
// permissions do not allow (a PermissionError says what). It does not
// pass by itself: Transient is false for it.
var ErrPermission = errors.New("permission denied by NATS")

// PermissionError is a publish or a subscription that the server refused
// this connection's user.
type PermissionError struct {
	// Op is "publish to" or "subscribe to", Subject what was refused.
	Op, Subject string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%v: this NATS user has no permission to %s %s", ErrPermission, e.Op, e.Subject)
}

func (e *PermissionError) Unwrap() error { return ErrPermission }

// denials hands a permission violation, which NATS reports apart from
// the request it refused (the request itself would only time out), to
// the operations waiting on this connection.
type denials struct {
	mu      sync.Mutex
	next    int
	waiting map[int]context.CancelCauseFunc
	logged  map[string]bool // the refusals logged: each once
}

// guard returns ctx, ended with a *PermissionError as its cause when the
// server refuses this connection anything before done is called.
func (b *Bus) guard(ctx context.Context) (context.Context, func()) {
	gctx, cancel := context.WithCancelCause(ctx)
	d := &b.denied
	d.mu.Lock()
	if d.waiting == nil {
		d.waiting = map[int]context.CancelCauseFunc{}
	}
	id := d.next
	d.next++
	d.waiting[id] = cancel
	d.mu.Unlock()
	return gctx, func() {
		d.mu.Lock()
		delete(d.waiting, id)
		d.mu.Unlock()
		cancel(nil)
	}
}

// refusal is err, or the server's refusal that ended gctx (a guard's).
func refusal(gctx context.Context, err error) error {
	var pe *PermissionError
	if errors.As(context.Cause(gctx), &pe) {
		return pe
	}
	return err
}

var violationRe = regexp.MustCompile(`(?i)(publish|subscription) to "?([^"\s]+)"?`)

// asyncError is the connection's handler of what NATS reports apart
// from any call: a permission violation ends the guarded operations
// waiting (and is logged, naming the subject, the first time); anything
// else is logged.
func (b *Bus) asyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		b.log.Warn("jetstream: NATS reports an error", "url", b.url(), "err", b.scrub(err))
		return
	}
	pe := &PermissionError{Op: "publish to", Subject: "(unknown subject)"}
	if m := violationRe.FindStringSubmatch(err.Error()); m != nil {
		pe.Subject = m[2]
		if strings.EqualFold(m[1], "subscription") {
			pe.Op = "subscribe to"
		}
	}
	d := &b.denied
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.logged[pe.Op+" "+pe.Subject] {
		if d.logged == nil {
			d.logged = map[string]bool{}
		}
		d.logged[pe.Op+" "+pe.Subject] = true
		b.log.Error("jetstream: NATS refused this process's user (logged once; see docs/deployment.md, NATS users and permissions)",
			"url", b.url(), "op", pe.Op, "subject", pe.Subject)
	}
	for _, cancel := range d.waiting {
		cancel(pe)
	}
}

// url is the bus's URL as it may be printed.
func (b *Bus) url() string { return RedactURL(b.cfg.URL) }

// RedactURL is a NATS URL (or several, separated by commas) as it may be
// printed: a password is replaced by xxxxx, and a token (a user name
// without a password) too.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		rest := p
		scheme := ""
		if j := strings.Index(p, "://"); j >= 0 {
			scheme, rest = p[:j+3], p[j+3:]
		}
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			continue
		}
		user, host := rest[:at], rest[at+1:]
		if c := strings.Index(user, ":"); c >= 0 {
			user = user[:c] + ":xxxxx"
		} else {
			user = "xxxxx"
		}
		parts[i] = scheme + user + "@" + host
	}
	return strings.Join(parts, ",")
}

// scrubbed is an error whose text had the bus URL's secrets taken out.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub is err with the URL's password or token taken out of its text
// (a URL the NATS client cannot parse is quoted whole in its error).
func (b *Bus) scrub(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, p := range strings.Split(b.cfg.URL, ",") {
		msg = strings.ReplaceAll(msg, p, RedactURL(p))
		if s := urlSecret(p); len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

// urlSecret is the password, or the token, of a NATS URL; "" for none.
func urlSecret(p string) string {
	if j := strings.Index(p, "://"); j >= 0 {
		p = p[j+3:]
	}
	at := strings.LastIndex(p, "@")
	if at < 0 {
		return ""
	}
	user := p[:at]
	if c := strings.Index(user, ":"); c >= 0 {
		return user[c+1:]
	}
	return user
}
