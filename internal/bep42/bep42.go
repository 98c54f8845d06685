// Package bep42 is the arithmetic of BEP 42 (DHT security extension): a
// DHT node id's first 21 bits are the top of CRC-32C over the node's
// masked external address, with three bits r (carried in the id's last
// byte) folded in. A node that cannot choose its address cannot choose
// where in the id space it sits.
//
// It is shared by the sensor's wire code (which makes secure ids for its
// own identities and marks ids that fail) and the analysis (which links
// nothing on an id that fails), so that both apply the same check. It does
// no I/O and knows neither; it must never decide more than the arithmetic:
// a valid id still proves nothing about who holds it, since anyone at an
// address may take it.
package bep42

import (
	"hash/crc32"
	"net/netip"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	maskV4 = [4]byte{0x03, 0x0f, 0x3f, 0xff}
	maskV6 = [8]byte{0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff}
)

// crc returns the CRC-32C of ip masked as BEP 42 says, with r (its low
// three bits) in the top three bits of the first byte; false for an
// invalid address.
func crc(ip netip.Addr, r byte) (uint32, bool) {
	ip = ip.Unmap()
	var buf [8]byte
	var n int
	switch {
	case ip.Is4():
		a := ip.As4()
		for i := range a {
			buf[i] = a[i] & maskV4[i]
		}
		n = 4
	case ip.Is6():
		a := ip.As16()
		for i := range maskV6 {
			buf[i] = a[i] & maskV6[i]
		}
		n = 8
	default:
		return 0, false
	}
	buf[0] |= (r & 7) << 5
	return crc32.Checksum(buf[:n], castagnoli), true
}

// Secure returns a BEP 42 node id for a node whose external address is
// ip. The bits BEP 42 leaves random are taken from seed, and seed[19]
// supplies r (its low three bits) and stays the id's last byte, as in the
// specification's examples. For an invalid ip it returns seed unchanged.
func Secure(ip netip.Addr, seed [20]byte) [20]byte {
	c, ok := crc(ip, seed[19])
	if !ok {
		return seed
	}
	id := seed
	id[0] = byte(c >> 24)
	id[1] = byte(c >> 16)
	id[2] = byte(c>>8)&0xf8 | seed[2]&0x07
	return id
}

// Valid reports whether id is a BEP 42 id of ip: its first 21 bits match
// the CRC of ip with the r its last byte carries. It grants no exemption
// to local addresses (a DHT node enforcing BEP 42 would): an id that any
// node on any private network may take proves nothing. An invalid ip, or
// an id of another length than 20 bytes, never validates.
func Valid(ip netip.Addr, id []byte) bool {
	if len(id) != 20 {
		return false
	}
	c, ok := crc(ip, id[19])
	if !ok {
		return false
	}
	return id[0] == byte(c>>24) && id[1] == byte(c>>16) && id[2]&0xf8 == byte(c>>8)&0xf8
}
