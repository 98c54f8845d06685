package observe

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// An observation id is a UUIDv7 (RFC 9562) built from the observation's own
// time rather than the clock at the moment of the call, so that ids sort as
// the observations do even when a sensor stamps them a little before it
// hands them on. Layout (128 bits, big-endian):
//
//	48 bits  Unix milliseconds of t
//	 4 bits  version 7
//	12 bits  fraction of the millisecond (RFC 9562 §6.2 method 3: ~244 ns steps)
//	 2 bits  variant 10
//	30 bits  counter, seeded at random in its lower half for each new time step
//	32 bits  random
//
// Within one process the counter makes ids for the same time step strictly
// increasing in the order they were made; a later time always gives a
// larger id. An earlier time gives a smaller id, as it should: the id orders
// observations by time, not by arrival.

const (
	idCounterBits = 30
	idCounterMax  = 1<<idCounterBits - 1
)

var idState struct {
	sync.Mutex
	step    uint64 // last 60-bit time step used: ms<<12 | sub-ms fraction
	counter uint64
}

// idStep is t as 48 bits of Unix milliseconds and 12 bits of millisecond
// fraction. Times before 1970 clamp to zero: no sensor observes then.
func idStep(t time.Time) uint64 {
	ns := t.UnixNano()
	if t.Unix() < 0 || ns < 0 {
		return 0
	}
	ms := uint64(ns / 1e6)
	frac := uint64(ns%1e6) * 4096 / 1e6 // < 4096
	return (ms&(1<<48-1))<<12 | frac
}

// NewID returns a new time-ordered unique id (a UUIDv7 in its canonical
// lower-case 8-4-4-4-12 form) that carries t to about a quarter of a
// microsecond.
func NewID(t time.Time) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails (Go 1.24+)
	step := idStep(t)

	idState.Lock()
	if step == idState.step && idState.counter < idCounterMax {
		idState.counter++
	} else {
		if step == idState.step {
			// The counter ran out within one 244 ns step (2^29 ids at
			// least): borrow the next step, as RFC 9562 §6.2 allows.
			step++
		}
		idState.step = step
		idState.counter = uint64(binary.BigEndian.Uint32(rnd[4:])) & (1<<(idCounterBits-1) - 1)
	}
	counter := idState.counter
	idState.Unlock()

	var b [16]byte
	hi := step>>12<<16 | 0x7<<12 | step&0xfff
	lo := uint64(0b10)<<62 | counter<<32 | uint64(binary.BigEndian.Uint32(rnd[:4]))
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return formatUUID(b)
}

func formatUUID(b [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// ErrBadID is returned for a string that is not a UUIDv7 in canonical form.
var ErrBadID = errors.New("not a UUIDv7")

// IDTime returns the time carried by an id made by NewID, to the id's
// resolution (about 244 ns).
func IDTime(id string) (time.Time, error) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return time.Time{}, fmt.Errorf("id %q: %w", id, ErrBadID)
	}
	var b [16]byte
	src := id[0:8] + id[9:13] + id[14:18] + id[19:23] + id[24:36]
	if _, err := hex.Decode(b[:], []byte(src)); err != nil {
		return time.Time{}, fmt.Errorf("id %q: %w", id, ErrBadID)
	}
	if b[6]>>4 != 7 || b[8]>>6 != 0b10 {
		return time.Time{}, fmt.Errorf("id %q: %w (version %d)", id, ErrBadID, b[6]>>4)
	}
	hi := binary.BigEndian.Uint64(b[:8])
	ms := int64(hi >> 16)
	frac := int64(hi & 0xfff)
	return time.UnixMilli(ms).Add(time.Duration(frac * 1e6 / 4096)).UTC(), nil
}

// IDBytes returns the 16 bytes of an id in canonical form (lower-case
// hex, 8-4-4-4-12, as NewID writes it): FormatID(b) gives id back. Any
// other string, or one of another case, is not one (false).
func IDBytes(id string) (b [16]byte, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return b, false
	}
	j := 0
	for _, part := range [5]string{id[0:8], id[9:13], id[14:18], id[19:23], id[24:36]} {
		for i := 0; i < len(part); i += 2 {
			hi, lo := lowerNibble(part[i]), lowerNibble(part[i+1])
			if hi > 15 || lo > 15 {
				return [16]byte{}, false
			}
			b[j] = hi<<4 | lo
			j++
		}
	}
	return b, true
}

// lowerNibble is the value of a lower-case hex digit, 255 for any other
// byte.
func lowerNibble(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 255
}

// FormatID is the id of 16 bytes in canonical form (IDBytes reads it).
func FormatID(b [16]byte) string { return formatUUID(b) }
