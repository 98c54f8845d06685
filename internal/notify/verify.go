package notify

import (
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a webhook's timestamp may be from the
// receiver's clock when VerifyWebhook is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// ErrUnverified is what every refusal of VerifyWebhook wraps.
var ErrUnverified = errors.New("notify: webhook not verified")

// VerifyWebhook checks a webhook request as a receiver must before
// believing it: exactly one X-Vigil-Timestamp, decimal unix seconds
// within tolerance of now (either way; 0 or less: DefaultTolerance), and
// exactly one X-Vigil-Signature, "v1=" and 64 lowercase hex digits, equal
// (compared in constant time) to the HMAC-SHA256 under secret of the
// timestamp, ".", and body. Anything else is refused with an error
// wrapping ErrUnverified.
//
// A replay of a delivery within the tolerance verifies: a receiver keeps
// the X-Vigil-Delivery ids it has seen for at least the tolerance and
// drops a repeat.
func VerifyWebhook(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) < MinSecret {
		return fmt.Errorf("%w: secret of %d bytes, at least %d needed", ErrUnverified, len(secret), MinSecret)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, err := single(header, HeaderTimestamp)
	if err != nil {
		return err
	}
	sent, err := parseTimestamp(ts)
	if err != nil {
		return err
	}
	if d := now.Sub(sent); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is %v from now (tolerance %v): a replay or a wrong clock", ErrUnverified, ts, d.Round(time.Second), tolerance)
	}
	sig, err := single(header, HeaderSignature)
	if err != nil {
		return err
	}
	got, err := parseSignature(sig)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, mac(secret, ts, body)) {
		return fmt.Errorf("%w: signature does not match the body and timestamp", ErrUnverified)
	}
	return nil
}

// single is a header's one value; none or several is refused.
func single(header http.Header, name string) (string, error) {
	v := header.Values(name)
	switch len(v) {
	case 0:
		return "", fmt.Errorf("%w: no %s", ErrUnverified, name)
	case 1:
		return v[0], nil
	default:
		return "", fmt.Errorf("%w: %d %s headers (one expected)", ErrUnverified, len(v), name)
	}
}

// parseTimestamp reads decimal unix seconds: digits only, no sign, no
// leading zero, at most 12 digits.
func parseTimestamp(ts string) (time.Time, error) {
	if ts == "" || len(ts) > 12 || (ts[0] == '0' && len(ts) > 1) {
		return time.Time{}, fmt.Errorf("%w: timestamp %q is not unix seconds", ErrUnverified, clip(ts))
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return time.Time{}, fmt.Errorf("%w: timestamp %q is not unix seconds", ErrUnverified, clip(ts))
		}
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: timestamp %q: %v", ErrUnverified, clip(ts), err)
	}
	return time.Unix(n, 0), nil
}

// parseSignature reads "v1=" and 64 lowercase hex digits.
func parseSignature(sig string) ([]byte, error) {
	hexPart, ok := strings.CutPrefix(sig, "v1=")
	if !ok || len(hexPart) != 2*32 {
		return nil, fmt.Errorf("%w: signature is not v1= and 64 hex digits", ErrUnverified)
	}
	for i := 0; i < len(hexPart); i++ {
		if c := hexPart[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, fmt.Errorf("%w: signature is not v1= and 64 lowercase hex digits", ErrUnverified)
		}
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrUnverified, err)
	}
	return b, nil
}
