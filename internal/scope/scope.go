// Package scope is the network scope guard: the one gate every socket a
// sensor opens or sends through must pass. It decides, from the address
// alone and before any socket is touched, whether a destination or a listen
// address is in scope, and counts every refusal by reason.
//
// In lab mode (the default) only loopback (127.0.0.0/8, ::1) and the
// prefixes the operator names for network namespaces it created are in
// scope. Internet mode needs a Deployment naming the legal authority, the
// operator and the retention period; tests, the demo and benchmarks never
// use it. In both modes private (IPv4 private and shared, IPv6 unique
// local fc00::/7 and site-local), link-local, multicast and unspecified
// destinations are refused unless named in Allow, so a sensor cannot be
// steered by addresses it learns from the wire into the operator's own
// networks; in internet mode an IPv6 address that carries an IPv4 one
// (NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by the IPv4 address
// inside, for the same reason. IPv4 and IPv6 are alike: ::1 is loopback,
// and an IPv4-mapped address is its IPv4 address.
//
// The guard must never resolve a name (a destination that is not a literal
// IP address is refused: no DNS, ever), never let a refused write or dial
// reach the operating system, and never fail open: an address it cannot
// classify is refused.
package scope

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Mode says where a sensor may send.
type Mode string

// Modes.
const (
	// ModeLab allows loopback and the Allow prefixes only.
	ModeLab Mode = "lab"
	// ModeInternet allows public addresses, under a Deployment.
	ModeInternet Mode = "internet"
)

// Sentinel errors.
var (
	// ErrOutOfScope is wrapped by every refusal; the error names the address.
	ErrOutOfScope = errors.New("scope: address out of scope")
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("scope: invalid configuration")
)

// Reason says why an address was refused; it is the label of the refusal
// counter.
type Reason int

// Reasons for a refusal.
const (
	// ReasonNotIP: the destination is a host name or otherwise not a
	// literal IP address and port (names are never resolved).
	ReasonNotIP Reason = iota
	// ReasonPublic: a public address while in lab mode.
	ReasonPublic
	// ReasonPrivate: a private, shared (CGNAT), link-local or unique-local
	// address that Allow does not name.
	ReasonPrivate
	// ReasonSpecial: unspecified, multicast, broadcast, reserved, or port 0.
	ReasonSpecial
	// ReasonListen: a listen address outside loopback and Allow in lab mode.
	ReasonListen
	numReasons
)

var reasonNames = [numReasons]string{"not_ip", "public", "private", "special", "listen"}

func (r Reason) String() string {
	if r >= 0 && r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Deployment is the legal frame of an internet deployment. Every field is
// required; it is recorded with the sensor's observations.
type Deployment struct {
	// LegalAuthority names the law, warrant or order that authorises the
	// monitoring (e.g. "Code de procédure pénale art. 706-47; PV 2025/123").
	LegalAuthority string
	// Operator names the service that runs the sensor and answers for it.
	Operator string
	// Retention is how long sightings and transcripts are kept.
	Retention time.Duration
}

// Config is the guard's configuration.
type Config struct {
	// Mode is ModeLab (default when empty) or ModeInternet.
	Mode Mode
	// Allow are extra prefixes in scope, for the network namespaces the
	// operator created (e.g. 10.250.0.0/24). Listening inside them is
	// allowed in lab mode too.
	Allow []netip.Prefix
	// Deployment is required in internet mode and must be nil in lab mode.
	Deployment *Deployment
}

// DefaultConfig is lab mode with nothing beyond loopback.
func DefaultConfig() Config { return Config{Mode: ModeLab} }

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch c.Mode {
	case "", ModeLab:
		if c.Deployment != nil {
			return fmt.Errorf("scope: a deployment is given but mode is lab: %w", ErrConfig)
		}
	case ModeInternet:
		d := c.Deployment
		if d == nil {
			return fmt.Errorf("scope: internet mode without a deployment (legal authority, operator, retention): %w", ErrConfig)
		}
		if strings.TrimSpace(d.LegalAuthority) == "" {
			return fmt.Errorf("scope: deployment has no legal authority: %w", ErrConfig)
		}
		if strings.TrimSpace(d.Operator) == "" {
			return fmt.Errorf("scope: deployment has no operator: %w", ErrConfig)
		}
		if d.Retention <= 0 {
			return fmt.Errorf("scope: deployment retention %v is not positive: %w", d.Retention, ErrConfig)
		}
	default:
		return fmt.Errorf("scope: unknown mode %q (want %q or %q): %w", c.Mode, ModeLab, ModeInternet, ErrConfig)
	}
	for _, p := range c.Allow {
		if !p.IsValid() {
			return fmt.Errorf("scope: invalid allow prefix %v: %w", p, ErrConfig)
		}
		if p.Addr().Is4In6() {
			return fmt.Errorf("scope: allow prefix %v is IPv4-mapped; write it as IPv4: %w", p, ErrConfig)
		}
		if p.Bits() == 0 {
			return fmt.Errorf("scope: allow prefix %v covers a whole address family: %w", p, ErrConfig)
		}
	}
	return nil
}

// Guard checks addresses against a Config. It is safe for concurrent use.
type Guard struct {
	mode    Mode
	allow   []netip.Prefix
	deploy  *Deployment
	refused [numReasons]atomic.Uint64
	metric  *prometheus.CounterVec // nil without a registry
}

// New returns a guard for cfg. If reg is not nil the refusal counter
// vigil_scope_refused_total{reason} is registered on it (a counter already
// registered there by another guard is shared).
func New(cfg Config, reg prometheus.Registerer) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Guard{mode: cfg.Mode, allow: make([]netip.Prefix, len(cfg.Allow))}
	if g.mode == "" {
		g.mode = ModeLab
	}
	for i, p := range cfg.Allow {
		g.allow[i] = p.Masked()
	}
	if cfg.Deployment != nil {
		d := *cfg.Deployment
		g.deploy = &d
	}
	if reg != nil {
		cv := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_scope_refused_total",
			Help: "Destinations and listen addresses the network scope guard refused, by reason.",
		}, []string{"reason"})
		if err := reg.Register(cv); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("scope: registering metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("scope: registering metrics: %w", err)
			}
			cv = existing
		}
		for _, name := range reasonNames {
			cv.WithLabelValues(name) // so that every reason shows, at zero
		}
		g.metric = cv
	}
	return g, nil
}

// Mode returns the guard's mode.
func (g *Guard) Mode() Mode { return g.mode }

// Deployment returns a copy of the deployment, or nil in lab mode.
func (g *Guard) Deployment() *Deployment {
	if g.deploy == nil {
		return nil
	}
	d := *g.deploy
	return &d
}

// Refused returns how many addresses were refused for reason r.
func (g *Guard) Refused(r Reason) uint64 {
	if r < 0 || r >= numReasons {
		return 0
	}
	return g.refused[r].Load()
}

// RefusedCounts returns the refusal counts by reason name.
func (g *Guard) RefusedCounts() map[string]uint64 {
	m := make(map[string]uint64, numReasons)
	for r := Reason(0); r < numReasons; r++ {
		m[r.String()] = g.refused[r].Load()
	}
	return m
}

func (g *Guard) refuse(r Reason, what string, detail string) error {
	g.refused[r].Add(1)
	if g.metric != nil {
		g.metric.WithLabelValues(reasonNames[r]).Inc()
	}
	return &RefusedError{Addr: what, Reason: r, detail: detail}
}

// RefusedError is the error of a refusal. It wraps ErrOutOfScope.
type RefusedError struct {
	// Addr is the address as the caller gave it.
	Addr string
	// Reason is why it was refused.
	Reason Reason
	detail string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("scope: %s refused (%s: %s): %v", e.Addr, e.Reason, e.detail, ErrOutOfScope)
}

// Unwrap returns ErrOutOfScope.
func (e *RefusedError) Unwrap() error { return ErrOutOfScope }

func (g *Guard) allowed(a netip.Addr) bool {
	for _, p := range g.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var (
	sharedCGNAT = netip.MustParsePrefix("100.64.0.0/10")
	reserved4   = netip.MustParsePrefix("240.0.0.0/4")   // includes broadcast
	thisNet4    = netip.MustParsePrefix("0.0.0.0/8")     // "this network"
	benchmark4  = netip.MustParsePrefix("198.18.0.0/15") // RFC 2544

	// IPv6 forms that carry an IPv4 address, judged by the address inside
	// (a NAT64 or 6to4 gateway would deliver to it): the well-known NAT64
	// prefix (RFC 6052, the last 32 bits) and 6to4 (RFC 3056, bits 16 to
	// 48).
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
	// IPv6 ranges of one site or none: local-use NAT64 (RFC 8215),
	// deprecated site-local (RFC 3879), and the deprecated IPv4-compatible
	// form (RFC 4291; ::/128 and ::1 are caught before it).
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	siteLocal6 = netip.MustParsePrefix("fec0::/10")
	v4Compat6  = netip.MustParsePrefix("::/96")
)

// embeddedIPv4 returns the IPv4 address a NAT64 or 6to4 address carries.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case !a.Is6():
		return netip.Addr{}, false
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// classify returns why a destination is refused, or -1 if it is in scope.
func (g *Guard) classify(a netip.Addr, port uint16) (Reason, string) {
	if !a.IsValid() {
		return ReasonNotIP, "invalid address"
	}
	a = a.Unmap().WithZone("")
	if port == 0 {
		return ReasonSpecial, "port 0"
	}
	if g.allowed(a) {
		return -1, ""
	}
	switch {
	case a.IsLoopback():
		return -1, ""
	case a.IsUnspecified(), a.IsMulticast(), a.IsInterfaceLocalMulticast(), reserved4.Contains(a), thisNet4.Contains(a), v4Compat6.Contains(a):
		return ReasonSpecial, "unspecified, multicast, broadcast or reserved"
	case a.IsPrivate(), a.IsLinkLocalUnicast(), sharedCGNAT.Contains(a), benchmark4.Contains(a), siteLocal6.Contains(a), nat64Local.Contains(a):
		return ReasonPrivate, "private or link-local address not in the allow list"
	}
	if v4, ok := embeddedIPv4(a); ok && g.mode == ModeInternet {
		// Judged by the IPv4 address a translator would deliver to; its
		// loopback is the translator's own, never in scope.
		if v4.IsLoopback() {
			return ReasonSpecial, "NAT64 or 6to4 address of a loopback address"
		}
		if r, _ := g.classify(v4, port); r >= 0 {
			return r, "NAT64 or 6to4 address of an IPv4 address out of scope"
		}
	}
	if g.mode == ModeInternet {
		return -1, ""
	}
	return ReasonPublic, "public address in lab mode"
}

// Check returns nil if addr is an in-scope destination, and otherwise a
// *RefusedError wrapping ErrOutOfScope (and counts the refusal).
func (g *Guard) Check(addr netip.AddrPort) error {
	r, detail := g.classify(addr.Addr(), addr.Port())
	if r < 0 {
		return nil
	}
	return g.refuse(r, addr.String(), detail)
}

// CheckString parses a literal "ip:port" and checks it. A host name is
// refused without being resolved.
func (g *Guard) CheckString(address string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return netip.AddrPort{}, g.refuse(ReasonNotIP, fmt.Sprintf("%q", address), "not a literal IP address and port; names are never resolved")
	}
	return ap, g.Check(ap)
}

// CheckNetAddr checks a net.Addr given to a packet conn. *net.UDPAddr and
// *net.TCPAddr are taken as they are; any other kind must spell a literal
// "ip:port" (a name is refused, never resolved).
func (g *Guard) CheckNetAddr(addr net.Addr) (netip.AddrPort, error) {
	switch a := addr.(type) {
	case *net.UDPAddr:
		if a == nil {
			return netip.AddrPort{}, g.refuse(ReasonNotIP, "<nil>", "nil address")
		}
		return g.checkIPPort(a.IP, a.Port, a.String())
	case *net.TCPAddr:
		if a == nil {
			return netip.AddrPort{}, g.refuse(ReasonNotIP, "<nil>", "nil address")
		}
		return g.checkIPPort(a.IP, a.Port, a.String())
	case nil:
		return netip.AddrPort{}, g.refuse(ReasonNotIP, "<nil>", "nil address")
	}
	return g.CheckString(addr.String())
}

func (g *Guard) checkIPPort(ip net.IP, port int, s string) (netip.AddrPort, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port < 0 || port > 65535 {
		return netip.AddrPort{}, g.refuse(ReasonNotIP, s, "not an IP address and port")
	}
	ap := netip.AddrPortFrom(a.Unmap(), uint16(port))
	return ap, g.Check(ap)
}

// CheckListen checks an address a sensor wants to listen on. In lab mode
// only loopback and the Allow prefixes are allowed (not the unspecified
// address, which would listen on every interface); port 0 (any free port)
// is fine. In internet mode any address is allowed.
func (g *Guard) CheckListen(addr netip.AddrPort) error {
	if g.mode == ModeInternet {
		if !addr.Addr().IsValid() {
			return g.refuse(ReasonNotIP, addr.String(), "invalid listen address")
		}
		return nil
	}
	a := addr.Addr().Unmap().WithZone("")
	if !a.IsValid() {
		return g.refuse(ReasonNotIP, addr.String(), "invalid listen address")
	}
	if a.IsLoopback() || g.allowed(a) {
		return nil
	}
	return g.refuse(ReasonListen, addr.String(), "listen address outside loopback and the allow list in lab mode")
}

// CheckListenString parses a literal "ip:port" listen address and checks
// it. A host name or an empty host (":6881", every interface) is refused in
// lab mode.
func (g *Guard) CheckListenString(address string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		if strings.HasPrefix(address, ":") { // empty host: every interface
			if g.mode == ModeInternet {
				return netip.AddrPort{}, nil
			}
			return netip.AddrPort{}, g.refuse(ReasonListen, fmt.Sprintf("%q", address), "listening on every interface in lab mode")
		}
		return netip.AddrPort{}, g.refuse(ReasonNotIP, fmt.Sprintf("%q", address), "not a literal IP address and port; names are never resolved")
	}
	return ap, g.CheckListen(ap)
}

// ListenPacket checks address, then listens with lc (nil means a zero
// ListenConfig) and returns the packet conn wrapped by PacketConn.
func (g *Guard) ListenPacket(ctx context.Context, lc *net.ListenConfig, network, address string) (net.PacketConn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, g.refuse(ReasonNotIP, network+" "+address, err.Error())
	}
	if _, err := g.CheckListenString(address); err != nil {
		return nil, err
	}
	if lc == nil {
		lc = &net.ListenConfig{}
	}
	pc, err := lc.ListenPacket(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return g.PacketConn(pc), nil
}

// Listen checks address, then listens for streams with lc (nil means a
// zero ListenConfig).
func (g *Guard) Listen(ctx context.Context, lc *net.ListenConfig, network, address string) (net.Listener, error) {
	if err := checkNetwork(network); err != nil {
		return nil, g.refuse(ReasonNotIP, network+" "+address, err.Error())
	}
	if _, err := g.CheckListenString(address); err != nil {
		return nil, err
	}
	if lc == nil {
		lc = &net.ListenConfig{}
	}
	return lc.Listen(ctx, network, address)
}

func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		return nil
	}
	return fmt.Errorf("network %q is not TCP or UDP", network)
}

// DialFunc is the shape of net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Dial wraps dial so that every address is checked before dial is called.
// Names are refused, never resolved.
func (g *Guard) Dial(dial DialFunc) DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if err := checkNetwork(network); err != nil {
			return nil, g.refuse(ReasonNotIP, network+" "+address, err.Error())
		}
		if _, err := g.CheckString(address); err != nil {
			return nil, err
		}
		return dial(ctx, network, address)
	}
}

// Dialer is a guarded dialer.
type Dialer struct {
	dial DialFunc
}

// DialContext checks address, then dials it.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.dial(ctx, network, address)
}

// Dial is DialContext with a background context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.dial(context.Background(), network, address)
}

// Dialer returns a dialer that checks every address before dialing with a
// copy of base (nil means a zero net.Dialer). As a second line, the copy's
// socket control hook checks the address the kernel is about to connect
// to, so that nothing reaches the wire even if a caller bypasses the first
// check.
func (g *Guard) Dialer(base *net.Dialer) *Dialer {
	var d net.Dialer
	if base != nil {
		d = *base
	}
	prevCtx, prev := d.ControlContext, d.Control
	d.Control = nil
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if _, err := g.CheckString(address); err != nil {
			return err
		}
		if prevCtx != nil {
			return prevCtx(ctx, network, address, c)
		}
		if prev != nil {
			return prev(network, address, c)
		}
		return nil
	}
	return &Dialer{dial: g.Dial(d.DialContext)}
}

// PacketConn is a guarded packet conn: writes to out-of-scope or non-IP
// destinations are refused before the inner conn sees them.
type PacketConn struct {
	net.PacketConn
	g *Guard
}

// PacketConn wraps pc so that WriteTo checks each destination first.
func (g *Guard) PacketConn(pc net.PacketConn) *PacketConn {
	return &PacketConn{PacketConn: pc, g: g}
}

// WriteTo checks addr, then writes; a refused write returns the refusal and
// never calls the inner WriteTo.
func (c *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if _, err := c.g.CheckNetAddr(addr); err != nil {
		return 0, err
	}
	return c.PacketConn.WriteTo(p, addr)
}

// WriteToUDPAddrPort checks addr, then writes, using the inner conn's
// WriteToUDPAddrPort when it has one (as *net.UDPConn does) to avoid an
// allocation per packet.
func (c *PacketConn) WriteToUDPAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if err := c.g.Check(addr); err != nil {
		return 0, err
	}
	if w, ok := c.PacketConn.(interface {
		WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
	}); ok {
		return w.WriteToUDPAddrPort(p, addr)
	}
	return c.PacketConn.WriteTo(p, net.UDPAddrFromAddrPort(addr))
}

// ReadFromUDPAddrPort reads a datagram, using the inner conn's
// ReadFromUDPAddrPort when it has one.
func (c *PacketConn) ReadFromUDPAddrPort(p []byte) (int, netip.AddrPort, error) {
	if r, ok := c.PacketConn.(interface {
		ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
	}); ok {
		return r.ReadFromUDPAddrPort(p)
	}
	n, addr, err := c.PacketConn.ReadFrom(p)
	if err != nil {
		return n, netip.AddrPort{}, err
	}
	if ua, ok := addr.(*net.UDPAddr); ok {
		return n, ua.AddrPort(), nil
	}
	ap, _ := netip.ParseAddrPort(addr.String())
	return n, ap, nil
}
