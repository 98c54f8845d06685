package webviews

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// Withheld stands, in a target's links, for an endpoint of another target
// that the viewer may not see: a link end, or an address the link's
// reason or note names.
const Withheld = "[an endpoint outside your scope]"

// LinkEnds is what WithholdLinkEnds asks the store (Store has both).
type LinkEnds interface {
	EndpointTargetsAt(ctx context.Context, eps []netip.AddrPort, at []time.Time, window time.Duration) ([]string, error)
	VisibleTargets(ctx context.Context, scope analysis.Scope, ids []string) (map[string]bool, error)
}

// WithholdLinkEnds applies need to know to a target's links before they
// are shown. A link that was rejected by an analyst or withdrawn by the
// analysis stays on the target as evidence, and its far end belongs to
// another target now; a link's reason or note may name still other
// endpoints (the two addresses an identifier was active at at once). Each
// such address that is not one of d's own endpoints is kept only when
// scope may see the target it was the endpoint of at the link's time
// (window: the analysis's endpoint window); otherwise it is replaced by
// Withheld in the ends, the reason and the note, and the link's
// observation ids are cut to those of d's timeline. A national scope sees
// every end. The store does not do this itself: the other end's row is
// named so that the national view and the CLI can follow it.
func WithholdLinkEnds(ctx context.Context, st LinkEnds, d *analysis.TargetDetail, scope analysis.Scope, window time.Duration) error {
	if d == nil || scope.All || len(d.Links) == 0 {
		return nil
	}
	own := map[netip.AddrPort]bool{}
	for _, e := range d.Endpoints {
		own[netip.AddrPortFrom(e.IP.Unmap(), e.Port)] = true
	}
	// The foreign addresses of every link, each asked at its link's time.
	var eps []netip.AddrPort
	var at []time.Time
	asked := map[netip.AddrPort]map[time.Time]int{}
	for i := range d.Links {
		l := &d.Links[i]
		for _, ap := range LinkAddresses(l) {
			if own[ap] || asked[ap][l.At] > 0 {
				continue
			}
			if asked[ap] == nil {
				asked[ap] = map[time.Time]int{}
			}
			eps, at = append(eps, ap), append(at, l.At)
			asked[ap][l.At] = len(eps) // index+1
		}
	}
	if len(eps) == 0 {
		return nil
	}
	owners := make([]string, len(eps))
	visible := map[string]bool{}
	if st != nil {
		var err error
		if owners, err = st.EndpointTargetsAt(ctx, eps, at, window); err != nil {
			return err
		}
		var ids []string
		for _, id := range owners {
			if id != "" {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			if visible, err = st.VisibleTargets(ctx, scope, ids); err != nil {
				return err
			}
		}
	}
	timeline := map[string]bool{}
	for _, t := range d.Timeline {
		timeline[t.ID] = true
	}
	for i := range d.Links {
		l := &d.Links[i]
		hidden := false
		for _, ap := range LinkAddresses(l) {
			if own[ap] {
				continue
			}
			if n := asked[ap][l.At]; n > 0 && owners[n-1] != "" && visible[owners[n-1]] {
				continue
			}
			hidden = true
			withhold(l, ap)
		}
		if hidden {
			obs := []string{}
			for _, id := range l.Obs {
				if timeline[id] {
					obs = append(obs, id)
				}
			}
			l.Obs = obs
		}
	}
	return nil
}

// withhold replaces ap in l's ends, reason and note by Withheld.
func withhold(l *analysis.Link, ap netip.AddrPort) {
	for _, p := range []*string{&l.A, &l.B, &l.EndpointA, &l.EndpointB} {
		if a, ok := endAddr(*p); ok && a == ap {
			*p = Withheld
		}
	}
	for _, p := range []*string{&l.Reason, &l.Note} {
		*p = strings.ReplaceAll(*p, ap.String(), Withheld)
		if m := netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port()); ap.Addr().Is4() {
			*p = strings.ReplaceAll(*p, m.String(), Withheld)
		}
	}
}

// endAddr reads a link end ("ip:port", or "ip:port#n" for a later
// generation).
func endAddr(s string) (netip.AddrPort, bool) {
	s, _, _ = strings.Cut(s, "#")
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

// LinkAddresses returns the endpoints a link shows: its two ends and
// every IP:port its reason and note name, unmapped, each once.
func LinkAddresses(l *analysis.Link) []netip.AddrPort {
	var out []netip.AddrPort
	add := func(ap netip.AddrPort) {
		for _, o := range out {
			if o == ap {
				return
			}
		}
		out = append(out, ap)
	}
	for _, s := range []string{l.A, l.B, l.EndpointA, l.EndpointB} {
		if ap, ok := endAddr(s); ok {
			add(ap)
		}
	}
	for _, text := range []string{l.Reason, l.Note} {
		for _, w := range strings.FieldsFunc(text, func(r rune) bool {
			return r == ' ' || r == '(' || r == ')' || r == ',' || r == ';' || r == '"' || r == '\''
		}) {
			if ap, ok := endAddr(strings.TrimRight(w, ".:")); ok {
				add(ap)
			}
		}
	}
	return out
}
