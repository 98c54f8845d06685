package hashkind

import "strings"

// Candidates reads s as Parse does, but where s is a bare digest (hex or
// base32, no kind prefix, URN or link) and hint is Unknown it returns one
// hash for every kind whose digest has that length: 40 hex digits are a
// sha1 and a BitTorrent v1 info-hash, 64 a sha256, a v2 info-hash and a v2
// file root, 32 an md5 and an ed2k. A lookup that tried only the first
// kind would say "no match" for a value that is on a list as another kind.
// Any other form gives what Parse gives, as one hash.
func Candidates(s string, hint Kind) ([]Hash, error) {
	t := strings.TrimSpace(s)
	if hint != Unknown || t == "" || strings.IndexByte(t, ':') >= 0 || isLink(t) {
		h, err := Parse(s, hint)
		if err != nil {
			return nil, err
		}
		return []Hash{h}, nil
	}
	var out []Hash
	for _, k := range All() {
		if h, err := decodeAs(s, t, k); err == nil {
			out = append(out, h)
		}
	}
	if len(out) == 0 {
		// Parse says why in words.
		if _, err := Parse(s, hint); err != nil {
			return nil, err
		}
	}
	return out, nil
}
