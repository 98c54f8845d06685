package pages

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// Access decided at delivery. A target's overview rows reach whoever may
// see the target when they are shown (target_access: its routing or
// assigned agency and those it is shared with), never the agency an
// observation was routed to when it was stored: after a hand-off the old
// agency sees nothing more of the target on the overview, and the new one
// sees it. A row whose endpoint belongs to no target yet goes by the
// agency it was routed to. The live feed decides its events the same way
// (api.StoreAccess).

// routedInto says whether a row routed to agency and belonging to no
// target is in scope.
func routedInto(scope analysis.Scope, agency string) bool {
	return scope.All || (agency != "" && slices.Contains(scope.Agencies, agency))
}

// filterNow returns ov with only the rows scope may see now: the newest
// high-score targets still in scope, and the recent observations whose
// endpoint's target is (or, with no target, whose routed agency is). ov
// may be a cached answer: it is not changed.
func (t *storeTargets) filterNow(ctx context.Context, scope analysis.Scope, ov *Overview) (*Overview, error) {
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
