//go:build !linux

package probe

import "syscall"

// bindNoPort does nothing outside Linux: IP_BIND_ADDRESS_NO_PORT is
// Linux's, and the kernel there picks the source port at bind time.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
