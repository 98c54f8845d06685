package api

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
)

// Access decided at delivery. A target's events reach whoever may see the
// target when they are delivered (target_access: its routing or assigned
// agency and those it is shared with), never the agency an observation was
// routed to when it was stored: after a hand-off the old agency receives
// nothing more of the target, and the new one receives it. An event whose
// endpoint belongs to no target yet goes by the agency it was routed to;
// an analysis alert, to national scopes only; an agency's alert
// (internal/alerts), to that agency's users only, while its target is in
// the agency's scope.

// LiveStore is what the delivery asks the store (webviews.Store holds it).
type LiveStore interface {
	// EndpointTargetsAt returns, for each IP:port at an instant, the
	// target of the endpoint it was then, or "" (webviews.Store).
	EndpointTargetsAt(ctx context.Context, eps []netip.AddrPort, at []time.Time, window time.Duration) ([]string, error)
	// VisibleTargets returns which of the target ids scope may see now.
	VisibleTargets(ctx context.Context, scope analysis.Scope, ids []string) (map[string]bool, error)
}

// StoreAccess implements LiveAccess over a store.
type StoreAccess struct {
	Store LiveStore
	// Window is the analysis's endpoint window (0: its default): an
	// event after a longer silence of its IP:port is not given an earlier
	// generation's target.
	Window time.Duration
}

// Deliverable implements LiveAccess: the endpoints' current targets (one
// indexed query) and their visibility to p (one more).
func (l StoreAccess) Deliverable(ctx context.Context, p *access.Principal, evs []Event) ([]bool, error) {
	scope := p.Scope()
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
	owners, err := l.Store.EndpointTargetsAt(ctx, eps, at, l.Window)
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
	vis, err := l.Store.VisibleTargets(ctx, scope, ids)
	if err != nil {
		return nil, err
	}
	// An agency's alert is judged by its agency's own scope (not a
	// national reader's): one query for its targets.
	var agencySees map[string]bool
	var alertTargets []string
	for i := range evs {
		if evs[i].Alert != "" && evs[i].Target != "" && evs[i].Agency == p.Agency {
			alertTargets = append(alertTargets, evs[i].Target)
		}
	}
	if len(alertTargets) > 0 {
		if agencySees, err = l.Store.VisibleTargets(ctx, access.Scope{Agencies: []string{p.Agency}}, alertTargets); err != nil {
			return nil, err
		}
	}
	for i := range evs {
		ev := &evs[i]
		switch {
		case ev.Kind == EventAlert && ev.Alert != "":
			// An agency's alert: to its agency alone, while its target
			// (if any) is in that agency's scope now.
			out[i] = p.Agency == ev.Agency && (ev.Target == "" || agencySees[ev.Target])
		case ev.Kind == EventAlert || (!ev.Addr.IsValid() && ev.Target == ""):
			out[i] = scope.All
		case ev.Target != "":
			out[i] = vis[ev.Target]
		default:
			out[i] = scope.All || (ev.Agency != "" && slices.Contains(scope.Agencies, ev.Agency))
		}
	}
	return out, nil
}
