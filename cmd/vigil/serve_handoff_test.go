package main

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// vigil serve checks for hand-offs on its own (--handoff-every): a claimed
// target whose newest first-hand observations move to another agency
// gets one pending proposal there, however many checks run; a target
// that only third parties (a DHT node, a tracker, a peer's PEX) report
// elsewhere gets none, so that nobody can move a case by lying about a
// peer. Each proposal is audited once.
func TestServeProposesHandOffsOnItsOwn(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := analysis.DefaultConfig()
	cfg.SaveInterval = 0
	e, err := analysis.New(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(15, 9))
	now := time.Now().UTC()
	at := func(ip, agency, method string, hoursAgo int) observe.Observation {
		o := storetest.Observation(r, now.Add(-time.Duration(hoursAgo)*time.Hour), 1)
		o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(ip), 51413
		o.Method, o.Marks, o.Jurisdiction.Agency = method, nil, agency
		return o
	}
	obs := []observe.Observation{
		// Moved: first-hand in Lyon, then first-hand in Lille.
		at("192.0.2.61", "fr-lyon", observe.MethodPeerProbe, 6),
		at("192.0.2.61", "fr-lyon", observe.MethodPeerProbe, 5),
		at("192.0.2.61", "fr-lille", observe.MethodPeerProbe, 2),
		// Not moved: first-hand in Lyon; third parties then report it
		// in Lille, by every second-hand method, more recently.
		at("192.0.2.62", "fr-lyon", observe.MethodPeerProbe, 6),
		at("192.0.2.62", "fr-lille", observe.MethodDHTGetPeers, 3),
		at("192.0.2.62", "fr-lille", observe.MethodTracker, 2),
		at("192.0.2.62", "fr-lille", observe.MethodPEX, 1),
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Add(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ts, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 10})
	if err != nil || len(ts) != 2 {
		t.Fatalf("targets %+v %v", ts, err)
	}
	idOf := map[string]string{}
	for _, s := range ts {
		d, err := st.Target(ctx, s.ID, analysis.AllAgencies)
		if err != nil {
			t.Fatal(err)
		}
		idOf[d.Endpoints[0].IP.String()] = s.ID
		if _, err := claimsOf(st).Claim(ctx, s.ID, "fr-lyon", "u1", "04 00 00 00 00"); err != nil {
			t.Fatal(err)
		}
	}
	moved, stayed := idOf["192.0.2.61"], idOf["192.0.2.62"]

	a := &app{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}
	hc, err := newHandOffChecker(a, st, 5*time.Millisecond, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- hc.run(runCtx) }()
	for deadline := time.Now().Add(10 * time.Second); hc.checks.Load() < 5; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d checks in 10 s", hc.checks.Load())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the checker ended with %v", err)
	}
	ps, err := st.Proposals(ctx, casework.Pending)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Target != moved || ps[0].From != "fr-lyon" || ps[0].To != "fr-lille" {
		t.Fatalf("after %d checks: pending proposals %+v, want one, of %s from fr-lyon to fr-lille", hc.checks.Load(), ps, moved)
	}
	all, err := st.Proposals(ctx, "")
	if err != nil || len(all) != 1 {
		t.Fatalf("proposals in every state: %+v %v (the third parties' reports of %s moved it?)", all, err, stayed)
	}
	var recs []audit.Record
	if err := st.AuditRecords(ctx, audit.Filter{Action: audit.ActionChange}, func(r audit.Record) error {
		if strings.Contains(string(r.Detail), "handoff_proposed") {
			recs = append(recs, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Object != "target:"+moved || !strings.Contains(string(recs[0].Detail), "fr-lille") {
		t.Fatalf("audit records of proposals: %+v, want one for %s", recs, moved)
	}
}

// --handoff-every is documented, and a negative interval is refused.
func TestServeHandOffEveryFlag(t *testing.T) {
	out := mustRun(t, map[string]string{"USER": "tester"}, "", "serve", "--help")
	if !strings.Contains(out, "--handoff-every") || !strings.Contains(out, "hand-off") {
		t.Fatalf("serve --help says nothing of --handoff-every:\n%s", out)
	}
	sf := serveFlags{handOffEvery: -time.Minute, cpEvery: 1, cpInterval: time.Second}
	if _, _, err := sf.check("127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "--handoff-every") {
		t.Fatalf("--handoff-every -1m: %v", err)
	}
}
