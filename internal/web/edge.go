package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/access"
)

// The edge is the first thing a request meets, before any handler,
// middleware or form parser: it bounds the body, works out the client's
// address (believing X-Forwarded-For only from a trusted proxy) and sets
// HSTS under TLS. It must run outermost, so that nothing parses a body it
// has not bounded.

// DefaultMaxBody bounds a request body on every route without a limit of
// its own (BodyLimits): forms, logins, the API.
const DefaultMaxBody = 1 << 20

// Default upload bound of the watch-list import route (Config.MaxUpload).
const defaultMaxUpload = 1 << 30

// BodyLimits returns the body bound of each request: maxUpload for the
// watch-list import (POST /lists/import), DefaultMaxBody for the rest.
// GET, HEAD and OPTIONS requests get no body at all.
func BodyLimits(maxUpload int64) func(*http.Request) int64 {
	if maxUpload <= 0 {
		maxUpload = defaultMaxUpload
	}
	return func(r *http.Request) int64 {
		switch {
		case r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions:
			return 0
		case r.Method == http.MethodPost && r.URL.Path == "/lists/import":
			return maxUpload
		}
		return DefaultMaxBody
	}
}

// ParseTrustedProxies reads a comma-separated list of CIDR prefixes (or
// single addresses) of the reverse proxies whose X-Forwarded-For is
// believed, e.g. "10.0.0.0/24,127.0.0.1".
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR prefix such as 10.0.0.0/24 or an address", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want a CIDR prefix such as 10.0.0.0/24 or an address", f)
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("trusted proxy %q: write IPv4 prefixes as IPv4", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the address a request came from: the connection's
// peer (remoteAddr, "IP:port"), unless that peer is a trusted proxy; then
// the rightmost address of X-Forwarded-For that is not a trusted proxy
// (the leftmost ones are whatever the client wrote, and are never
// believed), as "IP:0" (a proxy does not forward the client's port). ok
// is false when a trusted proxy sent no usable X-Forwarded-For; the
// proxy's own address is returned then.
func ClientAddr(proxies []netip.Prefix, remoteAddr string, xff []string) (addr string, ok bool) {
	peer, err := netip.ParseAddrPort(remoteAddr)
	if err != nil || len(proxies) == 0 || !trusted(proxies, peer.Addr()) {
		return remoteAddr, true
	}
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	last := netip.Addr{}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(hops[i])
		if err != nil {
			break
		}
		last = a
		if !trusted(proxies, a) {
			return netip.AddrPortFrom(a, 0).String(), true
		}
	}
	if last.IsValid() {
		// Every hop is a trusted proxy: the first one is the client.
		return netip.AddrPortFrom(last, 0).String(), true
	}
	return remoteAddr, false
}

// parseHop reads one X-Forwarded-For element: an address, possibly
// bracketed or with a port, as some proxies write it.
func parseHop(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, errors.New("not an address")
	}
	return a.Unmap(), nil
}

// EdgeConfig sets up Edge.
type EdgeConfig struct {
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed (ClientAddr). Empty: none; the connection's peer is the
	// client.
	TrustedProxies []netip.Prefix
	// Limit returns the body bound of a request (nil: BodyLimits(0)).
	Limit func(*http.Request) int64
	// Registry, if set, gets the edge's counters.
	Registry prometheus.Registerer
}

type edgeKey struct{}

// Edge wraps h with the edge's work: r.RemoteAddr becomes the client's
// address (ClientAddr), a body larger than its bound is refused (413)
// before anything reads it and cut at the bound when its length is not
// announced, multipart files spooled to disk for the request it passes on
// are removed when h returns, and HSTS is set under TLS. An Edge inside
// another does no address work twice. Middleware further in that parses
// a copy of the request (r.WithContext) must remove its own spools
// (access.CSRF and the import handler do).
func Edge(h http.Handler, cfg EdgeConfig) http.Handler {
	if cfg.Limit == nil {
		cfg.Limit = BodyLimits(0)
	}
	tooLarge := counter(cfg.Registry, "vigil_web_body_refused_total",
		"Requests refused because their body was larger than the route allows.")
	noXFF := counter(cfg.Registry, "vigil_web_proxy_unforwarded_total",
		"Requests from a trusted proxy without a usable X-Forwarded-For (audited under the proxy's address).")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(edgeKey{}) == nil {
			viaProxy := false
			if peer, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
				viaProxy = trusted(cfg.TrustedProxies, peer.Addr())
			}
			addr, ok := ClientAddr(cfg.TrustedProxies, r.RemoteAddr, r.Header.Values("X-Forwarded-For"))
			if !ok {
				noXFF.Inc()
			}
			r = r.WithContext(context.WithValue(r.Context(), edgeKey{}, true))
			r.RemoteAddr = addr
			if r.TLS != nil || (viaProxy && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")) {
				w.Header().Set("Strict-Transport-Security", "max-age=31536000")
			}
		}
		limit := cfg.Limit(r)
		if r.ContentLength > limit {
			tooLarge.Inc()
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body too large: at most %d bytes here", limit), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		defer func() {
			if r.MultipartForm != nil {
				_ = r.MultipartForm.RemoveAll()
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// isLoopback says whether a request's client (after Edge) is on this
// machine.
func isLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// counter returns a counter registered on reg (the one already there
// under that name, if any).
func counter(reg prometheus.Registerer, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(prometheus.Counter); ok {
				return ex
			}
		}
	}
	return c
}

// metricsGuard serves /metrics to a client on this machine or to an
// authenticated caller (an API token, through wrap: the access layer puts
// the principal in the request's context), and 401 to others.
func metricsGuard(h http.Handler, wrap func(http.Handler) http.Handler) http.Handler {
	authed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if access.PrincipalFrom(r.Context()) != nil {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
		http.Error(w, "metrics: from this machine, or with an API token", http.StatusUnauthorized)
	})
	var withAuth http.Handler = authed
	if wrap != nil {
		withAuth = wrap(authed)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isLoopback(r) {
			h.ServeHTTP(w, r)
			return
		}
		withAuth.ServeHTTP(w, r)
	})
}
