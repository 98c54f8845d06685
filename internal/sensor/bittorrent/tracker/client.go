package tracker

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// trackerURL is a parsed tracker URL whose address has passed the guard.
type trackerURL struct {
	raw      string // as the caller gave it, for errors
	scheme   string // "http", "https" or "udp"
	addr     netip.AddrPort
	host     string // the Host header: "127.0.0.1:6969", "[::1]:6969"
	path     string // escaped path, "/" when empty
	rawQuery string // without "?"
}

// parseTracker parses tracker and checks its address with the guard, so
// that nothing is dialled, listened on or sent for a refused tracker.
func (c *Client) parseTracker(tracker string) (trackerURL, error) {
	u, err := url.Parse(tracker)
	if err != nil {
		return trackerURL{}, fmt.Errorf("tracker %q: %v: %w", tracker, err, ErrBadURL)
	}
	t := trackerURL{raw: tracker, scheme: strings.ToLower(u.Scheme)}
	port := u.Port()
	switch t.scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	case "udp":
		if port == "" {
			return trackerURL{}, fmt.Errorf("tracker %s: a udp tracker needs a port: %w", tracker, ErrBadURL)
		}
	default:
		return trackerURL{}, fmt.Errorf("tracker %s: scheme %q is not http, https or udp: %w", tracker, u.Scheme, ErrBadURL)
	}
	if u.User != nil {
		// Credentials in a tracker URL would end up in the transcript.
		return trackerURL{}, fmt.Errorf("tracker %s: user information in the URL is not supported: %w", tracker, ErrBadURL)
	}
	host := u.Hostname()
	if host == "" {
		return trackerURL{}, fmt.Errorf("tracker %s: no host: %w", tracker, ErrBadURL)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return trackerURL{}, fmt.Errorf("tracker %s: bad port %q: %w", tracker, port, ErrBadURL)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		// Let the guard refuse (and count) the name; it never resolves it.
		_, gerr := c.guard.CheckString(net.JoinHostPort(host, port))
		if gerr == nil { // cannot happen: the guard refuses every name
			gerr = ErrBadURL
		}
		return trackerURL{}, fmt.Errorf("tracker %s: tracker host must be an IP address in %s scope (names are never resolved): %w", tracker, c.guard.Mode(), gerr)
	}
	t.addr = netip.AddrPortFrom(ip.Unmap(), uint16(p))
	if err := c.guard.Check(t.addr); err != nil {
		return trackerURL{}, fmt.Errorf("tracker %s: %w", tracker, err)
	}
	t.host = t.addr.String()
	if u.Port() == "" { // keep the Host header as a browser would send it
		t.host = u.Host
	}
	t.path = u.EscapedPath()
	if t.path == "" {
		t.path = "/"
	}
	t.rawQuery = u.RawQuery
	if strings.IndexFunc(t.path+t.rawQuery, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		// They go verbatim into the request line.
		return trackerURL{}, fmt.Errorf("tracker %s: unescaped space or control character in path or query: %w", tracker, ErrBadURL)
	}
	return t, nil
}

// Check reports whether tracker is a URL the client would send to: a
// scheme it speaks (http, https, udp), an IP address (names are never
// resolved) that the guard allows. It sends nothing; the error names the
// tracker.
func (c *Client) Check(tracker string) error {
	_, err := c.parseTracker(tracker)
	return err
}

// Announce announces req to tracker (http://ip:port/path, https://...,
// udp://ip:port) and returns the tracker's answer. On a tracker failure
// the error is a *FailureError naming the tracker and its reason, and the
// Response still carries Sent and Raw for the transcript.
func (c *Client) Announce(ctx context.Context, tracker string, req Request) (Response, error) {
	t, err := c.parseTracker(tracker)
	if err != nil {
		return Response{}, err
	}
	if t.scheme == "udp" {
		return c.announceUDP(ctx, t, req)
	}
	return c.announceHTTP(ctx, t, req)
}

// Scrape asks tracker for the counts of infohashes. For an HTTP tracker
// the scrape URL is derived from the announce URL (ScrapeURL); a UDP
// tracker is scraped at its own address. Only the asked info-hashes are
// returned, even if the tracker says more; a hash the tracker does not
// know is absent from the map.
func (c *Client) Scrape(ctx context.Context, tracker string, infohashes [][20]byte) (map[[20]byte]ScrapeStats, error) {
	t, err := c.parseTracker(tracker)
	if err != nil {
		return nil, err
	}
	out := make(map[[20]byte]ScrapeStats, len(infohashes))
	if t.scheme != "udp" {
		p, err := scrapePath(t.path)
		if err != nil {
			return nil, fmt.Errorf("tracker %s: %w", tracker, err)
		}
		t.path = p
	}
	for len(infohashes) > 0 {
		n := min(len(infohashes), c.cfg.MaxScrapeBatch)
		batch := infohashes[:n]
		infohashes = infohashes[n:]
		var err error
		if t.scheme == "udp" {
			err = c.scrapeUDP(ctx, t, batch, out)
		} else {
			err = c.scrapeHTTP(ctx, t, batch, out)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ScrapeURL derives the scrape URL of an HTTP announce URL by the BEP 48
// convention: the last path component must begin with "announce", which
// is replaced by "scrape"; the query is kept. A UDP tracker's scrape
// address is its announce address. Otherwise ErrNoScrape.
func ScrapeURL(announce string) (string, error) {
	u, err := url.Parse(announce)
	if err != nil {
		return "", fmt.Errorf("tracker %q: %v: %w", announce, err, ErrBadURL)
	}
	switch strings.ToLower(u.Scheme) {
	case "udp":
		return announce, nil
	case "http", "https":
	default:
		return "", fmt.Errorf("tracker %s: scheme %q is not http, https or udp: %w", announce, u.Scheme, ErrBadURL)
	}
	p, err := scrapePath(u.EscapedPath())
	if err != nil {
		return "", fmt.Errorf("tracker %s: %w", announce, err)
	}
	u.RawPath = p
	u.Path, err = url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("tracker %s: %v: %w", announce, err, ErrBadURL)
	}
	return u.String(), nil
}

// scrapePath applies the BEP 48 rule to an escaped path.
func scrapePath(escaped string) (string, error) {
	i := strings.LastIndexByte(escaped, '/')
	if i < 0 || !strings.HasPrefix(escaped[i+1:], "announce") {
		return "", ErrNoScrape
	}
	return escaped[:i+1] + "scrape" + escaped[i+1+len("announce"):], nil
}
