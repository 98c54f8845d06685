package webapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/web"
)

// Access decided at delivery. A target's rows reach whoever may see the
// target when they are delivered (target_access: its routing or assigned
// agency and those it is shared with), never the agency an observation was
// routed to when it was stored: after a hand-off the old agency receives
// nothing more of the target, on the live feed or on the overview, and the
// new one receives it. A row whose endpoint belongs to no target yet goes
// by the agency it was routed to; an alert, to national scopes only.

// liveAccess implements web.LiveAccess over the store.
type liveAccess struct {
	st     Store
	window time.Duration // the analysis's endpoint window (0: its default)
}

// Deliverable implements web.LiveAccess: the endpoints' current targets
// (one indexed query) and their visibility to u (one more).
func (l liveAccess) Deliverable(ctx context.Context, u *web.User, evs []web.Event) ([]bool, error) {
	scope := scopeOf(u)
	out := make([]bool, len(evs))
	if scope.Empty() || len(evs) == 0 {
		return out, nil
	}
	eps := make([]netip.AddrPort, 0, len(evs))
	at := make([]time.Time, 0, len(evs))
	idx := make([]int, 0, len(evs))
	for i := range evs {
		if evs[i].Addr.IsValid() {
			eps, at, idx = append(eps, evs[i].Addr), append(at, evs[i].Time), append(idx, i)
		}
	}
	// The target of the endpoint's generation at the event's time: an
	// IP:port is another subscriber's after a long silence.
	owners, err := l.st.EndpointTargetsAt(ctx, eps, at, l.window)
	if err != nil {
		return nil, err
	}
	for j, i := range idx {
		evs[i].Target = owners[j]
	}
	ids := make([]string, 0, len(evs))
	for i := range evs {
		if evs[i].Target != "" {
			ids = append(ids, evs[i].Target)
		}
	}
	vis, err := l.st.VisibleTargets(ctx, scope, ids)
	if err != nil {
		return nil, err
	}
	for i := range evs {
		ev := &evs[i]
		switch {
		case ev.Kind == web.EventAlert || (!ev.Addr.IsValid() && ev.Target == ""):
			out[i] = scope.All
		case ev.Target != "":
			out[i] = vis[ev.Target]
		default:
			out[i] = routedInto(scope, ev.Agency)
		}
	}
	return out, nil
}

// routedInto says whether a row routed to agency and belonging to no
// target is in scope.
func routedInto(scope analysis.Scope, agency string) bool {
	return scope.All || (agency != "" && slices.Contains(scope.Agencies, agency))
}

// recheck implements web.Config.Recheck with the access layer.
func recheck(acc *access.Service) func(r *http.Request) (*web.User, error) {
	return func(r *http.Request) (*web.User, error) {
		p, err := acc.Recheck(r)
		if errors.Is(err, access.ErrUnauthenticated) {
			return nil, fmt.Errorf("%w: %v", web.ErrSessionEnded, err)
		}
		if err != nil {
			return nil, err
		}
		return userOf(p), nil
	}
}

// filterNow returns ov with only the rows scope may see now: the newest
// high-score targets still in scope, and the recent observations whose
// endpoint's target is (or, with no target, whose routed agency is). ov
// may be a cached answer: it is not changed.
func (t *targets) filterNow(ctx context.Context, scope analysis.Scope, ov *web.Overview) (*web.Overview, error) {
	if scope.All {
		return ov, nil
	}
	eps := make([]netip.AddrPort, 0, len(ov.Recent))
	at := make([]time.Time, 0, len(ov.Recent))
	idx := make([]int, 0, len(ov.Recent))
	for i, r := range ov.Recent {
		if r.Endpoint.IsValid() {
			eps = append(eps, netip.AddrPortFrom(r.Endpoint.Addr().Unmap(), r.Endpoint.Port()))
			at, idx = append(at, r.Time), append(idx, i)
		}
	}
	// Each row under the target of its own generation (the IP:port may be
	// another subscriber's at another time).
	owners, err := t.st.EndpointTargetsAt(ctx, eps, at, t.window)
	if err != nil {
		return nil, err
	}
	recent := slices.Clone(ov.Recent)
	for j, i := range idx {
		recent[i].Target = owners[j]
	}
	ids := make([]string, 0, len(recent)+len(ov.NewestHigh))
	for i := range recent {
		r := &recent[i]
		if r.Target != "" {
			ids = append(ids, r.Target)
		}
	}
	for _, h := range ov.NewestHigh {
		ids = append(ids, h.ID)
	}
	vis, err := t.st.VisibleTargets(ctx, scope, ids)
	if err != nil {
		return nil, err
	}
	out := *ov
	out.Recent, out.NewestHigh = nil, nil
	for _, r := range recent {
		if (r.Target != "" && vis[r.Target]) || (r.Target == "" && routedInto(scope, r.Agency)) {
			out.Recent = append(out.Recent, r)
		}
	}
	for _, h := range ov.NewestHigh {
		if vis[h.ID] {
			out.NewestHigh = append(out.NewestHigh, h)
		}
	}
	return &out, nil
}
