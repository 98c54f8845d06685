package peerwire

import (
	"bufio"
	"bytes"
	"testing"
)

// claimsOf feeds c the possession messages of a stream of frames.
func claimsOf(t testing.TB, stream []byte) *Claims {
	t.Helper()
	return claimsOfPeer(t, stream, true, true)
}

// claimsOfPeer is claimsOf for a peer that set the fast extension bit or
// not; without it, have_all is fed as unnegotiated, or left out when
// !keepHaveAll.
func claimsOfPeer(t testing.TB, stream []byte, fast, keepHaveAll bool) *Claims {
	t.Helper()
	var c Claims
	d := NewDecoder(bufio.NewReader(bytes.NewReader(stream)), 1<<12)
	var m Message
	for d.Decode(&m) == nil {
		if m.Keepalive {
			continue
		}
		switch m.ID {
		case Bitfield:
			c.Bitfield(m.Payload)
		case Have:
			c.Have(m.Index)
		case HaveAll:
			switch {
			case fast:
				c.HaveAll()
			case keepHaveAll:
				c.HaveAllUnnegotiated()
			}
		case HaveNone:
			c.HaveNone()
		}
	}
	return &c
}

func have(i byte) []byte { return frame(Have, 0, 0, 0, i) }

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestClaimsJudge(t *testing.T) {
	for _, tc := range []struct {
		name                string
		stream              []byte
		pieces              int
		have                int
		all, badBF, badHave bool
	}{
		// The liar of issue 10: piece 0, the spare bits and an extra byte.
		{"spare-bits-and-extra-byte", frame(Bitfield, 0x80, 0x3f, 0xff), 10, 1, false, true, false},
		{"spare-bits-only", frame(Bitfield, 0xff, 0xff), 10, 10, false, true, false},
		{"short-bitfield", frame(Bitfield, 0xff), 10, 8, false, true, false},
		{"valid-full", frame(Bitfield, 0xff, 0xc0), 10, 10, false, false, false},
		{"valid-partial", frame(Bitfield, 0x81, 0x40), 10, 3, false, false, false},
		{"empty-bitfield", frame(Bitfield, 0, 0), 10, 0, false, false, false},
		{"have-past-end", cat(frame(Bitfield, 0x80, 0), have(10), have(200)), 10, 1, false, false, true},
		{"have-repeated", cat(frame(Bitfield, 0, 0), have(3), have(3), have(3)), 10, 1, false, false, false},
		{"have-already-in-bitfield", cat(frame(Bitfield, 0x80, 0), have(0)), 10, 1, false, false, false},
		{"have-all-after-partial", cat(frame(Bitfield, 0x80, 0), frame(HaveAll)), 10, 1, false, false, true},
		{"have-all-after-full", cat(frame(Bitfield, 0xff, 0xc0), frame(HaveAll)), 10, 10, true, false, false},
		{"have-all-first", frame(HaveAll), 10, 10, true, false, false},
		// A peer that contradicts itself is held to the lower of its words.
		{"have-none-after-bitfield", cat(frame(Bitfield, 0x80, 0), frame(HaveNone)), 10, 0, false, false, true},
		{"have-none-after-full-bitfield", cat(frame(Bitfield, 0xff, 0xc0), frame(HaveNone)), 10, 0, false, false, true},
		{"have-none-after-have-all", cat(frame(HaveAll), frame(HaveNone)), 10, 0, false, false, true},
		{"have-after-contradicting-have-none", cat(frame(Bitfield, 0xff, 0xc0), frame(HaveNone), have(4)), 10, 1, false, false, true},
		{"late-partial-bitfield-after-have-all", cat(frame(HaveAll), frame(Bitfield, 0x80, 0)), 10, 1, false, true, false},
		{"late-partial-bitfield-after-full", cat(frame(Bitfield, 0xff, 0xc0), frame(Bitfield, 0x80, 0x40)), 10, 2, false, true, false},
		{"unknown-have-none-after-bitfield", cat(frame(Bitfield, 0xff, 0xc0), frame(HaveNone)), -1, 0, false, false, true},
		{"unknown-have-none-after-have-all", cat(frame(HaveAll), frame(HaveNone)), -1, 0, false, false, true},
		{"unknown-late-partial-bitfield-after-have-all", cat(frame(HaveAll), frame(Bitfield, 0x7f, 0xc0)), -1, -1, false, true, false},
		{"have-none-then-have", cat(frame(HaveNone), have(2)), 10, 1, false, false, false},
		{"have-all-after-have-none", cat(frame(HaveNone), frame(HaveAll)), 10, 0, false, false, true},
		{"second-bitfield", cat(frame(Bitfield, 0x80, 0), frame(Bitfield, 0xff, 0xc0)), 10, 1, false, true, false},
		{"only-bad-haves", cat(have(11)), 10, -1, false, false, true},
		{"nothing", nil, 10, -1, false, false, false},
		// Piece count unknown: nothing can be counted.
		{"unknown-bitfield", frame(Bitfield, 0x80, 0x3f, 0xff), -1, -1, false, false, false},
		{"unknown-have", have(200), -1, -1, false, false, false},
		{"unknown-empty", frame(Bitfield, 0, 0), -1, 0, false, false, false},
		{"unknown-have-none", frame(HaveNone), -1, 0, false, false, false},
		{"unknown-have-all", frame(HaveAll), -1, -1, true, false, false},
		{"unknown-have-all-after-partial", cat(frame(Bitfield, 0x7f, 0xc0), frame(HaveAll)), -1, -1, false, false, true},
		{"unknown-have-all-after-maybe-full", cat(frame(Bitfield, 0xff, 0xc0), frame(HaveAll)), -1, -1, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := claimsOf(t, tc.stream).Judge(tc.pieces)
			if v.Have != tc.have || v.All != tc.all || v.MalformedBitfield != tc.badBF || v.MalformedHave != tc.badHave {
				t.Fatalf("Judge(%d) = %+v, want have %d all %v malformed bitfield %v have %v",
					tc.pieces, v, tc.have, tc.all, tc.badBF, tc.badHave)
			}
		})
	}
}

// A have_all after a possession message whose bytes were not kept cannot
// be checked: not counted, and not called malformed either.
func TestClaimsUnknownBlocksLaterHaveAll(t *testing.T) {
	var c Claims
	c.Unknown()
	c.HaveAll()
	if v := c.Judge(10); v.All || v.Have != -1 || v.MalformedHave {
		t.Fatalf("Judge = %+v, want nothing counted and no mark", v)
	}
}

func TestProvablyPartial(t *testing.T) {
	for _, tc := range []struct {
		bf   []byte
		want bool
	}{
		{[]byte{0xff}, false}, {[]byte{0xc0}, false}, {[]byte{0x80}, false},
		{[]byte{0x00}, true}, {[]byte{0xa0}, true}, {[]byte{0xfe, 0x80}, true}, {[]byte{0xff, 0xf0}, false},
	} {
		if got := provablyPartial(tc.bf); got != tc.want {
			t.Errorf("provablyPartial(%x) = %v, want %v", tc.bf, got, tc.want)
		}
	}
}

// FuzzClaims feeds possession messages decoded from the input and checks
// the invariants a court relies on: never more than the piece count,
// nothing counted when the count is unknown, and the verdict does not
// depend on repeating a have.
func FuzzClaims(f *testing.F) {
	f.Add(uint16(10), frame(Bitfield, 0x80, 0x3f, 0xff))
	f.Add(uint16(10), cat(frame(Bitfield, 0x80, 0), have(10), frame(HaveAll)))
	f.Add(uint16(0xffff), cat(frame(HaveNone), have(2), have(2)))
	f.Add(uint16(3), cat(frame(HaveAll), frame(HaveNone), frame(Bitfield, 0xe0)))
	f.Fuzz(func(t *testing.T, n uint16, stream []byte) {
		pieces := int(n) - 1 // 0xffff... includes -1: unknown
		if n == 0 {
			pieces = -1
		}
		c := claimsOf(t, stream)
		v := c.Judge(pieces)
		if v.Have < -1 {
			t.Fatalf("Have %d", v.Have)
		}
		if pieces >= 0 && v.Have > pieces {
			t.Fatalf("Have %d of %d pieces", v.Have, pieces)
		}
		if pieces < 0 && v.Have > 0 {
			t.Fatalf("Have %d with the piece count unknown", v.Have)
		}
		if v.All && pieces >= 0 && v.Have != pieces {
			t.Fatalf("All with Have %d of %d", v.Have, pieces)
		}
		// From a peer without the fast extension a have_all counts
		// nothing: never all, and never more than the stream without it.
		nf := claimsOfPeer(t, stream, false, true).Judge(pieces)
		if nf.All || nf.Have > claimsOfPeer(t, stream, false, false).Judge(pieces).Have {
			t.Fatalf("without the fast extension %+v, more than with its have_alls left out", nf)
		}
		// Repeating the last have changes nothing.
		if len(c.events) > 0 && c.haves < MaxHaves {
			if last := c.events[len(c.events)-1]; last.kind == claimHave {
				c.Have(last.index)
				if w := c.Judge(pieces); w != v {
					t.Fatalf("a repeated have changed %+v to %+v", v, w)
				}
			}
		}
	})
}

// A have_all from a peer that did not negotiate the fast extension counts
// nothing, whatever the piece count, and is marked; a bitfield after it
// is late (it only ever lowers).
func TestClaimsHaveAllUnnegotiated(t *testing.T) {
	for _, pieces := range []int{10, -1} {
		var c Claims
		c.HaveAllUnnegotiated()
		if v := c.Judge(pieces); v.All || v.Have != -1 || !v.MalformedHave {
			t.Fatalf("Judge(%d) = %+v, want nothing counted, malformed_have", pieces, v)
		}
		c.Bitfield([]byte{0xff, 0xc0})
		if v := c.Judge(pieces); v.All || v.Have > 0 || !v.MalformedBitfield {
			t.Fatalf("Judge(%d) after a bitfield = %+v, want nothing counted, malformed_bitfield", pieces, v)
		}
	}
}

// More possession messages than are kept: nothing stands, for what the
// unread ones withdrew is unknown (a have_none past the bound used to be
// dropped and the peer stayed complete).
func TestClaimsPastThePossessionBoundCountNothing(t *testing.T) {
	var c Claims
	c.Bitfield([]byte{0xff, 0xc0})
	for range maxPossessionEvents - 1 {
		c.HaveAll()
	}
	if v := c.Judge(10); !v.All || v.Have != 10 {
		t.Fatalf("Judge at the bound = %+v, want all 10", v)
	}
	c.HaveNone()
	if v := c.Judge(10); v.All || v.Have != -1 || !v.MalformedHave {
		t.Fatalf("Judge past the bound = %+v, want nothing counted, malformed_have", v)
	}
}
