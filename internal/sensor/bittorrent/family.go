package bittorrent

import (
	"net/netip"
	"slices"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
)

// Address families (BEP 32). The IPv4 and IPv6 DHTs are two networks
// (package dhtnode runs an identity's socket and table in one family). A
// sensor that runs both families (one listen address of each,
// Config.ListenAddrs) runs its identities on both, looks each watched
// info-hash up in both networks, and probes each peer from its own
// address of the peer's family, never from the other.

// Family names, the label of the metrics that count by family.
const (
	familyIPv4 = dhtnode.FamilyIPv4
	familyIPv6 = dhtnode.FamilyIPv6
)

// dropNoListenFamily is the drop reason of a peer of a family the sensor
// has no listen address of: it is not probed (a probe from the other
// family's address cannot reach it, and the sensor dials only from its
// own addresses).
const dropNoListenFamily = "no_listen_address_for_family"

// familyOf names a's family; an IPv4-mapped address is IPv4.
func familyOf(a netip.Addr) string { return dhtnode.FamilyOf(a) }

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
