//go:build !linux

package pconn

import "net"

// arrived cannot tell outside Linux: a wait for a packet to begin then
// bounds the read of one already arrived too.
func arrived(net.Conn) (yes, ok bool) { return false, false }
