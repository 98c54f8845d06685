package analysis

import (
	"hash/crc32"
	"net/netip"
)

// BEP 42 ties a DHT node id to the node's external address: the first 21
// bits of the id are the top of CRC-32C over the masked address with three
// bits r (the id's last byte) folded in. Anyone can compute a valid id for
// any address, so a valid id proves nothing of who sent it; but an id that
// is not valid for the address it came from was chosen freely (or copied),
// and links nothing. The check is kept here, small, rather than imported
// from the sensor's codec: the analysis reads stored observations and
// must not depend on protocol code.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bep42Valid reports whether id is a BEP 42 node id for ip. Addresses BEP
// 42 exempts (private, loopback, link-local) cannot be checked: false.
func bep42Valid(id []byte, ip netip.Addr) bool {
	ip = ip.Unmap()
	if len(id) != 20 || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || !ip.IsGlobalUnicast() {
		return false
	}
	var buf [8]byte
	var n int
	switch {
	case ip.Is4():
		mask := [4]byte{0x03, 0x0f, 0x3f, 0xff}
		a := ip.As4()
		for i := range a {
			buf[i] = a[i] & mask[i]
		}
		n = 4
	default:
		mask := [8]byte{0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff}
		a := ip.As16()
		for i := range mask {
			buf[i] = a[i] & mask[i]
		}
		n = 8
	}
	buf[0] |= (id[19] & 7) << 5
	crc := crc32.Checksum(buf[:n], castagnoli)
	return id[0] == byte(crc>>24) && id[1] == byte(crc>>16) && id[2]&0xf8 == byte(crc>>8)&0xf8
}
