package krpc

import (
	"net/netip"

	"github.com/vigil-oss/vigil/internal/bep42"
)

// BEP 42 ties a node id to the node's external IP: the first 21 bits of the
// id are the top of CRC-32C over the masked address with three random bits
// r folded in, and the last byte of the id carries r. A node that cannot
// choose its address cannot choose where in the id space it sits, which is
// what makes Sybil attacks on one info-hash costly.

// SecureNodeID returns a BEP 42 node id for a node whose external address
// is ip. The bits BEP 42 leaves random are taken from seed, and seed[19]
// supplies r (its low three bits) and becomes the id's last byte, as in the
// specification's examples. For an invalid ip it returns seed unchanged.
func SecureNodeID(ip netip.Addr, seed ID) ID { return ID(bep42.Secure(ip, seed)) }

// SecureNodeIDMatches reports whether id is a valid BEP 42 id for ip: its
// first 21 bits match the CRC of ip with the r its last byte carries. It
// says nothing of exempt addresses; see Bep42Exempt.
func SecureNodeIDMatches(id ID, ip netip.Addr) bool { return bep42.Valid(ip, id[:]) }

var bep42Exempt = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("127.0.0.0/8"),
}

// Bep42Exempt reports whether ip is a local address that BEP 42 exempts
// from the id check (its nodes may use any id). The lab's loopback and
// namespace addresses are all exempt, so lab nodes need no secure ids.
func Bep42Exempt(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range bep42Exempt {
		if p.Contains(ip) {
			return true
		}
	}
	return ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsPrivate()
}

// BEP42Valid reports whether id is a BEP 42 node id derived from ip: its
// first 21 bits are the CRC-32C of ip (masked as BEP 42 says) with the r
// that the id's last byte carries. It is the bare check, for evidence:
// unlike a DHT node enforcing BEP 42, it grants no exemption to local
// addresses, since an id that any node on any private network may take
// proves nothing about who sent it. An invalid ip never validates.
//
// A valid id still does not prove who holds it: BEP 42 only makes an id
// cost an address. Anyone at ip may take it, and the id is as forgeable as
// the datagram that carried it.
func BEP42Valid(ip netip.Addr, id ID) bool {
	if !ip.IsValid() {
		return false
	}
	return SecureNodeIDMatches(id, ip)
}
