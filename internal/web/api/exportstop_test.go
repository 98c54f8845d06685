package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/web/trail"
)

// pausing is the store with its bulk export held after the first
// observation until resume is closed.
type pausing struct {
	*sqlite.Store
	first, resume chan struct{}
}

func (p *pausing) Observations(ctx context.Context, f store.ObservationFilter, fn func(*observe.Observation) error) error {
	n := 0
	return p.Store.Observations(ctx, f, func(o *observe.Observation) error {
		if n++; n == 2 {
			close(p.first)
			select {
			case <-p.resume:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return fn(o)
	})
}

// The bulk export of raw observations can run for hours. When its
// credential ends on the way (the token revoked, the account disabled,
// logged out), it stops at once: nothing more is sent, the client sees
// a broken stream rather than a complete one, and the trail says so.
func TestObservationsExportStopsWhenItsCredentialEnds(t *testing.T) {
	for _, end := range []string{"revoke", "disable"} {
		t.Run(end, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			acfg := access.DefaultConfig()
			acfg.Argon2 = access.Argon2Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
			svc, err := access.New(f.st, &audit.Log{Store: f.st}, acfg)
			if err != nil {
				t.Fatal(err)
			}
			cli := access.CLIActor("test")
			tok, tk, err := svc.CreateToken(ctx, cli, "analyst", "export", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			st := &pausing{Store: f.st, first: make(chan struct{}), resume: make(chan struct{})}
			srv := httptest.NewServer(svc.Wrap(Handler(Config{Targets: f.st, Observations: st, Retention: isp.DefaultRetention(),
				Trail: trail.New(svc.AuditLog(), nil), Recheck: svc.Recheck, RecheckEvery: time.Nanosecond})))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/observations?purpose=PV+2026%2F7", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			type answer struct {
				body string
				err  error
			}
			done := make(chan answer, 1)
			go func() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- answer{err: err}
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				done <- answer{string(b), err}
			}()
			select {
			case <-st.first:
			case <-time.After(10 * time.Second):
				t.Fatal("the export did not start")
			}
			switch end {
			case "revoke":
				err = svc.RevokeToken(ctx, cli, tk.ID)
			case "disable":
				err = svc.DisableUser(ctx, cli, "analyst", "left the office")
			}
			if err != nil {
				t.Fatal(err)
			}
			close(st.resume)
			a := <-done
			if n := strings.Count(a.body, "\n"); n > 1 {
				t.Errorf("the export went on after its credential ended: %d observations sent", n)
			}
			if a.err == nil {
				t.Errorf("the stopped export reads as complete (%d bytes)", len(a.body))
			}
			if !f.audited(t, "analyst", audit.ActionDenied, "observations") {
				t.Error("the stopped export is not in the trail")
			}
		})
	}
}
