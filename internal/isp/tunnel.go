package isp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Transition addresses: ranges whose addresses are a relay's or a
// translator's, with an IPv4 address inside. Geolocation databases place
// them at the relay's operator (2002::/16 and 2001::/32 at Hurricane
// Electric, AS6939), who never had the subscriber: such a sighting is no
// row of any group, and its annex entry names the IPv4 address inside.
var (
	sixToFour  = netip.MustParsePrefix("2002::/16")      // RFC 3056: 2002:AABB:CCDD::/48 for IPv4 A.B.C.D
	teredo     = netip.MustParsePrefix("2001::/32")      // RFC 4380: server, flags, port and client, the last two inverted
	nat64      = netip.MustParsePrefix("64:ff9b::/96")   // RFC 6052 well-known prefix: the IPv4 address in the last 32 bits
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48") // RFC 8215 local use: the IPv4's place depends on the prefix length
)

// tunnel is what a transition address says of the IPv4 side.
type tunnel struct {
	kind   string     // "6to4", "Teredo", "NAT64", "NAT64 local-use"
	v4     netip.Addr // the 6to4 host, the NAT64 destination, the Teredo client's mapped address
	port   uint16     // Teredo: the client's mapped UDP port; 0 otherwise
	server netip.Addr // Teredo: the Teredo server's IPv4 address
}

// tunnelOf reads a 6to4, Teredo or NAT64 address; false for any other
// (an IPv4-mapped address is an IPv4 address, never a tunnel's).
func tunnelOf(ip netip.Addr) (tunnel, bool) {
	ip = ip.WithZone("")
	if !ip.Is6() || ip.Is4In6() {
		return tunnel{}, false
	}
	b := ip.As16()
	v4 := func(x []byte) netip.Addr { return netip.AddrFrom4([4]byte(x)) }
	switch {
	case sixToFour.Contains(ip):
		return tunnel{kind: "6to4", v4: v4(b[2:6])}, true
	case teredo.Contains(ip):
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], binary.BigEndian.Uint32(b[12:16])^0xffffffff)
		return tunnel{kind: "Teredo", v4: netip.AddrFrom4(c), port: binary.BigEndian.Uint16(b[10:12]) ^ 0xffff, server: v4(b[4:8])}, true
	case nat64.Contains(ip):
		return tunnel{kind: "NAT64", v4: v4(b[12:16])}, true
	case nat64Local.Contains(ip):
		return tunnel{kind: "NAT64 local-use", v4: v4(b[12:16])}, true
	}
	return tunnel{}, false
}

// tunnelWhy explains the tunnel_address annex entry of a sighting that is
// otherwise a first-hand contact: whose the address is and which IPv4
// address (and, for Teredo, port) to ask about instead.
func tunnelWhy(x *Sighting) (en, fr string) {
	tn, ok := tunnelOf(x.IP)
	if !ok {
		return AnnexTunnel, AnnexTunnel
	}
	const askEN = "No request goes to the network the address is placed in, which only relayed the traffic and never had the subscriber."
	const askFR = "Aucune demande n'est adressée au réseau où l'adresse est située, qui n'a fait que relayer le trafic et n'a jamais eu l'abonné."
	switch tn.kind {
	case "6to4":
		return fmt.Sprintf("A 6to4 address (2002::/16): it is made from the IPv4 address %s of the host that sent it. %s Ask the ISP of %s, with the same port and time.", tn.v4, askEN, tn.v4),
			fmt.Sprintf("Adresse 6to4 (2002::/16) : elle est formée à partir de l'adresse IPv4 %s de l'hôte émetteur. %s Interroger le fournisseur de %s, avec le même port et la même heure.", tn.v4, askFR, tn.v4)
	case "Teredo":
		return fmt.Sprintf("A Teredo address (2001::/32; Teredo server %s): it carries the client's IPv4 address %s and port %d, as its NAT mapped them. %s Ask the ISP of %s for the subscriber using port %d at the same time.", tn.server, tn.v4, tn.port, askEN, tn.v4, tn.port),
			fmt.Sprintf("Adresse Teredo (2001::/32 ; serveur Teredo %s) : elle porte l'adresse IPv4 %s et le port %d du client, tels que son NAT les a attribués. %s Interroger le fournisseur de %s sur l'abonné utilisant le port %d à la même heure.", tn.server, tn.v4, tn.port, askFR, tn.v4, tn.port)
	case "NAT64":
		return fmt.Sprintf("A NAT64 address (64:ff9b::/96): a translator's name for the IPv4 address %s. %s Ask the ISP of %s, with the same port and time; that ISP saw the translator's IPv4 address, not the sensor's.", tn.v4, askEN, tn.v4),
			fmt.Sprintf("Adresse NAT64 (64:ff9b::/96) : désignation par un traducteur de l'adresse IPv4 %s. %s Interroger le fournisseur de %s, avec le même port et la même heure ; ce fournisseur a vu l'adresse IPv4 du traducteur, non celle du capteur.", tn.v4, askFR, tn.v4)
	}
	return fmt.Sprintf("A local-use NAT64 address (64:ff9b:1::/48): where the IPv4 address sits depends on the translator's prefix length; read as a /96, it is %s. %s Check the translator's prefix, then ask the ISP of that IPv4 address, with the same port and time.", tn.v4, askEN),
		fmt.Sprintf("Adresse NAT64 d'usage local (64:ff9b:1::/48) : la place de l'adresse IPv4 dépend de la longueur du préfixe du traducteur ; lue comme un /96, c'est %s. %s Vérifier le préfixe du traducteur, puis interroger le fournisseur de cette adresse IPv4, avec le même port et la même heure.", tn.v4, askFR)
}
