package tracker

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/internal/bencode"
)

// This file holds the HTTP tracker wire format: the announce query and the
// parsers of bencoded announce and scrape bodies. Nothing here does I/O.

// httpDepth is the nesting the parsers accept: the response dictionary, a
// peer list, a peer dictionary, and slack for unknown keys that nest.
const httpDepth = 8

// maxSeconds bounds intervals so that a hostile value cannot overflow a
// time.Duration.
const maxSeconds = math.MaxInt32

// AppendAnnounceQuery appends the announce parameters of req to a query
// string (without "?" or a leading "&"). Binary values are percent-encoded
// byte by byte, every byte outside RFC 3986's unreserved set, as BEP 3
// trackers expect (never "+" for a space).
func AppendAnnounceQuery(dst []byte, req Request) []byte {
	dst = append(dst, "info_hash="...)
	dst = appendEscaped(dst, req.InfoHash[:])
	dst = append(dst, "&peer_id="...)
	dst = appendEscaped(dst, req.PeerID[:])
	dst = append(dst, "&port="...)
	dst = strconv.AppendUint(dst, uint64(req.Port), 10)
	dst = append(dst, "&uploaded="...)
	dst = strconv.AppendInt(dst, req.Uploaded, 10)
	dst = append(dst, "&downloaded="...)
	dst = strconv.AppendInt(dst, req.Downloaded, 10)
	dst = append(dst, "&left="...)
	dst = strconv.AppendInt(dst, req.Left, 10)
	if req.Compact {
		dst = append(dst, "&compact=1"...)
	} else {
		dst = append(dst, "&compact=0"...)
	}
	if req.Event != EventNone {
		dst = append(dst, "&event="...)
		dst = append(dst, req.Event.String()...)
	}
	if req.NumWant > 0 {
		dst = append(dst, "&numwant="...)
		dst = strconv.AppendInt(dst, int64(req.NumWant), 10)
	}
	if req.Key != 0 {
		dst = append(dst, "&key="...)
		dst = fmt.Appendf(dst, "%08x", req.Key)
	}
	if req.TrackerID != "" {
		dst = append(dst, "&trackerid="...)
		dst = appendEscaped(dst, []byte(req.TrackerID))
	}
	return dst
}

// AppendScrapeQuery appends one info_hash parameter per hash.
func AppendScrapeQuery(dst []byte, infohashes [][20]byte) []byte {
	for i, h := range infohashes {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, "info_hash="...)
		dst = appendEscaped(dst, h[:])
	}
	return dst
}

func appendEscaped(dst, b []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			dst = append(dst, c)
		default:
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		}
	}
	return dst
}

// ParseHTTPAnnounce parses the bencoded body of an HTTP announce response,
// keeping at most maxPeers peers. A "failure reason" is returned as a
// *FailureError (without the tracker's name, which the caller adds); any
// other defect wraps ErrMalformed. Raw and Sent are left empty.
func ParseHTTPAnnounce(body []byte, maxPeers int) (Response, error) {
	d, err := decodeDict(body)
	if err != nil {
		return Response{}, err
	}
	if v, ok := d.Get("failure reason"); ok {
		s, ok := v.([]byte)
		if !ok {
			return Response{}, fmt.Errorf("\"failure reason\" is a %s, not a string: %w", kind(v), ErrMalformed)
		}
		return Response{}, &FailureError{Reason: string(s)}
	}
	var r Response
	if r.Interval, err = seconds(d, "interval"); err != nil {
		return Response{}, err
	}
	if r.MinInterval, err = seconds(d, "min interval"); err != nil {
		return Response{}, err
	}
	if r.Complete, err = count(d, "complete"); err != nil {
		return Response{}, err
	}
	if r.Incomplete, err = count(d, "incomplete"); err != nil {
		return Response{}, err
	}
	if r.TrackerID, err = str(d, "tracker id"); err != nil {
		return Response{}, err
	}
	if r.Warning, err = str(d, "warning message"); err != nil {
		return Response{}, err
	}
	if v, ok := d.Get("peers"); ok {
		switch v := v.(type) {
		case []byte:
			if r.Peers, r.PeersSkipped, err = appendCompact(r.Peers, r.PeersSkipped, v, 6, maxPeers); err != nil {
				return Response{}, fmt.Errorf("\"peers\": %w", err)
			}
		case []any:
			if err := appendPeerDicts(&r, v, maxPeers); err != nil {
				return Response{}, err
			}
		default:
			return Response{}, fmt.Errorf("\"peers\" is a %s, not a string or list: %w", kind(v), ErrMalformed)
		}
	}
	if v, ok := d.Get("peers6"); ok {
		s, ok := v.([]byte)
		if !ok {
			return Response{}, fmt.Errorf("\"peers6\" is a %s, not a string: %w", kind(v), ErrMalformed)
		}
		if r.Peers, r.PeersSkipped, err = appendCompact(r.Peers, r.PeersSkipped, s, 18, maxPeers); err != nil {
			return Response{}, fmt.Errorf("\"peers6\": %w", err)
		}
	}
	return r, nil
}

// ParseHTTPScrape parses the bencoded body of an HTTP scrape response. Keys
// of "files" that are not 20 bytes long are skipped; a missing count is 0.
func ParseHTTPScrape(body []byte) (map[[20]byte]ScrapeStats, error) {
	d, err := decodeDict(body)
	if err != nil {
		return nil, err
	}
	if v, ok := d.Get("failure reason"); ok {
		s, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("\"failure reason\" is a %s, not a string: %w", kind(v), ErrMalformed)
		}
		return nil, &FailureError{Reason: string(s)}
	}
	out := make(map[[20]byte]ScrapeStats)
	v, ok := d.Get("files")
	if !ok {
		return out, nil
	}
	files, ok := v.(bencode.Dict)
	if !ok {
		return nil, fmt.Errorf("\"files\" is a %s, not a dictionary: %w", kind(v), ErrMalformed)
	}
	for _, p := range files {
		if len(p.Key) != 20 {
			continue
		}
		fd, ok := p.Value.(bencode.Dict)
		if !ok {
			return nil, fmt.Errorf("files entry %x is a %s, not a dictionary: %w", p.Key, kind(p.Value), ErrMalformed)
		}
		var s ScrapeStats
		if s.Complete, err = count(fd, "complete"); err != nil {
			return nil, fmt.Errorf("files entry %x: %w", p.Key, err)
		}
		if s.Incomplete, err = count(fd, "incomplete"); err != nil {
			return nil, fmt.Errorf("files entry %x: %w", p.Key, err)
		}
		if s.Downloaded, err = count(fd, "downloaded"); err != nil {
			return nil, fmt.Errorf("files entry %x: %w", p.Key, err)
		}
		out[[20]byte(p.Key)] = s
	}
	return out, nil
}

func decodeDict(body []byte) (bencode.Dict, error) {
	v, err := bencode.Decode(body, httpDepth)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	d, ok := v.(bencode.Dict)
	if !ok {
		return nil, fmt.Errorf("response is a %s, not a dictionary: %w", kind(v), ErrMalformed)
	}
	return d, nil
}

// appendCompact appends the peers of a compact list of size-byte entries
// (6: IPv4 and port; 18: IPv6 and port), up to limit in all. Entries beyond
// limit and entries with port 0 are counted in skipped.
func appendCompact(dst []netip.AddrPort, skipped int, b []byte, size, limit int) ([]netip.AddrPort, int, error) {
	if len(b)%size != 0 {
		return dst, skipped, fmt.Errorf("%d bytes is not a multiple of %d: %w", len(b), size, ErrMalformed)
	}
	// Grow once, by no more than the cap allows.
	dst = slices.Grow(dst, max(0, min(len(b)/size, limit-len(dst))))
	for ; len(b) > 0; b = b[size:] {
		ip, _ := netip.AddrFromSlice(b[:size-2])
		port := uint16(b[size-2])<<8 | uint16(b[size-1])
		if port == 0 || len(dst) >= limit {
			skipped++
			continue
		}
		dst = append(dst, netip.AddrPortFrom(ip.Unmap(), port))
	}
	return dst, skipped, nil
}

// appendPeerDicts reads the non-compact peer list: dictionaries with "ip"
// (an address literal, or a host name, which is skipped and never
// resolved), "port" and optionally "peer id".
func appendPeerDicts(r *Response, list []any, limit int) error {
	for i, e := range list {
		pd, ok := e.(bencode.Dict)
		if !ok {
			return fmt.Errorf("peer %d is a %s, not a dictionary: %w", i, kind(e), ErrMalformed)
		}
		ipv, ok := pd.Get("ip")
		ipb, isStr := ipv.([]byte)
		if !ok || !isStr {
			return fmt.Errorf("peer %d has no \"ip\" string: %w", i, ErrMalformed)
		}
		pv, ok := pd.Get("port")
		port, isInt := pv.(int64)
		if !ok || !isInt || port < 0 || port > math.MaxUint16 {
			return fmt.Errorf("peer %d has no \"port\" in 0..65535: %w", i, ErrMalformed)
		}
		var id []byte
		if v, ok := pd.Get("peer id"); ok {
			b, ok := v.([]byte)
			if !ok {
				return fmt.Errorf("peer %d \"peer id\" is a %s, not a string: %w", i, kind(v), ErrMalformed)
			}
			id = b
		}
		ip, err := netip.ParseAddr(string(ipb))
		if err != nil || ip.Zone() != "" || port == 0 || len(r.Peers) >= limit {
			r.PeersSkipped++
			continue
		}
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
		r.Peers = append(r.Peers, ap)
		if id != nil {
			if r.PeerIDs == nil {
				r.PeerIDs = make(map[netip.AddrPort][]byte)
			}
			r.PeerIDs[ap] = append([]byte(nil), id...)
		}
	}
	return nil
}

func seconds(d bencode.Dict, key string) (time.Duration, error) {
	v, ok := d.Get(key)
	if !ok {
		return 0, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%q is a %s, not an integer: %w", key, kind(v), ErrMalformed)
	}
	if n < 0 || n > maxSeconds {
		return 0, fmt.Errorf("%q = %d is outside 0..%d: %w", key, n, maxSeconds, ErrMalformed)
	}
	return time.Duration(n) * time.Second, nil
}

func count(d bencode.Dict, key string) (int, error) {
	v, ok := d.Get(key)
	if !ok {
		return 0, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%q is a %s, not an integer: %w", key, kind(v), ErrMalformed)
	}
	if n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%q = %d is outside 0..%d: %w", key, n, math.MaxInt32, ErrMalformed)
	}
	return int(n), nil
}

func str(d bencode.Dict, key string) (string, error) {
	v, ok := d.Get(key)
	if !ok {
		return "", nil
	}
	s, ok := v.([]byte)
	if !ok {
		return "", fmt.Errorf("%q is a %s, not a string: %w", key, kind(v), ErrMalformed)
	}
	return string(s), nil
}

func kind(v any) string {
	switch v.(type) {
	case int64:
		return "integer"
	case []byte:
		return "string"
	case []any:
		return "list"
	case bencode.Dict:
		return "dictionary"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}
