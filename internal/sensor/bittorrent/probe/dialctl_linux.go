//go:build linux

package probe

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort is a net.Dialer.Control hook that sets IP_BIND_ADDRESS_NO_PORT
// on the socket before it is bound to the sensor's listen address. Without
// it, bind(addr:0) must pick a source port no other socket on that address
// holds, whatever the destination, so a sensor probing from one address
// runs out of ephemeral ports (28,232 by default) once that many of its
// connections sit in TIME_WAIT. With it, the kernel picks the port at
// connect time, unique per (source, destination) 4-tuple, so ports are
// reused across peers. The option exists since Linux 4.2; it applies to
// IPv6 sockets too (SOL_IP options reach ip_setsockopt).
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
