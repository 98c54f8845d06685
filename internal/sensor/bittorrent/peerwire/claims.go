package peerwire

// Claims collects what a peer said about the pieces it holds (bitfield,
// have, have_all, have_none: BEP 3 and BEP 6), in the order it said it,
// and judges it strictly once the piece count is known or known to be
// unknown (Judge). It counts only what the protocol allows: bits and have
// indexes in range, one count per piece, a bitfield only as the first
// possession message, a have_all or have_none only where it contradicts
// nothing said before. A liar gets no more than its valid claims.
//
// Claims does no I/O and keeps bounded memory: the first bitfield (its
// length is bounded by the decoder) and at most MaxHaves have messages;
// later ones are ignored, which can only lower the count. Of the other
// possession messages it keeps maxPossessionEvents; a peer that sends
// more is counted nothing (a later have_none or bitfield could lower what
// the kept ones say).
type Claims struct {
	events   []claim
	haves    int
	overflow bool // more possession messages than maxPossessionEvents came
}

// MaxHaves bounds the have messages a Claims keeps.
const MaxHaves = 1 << 16

// maxPossessionEvents bounds the bitfield, have_all, have_none and unknown
// events kept: BEP 6 allows one, a peer that sends more is malformed
// already, and a few are enough to show it. Past it nothing is counted:
// dropping the rest unread would drop a have_none that withdraws what
// the kept ones said.
const maxPossessionEvents = 8

type claimKind uint8

const (
	claimBitfield claimKind = iota
	claimHave
	claimHaveAll
	claimHaveNone
	claimUnknown
	claimUnnegotiated
)

type claim struct {
	kind  claimKind
	index uint32 // claimHave
	bf    []byte // claimBitfield
}

// Bitfield records a bitfield message (the payload is copied).
func (c *Claims) Bitfield(bf []byte) {
	c.addPossession(claim{kind: claimBitfield, bf: append([]byte{}, bf...)})
}

// Have records a have message for piece i.
func (c *Claims) Have(i uint32) {
	if c.haves >= MaxHaves {
		return
	}
	c.haves++
	c.events = append(c.events, claim{kind: claimHave, index: i})
}

// HaveAll records a have_all message (BEP 6).
func (c *Claims) HaveAll() { c.addPossession(claim{kind: claimHaveAll}) }

// HaveNone records a have_none message (BEP 6).
func (c *Claims) HaveNone() { c.addPossession(claim{kind: claimHaveNone}) }

// Unknown records a possession message whose content cannot be relied on
// (its bytes were not kept in the transcript): it counts nothing, and a
// later have_all or have_none cannot be checked against it, so neither
// counts either.
func (c *Claims) Unknown() { c.addPossession(claim{kind: claimUnknown}) }

// HaveAllUnnegotiated records a have_all from a peer that did not set the
// fast extension bit in its handshake: BEP 6 gives the message no meaning
// on that connection (the receiver must close it). It counts nothing and
// is marked malformed; like any possession message, it makes a later
// bitfield late.
func (c *Claims) HaveAllUnnegotiated() { c.addPossession(claim{kind: claimUnnegotiated}) }

func (c *Claims) addPossession(e claim) {
	n := 0
	for _, x := range c.events {
		if x.kind != claimHave {
			n++
		}
	}
	if n >= maxPossessionEvents {
		c.overflow = true
		return
	}
	c.events = append(c.events, e)
}

// Said reports whether the peer sent any possession message.
func (c *Claims) Said() bool { return c != nil && len(c.events) > 0 }

// Verdict is what a peer's possession messages establish.
type Verdict struct {
	// Have is the number of distinct pieces in range the peer validly
	// advertised; -1 when the piece count is unknown and it advertised
	// some (they cannot be checked), or when it said nothing at all.
	// Never more than the piece count.
	Have int
	// All: the peer sent a have_all that nothing contradicts.
	All bool
	// MalformedBitfield: a bitfield of the wrong length, with spare bits
	// set, or not the first possession message (BEP 3); only its in-range
	// bits counted, or none when it came late.
	MalformedBitfield bool
	// MalformedHave: a have past the last piece, a have_all/have_none
	// that contradicts what came before, a have_all from a peer that did
	// not negotiate the fast extension (not counted), or more possession
	// messages than are kept (nothing counted).
	MalformedHave bool
}

// Judge replays the claims against a torrent of numPieces pieces
// (negative: unknown). With the count unknown nothing can be checked for
// range, so Have is -1 whenever a piece was advertised.
func (c *Claims) Judge(numPieces int) Verdict {
	var v Verdict
	if c == nil || len(c.events) == 0 {
		v.Have = -1
		return v
	}
	known := numPieces >= 0
	var set []byte // in-range pieces held, when known
	if known {
		set = make([]byte, BitfieldLen(numPieces))
	}
	count := 0
	some := false      // advertised any piece (count unknown)
	seen := false      // a possession message came before
	unknown := false   // a possession message whose content is not known came before
	none := false      // a have_none was accepted
	stated := false    // an accepted statement: a first bitfield, an in-range have, a have_none
	var firstBF []byte // the accepted bitfield (count unknown)
	setPiece := func(i int) {
		if !HasPiece(set, i) {
			SetPiece(set, i)
			count++
		}
	}
	full := func() bool { return v.All || (known && count == numPieces) }
	for _, e := range c.events {
		switch e.kind {
		case claimBitfield:
			if seen {
				// BEP 3: only as the first message. It adds nothing, but
				// where it lacks a piece it contradicts what was said
				// before, and the lower of the two is kept: a liar is
				// never held to its higher word.
				v.MalformedBitfield = true
				switch {
				case known:
					if v.All {
						v.All, stated = false, true
						for i := 0; i < numPieces; i++ {
							setPiece(i)
						}
					}
					for i := 0; i < numPieces; i++ {
						if HasPiece(set, i) && (i/8 >= len(e.bf) || !HasPiece(e.bf, i)) {
							ClearPiece(set, i)
							count--
						}
					}
				case v.All && provablyPartial(e.bf):
					v.All, some = false, true
				}
				continue
			}
			seen, stated = true, true
			if !known {
				firstBF = e.bf
				if CountPieces(e.bf) > 0 {
					some = true
				}
				continue
			}
			if CheckBitfield(e.bf, numPieces) != nil {
				v.MalformedBitfield = true
			}
			for i := 0; i < numPieces && i/8 < len(e.bf); i++ {
				if HasPiece(e.bf, i) {
					setPiece(i)
				}
			}
		case claimHave:
			seen = true
			if !known {
				some = true
				continue
			}
			if int64(e.index) >= int64(numPieces) {
				v.MalformedHave = true
				continue
			}
			setPiece(int(e.index))
			stated = true
		case claimHaveAll:
			switch {
			case !seen || full():
				v.All = true
			case unknown:
				// Cannot be checked against what was not kept.
			case known || none || provablyPartial(firstBF):
				v.MalformedHave = true
			default:
				// Count unknown and nothing provably contradicts it, but
				// nothing shows it is consistent either: not counted.
			}
			seen = true
		case claimHaveNone:
			switch {
			case v.All || count > 0 || some:
				// It contradicts pieces advertised before: of the two,
				// the lower is kept. What was counted is withdrawn; a
				// have after it counts again (BEP 6).
				v.MalformedHave = true
				v.All, some = false, false
				if known {
					set = make([]byte, BitfieldLen(numPieces))
					count = 0
				}
				firstBF = nil
				none, stated = true, true
			case unknown:
			default:
				none, stated = true, true
			}
			seen = true
		case claimUnknown:
			seen, unknown = true, true
		case claimUnnegotiated:
			seen, v.MalformedHave = true, true
		}
	}
	switch {
	case c.overflow:
		// Messages past the bound were not read: what they withdrew is
		// unknown, so nothing stands.
		v.All, v.MalformedHave, v.Have = false, true, -1
	case v.All && known:
		v.Have = numPieces
	case known && stated:
		v.Have = count
	case !known && !some && !v.All && stated:
		v.Have = 0 // an empty bitfield or a have_none: nothing, whatever the count
	default:
		v.Have = -1
	}
	return v
}

// provablyPartial reports whether bf, of a torrent whose piece count is
// unknown, lacks a piece whatever the count: a clear bit in any byte but
// the last, or a clear bit followed by a set bit in the last byte (spare
// bits at the end are clear in a valid bitfield, so trailing clear bits
// prove nothing).
func provablyPartial(bf []byte) bool {
	if len(bf) == 0 {
		return false
	}
	for _, b := range bf[:len(bf)-1] {
		if b != 0xff {
			return true
		}
	}
	last := bf[len(bf)-1]
	// Valid "all set" last bytes are 1s then 0s: 0x80, 0xc0, ..., 0xff
	// (and 0x00 only if the count is a multiple of 8 with one byte fewer,
	// which a bitfield of this length cannot be).
	inv := ^last
	return inv&(inv+1) != 0 || last == 0
}
