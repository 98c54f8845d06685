package observe

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid is returned (wrapped, with the field and value) for an
// Observation that no store or file may hold.
var ErrInvalid = errors.New("invalid observation")

// The times an Observation may carry: what a signed 64-bit count of
// nanoseconds since 1970 can hold, the form every store keeps.
var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

// MaxPieces is the largest piece count an Observation may carry (have or
// total): what PostgreSQL's integer columns hold. No protocol comes near
// it (a BitTorrent piece is at least 16 KiB: 32 TiB of pieces; eD2K
// counts parts in 16 bits); a larger count came from no sensor, and the
// PostgreSQL store could never hold it.
const MaxPieces = 1<<31 - 1

// Validate reports why o may not be stored or written, or nil. It checks
// what every reader relies on: a time, a known hash, a possession level
// and an address. It leaves the id alone (a store assigns one when it is
// empty) and the free strings, which are whatever the protocol said.
func (o *Observation) Validate() error {
	switch {
	case o.Time.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalid)
	case o.Time.Before(minTime) || o.Time.After(maxTime):
		return fmt.Errorf("%w: time %s outside %d..%d", ErrInvalid, o.Time.UTC().Format(time.RFC3339), minTime.Year(), maxTime.Year())
	case !o.Item.Hash.Kind().Valid():
		return fmt.Errorf("%w: no item hash", ErrInvalid)
	case o.Possession.Level < Announced || o.Possession.Level > Verified:
		return fmt.Errorf("%w: possession level %s", ErrInvalid, o.Possession.Level)
	case o.Possession.PiecesHave > MaxPieces:
		return fmt.Errorf("%w: pieces_have %d past %d", ErrInvalid, o.Possession.PiecesHave, MaxPieces)
	case o.Possession.PiecesTotal > MaxPieces:
		return fmt.Errorf("%w: pieces_total %d past %d", ErrInvalid, o.Possession.PiecesTotal, MaxPieces)
	case !o.Endpoint.IP.IsValid():
		return fmt.Errorf("%w: no endpoint address", ErrInvalid)
	case !o.ClockKnown && (o.ClockOffset != 0 || o.ClockUncertainty != 0):
		return fmt.Errorf("%w: clock offset %v ± %v with the offset unknown", ErrInvalid, o.ClockOffset, o.ClockUncertainty)
	case o.ClockUncertainty < 0:
		return fmt.Errorf("%w: clock uncertainty %v is negative", ErrInvalid, o.ClockUncertainty)
	case o.Sensor.Config != "" && !isSHA256Hex(o.Sensor.Config):
		return fmt.Errorf("%w: sensor config %q is not a SHA-256 in lower-case hex", ErrInvalid, o.Sensor.Config)
	case o.Chain.Form != 0 && o.Chain.Form != Form2:
		return fmt.Errorf("%w: evidence form %d (1 is written as none, 2 is the other)", ErrInvalid, o.Chain.Form)
	case o.Chain.Form == Form2 && !o.Signed():
		return fmt.Errorf("%w: evidence form 2 without a sensor key (only a signing sensor writes form 2)", ErrInvalid)
	case o.Chain.Form == Form2 && len(o.Transcript.Bytes) > 0 && len(o.Transcript.SHA256) != 32:
		// Form 2's hashes cover the transcript through its SHA-256 only.
		return fmt.Errorf("%w: evidence form 2 with a transcript and no transcript_sha256", ErrInvalid)
	}
	return nil
}

// isSHA256Hex reports whether s is 64 lower-case hex digits.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
