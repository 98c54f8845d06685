package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
)

// DefaultHandOffEvery is how often `vigil serve` looks for claimed targets
// that moved (--handoff-every).
const DefaultHandOffEvery = 10 * time.Minute

// handOffChecker is serve's periodic hand-off check: what `vigil claim
// handoffs` does on demand (casework.Claims.ProposeHandOffs over the
// targets' timelines, where only first-hand observations move a target),
// so that a proposal appears without anyone running a command. The store
// keeps one pending proposal a target: a check that finds a target still
// moved proposes nothing new.
type handOffChecker struct {
	a     *app
	sq    backend
	every time.Duration
	// checks counts the checks that ended (with or without an error).
	checks atomic.Int64

	proposed, failed prometheus.Counter
}

// newHandOffChecker returns the checker of sq, registering its counters
// on reg.
func newHandOffChecker(a *app, sq backend, every time.Duration, reg *prometheus.Registry) (*handOffChecker, error) {
	h := &handOffChecker{a: a, sq: sq, every: every,
		proposed: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_handoff_proposals_total",
			Help: "Hand-off proposals made by serve's periodic check (--handoff-every)."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_handoff_check_errors_total",
			Help: "Periodic hand-off checks that failed (logged; the next one runs on schedule)."}),
	}
	for _, c := range []prometheus.Collector{h.proposed, h.failed} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("hand-off metrics: %w", err)
		}
	}
	return h, nil
}

// check proposes the hand-offs due now and audits each one made: the
// record names the target, the agency holding the claim, the agency
// proposed and why (the actor is the account serve runs as).
func (h *handOffChecker) check(ctx context.Context) ([]casework.Proposal, error) {
	defer h.checks.Add(1)
	ps, err := claimsOf(h.sq).ProposeHandOffs(ctx, h.sq, movement{h.sq})
	for _, p := range ps {
		h.proposed.Inc()
		if aerr := h.a.auditTo(ctx, h.sq, audit.ActionChange, "target:"+p.Target, "", map[string]any{
			"handoff_proposed": p.To, "from": p.From, "reason": p.Reason, "by": "vigil serve --handoff-every"}); aerr != nil && err == nil {
			err = aerr
		}
		h.a.log.Info("hand-off proposed", "target", p.Target, "from", p.From, "to", p.To)
	}
	return ps, err
}

// run checks at once, then every h.every, until ctx ends. A failed check
// is logged and counted, and the next one runs on schedule: a store that
// is briefly unavailable does not stop the server.
func (h *handOffChecker) run(ctx context.Context) error {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		if _, err := h.check(ctx); err != nil && ctx.Err() == nil {
			h.failed.Inc()
			h.a.log.Error("hand-off check", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
