package analysis

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

type identKey struct {
	rule string
	val  string
}

// span is the time span of the sightings of something (an identifier at
// an endpoint, a declared port by an announce endpoint) and the last
// observation in it.
type span struct {
	first, last int64
	lastObs     obsRef
}

// obsRef is an observation id as the engine keeps it in a span
// (Engine.setObs, and Engine.obsID gives it back): the 16 bytes of an id
// in canonical form (observe.IDBytes: every id observe.NewID makes), or,
// for any other id, zero bytes (byte 6, a UUID's version, is not 0 in an
// id kept as its bytes) and the id in Engine.oddIDs under the field's
// address. A string kept 36 bytes in an allocation of 48 and its header
// 16.
type obsRef [16]byte

// setObs keeps observation id id in *r, a field of a span (spans are
// never moved nor dropped while the engine lives).
func (e *Engine) setObs(r *obsRef, id string) {
	if b, ok := observe.IDBytes(id); ok && b[6]>>4 != 0 {
		if r[6]>>4 == 0 {
			delete(e.oddIDs, r)
		}
		*r = obsRef(b)
		return
	}
	if e.oddIDs == nil {
		e.oddIDs = map[*obsRef]string{}
	}
	*r = obsRef{}
	e.oddIDs[r] = id
}

// obsID is the observation id *r keeps.
func (e *Engine) obsID(r *obsRef) string {
	if r[6]>>4 != 0 {
		return observe.FormatID(*r)
	}
	return e.oddIDs[r]
}

// ident is one protocol identifier and the endpoints it was seen at.
type ident struct {
	key   identKey
	eps   map[int32]*span
	hours []identHour // sorted by hour: each hour's distinct IPs, up to the cap + 1
	// poisoned says why it links nothing, if it does not.
	poisoned string
}

// identHour is one IP an identifier was seen from in a clock hour (since
// the Unix epoch, as fileAgg.fhHours counts them): the IP of endpoint ep,
// the first seen from it that hour. A map of hours to IPs took about seven
// times the bytes.
type identHour struct {
	hour int32
	ep   int32
}

// addHour records that id was seen from p in clock hour h, and returns
// the number of distinct IPs it was seen from that hour (0 when p's IP
// was counted already). Observations mostly arrive in time order: the
// common case appends.
func (e *Engine) addHour(id *ident, h int32, p *endpoint) int {
	ip := p.key.Addr()
	i, _ := slices.BinarySearchFunc(id.hours, h, func(x identHour, h int32) int { return cmp.Compare(x.hour, h) })
	j := i
	for ; j < len(id.hours) && id.hours[j].hour == h; j++ {
		if e.eps[id.hours[j].ep].key.Addr() == ip {
			return 0
		}
	}
	id.hours = slices.Insert(id.hours, j, identHour{hour: h, ep: p.id})
	return j + 1 - i
}

type linkKey struct {
	a, b int32 // a < b
	rule string
	ev   string
}

type link struct {
	id     int64
	key    linkKey
	reason string
	conf   float64
	obs    []string
	at     int64
	state  string
	note   string
}

func (k linkKey) storeKey() string {
	return strconv.Itoa(int(k.a)) + "|" + strconv.Itoa(int(k.b)) + "|" + k.rule + "|" + k.ev
}

func blockKey(rule, ev string) string { return rule + "|" + ev }

// usable reports whether an identifier's bytes can tell devices apart:
// long enough and not all one byte (zeros, a client's placeholder).
func usable(b []byte, n int) bool {
	if len(b) < n {
		return false
	}
	for _, c := range b[1:] {
		if c != b[0] {
			return true
		}
	}
	return false
}

func short(b []byte) string {
	h := hex.EncodeToString(b)
	if len(h) > 8 {
		return h[:8] + "…"
	}
	return h
}

// linkIdentifiers applies the identifier rules to one observation. Only
// what the endpoint itself said links: a tracker's list, a PEX message or
// a DHT node's values (or anything marked third_party or spoofable_source)
// link nothing, whatever identifiers they carry. A DHT node id links only
// when it passes BEP 42 for the address it came from and the sensor did
// not mark it unchecked, nor learnt it by pinging a declared port
// (node_id_via_ping: behind carrier-grade NAT another subscriber may have
// answered).
func (e *Engine) linkIdentifiers(p *endpoint, o *observe.Observation) {
	if !o.FirstHand() {
		return
	}
	c := &o.Client
	if usable(c.NodeID, 20) && !o.HasMark(observe.MarkNodeIDUnchecked) && !o.HasMark(observe.MarkNodeIDViaPing) && bep42Valid(c.NodeID, p.key.Addr()) {
		e.sightIdent(e.identOf(p, slotNodeID, RuleNodeID, c.NodeID), p, o)
	}
	if usable(c.UserHash, 16) {
		e.sightIdent(e.identOf(p, slotUserHash, RuleUserHash, c.UserHash), p, o)
	}
	if usable(c.GUID, 16) {
		e.sightIdent(e.identOf(p, slotGUID, RuleGUID, c.GUID), p, o)
	}
	if len(c.PeerID) == 20 && usable(c.PeerID[8:], 12) {
		e.sightIdent(e.identOf(p, slotPeerID, RulePeerID, c.PeerID), p, o)
	}
	if lp := c.ListenPort; lp != 0 && c.Name != "" && o.Place.ASN != 0 && !slices.Contains(e.cfg.Links.CommonPorts, lp) {
		// The client's name and version are the peer's own text: written
		// by observe.EscapeText (docs/evidence.md, "Peer text"), as the
		// link's evidence and reason hold them in every store.
		v := fmt.Sprintf("AS%d|%d|%s|%s", o.Place.ASN, lp, observe.EscapeText(c.Name), observe.EscapeText(c.Version))
		e.sight(identKey{RuleListenPort, v}, p, o)
	}
	if v, ok := e.subscriberPrefix(p, o); ok {
		e.sight(identKey{RuleSubscriberPrefix, v}, p, o)
	}
}

// prefixSentence says a subscriber_prefix evidence in words:
// "fd00:0:1:1::/64 port 41234 in AS64496 (a /64 per subscriber, from the
// allocation table), client Transmission 3.00". Evidence stored before
// the client was part of it has four fields and no client.
func prefixSentence(ev string) string {
	f := strings.SplitN(ev, "|", 6)
	if len(f) != 4 && len(f) != 6 {
		return ev
	}
	pfx, err := netip.ParsePrefix(f[1])
	if err != nil {
		return ev
	}
	from := "from the allocation table"
	if f[3] != "table" {
		from = "by default: " + f[0] + " is not in the allocation table"
	}
	out := fmt.Sprintf("%s port %s in %s (a /%d per subscriber, %s)", pfx, f[2], f[0], pfx.Bits(), from)
	if len(f) == 6 {
		out += ", client " + strings.TrimSpace(f[4]+" "+f[5])
	}
	return out
}

// Ranges whose /64s are not a subscriber's: Teredo (2001::/32, a /64 per
// relay server, shared by all its clients), 6to4 (2002::/16, derived from
// an IPv4 address, perhaps behind carrier-grade NAT), NAT64 (64:ff9b::/96
// and 64:ff9b:1::/48, the whole IPv4 internet in one /96) and the
// IPv4-compatible ::/96.
var notSubscriberPrefixes = []netip.Prefix{
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("::/96"),
}

// subscriberPrefix is the identity the subscriber_prefix rule sees for a
// first-hand observation at endpoint p,
// "AS<asn>|<prefix>|<port>|<basis>|<client>|<version>", or false when the
// rule does not apply: an IPv4 address; an address no subscriber holds a
// prefix of (link-local, multicast, loopback, Teredo, 6to4, NAT64); an
// unknown AS; a VPN's or hosting provider's address (a /64 there is
// shared by customers); a client default port (two machines of a shared
// /64 may both use it); no client name (the endpoint did not say which
// client it runs: two machines of a shared /64 on one port would be told
// apart by nothing); an AS whose subscribers get a single address
// (IPv6Config: 128). The client's name and version (written by
// observe.EscapeText) are part of the identity, as for
// listen_port_client: two machines of one campus, office or hotspot /64
// that happen to share a port but run different clients never join.
func (e *Engine) subscriberPrefix(p *endpoint, o *observe.Observation) (string, bool) {
	ip, port := p.key.Addr(), p.key.Port()
	if !ip.Is6() || ip.Is4In6() || !ip.IsGlobalUnicast() || o.Place.ASN == 0 || p.vpn || p.hosting || o.Place.VPN || o.Place.Hosting ||
		port == 0 || slices.Contains(e.cfg.Links.CommonPorts, port) || o.Client.Name == "" {
		return "", false
	}
	for _, r := range notSubscriberPrefixes {
		if r.Contains(ip) {
			return "", false
		}
	}
	bits, known := e.cfg.IPv6.Prefix(o.Place.ASN)
	if bits >= 128 {
		return "", false
	}
	pfx, err := ip.Prefix(bits)
	if err != nil {
		return "", false
	}
	basis := "default"
	if known {
		basis = "table"
	}
	return fmt.Sprintf("AS%d|%s|%d|%s|%s|%s", o.Place.ASN, pfx, port, basis, observe.EscapeText(o.Client.Name), observe.EscapeText(o.Client.Version)), true
}

// rejected reports whether an analyst rejected the evidence of k. A
// subscriber_prefix rejection stored before the client was part of the
// evidence ("AS<asn>|<prefix>|<port>|<basis>") still rejects the links of
// every client on that prefix and port: an analyst's decision is never
// lost to a change of format.
func (e *Engine) rejected(k identKey) bool {
	ev := e.evidence(k)
	if _, no := e.blocked[blockKey(k.rule, ev)]; no {
		return true
	}
	if k.rule == RuleSubscriberPrefix {
		if f := strings.SplitN(ev, "|", 5); len(f) == 5 {
			_, no := e.blocked[blockKey(k.rule, strings.Join(f[:4], "|"))]
			return no
		}
	}
	return false
}

// window is how far apart in time two sightings of an identifier may be
// and still link.
func (e *Engine) window(rule string) int64 {
	lc := &e.cfg.Links
	switch rule {
	case RulePeerID:
		return int64(lc.SessionWindow)
	case RuleListenPort, RuleOverlap:
		return int64(lc.ReassignWindow)
	case RuleSubscriberPrefix:
		return int64(e.cfg.EndpointWindow)
	}
	return int64(lc.IdentifierWindow)
}

// The identifiers in bytes an endpoint keeps its last ident of
// (endpoint.lastIdent).
const (
	slotNodeID = iota
	slotUserHash
	slotGUID
	slotPeerID
	identSlots
)

// identOf is the ident of rule's identifier val (made if new), as
// e.idents holds it: the one p saw last in that slot when val is its
// value (a device keeps its identifiers, so most sightings are; an
// ident, once made, is never replaced in e.idents), else looked up by
// key and kept for next time. The lookup hashed the rule and value and
// made a string of val each sighting.
func (e *Engine) identOf(p *endpoint, slot int, rule string, val []byte) *ident {
	if id := p.lastIdent[slot]; id != nil && id.key.val == string(val) {
		return id
	}
	k := identKey{rule, string(val)}
	id := e.idents[k]
	if id == nil {
		id = &ident{key: k, eps: map[int32]*span{}}
		e.idents[k] = id
	}
	p.lastIdent[slot] = id
	return id
}

func (e *Engine) sight(k identKey, p *endpoint, o *observe.Observation) {
	id := e.idents[k]
	if id == nil {
		id = &ident{key: k, eps: map[int32]*span{}}
		e.idents[k] = id
	}
	e.sightIdent(id, p, o)
}

// sightIdent records o's sighting of id at p, and the links it makes.
func (e *Engine) sightIdent(id *ident, p *endpoint, o *observe.Observation) {
	k := id.key
	if id.poisoned != "" {
		return
	}
	t := o.Time.UnixNano()
	sp := id.eps[p.id]
	if sp == nil {
		sp = e.widen(nil, t, o.ID)
		id.eps[p.id] = sp
	} else {
		e.widen(sp, t, o.ID)
	}
	lc := &e.cfg.Links
	h := t / int64(time.Hour)
	if n := e.addHour(id, int32(h), p); n > lc.MaxIPsPerHour {
		e.poison(id, fmt.Sprintf("seen from %d addresses within the hour of %s: shared or forged", n, time.Unix(0, h*int64(time.Hour)).UTC().Format("2006-01-02 15:00")))
		return
	}
	// A subscriber's prefix is seen at a new endpoint every time its
	// machines draw a new address: no cap on endpoints ever (the window
	// bounds each link, the hourly cap above catches a shared prefix).
	if len(id.eps) > lc.MaxEndpoints && k.rule != RuleSubscriberPrefix {
		e.poison(id, fmt.Sprintf("seen at %d endpoints: shared or forged", len(id.eps)))
		return
	}
	if len(id.eps) < 2 {
		return // seen at one endpoint only: nothing to join or compare
	}
	// An identifier at two addresses at once is a replay or two machines,
	// never one device that moved: checked against every other endpoint
	// before any link is made, so that the outcome does not depend on map
	// order. A session identity (peer id, listen-port identity) is
	// replayed or shared. A subscriber prefix and port at two addresses at
	// once is two machines in one /64 (a shared network, a neighbour, or
	// one host still answering at its previous temporary address: none is
	// told apart, none links). An eMule user hash: eD2K runs over IPv4
	// alone, so one client is at one address at a time, and a hash at two
	// at once is copied or cloned (docs/accuracy.md measures the copier).
	// A DHT node id valid under BEP 42 at two addresses at once: BEP 42's
	// mask cannot tell them apart (two machines of one /64, say), and a
	// neighbour copied the id. A Gnutella GUID likewise: one servent is at
	// one address at a time. docs/scoring.md refuses every identifier
	// rule's link so.
	if k.rule == RulePeerID || k.rule == RuleListenPort || k.rule == RuleSubscriberPrefix || k.rule == RuleUserHash ||
		k.rule == RuleNodeID || k.rule == RuleGUID {
		if q, osp := e.concurrent(id, p, sp); q != nil {
			what := "replayed or two machines"
			if k.rule == RuleSubscriberPrefix {
				what = "two machines in one prefix (a shared network, a neighbour, or one host at two addresses)"
			}
			e.poison(id, fmt.Sprintf("active at %s (%s) and %s (%s) at the same time: %s", p.key, ts(sp.last), q.key, ts(osp.last), what))
			return
		}
	}
	if e.rejected(k) {
		return
	}
	win := e.window(k.rule)
	others := slices.Sorted(maps.Keys(id.eps))
	for _, oid := range others {
		if oid == p.id {
			continue
		}
		osp := id.eps[oid]
		q := e.eps[oid]
		lk := newLinkKey(p.id, oid, k.rule, e.evidence(k))
		if l := e.links[lk]; l != nil {
			continue
		}
		if gap(sp, osp) > win {
			continue
		}
		if (k.rule == RuleListenPort || k.rule == RuleSubscriberPrefix) && p.key.Addr() == q.key.Addr() {
			continue
		}
		e.addLink(lk, e.reason(k, q, osp, p, sp), []string{e.obsID(&osp.lastObs), e.obsID(&sp.lastObs)}, t)
	}
}

// concurrent is the endpoint other than p, at another address, where id
// was active at the same time as at p (sp: within Links.ConcurrentSlack),
// and id's span there; nil if none. Of several, the one where id was
// seen first (the earliest start of its span), ties broken by address,
// then port: the note names the same endpoint whatever order the map
// is walked in (docs/scoring.md).
func (e *Engine) concurrent(id *ident, p *endpoint, sp *span) (*endpoint, *span) {
	var best *endpoint
	var bsp *span
	for oid, osp := range id.eps {
		q := e.eps[oid]
		if oid == p.id || p.key.Addr() == q.key.Addr() || gap(sp, osp) > int64(e.cfg.Links.ConcurrentSlack) {
			continue
		}
		if best == nil || osp.first < bsp.first || osp.first == bsp.first && q.key.Compare(best.key) < 0 {
			best, bsp = q, osp
		}
	}
	return best, bsp
}

// evidence is the identifier as stored and shown: hex for bytes.
func (e *Engine) evidence(k identKey) string {
	if k.rule == RuleListenPort || k.rule == RuleSubscriberPrefix {
		return k.val
	}
	return hex.EncodeToString([]byte(k.val))
}

func gap(a, b *span) int64 {
	lo, hi := max(a.first, b.first), min(a.last, b.last)
	if lo <= hi {
		return 0
	}
	return lo - hi
}

func ts(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339) }

func (e *Engine) reason(k identKey, a *endpoint, as *span, b *endpoint, bs *span) string {
	switch k.rule {
	case RuleNodeID:
		return fmt.Sprintf("same DHT node id %s seen from %s at %s and %s at %s", short([]byte(k.val)), a.key, ts(as.last), b.key, ts(bs.last))
	case RuleUserHash:
		return fmt.Sprintf("same eMule user hash %s seen from %s at %s and %s at %s", short([]byte(k.val)), a.key, ts(as.last), b.key, ts(bs.last))
	case RuleGUID:
		return fmt.Sprintf("same Gnutella servent GUID %s seen from %s at %s and %s at %s", short([]byte(k.val)), a.key, ts(as.last), b.key, ts(bs.last))
	case RulePeerID:
		return fmt.Sprintf("same peer id %q (random part %s) within one session: %s at %s and %s at %s", k.val[:8], short([]byte(k.val[8:])), a.key, ts(as.last), b.key, ts(bs.last))
	case RuleListenPort:
		return fmt.Sprintf("same network, listen port, client and version (%s); %s last seen %s, %s first seen %s: an address change", k.val, a.key, ts(as.last), b.key, ts(bs.first))
	case RuleSubscriberPrefix:
		first, fs, second, ss := a, as, b, bs
		if bs.last < as.first {
			first, fs, second, ss = b, bs, a, as
		}
		return fmt.Sprintf("same subscriber prefix and port, %s: %s last seen %s, %s first seen %s, one after the other within the endpoint window (%s): a new address in one subscriber's prefix",
			prefixSentence(k.val), first.key, ts(fs.last), second.key, ts(ss.first), e.cfg.EndpointWindow)
	}
	return k.rule
}

func newLinkKey(a, b int32, rule, ev string) linkKey {
	if a > b {
		a, b = b, a
	}
	return linkKey{a, b, rule, ev}
}

func (e *Engine) addLink(k linkKey, reason string, obs []string, at int64) {
	l := &link{key: k, reason: reason, conf: e.cfg.Links.Confidence[k.rule], obs: obs, at: at, state: "active"}
	if id, ok := e.linkIDs[k.storeKey()]; ok {
		l.id = id
	} else {
		l.id = e.nextLink
		e.nextLink++
		e.linkIDs[k.storeKey()] = l.id
		e.dirtyLinks[k] = true // a link the tables lack, even while loading
	}
	if e.links[k] == nil {
		e.linksOf[k.a] = append(e.linksOf[k.a], k)
		e.linksOf[k.b] = append(e.linksOf[k.b], k)
	}
	e.links[k] = l
	if !e.loading {
		e.dirtyLinks[k] = true
	}
	if !e.uf.same(k.a, k.b) {
		e.markComponent(k.a)
		e.markComponent(k.b)
		e.uf.union(k.a, k.b)
	}
}

// poison withdraws every link an identifier made and stops it linking.
func (e *Engine) poison(id *ident, why string) {
	id.poisoned = why
	id.hours = nil
	ev := e.evidence(id.key)
	e.dropLinks(func(k linkKey) bool { return k.rule == id.key.rule && k.ev == ev }, "withdrawn", "identifier "+why)
}

// dropLinks sets the state of the matching active links and rebuilds the
// components.
func (e *Engine) dropLinks(match func(linkKey) bool, state, note string) {
	changed := false
	for k, l := range e.links {
		if l.state == "active" && match(k) {
			l.state, l.note = state, note
			e.dirtyLinks[k] = true
			changed = true
			e.markComponent(k.a)
		}
	}
	if changed {
		e.rebuildComponents()
	}
}

func (e *Engine) rebuildComponents() {
	e.uf = unionFind{}
	for range len(e.eps) {
		e.uf.add()
	}
	for k, l := range e.links {
		if l.state == "active" {
			e.uf.union(k.a, k.b)
		}
	}
	// Split components are written again.
	for k := range e.dirtyEps {
		e.markComponent(k)
	}
}

// markComponent marks every endpoint of id's component dirty.
func (e *Engine) markComponent(id int32) {
	if e.loading {
		return
	}
	for _, m := range e.uf.members(id) {
		e.dirtyEps[m] = true
	}
}

// overlapHolds reports whether the overlap rule joins p and q on what is
// known now, with the figures for the reason.
func (e *Engine) overlapHolds(p, q *endpoint) (ok bool, inter, union int, j float64) {
	lc := &e.cfg.Links
	if p.place.asn == 0 || q.place.asn != p.place.asn || !p.hasFH || !q.hasFH {
		return false, 0, 0, 0
	}
	// Only what each endpoint itself showed counts: its first-hand files
	// (not the popular ones, seen at more than OverlapMaxPeers endpoints)
	// and the span of its first-hand contacts.
	pf, qf := e.overlapFiles(p), e.overlapFiles(q)
	if len(pf) < lc.OverlapMinFiles || len(qf) < lc.OverlapMinFiles {
		return false, 0, 0, 0
	}
	// Active at the same time: two machines, not one that moved; too far
	// apart: nothing says the second is the first one moved.
	if !(p.fhFirst > q.fhLast || q.fhFirst > p.fhLast) {
		return false, 0, 0, 0
	}
	if g := max(p.fhFirst-q.fhLast, q.fhFirst-p.fhLast); g > int64(lc.ReassignWindow) {
		return false, 0, 0, 0
	}
	small, large := pf, qf
	if len(small) > len(large) {
		small, large = large, small
	}
	for f := range small {
		if _, ok := large[f]; ok {
			inter++
		}
	}
	union = len(pf) + len(qf) - inter
	j = float64(inter) / float64(union)
	return inter >= lc.OverlapMinFiles && j >= lc.OverlapMinJaccard, inter, union, j
}

// overlapFiles is the set of p's files the overlap rule looks at: shown by
// p itself, and not seen at more than OverlapMaxPeers endpoints.
func (e *Engine) overlapFiles(p *endpoint) map[int32]struct{} {
	out := make(map[int32]struct{}, len(p.files))
	for i := range p.files {
		if f := &p.files[i]; f.fh && len(e.itemList[f.idx].eps) <= e.cfg.Links.OverlapMaxPeers {
			out[f.idx] = struct{}{}
		}
	}
	return out
}

func overlapEvidence(p, q *endpoint) string {
	a, b := p.key.String(), q.key.String()
	if a > b {
		a, b = b, a
	}
	return a + "+" + b
}

// recheckOverlaps re-evaluates p's overlap links after p changed: a link
// whose condition no longer holds (the union grew, the two turned out
// active together) is withdrawn, and comes back if it holds again. The
// result does not depend on the order observations arrive in.
func (e *Engine) recheckOverlaps(p *endpoint) {
	changed := false
	for oid, k := range p.overlaps {
		l := e.links[k]
		if l == nil || l.state == "rejected" {
			continue
		}
		ok, _, _, _ := e.overlapHolds(p, e.eps[oid])
		switch {
		case !ok && l.state == "active":
			l.state, l.note = "withdrawn", "the overlap no longer meets the thresholds"
		case ok && l.state == "withdrawn":
			l.state, l.note = "active", ""
		default:
			continue
		}
		e.dirtyLinks[k] = true
		e.markComponent(k.a)
		e.markComponent(k.b)
		changed = true
	}
	if changed {
		e.rebuildComponents()
	}
}

// linkOverlap applies the overlap rule when endpoint p gained file it.
func (e *Engine) linkOverlap(p *endpoint, it *item) {
	lc := &e.cfg.Links
	if len(p.files) < lc.OverlapMinFiles || len(it.eps) > lc.OverlapMaxPeers || p.place.asn == 0 {
		return
	}
	// In endpoint order, not the map's: each new link takes the next link
	// number, and the same observations must number their links alike.
	for _, oid := range slices.Sorted(maps.Keys(it.eps)) {
		if oid == p.id {
			continue
		}
		if _, ok := p.overlaps[oid]; ok {
			continue // rechecked already
		}
		q := e.eps[oid]
		ev := overlapEvidence(p, q)
		if _, no := e.blocked[blockKey(RuleOverlap, ev)]; no {
			continue
		}
		ok, inter, union, j := e.overlapHolds(p, q)
		if !ok {
			continue
		}
		first, second := p, q
		if q.last < p.first {
			first, second = q, p
		}
		reason := fmt.Sprintf("share %d of %d watched files (Jaccard %.2f) in AS%d, never active together: %s last seen %s, %s first seen %s",
			inter, union, j, p.place.asn, first.key, ts(first.last), second.key, ts(second.first))
		lk := newLinkKey(p.id, q.id, RuleOverlap, ev)
		for _, x := range []*endpoint{p, q} {
			if x.overlaps == nil {
				x.overlaps = map[int32]linkKey{}
			}
		}
		p.overlaps[q.id], q.overlaps[p.id] = lk, lk
		e.addLink(lk, reason, nil, max(p.last, q.last))
	}
}

// unionFind over endpoint ids with member lists for whole-component walks.
type unionFind struct {
	parent []int32
	// memb holds the members of each root of more than one: most
	// endpoints are alone, and a slice header each took 24 bytes.
	memb map[int32][]int32
}

func (u *unionFind) add() {
	id := int32(len(u.parent))
	u.parent = append(u.parent, id)
}

func (u *unionFind) find(x int32) int32 {
	for u.parent[x] != x {
		u.parent[x] = u.parent[u.parent[x]]
		x = u.parent[x]
	}
	return x
}

func (u *unionFind) same(a, b int32) bool { return u.find(a) == u.find(b) }

func (u *unionFind) members(x int32) []int32 {
	r := u.find(x)
	if m, ok := u.memb[r]; ok {
		return m
	}
	return []int32{r}
}

func (u *unionFind) union(a, b int32) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	ma, mb := u.members(ra), u.members(rb)
	if len(ma) < len(mb) {
		ra, rb, ma, mb = rb, ra, mb, ma
	}
	u.parent[rb] = ra
	if u.memb == nil {
		u.memb = map[int32][]int32{}
	}
	u.memb[ra] = append(ma, mb...)
	delete(u.memb, rb)
}
