package trail

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

// log is an Appender that keeps its records, or fails.
type log struct {
	recs []audit.Record
	fail bool
}

func (l *log) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	if l.fail {
		return audit.Record{}, errors.New("database or disk is full")
	}
	l.recs = append(l.recs, r)
	return r, nil
}

// The record names the principal the access layer established, never
// what the request says about itself; without one, "anonymous" at the
// client's address.
func TestRecordNamesThePrincipal(t *testing.T) {
	l := &log{}
	tr := New(l, nil)
	r := httptest.NewRequest("GET", "/targets/T-1?actor=mallory", nil)
	r.RemoteAddr = "127.0.0.7:4000"
	r.Header.Set("X-Forwarded-For", "192.0.2.9")
	if err := tr.Record(r.Context(), r, audit.ActionViewTarget, "target:T-1", "PV 1", map[string]any{"endpoints": []string{"127.0.0.9:6881"}}); err != nil {
		t.Fatal(err)
	}
	p := &access.Principal{Name: "alice", Agency: "fr-a", Role: access.RoleInvestigator, Remote: "127.0.0.8:5000", Via: "session"}
	r = r.WithContext(access.WithPrincipal(r.Context(), p))
	if err := tr.Record(r.Context(), r, audit.ActionListTargets, "targets", "", nil); err != nil {
		t.Fatal(err)
	}
	if len(l.recs) != 2 {
		t.Fatalf("%d records", len(l.recs))
	}
	a, b := l.recs[0], l.recs[1]
	if a.Actor != "anonymous" || a.Remote != "127.0.0.7:4000" || a.ActorAgency != "" || a.Role != "" || a.Action != audit.ActionViewTarget ||
		a.Object != "target:T-1" || a.Purpose != "PV 1" || !json.Valid(a.Detail) || !strings.Contains(string(a.Detail), "127.0.0.9:6881") {
		t.Errorf("anonymous record: %+v", a)
	}
	if b.Actor != "alice" || b.ActorAgency != "fr-a" || b.Role != "investigator" || b.Remote != "127.0.0.8:5000" || b.Detail != nil {
		t.Errorf("principal's record: %+v", b)
	}
}

// When the record cannot be written, Before refuses: 500 or more, nothing
// of the data, and the handler is told to stop. A refusal that tries to
// answer below 500 still answers 503. A nil Trail refuses everything.
func TestBeforeRefusesWhenTheTrailFails(t *testing.T) {
	for _, c := range []struct {
		name   string
		tr     *Trail
		refuse Refusal
		want   int
		body   string
	}{
		{"plain", New(&log{fail: true}, nil), nil, 503, "audit trail"},
		{"own form", New(&log{fail: true}, nil), func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"no record"}`))
		}, 503, `{"error":"no record"}`},
		{"a refusal answering 200", New(&log{fail: true}, nil), func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("refused"))
		}, 503, "refused"},
		{"a refusal answering 404", New(&log{fail: true}, nil), func(w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}, 503, "not found"},
		{"no trail", nil, nil, 503, "audit trail"},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/api/v1/targets/T-1", nil)
		if c.tr.Before(rec, r, c.refuse, audit.ActionViewTarget, "target:T-1", "", nil) {
			t.Errorf("%s: Before let the handler serve without its record", c.name)
		}
		if rec.Code != c.want || !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, rec.Code, rec.Body.String(), c.want, c.body)
		}
	}
	l := &log{}
	rec := httptest.NewRecorder()
	if !New(l, nil).Before(rec, httptest.NewRequest("GET", "/", nil), nil, audit.ActionListTargets, "overview", "", nil) {
		t.Fatal("Before refused with a working trail")
	}
	if len(l.recs) != 1 || rec.Code != 200 || rec.Body.Len() != 0 {
		t.Fatalf("with a working trail: %d records, %d %q", len(l.recs), rec.Code, rec.Body.String())
	}
}
