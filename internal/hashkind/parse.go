package hashkind

import (
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors that Parse and ParseRef wrap, for callers that test with
// errors.Is. Every error they return is a *ParseError that also says, in
// words, what was wrong with which input.
var (
	// ErrAmbiguous: the form fits more than one kind (32 hex digits are
	// md5 or ed2k) and no hint was given.
	ErrAmbiguous = errors.New("ambiguous hash")
	// ErrSyntax: the text is not a hash in any form Vigil reads.
	ErrSyntax = errors.New("malformed hash")
	// ErrKindMismatch: the text names or implies one kind and the caller
	// expected another.
	ErrKindMismatch = errors.New("hash of another kind")
)

// ParseError is the error Parse and ParseRef return. Input is the text
// given, cut to a readable length; Reason says why it was refused.
type ParseError struct {
	Input  string
	Reason string
	Err    error // one of the sentinels above, or ErrUnknownKind
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("hash %s: %s", quoteInput(e.Input), e.Reason)
}

func (e *ParseError) Unwrap() error { return e.Err }

func parseErr(in string, sentinel error, format string, args ...any) error {
	return &ParseError{Input: in, Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// maxQuoted is how much of a bad input an error quotes: enough to find the
// line, not so much that a junk megabyte floods the terminal.
const maxQuoted = 72

func quoteInput(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("… (%d bytes)", len(s))
}

// b32 is RFC 4648 base32 without padding; inputs are upper-cased and their
// padding checked and stripped before decoding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Parse reads one hash in any of its customary forms:
//
//   - bare hex, any case: 40 digits are sha1, 48 tth, 64 sha256; 32 digits
//     are md5 or ed2k and need a hint;
//   - bare RFC 4648 base32, any case, padded or not: 32 characters are
//     sha1, 39 tth, 52 sha256;
//   - a kind prefix: "md5:…", "sha1:…", "ed2k:…", "tth:…", "btih:…",
//     "btih2:…", "btv2:…" (any name ParseKind accepts);
//   - a URN: urn:sha1:, urn:tree:tiger: (also tiger/: and tiger/1024:),
//     urn:btih: (40 hex or 32 base32), urn:btmh:1220<64 hex>, urn:ed2k:
//     (and eMule's urn:ed2khash:), urn:md5:, urn:sha256:, and
//     urn:bitprint:SHA1.TTH (which gives the sha1, or the tth if hint is TTH);
//   - a magnet or ed2k link, which gives its hash of kind hint, or its first.
//
// hint is the kind the caller expects; Unknown lets the length decide. With a
// hint, bare digests are read as that kind (40 hex digits with hint BTIH are
// an info-hash) and a prefix that names another kind is an error wrapping
// ErrKindMismatch. Surrounding white space is ignored; anything else that is
// not part of the form is an error that quotes the input and says why.
func Parse(s string, hint Kind) (Hash, error) {
	if hint != Unknown && !hint.Valid() {
		return Hash{}, parseErr(s, ErrUnknownKind, "hint is not a known kind (%d)", uint8(hint))
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return Hash{}, parseErr(s, ErrSyntax, "empty")
	}
	if isLink(t) {
		ref, err := ParseRef(t, hint)
		if err != nil {
			return Hash{}, err
		}
		return ref.pick(s, hint)
	}
	if i := strings.IndexByte(t, ':'); i >= 0 {
		prefix := t[:i]
		if strings.EqualFold(prefix, "urn") {
			hs, err := parseURN(s, t)
			if err != nil {
				return Hash{}, err
			}
			return Ref{Hashes: hs}.pick(s, hint)
		}
		k, err := kindPrefix(prefix)
		if err != nil {
			return Hash{}, parseErr(s, ErrSyntax, "unknown prefix %q (want a kind such as md5: or sha1:, urn:, magnet: or ed2k://)", prefix)
		}
		if hint != Unknown && hint != k {
			return Hash{}, parseErr(s, ErrKindMismatch, "is a %s hash, not %s", k, hint)
		}
		return decodeAs(s, t[i+1:], k)
	}
	return parseBare(s, t, hint)
}

// ParseBytes is Parse for a byte slice. Bare hex, the form of most hash
// lists, is decoded without allocating; other forms go through Parse.
func ParseBytes(b []byte, hint Kind) (Hash, error) {
	orig := b
	for len(b) > 0 && isSpaceByte(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpaceByte(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if k, ok := bareHexKind(len(b), hint); ok && isHexBytes(b) {
		var h Hash
		h.kind = k
		if _, err := hex.Decode(h.sum[:k.Size()], b); err == nil {
			return h, nil
		}
	}
	return Parse(string(orig), hint)
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

func isLink(t string) bool { return hasPrefixFold(t, "magnet:") || hasPrefixFold(t, "ed2k://") }

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// kindPrefix reads the "md5" of "md5:…". ParseKind's own aliases apply.
func kindPrefix(p string) (Kind, error) {
	if p == "" || strings.TrimSpace(p) != p {
		return Unknown, ErrUnknownKind
	}
	return ParseKind(p)
}

// bareHexKind is the kind that n bare hex digits are, given hint.
func bareHexKind(n int, hint Kind) (Kind, bool) {
	if hint != Unknown {
		return hint, hint.Valid() && n == 2*hint.Size()
	}
	switch n {
	case 40:
		return SHA1, true
	case 48:
		return TTH, true
	case 64:
		return SHA256, true
	}
	return Unknown, false
}

// bareBase32Kind is the kind that n unpadded base32 characters are.
func bareBase32Kind(n int) (Kind, bool) {
	switch n {
	case 32:
		return SHA1, true
	case 39:
		return TTH, true
	case 52:
		return SHA256, true
	}
	return Unknown, false
}

func parseBare(in, t string, hint Kind) (Hash, error) {
	if hint != Unknown {
		return decodeAs(in, t, hint)
	}
	if isHex(t) {
		if len(t) == 32 {
			return Hash{}, parseErr(in, ErrAmbiguous, "32 hex digits are md5 or ed2k: give --kind")
		}
		if k, ok := bareHexKind(len(t), Unknown); ok {
			return decodeAs(in, t, k)
		}
		return Hash{}, parseErr(in, ErrSyntax, "%d hex digits fit no hash kind (md5 or ed2k 32, sha1 40, tth 48, sha256 64)", len(t))
	}
	if data, ok := base32Body(t); ok {
		if len(data) == 26 {
			return Hash{}, parseErr(in, ErrAmbiguous, "26 base32 characters are md5 or ed2k: give --kind")
		}
		if k, ok := bareBase32Kind(len(data)); ok {
			return decodeAs(in, t, k)
		}
		return Hash{}, parseErr(in, ErrSyntax, "%d base32 characters fit no hash kind (sha1 32, tth 39, sha256 52)", len(data))
	}
	return Hash{}, parseErr(in, ErrSyntax, "%s", explain(t, max(strings.Index(in, t), 0), bareHexLens, bareB32Lens,
		fmt.Sprintf("%d characters fit no hash form (hex: 32, 40, 48 or 64 digits; base32: 26, 32, 39 or 52 characters)", len(t))))
}

var (
	bareHexLens = []int{32, 40, 48, 64}
	bareB32Lens = []int{26, 32, 39, 52}
)

// decodeAs decodes v as a digest of kind k, in hex or base32 as its length
// says.
func decodeAs(in, v string, k Kind) (Hash, error) {
	size := k.Size()
	if v == "" {
		return Hash{}, parseErr(in, ErrSyntax, "no %s digest after the prefix", k)
	}
	if k == BTIH2 && len(v) == 4+2*size && hasPrefixFold(v, "1220") {
		v = v[4:] // a v2 info-hash written as its sha2-256 multihash
	}
	hexLen, b32Len := 2*size, base32Len(size)
	if len(v) == hexLen && isHex(v) {
		var h Hash
		h.kind = k
		if _, err := hex.Decode(h.sum[:size], []byte(v)); err != nil {
			return Hash{}, parseErr(in, ErrSyntax, "bad hex: %v", err)
		}
		return h, nil
	}
	if data, ok := base32Body(v); ok && len(data) == b32Len && (len(data) == len(v) || len(v) == paddedLen(b32Len)) {
		b, err := decodeBase32(data)
		if err != nil || len(b) != size {
			return Hash{}, parseErr(in, ErrSyntax, "bad base32 for %s", k)
		}
		if !strings.EqualFold(b32.EncodeToString(b), data) {
			return Hash{}, parseErr(in, ErrSyntax, "non-canonical base32 for %s (its last character has stray low bits)", k)
		}
		var h Hash
		h.kind = k
		copy(h.sum[:], b)
		return h, nil
	}
	return Hash{}, parseErr(in, ErrSyntax, "%s", explain(v, max(strings.Index(in, v), 0), []int{hexLen}, []int{b32Len},
		fmt.Sprintf("%s wants %d hex digits or %d base32 characters, got %s", k, hexLen, b32Len, countText(v))))
}

func base32Len(size int) int { return (size*8 + 4) / 5 }
func paddedLen(n int) int    { return (n + 7) / 8 * 8 }
func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
func isBase32Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '2' <= c && c <= '7'
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

func isHexBytes(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isHexDigit(c) {
			return false
		}
	}
	return true
}

// base32Body returns s without its '=' padding if s is base32 characters
// followed by a correct amount of padding (none, or up to a multiple of 8).
func base32Body(s string) (string, bool) {
	data := strings.TrimRight(s, "=")
	if data == "" {
		return "", false
	}
	for i := 0; i < len(data); i++ {
		if !isBase32Char(data[i]) {
			return "", false
		}
	}
	if len(data) != len(s) && len(s) != paddedLen(len(data)) {
		return "", false
	}
	// Only these remainders are possible lengths of base32 text.
	switch len(data) % 8 {
	case 1, 3, 6:
		return "", false
	}
	return data, true
}

func decodeBase32(data string) ([]byte, error) {
	return b32.DecodeString(strings.ToUpper(data))
}

// explain says why v, which fits none of the forms tried, was refused:
// white space or bad bytes, then a character outside the alphabet its length
// suggests, then the length itself. hexLens and b32Lens are the lengths
// that would have fitted.
func explain(v string, off int, hexLens, b32Lens []int, lengthReason string) string {
	if isHex(v) {
		return lengthReason
	}
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return fmt.Sprintf("invalid UTF-8 byte 0x%02x at position %d", v[i], off+i+1)
		case unicode.IsSpace(r):
			return fmt.Sprintf("contains a space at position %d", off+i+1)
		}
		i += size
	}
	data := strings.TrimRight(v, "=")
	asHex := slices.Contains(hexLens, len(v))
	asB32 := slices.Contains(b32Lens, len(data))
	for i := 0; i < len(v); {
		c := v[i]
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case asHex && asB32:
			if !isHexDigit(c) && !isBase32Char(c) && !(c == '=' && i >= len(data)) {
				return fmt.Sprintf("invalid character %q at position %d (want hex digits or base32)", r, off+i+1)
			}
		case asHex:
			if !isHexDigit(c) {
				return fmt.Sprintf("invalid character %q at position %d (want hex digits)", r, off+i+1)
			}
		case asB32:
			if i < len(data) && !isBase32Char(c) {
				return fmt.Sprintf("invalid character %q at position %d (want base32: A-Z and 2-7)", r, off+i+1)
			}
		default:
			if !isHexDigit(c) && !isBase32Char(c) && c != '=' {
				return fmt.Sprintf("invalid character %q at position %d (want hex digits or base32)", r, off+i+1)
			}
		}
		i += size
	}
	if asB32 && len(data) != len(v) {
		return "bad base32 padding (want none, or '=' up to a multiple of 8 characters)"
	}
	return lengthReason
}

// parseURN reads urn:NAMESPACE:VALUE. It returns two hashes for a bitprint
// (sha1 then tth), one otherwise.
func parseURN(in, t string) ([]Hash, error) {
	rest := t[len("urn:"):]
	ns, v, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, parseErr(in, ErrSyntax, "URN without a value")
	}
	var k Kind
	switch strings.ToLower(ns) {
	case "sha1":
		k = SHA1
	case "tree":
		// urn:tree:tiger:, urn:tree:tiger/:, urn:tree:tiger/1024:
		algo, val, ok := strings.Cut(v, ":")
		switch strings.ToLower(algo) {
		case "tiger", "tiger/", "tiger/1024":
		default:
			ok = false
		}
		if !ok {
			return nil, parseErr(in, ErrSyntax, "unknown tree hash %q (want urn:tree:tiger:)", algo)
		}
		k, v = TTH, val
	case "btih":
		k = BTIH
	case "btmh":
		if !(len(v) == 68 && hasPrefixFold(v, "1220")) {
			if len(v) >= 4 && isHex(v[:4]) && !hasPrefixFold(v, "1220") {
				return nil, parseErr(in, ErrSyntax, "btmh multihash %q is not sha2-256 (want 1220 and 64 hex digits)", v[:4])
			}
			return nil, parseErr(in, ErrSyntax, "btmh wants 1220 and 64 hex digits, got %d characters", len(v))
		}
		k = BTIH2
	case "ed2k", "ed2khash":
		k = ED2K
	case "md5":
		k = MD5
	case "sha256", "sha-256":
		k = SHA256
	case "bitprint":
		s1, tt, ok := strings.Cut(v, ".")
		if !ok {
			return nil, parseErr(in, ErrSyntax, "bitprint wants SHA1.TTH (32 and 39 base32 characters joined by a dot)")
		}
		a, err := decodeAs(in, s1, SHA1)
		if err != nil {
			return nil, err
		}
		b, err := decodeAs(in, tt, TTH)
		if err != nil {
			return nil, err
		}
		return []Hash{a, b}, nil
	default:
		return nil, parseErr(in, ErrSyntax, "unsupported URN namespace %q", ns)
	}
	h, err := decodeAs(in, v, k)
	if err != nil {
		return nil, err
	}
	return []Hash{h}, nil
}

func countText(v string) string {
	if isHex(v) {
		return fmt.Sprintf("%d hex digits", len(v))
	}
	return fmt.Sprintf("%d characters", len(v))
}
