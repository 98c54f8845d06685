package dhtnode

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
// address of each) runs its identities on both and looks each watched
// info-hash up in both networks.

// Family names, the label of the metrics that count by family.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
)

// FamilyOf names a's family; an IPv4-mapped address is IPv4.
func FamilyOf(a netip.Addr) string { return FamilyName(a.Unmap().Is6()) }

// FamilyName names the family, IPv6 if v6.
func FamilyName(v6 bool) string {
	if v6 {
		return FamilyIPv6
	}
	return FamilyIPv4
}

// Runs reports whether the sensor has a listen address (and so
// identities) of a's family.
func (d *DHT) Runs(a netip.Addr) bool {
	v6 := a.Unmap().Is6()
	for _, l := range d.cfg.Listen {
		if l.Is6() == v6 {
			return true
		}
	}
	return false
}

// dualStack reports whether the sensor runs both families.
func (d *DHT) dualStack() bool { return len(d.cfg.Listen) > 1 }

// families returns the families the sensor runs, as "is IPv6", in the
// order of its listen addresses.
func (d *DHT) families() []bool {
	out := make([]bool, 0, 2)
	for _, l := range d.cfg.Listen {
		out = append(out, l.Is6())
	}
	return out
}

// closestIdentityOf returns the identity of the family (v6 or not) whose
// id is closest to target, so that lookups for a key come from the
// identity the key's nodes know best; nil if the sensor does not run the
// family.
func (d *DHT) closestIdentityOf(target routing.ID, v6 bool) *Node {
	var best *Node
	for _, n := range d.Nodes() {
		if n.v6 != v6 {
			continue
		}
		if best == nil || routing.Closer(target, routing.ID(n.id), routing.ID(best.id)) {
			best = n
		}
	}
	return best
}

// ClosestOfFamily returns the identity of a's family whose id is closest
// to target; nil if the sensor does not run the family.
func (d *DHT) ClosestOfFamily(target routing.ID, a netip.Addr) *Node {
	return d.closestIdentityOf(target, a.Unmap().Is6())
}

// IdentityFor returns an identity of a's family, the i-th of them
// (modulo their number), or nil if the sensor does not run the family.
func (d *DHT) IdentityFor(a netip.Addr, i int) *Node {
	v6 := a.Unmap().Is6()
	var fam []*Node
	for _, n := range d.Nodes() {
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
