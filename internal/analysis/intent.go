package analysis

import "github.com/vigil-oss/vigil/internal/observe"

// IntentKind says whether an observation shows an endpoint offering an item
// or looking for it.
type IntentKind uint8

const (
	// Sharing: the endpoint offered the item, or a third party named it as
	// holding it (the level says which).
	Sharing IntentKind = iota + 1
	// Looking: the endpoint searched for the item; it says nothing of
	// possession.
	Looking
)

func (i IntentKind) String() string {
	switch i {
	case Sharing:
		return "sharing"
	case Looking:
		return "looking"
	}
	return "unknown"
}

// Intent classifies an observation as Sharing or Looking. It is the one
// place the rule lives:
//
//   - BitTorrent dht_get_peers over udp is the querying node's own address
//     asking for peers: Looking.
//   - dht_get_peers over tcp (peers a DHT node listed), dht_announce,
//     tracker and pex are third-party or self announcements: Sharing, at
//     level announced.
//   - ed2k_server_sources and kad_sources (an eD2K server's or a Kad
//     node's list of the clients that offered the file as a source) are
//     third-party announcements of sharing: Sharing, at level announced.
//   - peer_probe is the endpoint answering for the item itself: Sharing, at
//     the level it advertised.
//   - Any other method (later networks) is Sharing when the endpoint itself
//     answered (level acknowledged or more), else Looking: an unknown claim
//     is never read as an offer.
func Intent(o *observe.Observation) IntentKind {
	switch o.Method {
	case observe.MethodDHTGetPeers:
		if o.Endpoint.Transport == "udp" {
			return Looking
		}
		return Sharing
	case observe.MethodDHTAnnounce, observe.MethodTracker, observe.MethodPEX, observe.MethodPeerProbe,
		observe.MethodED2KServerSources, observe.MethodKadSources:
		return Sharing
	}
	if o.Possession.Level >= observe.Acknowledged {
		return Sharing
	}
	return Looking
}
