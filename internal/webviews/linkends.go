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
	ownIPs := map[netip.Addr]bool{}
	for _, e := range d.Endpoints {
		own[netip.AddrPortFrom(e.IP.Unmap(), e.Port)] = true
		ownIPs[e.IP.Unmap()] = true
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
			withhold(l, ap, ownIPs)
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

// withhold replaces ap in l's ends, reason and note by Withheld: every
// form of it the text holds (addressTokens), and its host written alone
// unless that host is one of own's.
func withhold(l *analysis.Link, ap netip.AddrPort, own map[netip.Addr]bool) {
	for _, p := range []*string{&l.A, &l.B, &l.EndpointA, &l.EndpointB} {
		if a, ok := endAddr(*p); ok && a == ap {
			*p = Withheld
		}
	}
	for _, p := range []*string{&l.Reason, &l.Note} {
		var b strings.Builder
		last := 0
		for _, t := range addressTokens(*p) {
			if t.ap == ap || (!t.ap.IsValid() && t.addr == ap.Addr() && !own[t.addr]) {
				b.WriteString((*p)[last:t.start])
				b.WriteString(Withheld)
				last = t.end
			}
		}
		if last > 0 {
			b.WriteString((*p)[last:])
			*p = b.String()
		}
	}
}

// addrToken is an address found in free text: text[start:end] reads as
// ap (an IP and port, unmapped) or, with ap invalid, as addr alone.
type addrToken struct {
	start, end int
	ap         netip.AddrPort
	addr       netip.Addr
}

// addressTokens finds the addresses a text names, in any form a person or
// a program may write them: after any character that cannot be part of
// one ("=", "<", a line end, a letter past f), in capitals, in full or
// IPv4-mapped, with a port ("1.2.3.4:5", "[v6]:5") or alone. A run of
// characters that may make an address is read whole, else from its
// first digit or bracket that makes one.
func addressTokens(text string) []addrToken {
	var out []addrToken
	isAddrByte := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':' || c == '[' || c == ']'
	}
	for i := 0; i < len(text); {
		if !isAddrByte(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isAddrByte(text[j]) {
			j++
		}
		for k := i; k < j; k++ {
			if k > i && !((text[k] == '[' || text[k] >= '0' && text[k] <= '9') && isHexLetter(text[k-1])) {
				continue // only past letters ("ab1.2.3.4"): never inside a number
			}
			if t, ok := readAddress(text, k, j); ok {
				out = append(out, t)
				break
			}
		}
		i = j
	}
	return out
}

// maxAddressText is longer than any address and port written out
// ("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535" is 53).
const maxAddressText = 64

func isHexLetter(c byte) bool { return c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// readAddress reads text[start:end], less trailing dots and colons (a
// sentence's end), as an address and port or an address alone.
func readAddress(text string, start, end int) (addrToken, bool) {
	for end > start && (text[end-1] == '.' || text[end-1] == ':') {
		end--
	}
	if end-start > maxAddressText {
		return addrToken{}, false
	}
	w := text[start:end]
	if ap, err := netip.ParseAddrPort(w); err == nil {
		return addrToken{start, end, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.Addr().Unmap()}, true
	}
	if v4, ok := strings.CutPrefix(w, "["); ok { // "[1.2.3.4]:5"
		if ap, err := netip.ParseAddrPort(strings.Replace(v4, "]", "", 1)); err == nil && ap.Addr().Is4() {
			return addrToken{start, end, ap, ap.Addr()}, true
		}
	}
	bare := strings.TrimSuffix(strings.TrimPrefix(w, "["), "]")
	if a, err := netip.ParseAddr(bare); err == nil && (strings.Contains(bare, ".") || strings.Count(bare, ":") >= 2) {
		return addrToken{start: start, end: end, addr: a.Unmap()}, true
	}
	return addrToken{}, false
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
		for _, t := range addressTokens(text) {
			if t.ap.IsValid() {
				add(t.ap)
			}
		}
	}
	return out
}
