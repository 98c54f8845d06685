package bittorrent

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
)

// The sensor must never record itself. A peer it probed knows the
// sensor's address and the source port of the probe, and passes them on
// in PEX like any other peer's; a DHT lookup can pass through the
// sensor's own identities. selfSet remembers the sensor's own addresses:
// the UDP ports of its DHT identities (looked up live), and the local
// address and port of every outgoing connection it made (probes over TCP
// and uTP, whatever else dials through dialOver, and the tracker client's
// connections and sockets), for selfTTL each,
// at most selfMax of them (the oldest go first). In internet scope the
// addresses its connections came from, and its listen address, are its
// own on every port, and so is every loopback address (its own host).
//
// Its fellows (the other sensors of its deployment) it cannot tell by
// itself: sensor B's DHT lookups land on A's identities (a get_peers from
// B's socket, recorded as first-hand), trackers list B, and peers that
// B's probes reached pass B's source port on in PEX. Config.Own, the
// deployment's own addresses (package own, --own-addresses), names them:
// an address in it is never recorded nor probed, in every scope, counted
// as deployment_address.

const (
	// selfTTL is how long the source port of an outgoing connection is
	// remembered as the sensor's own. PEX passes on peers a client is
	// connected to, or was until lately; an hour is far beyond a probe.
	selfTTL = time.Hour
	// selfMax bounds the ports remembered (one probe each).
	selfMax = 1 << 16
	// selfIPsMax bounds the addresses remembered as the sensor's own on
	// every port (internet scope).
	selfIPsMax = 64
)

// selfSet is usable as its zero value.
type selfSet struct {
	once  sync.Once
	ports netlimit.Recent // the source ports, for selfTTL, at most selfMax
	mu    sync.Mutex
	ips   map[netip.Addr]bool // internet scope: the sensor's on every port
}

func (m *selfSet) init() {
	m.once.Do(func() { m.ports.TTL, m.ports.Max = selfTTL, selfMax })
}

// add remembers ap as the sensor's own from now for selfTTL; with
// wholeIP (internet scope) its address too, on every port.
func (m *selfSet) add(ap netip.AddrPort, now time.Time, wholeIP bool) {
	if !ap.IsValid() {
		return
	}
	m.init()
	m.ports.Add(ap, now)
	a := ap.Addr().Unmap()
	if !wholeIP || a.IsUnspecified() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ips == nil {
		m.ips = map[netip.Addr]bool{}
	}
	if len(m.ips) < selfIPsMax {
		m.ips[a] = true
	}
}

// has reports whether ap is a remembered source port, or (wholeIP) on a
// remembered address.
func (m *selfSet) has(ap netip.AddrPort, now time.Time) (port, ip bool) {
	m.init()
	if m.ports.Has(ap, now) {
		return true, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return false, m.ips[ap.Addr().Unmap()]
}

// Reasons an observation or probe is dropped (the label of
// vigil_bittorrent_dropped_total).
const (
	dropSelfConnection   = "self_connection"    // the source port of one of the sensor's connections
	dropSelfListen       = "self_listen"        // one of the sensor's DHT identities
	dropSelfAddress      = "self_address"       // the sensor's own address or loopback (internet scope), any port
	dropDeployment       = "deployment_address" // one of the deployment's own addresses (Config.Own): a fellow sensor
	dropInfohashMismatch = "infohash_mismatch"  // a probed peer answered for another torrent
	dropHandshakeOnly    = "handshake_only"     // a probed peer echoed the info-hash, then hung up (or the probe stopped within a second) without a word
	dropMirror           = "mirror"             // a probed peer reflected the sensor's handshake (its peer id, or one naming Vigil, and nothing of its own)
	dropValuesExcess     = "values_excess"      // a peer a DHT node named past the maxValuesPerNode of one lookup: neither recorded nor probed
	dropProbeTableFull   = "probe_table_full"   // a peer to probe found the table of recent probes (Config.MaxProbed) full of pairs within ProbeEvery
	dropAddressBudget    = "address_budget"     // a probe past the per-address budget (netlimit): not made, the peer may be queued again
	dropTrackerExcess    = "tracker_excess"     // a peer a tracker listed past the trackerNumWant the sensor asked for: neither recorded nor probed
	dropPEXExcess        = "pex_excess"         // a peer named by PEX past the maxPEXPerProbe distinct peers of one probe: neither recorded nor probed
	dropProbeQueueFull   = "probe_queue_full"   // a peer to probe found the probe queue full (probed a later round)
	dropForeignReply     = "foreign_reply"      // a DHT reply from another address than the one asked
	// dropNonPublic prefixes the class of a non-public address a third
	// party named outside lab scope: non_public_private, ..._loopback.
	dropNonPublic = "non_public_"
)

// countDrop counts an observation or probe not made, by reason
// (vigil_bittorrent_dropped_total).
func (s *Sensor) countDrop(reason string) { _ = s.drops.add(reason) }

// Dropped returns how many observations (and probes) were not made, by
// reason: the sensor itself, one of the deployment's own addresses (a
// fellow sensor), a non-public address named by a third party
// outside lab scope, a peer that answered for another torrent or with the
// sensor's own peer id, a DHT
// reply from an address not asked, a peer of an address family the
// sensor has no listen address of (not probed).
func (s *Sensor) Dropped() map[string]uint64 { return s.drops.snapshot() }

var descDropped = prometheus.NewDesc("vigil_bittorrent_dropped_total",
	"Observations and probes not made, by reason: the sensor itself (self_connection, self_listen, self_address), "+
		"one of the deployment's own addresses, a fellow sensor (deployment_address), "+
		"a non-public address named by a third party outside lab scope (non_public_<class>), "+
		"a peer answering for another info-hash (infohash_mismatch) or reflecting the sensor's handshake (mirror), "+
		"a peer named by PEX past the distinct peers one probe records (pex_excess) or by a DHT node past those one lookup records of it (values_excess), "+
		"a peer a tracker listed past the number asked for (tracker_excess), a probe past the per-address budget (address_budget) or past the table of recent probes (probe_table_full), a DHT reply from an address not asked (foreign_reply), "+
		"a peer of an address family the sensor has no listen address of, not probed (no_listen_address_for_family).",
	[]string{"reason"}, nil)

// collectDropped sends the drop counters, sorted by reason.
func (s *Sensor) collectDropped(ch chan<- prometheus.Metric) {
	d := s.Dropped()
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(d[k]), k)
	}
}

// labScope reports whether the sensor runs in lab scope, where every
// address is a lab address and non-public ones are what the lab is made
// of.
func (s *Sensor) labScope() bool { return s.guard.Mode() != scope.ModeInternet }

// selfReason says why ap is the sensor itself, or "".
func (s *Sensor) selfReason(ap netip.AddrPort, now time.Time) string {
	return s.selfReasonIn(ap, now, s.labScope())
}

// selfReasonIn is selfReason in lab scope or not (tests check internet
// scope without an internet guard).
func (s *Sensor) selfReasonIn(ap netip.AddrPort, now time.Time, lab bool) string {
	a := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if s.dht.IsIdentity(a) {
		return dropSelfListen
	}
	if !lab && (s.isListenAddr(a.Addr()) || a.Addr().IsLoopback()) {
		// Any of its listen addresses, of either family; and loopback,
		// which the guard lets it reach: its own host (another sensor,
		// the operator's tools), never a subscriber.
		return dropSelfAddress
	}
	if v4, ok := embeddedIPv4(a.Addr()); ok && !lab && s.isListenAddr(v4) {
		// Its IPv4 address as an IPv6-only peer behind NAT64 (or a 6to4
		// relay) saw it, passed on in PEX added6 or a DHT value.
		return dropSelfAddress
	}
	if s.cfg.Own.Contains(a) {
		// A fellow sensor of the deployment (or the operator's own
		// range), in every scope: the file says so.
		return dropDeployment
	}
	if v4, ok := embeddedIPv4(a.Addr()); ok && s.cfg.Own.Contains(netip.AddrPortFrom(v4, a.Port())) {
		return dropDeployment
	}
	port, ip := s.self.has(a, now)
	switch {
	case port:
		return dropSelfConnection
	case ip && !lab:
		return dropSelfAddress
	}
	return ""
}

// thirdParty reports whether o records what someone else said of the
// endpoint.
func thirdParty(o *observe.Observation) bool {
	switch o.Method {
	case observe.MethodTracker, observe.MethodPEX:
		return true
	case observe.MethodDHTGetPeers:
		// Over UDP the endpoint itself asked; otherwise a DHT node named it.
		return o.HasMark(observe.MarkThirdParty) || o.Endpoint.Transport != "udp"
	}
	return o.HasMark(observe.MarkThirdParty)
}

// embeddedIPv4 returns the IPv4 address a NAT64 or 6to4 address carries.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) { return scope.EmbeddedIPv4(a) }

// nonPublicClass says what kind of non-public address a is ("private",
// "loopback", ...), or "" if a is a public unicast address that can name
// a subscriber (scope.NonPublicClass, shared with the eD2K sensor).
func nonPublicClass(a netip.Addr) string { return scope.NonPublicClass(a) }

// admit decides whether emit may publish o: never the sensor itself, and,
// outside lab scope, no non-public address on a third party's word. It
// returns the reason of a drop, or "". In lab scope a non-public address
// named by a third party is kept and marked non_public_address.
func (s *Sensor) admit(o *observe.Observation) string {
	lab := s.labScope()
	return admitIn(o, lab, s.selfReasonIn(netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port), s.cfg.Clock(), lab))
}

// admitIn is admit with the scope and the self check's answer given.
func admitIn(o *observe.Observation, lab bool, self string) string {
	if self != "" {
		return self
	}
	if !thirdParty(o) {
		return ""
	}
	class := nonPublicClass(o.Endpoint.IP)
	switch {
	case class == "":
		return ""
	case lab:
		o.Mark(observe.MarkNonPublicAddress)
		return ""
	}
	return dropNonPublic + class
}
