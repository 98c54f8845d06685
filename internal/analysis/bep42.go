package analysis

import (
	"net/netip"

	"github.com/vigil-oss/vigil/internal/bep42"
)

// bep42Valid reports whether id is a BEP 42 node id for ip (package
// bep42). Anyone can compute a valid id for any address, so a valid id
// proves nothing of who sent it; but an id that is not valid for the
// address it came from was chosen freely (or copied), and links nothing.
// Addresses BEP 42 exempts (private, loopback, link-local) cannot be
// checked: false, so ids seen there never link.
func bep42Valid(id []byte, ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || !ip.IsGlobalUnicast() {
		return false
	}
	return bep42.Valid(ip, id)
}
