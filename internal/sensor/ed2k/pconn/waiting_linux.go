//go:build linux

package pconn

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// arrived says whether bytes of c's peer wait unread in the kernel
// (SIOCINQ); ok is false when it cannot tell (c is no socket).
func arrived(c net.Conn) (yes, ok bool) {
	sc, isSock := c.(syscall.Conn)
	if !isSock {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
		return false, false
	}
	return n > 0, true
}
