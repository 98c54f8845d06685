package notify

import (
	"context"
	"net"
)

// WithDial makes s dial through d: a server on loopback stands for a
// distant host.
func WithDial(s SMTP, d func(ctx context.Context, network, addr string) (net.Conn, error)) SMTP {
	s.dial = d
	return s
}

const MaxSubject = maxSubject
