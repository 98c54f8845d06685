// Package trail is the one way the web tree writes the audit trail: the
// pages (internal/web/pages) and the API (internal/web/api) record every
// read through a Trail, before the data leaves.
//
// A record names the request's authenticated principal (as the access
// layer put it in the request's context, access.PrincipalFrom; "anonymous"
// without one), the client's address (after the edge: the proxy's client
// when a trusted proxy forwarded the request), the action, the object,
// the stated purpose and a detail value encoded as audit.Detail encodes
// it. Nothing a request says about its sender goes into a record.
//
// Before is the gate a handler passes before it writes what it read: when
// the record cannot be written, the request is refused (an answer of 500
// or more that carries nothing of the data) and the handler writes
// nothing more. This package must never let a handler serve data whose
// record was not written, and never build an actor from request input.
package trail

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

// Appender is where the records go: the hash-chained log (*audit.Log).
type Appender interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// Refusal writes the answer to a request whose record could not be
// written, in the handler's own form (a page, a JSON error). It must
// answer 500 or more and write nothing of the data.
type Refusal func(w http.ResponseWriter, r *http.Request)

// ErrNoTrail is returned by a nil Trail: no audit trail is configured, so
// nothing that needs a record may be served.
var ErrNoTrail = errors.New("no audit trail configured")

// Trail writes the web's audit records. A nil *Trail writes none and
// refuses every read.
type Trail struct {
	app Appender
	log *slog.Logger
}

// New returns the trail that appends to app; failures are logged on log
// (nil: discarded).
func New(app Appender, log *slog.Logger) *Trail {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trail{app: app, log: log}
}

// Record appends the record of r's principal under ctx (r's context, or a
// detached one for the end of a stream whose request was cancelled). A
// failure is logged and returned: the caller serves nothing that needed
// the record.
func (t *Trail) Record(ctx context.Context, r *http.Request, action, object, purpose string, detail any) error {
	if t == nil || t.app == nil {
		return ErrNoTrail
	}
	rec := audit.Record{Actor: "anonymous", Remote: r.RemoteAddr, Action: action, Object: object, Purpose: purpose}
	if p := access.PrincipalFrom(r.Context()); p != nil {
		rec.Actor, rec.ActorAgency, rec.Role, rec.Remote = p.Name, p.Agency, string(p.Role), p.Remote
	}
	if detail != nil {
		rec.Detail = audit.Detail(detail)
	}
	if _, err := t.app.Append(ctx, rec); err != nil {
		t.log.Error("audit trail not written", "action", action, "object", object, "user", rec.Actor, "path", r.URL.Path, "err", err)
		return err
	}
	return nil
}

// Before records what the response to r is about to show. When the record
// cannot be written it answers with refuse (nil: a plain 503) and returns
// false: the handler returns without writing anything more. A refusal that
// would answer below 500 answers 503 instead.
func (t *Trail) Before(w http.ResponseWriter, r *http.Request, refuse Refusal, action, object, purpose string, detail any) bool {
	if err := t.Record(r.Context(), r, action, object, purpose, detail); err == nil {
		return true
	}
	if refuse == nil {
		refuse = Refuse
	}
	refuse(&atLeast500{ResponseWriter: w}, r)
	return false
}

// Refuse is the plain refusal: 503 and a sentence, nothing else.
func Refuse(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "the audit trail did not answer; nothing is served without its record", http.StatusServiceUnavailable)
}

// atLeast500 keeps a refusal's status at 500 or more.
type atLeast500 struct {
	http.ResponseWriter
	wrote bool
}

func (w *atLeast500) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if code < http.StatusInternalServerError {
		code = http.StatusServiceUnavailable
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *atLeast500) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	return w.ResponseWriter.Write(b)
}

func (w *atLeast500) Unwrap() http.ResponseWriter { return w.ResponseWriter }
