package access

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters. They are recorded in
// every hash, so that raising them later leaves old hashes readable; a
// login with a hash made under lower parameters rehashes the password.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2 is RFC 9106's second recommended option (64 MiB, 3 passes)
// with two lanes: about a tenth of a second a login on a server core.
var DefaultArgon2 = Argon2Params{Memory: 64 << 10, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}

// Limits on parameters read from a stored hash, so that a tampered hash
// cannot make a login allocate without bound.
const (
	maxArgonMemory  = 4 << 20 // KiB: 4 GiB
	maxArgonTime    = 64
	maxArgonKeyLen  = 128
	maxArgonSaltLen = 128
)

// Password rules.
const (
	MinPassword = 12   // characters
	MaxPassword = 1024 // bytes: argon2 takes any length, but a request should not
)

// ErrWeakPassword is wrapped by CheckPassword's errors.
var ErrWeakPassword = errors.New("password refused")

// CheckPassword applies the password rules: at least MinPassword
// characters, at most MaxPassword bytes, valid UTF-8, and not a common
// or breached password (CommonPassword). The error says which rule, never
// echoing the password.
func CheckPassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: not valid UTF-8", ErrWeakPassword)
	case utf8.RuneCountInString(pw) < MinPassword:
		return fmt.Errorf("%w: %d characters, want at least %d", ErrWeakPassword, utf8.RuneCountInString(pw), MinPassword)
	case len(pw) > MaxPassword:
		return fmt.Errorf("%w: longer than %d bytes", ErrWeakPassword, MaxPassword)
	}
	if why := CommonPassword(pw); why != "" {
		return fmt.Errorf("%w: %s; choose a longer phrase of your own", ErrWeakPassword, why)
	}
	return nil
}

// HashPassword returns the PHC string of pw under p:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash> (unpadded standard base64).
func HashPassword(pw string, p Argon2Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodePHC(p, salt, key), nil
}

func encodePHC(p Argon2Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// ErrBadHash is wrapped by ParsePHC's errors.
var ErrBadHash = errors.New("bad password hash")

// ParsePHC reads an argon2id PHC string.
func ParsePHC(s string) (p Argon2Params, salt, key []byte, err error) {
	bad := func(why string) (Argon2Params, []byte, []byte, error) {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: %s", ErrBadHash, why)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want $argon2id$v=19$m=..,t=..,p=..$salt$hash")
	}
	if parts[1] != "argon2id" {
		return bad(fmt.Sprintf("algorithm %q, want argon2id", parts[1]))
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad(fmt.Sprintf("version %q, want v=%d", parts[2], argon2.Version))
	}
	var m, t, th uint64
	seen := 0
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return bad(fmt.Sprintf("parameter %q", kv))
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad(fmt.Sprintf("parameter %q", kv))
		}
		switch k {
		case "m":
			m, seen = n, seen|1
		case "t":
			t, seen = n, seen|2
		case "p":
			th, seen = n, seen|4
		default:
			return bad(fmt.Sprintf("unknown parameter %q", k))
		}
	}
	if seen != 7 {
		return bad("want the parameters m, t and p")
	}
	if t < 1 || t > maxArgonTime || th < 1 || th > 255 || m < 8*th || m > maxArgonMemory {
		return bad(fmt.Sprintf("parameters m=%d,t=%d,p=%d out of range", m, t, th))
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err = b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > maxArgonSaltLen {
		return bad("salt")
	}
	key, err = b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxArgonKeyLen {
		return bad("hash")
	}
	p = Argon2Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(th), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}
	return p, salt, key, nil
}

// VerifyPassword says whether pw matches the PHC string, comparing in
// constant time, and whether the hash was made under weaker parameters
// than want (and should be replaced).
func VerifyPassword(pw, phc string, want Argon2Params) (ok, rehash bool, err error) {
	p, salt, key, err := ParsePHC(phc)
	if err != nil {
		return false, false, err
	}
	if len(pw) > MaxPassword {
		return false, false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	ok = subtle.ConstantTimeCompare(got, key) == 1
	rehash = p.Memory < want.Memory || p.Time < want.Time || p.KeyLen < want.KeyLen || p.SaltLen < want.SaltLen
	return ok, rehash, nil
}
