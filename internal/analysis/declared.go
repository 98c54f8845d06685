package analysis

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/vigil-oss/vigil/internal/observe"
)

// claim is a listen port declared in first-hand DHT announces: the IP:port
// declared, and the announce endpoints (their own UDP sources) that
// declared it, with the span of those announces.
type claim struct {
	by       map[int32]*span
	poisoned string // why it links nothing, if it does not
}

// widen extends a span (nil: a new one) to time t of observation id.
func (e *Engine) widen(sp *span, t int64, id string) *span {
	if sp == nil {
		sp = &span{first: t, last: t}
		e.setObs(&sp.lastObs, id)
		return sp
	}
	sp.first = min(sp.first, t)
	if t > sp.last {
		sp.last = t
		e.setObs(&sp.lastObs, id)
	}
	return sp
}

// probeSpan is the span of an endpoint's first-hand peer_probe contacts,
// with the first observation in it (the announce_listen_port link's).
type probeSpan struct {
	span
	firstObs obsRef
}

// widenProbes extends p's probe span to time t of observation id.
func (e *Engine) widenProbes(p *endpoint, t int64, id string) {
	if p.probes == nil {
		p.probes = &probeSpan{span: span{first: t, last: t}}
		e.setObs(&p.probes.lastObs, id)
		e.setObs(&p.probes.firstObs, id)
		return
	}
	if t < p.probes.first {
		e.setObs(&p.probes.firstObs, id)
	}
	e.widen(&p.probes.span, t, id)
}

// linkDeclared applies the announce_listen_port rule. A first-hand DHT
// announce is its own endpoint (the UDP source it came from); the port it
// declares is a claim. It joins the endpoint probed at IP:declared port
// only by this link, at the rule's confidence, when a first-hand probe
// there falls within AnnounceWindow of the announces. Behind carrier-grade
// NAT the port may be another subscriber's, so: a declared IP:port that
// two announce endpoints declared within the window of each other (two
// programs, or two subscribers, behind one address) links nothing, and
// every link it made is withdrawn.
func (e *Engine) linkDeclared(p *endpoint, o *observe.Observation) {
	if !o.FirstHand() {
		return
	}
	win := int64(e.cfg.Links.AnnounceWindow)
	switch o.Method {
	case observe.MethodDHTAnnounce:
		lp := o.Client.ListenPort
		if lp == 0 || lp == p.key.Port() {
			return
		}
		ck := netip.AddrPortFrom(p.key.Addr(), lp)
		c := e.claims[ck]
		if c == nil {
			c = &claim{by: map[int32]*span{}}
			e.claims[ck] = c
		}
		if c.poisoned != "" {
			return
		}
		sp := e.widen(c.by[p.id], o.Time.UnixNano(), o.ID)
		c.by[p.id] = sp
		for _, oid := range slices.Sorted(maps.Keys(c.by)) {
			if osp := c.by[oid]; oid != p.id && gap(sp, osp) <= win {
				e.poisonClaim(ck, c, fmt.Sprintf("declared by the announces of %s (%s) and %s (%s) within %s of each other: one address shared by several programs or subscribers (carrier-grade NAT)",
					e.eps[oid].key, ts(osp.last), p.key, ts(sp.last), e.cfg.Links.AnnounceWindow))
				return
			}
		}
		for _, gid := range e.epByKey[ck] {
			if q := e.eps[gid]; q.probes != nil && gap(sp, &q.probes.span) <= win {
				e.addDeclared(ck, p, sp, q)
			}
		}
	case observe.MethodPeerProbe:
		c := e.claims[p.key]
		if c == nil || c.poisoned != "" {
			return
		}
		for _, oid := range slices.Sorted(maps.Keys(c.by)) {
			if sp := c.by[oid]; gap(sp, &p.probes.span) <= win {
				e.addDeclared(p.key, e.eps[oid], sp, p)
			}
		}
	}
}

// addDeclared links announce endpoint a to probed endpoint q.
func (e *Engine) addDeclared(ck netip.AddrPort, a *endpoint, as *span, q *endpoint) {
	ev := ck.String()
	if _, no := e.blocked[blockKey(RuleAnnounceListen, ev)]; no {
		return
	}
	lk := newLinkKey(a.id, q.id, RuleAnnounceListen, ev)
	if e.links[lk] != nil {
		return
	}
	reason := fmt.Sprintf("DHT announces from %s (last %s) declared listen port %d; %s answered a probe there at %s: a declared port only, which behind carrier-grade NAT may be another subscriber's",
		a.key, ts(as.last), ck.Port(), q.key, ts(q.probes.first))
	e.addLink(lk, reason, []string{e.obsID(&as.lastObs), e.obsID(&q.probes.firstObs)}, max(as.last, q.probes.first))
}

// poisonClaim withdraws every link a declared IP:port made and stops it
// linking.
func (e *Engine) poisonClaim(ck netip.AddrPort, c *claim, why string) {
	c.poisoned = why
	ev := ck.String()
	e.dropLinks(func(k linkKey) bool { return k.rule == RuleAnnounceListen && k.ev == ev }, "withdrawn", "listen port "+why)
}
