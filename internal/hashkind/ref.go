package hashkind

import (
	"net/url"
	"strconv"
	"strings"
)

// Ref is what one reference to a file names: its hashes and, where the form
// carries them, its name, size and trackers. A magnet link may name several
// hashes (a hybrid torrent's btih and btih2; a Gnutella file's sha1 and tth).
type Ref struct {
	Hashes   []Hash
	Name     string   // file or torrent name (magnet dn, ed2k link name), "" if none
	Size     int64    // bytes (magnet xl, ed2k link size); -1 unknown
	Trackers []string // magnet tr parameters, in order
	AICH     string   // eMule AICH root (base32) from an ed2k link's h= part; not a kind Vigil matches on
}

// ParseRef reads a magnet link, an ed2k file link, or any form Parse reads.
//
// Magnet links: every xt parameter (also xt.1, xt.2, ...) with urn:btih,
// urn:btmh, urn:sha1, urn:tree:tiger, urn:bitprint, urn:ed2k, urn:ed2khash,
// urn:md5 or urn:sha256 gives a hash; other xt URNs (aich, kzhash, crc32, ...)
// are passed over, but a link with none Vigil reads is an error. dn gives
// Name, xl Size, tr Trackers.
//
// ed2k links: ed2k://|file|NAME|SIZE|HASH|/ with optional h=AICH|, p=PARTS|
// and s=URL| parts before the closing "/", and %-escaped names.
//
// hint only decides the kind of bare digests (see Parse); magnets and links
// say their kinds themselves.
func ParseRef(s string, hint Kind) (Ref, error) {
	t := strings.TrimSpace(s)
	switch {
	case hasPrefixFold(t, "magnet:"):
		return parseMagnet(s, t)
	case hasPrefixFold(t, "ed2k://"):
		return parseED2KLink(s, t)
	case hasPrefixFold(t, "urn:"):
		if hint != Unknown && !hint.Valid() {
			return Ref{}, parseErr(s, ErrUnknownKind, "hint is not a known kind (%d)", uint8(hint))
		}
		hs, err := parseURN(s, t)
		if err != nil {
			return Ref{}, err
		}
		if len(hs) == 1 && hint != Unknown && hs[0].kind != hint {
			return Ref{}, parseErr(s, ErrKindMismatch, "is a %s hash, not %s", hs[0].kind, hint)
		}
		return Ref{Hashes: hs, Size: -1}, nil
	}
	h, err := Parse(s, hint)
	if err != nil {
		return Ref{}, err
	}
	return Ref{Hashes: []Hash{h}, Size: -1}, nil
}

// pick is the one hash Parse returns for a reference: the one of kind hint,
// or the first.
func (r Ref) pick(in string, hint Kind) (Hash, error) {
	if len(r.Hashes) == 0 {
		return Hash{}, parseErr(in, ErrSyntax, "names no hash")
	}
	if hint == Unknown {
		return r.Hashes[0], nil
	}
	for _, h := range r.Hashes {
		if h.kind == hint {
			return h, nil
		}
	}
	kinds := make([]string, len(r.Hashes))
	for i, h := range r.Hashes {
		kinds[i] = h.kind.String()
	}
	return Hash{}, parseErr(in, ErrKindMismatch, "names %s, not %s", strings.Join(kinds, " and "), hint)
}

// knownURN reports whether parseURN reads the namespace of URN v. Magnet
// links customarily carry hashes Vigil does not match on (aich, kzhash,
// crc32, ...) beside those it does; those are passed over.
func knownURN(v string) bool {
	ns, _, _ := strings.Cut(strings.ToLower(v[len("urn:"):]), ":")
	switch ns {
	case "sha1", "tree", "btih", "btmh", "ed2k", "ed2khash", "md5", "sha256", "sha-256", "bitprint":
		return true
	}
	return false
}

func parseMagnet(in, t string) (Ref, error) {
	q := t[len("magnet:"):]
	if !strings.HasPrefix(q, "?") {
		return Ref{}, parseErr(in, ErrSyntax, "magnet link without '?' after \"magnet:\"")
	}
	ref := Ref{Size: -1}
	seen := make(map[Hash]bool)
	skipped := 0
	for part := range strings.SplitSeq(q[1:], "&") {
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return Ref{}, parseErr(in, ErrSyntax, "magnet parameter %q has no '='", cutForMessage(part))
		}
		base := strings.ToLower(key)
		if b, n, ok := strings.Cut(base, "."); ok && isDecimal(n) {
			base = b // xt.1, tr.2: numbered forms of the same parameter
		}
		v, err := url.QueryUnescape(val)
		if err != nil {
			return Ref{}, parseErr(in, ErrSyntax, "magnet parameter %s has a bad %%-escape", key)
		}
		switch base {
		case "xt":
			if !hasPrefixFold(v, "urn:") {
				return Ref{}, parseErr(in, ErrSyntax, "magnet xt %q is not a URN", cutForMessage(v))
			}
			if !knownURN(v) {
				skipped++
				continue
			}
			hs, err := parseURN(v, v)
			if err != nil {
				if pe, ok := err.(*ParseError); ok {
					return Ref{}, parseErr(in, pe.Err, "xt %s", pe.Reason)
				}
				return Ref{}, err
			}
			for _, h := range hs {
				if !seen[h] {
					seen[h] = true
					ref.Hashes = append(ref.Hashes, h)
				}
			}
		case "dn":
			if ref.Name == "" {
				ref.Name = v
			}
		case "xl":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return Ref{}, parseErr(in, ErrSyntax, "magnet xl %q is not a size in bytes", cutForMessage(v))
			}
			if ref.Size < 0 {
				ref.Size = n
			}
		case "tr":
			ref.Trackers = append(ref.Trackers, v)
		}
	}
	if len(ref.Hashes) == 0 {
		reason := "magnet link has no xt"
		if skipped > 0 {
			reason = "magnet link has no xt with a hash Vigil reads"
		}
		return Ref{}, parseErr(in, ErrSyntax, "%s (want urn:btih, urn:btmh, urn:sha1, urn:tree:tiger, urn:bitprint, urn:ed2k, urn:md5 or urn:sha256)", reason)
	}
	return ref, nil
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func cutForMessage(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

const ed2kForm = "want ed2k://|file|NAME|SIZE|HASH|/"

func parseED2KLink(in, t string) (Ref, error) {
	parts := strings.Split(t[len("ed2k://"):], "|")
	if len(parts) < 2 || parts[0] != "" {
		return Ref{}, parseErr(in, ErrSyntax, "%s", ed2kForm)
	}
	if !strings.EqualFold(parts[1], "file") {
		return Ref{}, parseErr(in, ErrSyntax, "ed2k link of type %q names no file (%s)", cutForMessage(parts[1]), ed2kForm)
	}
	if len(parts) < 6 {
		return Ref{}, parseErr(in, ErrSyntax, "ed2k link has %d of its 5 fields (%s)", len(parts)-1, ed2kForm)
	}
	name, err := url.PathUnescape(parts[2])
	if err != nil {
		return Ref{}, parseErr(in, ErrSyntax, "ed2k link name has a bad %%-escape")
	}
	if name == "" {
		return Ref{}, parseErr(in, ErrSyntax, "ed2k link has an empty name")
	}
	size, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil || size < 0 {
		return Ref{}, parseErr(in, ErrSyntax, "ed2k link size %q is not a size in bytes", cutForMessage(parts[3]))
	}
	if !(len(parts[4]) == 32 && isHex(parts[4])) {
		return Ref{}, parseErr(in, ErrSyntax, "ed2k link hash %q is not 32 hex digits", cutForMessage(parts[4]))
	}
	h, err := decodeAs(in, parts[4], ED2K)
	if err != nil {
		return Ref{}, err
	}
	ref := Ref{Hashes: []Hash{h}, Name: name, Size: size}
	closed := false
	for _, p := range parts[5:] {
		if p == "/" {
			closed = true
			break // what follows ("|sources,ADDR:PORT|/") names peers, not the file
		}
		key, val, ok := strings.Cut(p, "=")
		switch {
		case p == "":
			// "||": nothing, as eMule reads it
		case ok && strings.EqualFold(key, "h"):
			data, ok := base32Body(val)
			if !ok || len(data) != 32 {
				return Ref{}, parseErr(in, ErrSyntax, "ed2k link AICH hash %q is not 32 base32 characters", cutForMessage(val))
			}
			ref.AICH = strings.ToUpper(data)
		case ok && (strings.EqualFold(key, "p") || strings.EqualFold(key, "s")):
			// part hashes and HTTP sources: not used for matching
		default:
			return Ref{}, parseErr(in, ErrSyntax, "unexpected ed2k link part %q (%s)", cutForMessage(p), ed2kForm)
		}
	}
	if !closed {
		return Ref{}, parseErr(in, ErrSyntax, "ed2k link does not end with |/ (%s)", ed2kForm)
	}
	return ref, nil
}
