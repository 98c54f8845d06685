package bittorrent

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// Address families (BEP 32). The IPv4 and IPv6 DHTs are two networks: a
// node of one family answers from, and knows in its routing table, nodes
// of that family; a peer announced over IPv6 is stored on the IPv6 nodes
// closest to the info-hash. A sensor that runs both families (one listen
// address of each, Config.ListenAddrs) runs its identities on both, looks
// each watched info-hash up in both networks, and probes each peer from
// its own address of the peer's family, never from the other.

// Family names, the label of the metrics that count by family.
const (
	familyIPv4 = "ipv4"
	familyIPv6 = "ipv6"
)

// dropNoListenFamily is the drop reason of a peer of a family the sensor
// has no listen address of: it is not probed (a probe from the other
// family's address cannot reach it, and the sensor dials only from its
// own addresses).
const dropNoListenFamily = "no_listen_address_for_family"

// familyOf names a's family; an IPv4-mapped address is IPv4.
func familyOf(a netip.Addr) string { return familyName(a.Unmap().Is6()) }

// familyName names the family, IPv6 if v6.
func familyName(v6 bool) string {
	if v6 {
		return familyIPv6
	}
	return familyIPv4
}

// listenFor returns the sensor's listen address of a's family, if it has
// one.
func (s *Sensor) listenFor(a netip.Addr) (netip.Addr, bool) {
	v6 := a.Unmap().Is6()
	for _, l := range s.cfg.ListenAddrs {
		if l.Is6() == v6 {
			return l, true
		}
	}
	return netip.Addr{}, false
}

// isListenAddr reports whether a is one of the sensor's listen addresses.
func (s *Sensor) isListenAddr(a netip.Addr) bool {
	return slices.Contains(s.cfg.ListenAddrs, a.Unmap())
}

// dualStack reports whether the sensor runs both families.
func (s *Sensor) dualStack() bool { return len(s.cfg.ListenAddrs) > 1 }

// families returns the families the sensor runs, as "is IPv6", in the
// order of its listen addresses.
func (s *Sensor) families() []bool {
	out := make([]bool, 0, 2)
	for _, l := range s.cfg.ListenAddrs {
		out = append(out, l.Is6())
	}
	return out
}

// closestIdentityOf returns the identity of the family (v6 or not) whose
// id is closest to target, so that lookups for a key come from the
// identity the key's nodes know best; nil if the sensor does not run the
// family.
func (s *Sensor) closestIdentityOf(target routing.ID, v6 bool) *node {
	var best *node
	for _, n := range s.nodes {
		if n.v6 != v6 {
			continue
		}
		if best == nil || routing.Closer(target, routing.ID(n.id), routing.ID(best.id)) {
			best = n
		}
	}
	return best
}

// closestOfFamily is closestIdentityOf for a's family.
func (s *Sensor) closestOfFamily(target routing.ID, a netip.Addr) *node {
	return s.closestIdentityOf(target, a.Unmap().Is6())
}

// identityFor returns an identity of a's family, the i-th of them
// (modulo their number), or nil if the sensor does not run the family.
func (s *Sensor) identityFor(a netip.Addr, i int) *node {
	v6 := a.Unmap().Is6()
	var fam []*node
	for _, n := range s.nodes {
		if n.v6 == v6 {
			fam = append(fam, n)
		}
	}
	if len(fam) == 0 {
		return nil
	}
	return fam[(i%len(fam)+len(fam))%len(fam)]
}

// heardMax bounds the nodes heardNodes keeps of each family.
const heardMax = 64

// heardNodes are nodes of one family named in an answer to an identity of
// the other (nodes6 in an answer over IPv4, nodes in one over IPv6; BEP
// 32 "want"): where both families are up, each family's nodes go to that
// family's identities. They are candidates that a lookup of their family
// starts from when its identities' tables know fewer than K nodes (the
// bootstrap nodes of a family can be few or none); a node enters a
// routing table only once it has answered, as any node named in an
// answer. Usable as its zero value.
type heardNodes struct {
	mu    sync.Mutex
	nodes [2][]routing.Node // [0] IPv4, [1] IPv6; newest last
}

func famIndex(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

// add remembers a node of addr's family, newest last, at most heardMax.
func (h *heardNodes) add(id routing.ID, addr netip.AddrPort) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !addr.IsValid() || addr.Port() == 0 {
		return
	}
	i := famIndex(addr.Addr().Is6())
	h.mu.Lock()
	defer h.mu.Unlock()
	l := slices.DeleteFunc(h.nodes[i], func(n routing.Node) bool { return n.Addr == addr || n.ID == id })
	if len(l) >= heardMax {
		l = slices.Delete(l, 0, len(l)-heardMax+1)
	}
	h.nodes[i] = append(l, routing.Node{ID: id, Addr: addr})
}

// list returns the nodes heard of one family.
func (h *heardNodes) list(v6 bool) []routing.Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.nodes[famIndex(v6)])
}

// len is how many nodes of one family were heard.
func (h *heardNodes) len(v6 bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.nodes[famIndex(v6)])
}
