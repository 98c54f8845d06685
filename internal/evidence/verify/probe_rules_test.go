package verify

import (
	"testing"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
)

// bitfieldOf is a bitfield message of a torrent of total pieces, the
// first have of them set.
func bitfieldOf(total, have int) peerwire.Message {
	bf := make([]byte, peerwire.BitfieldLen(total))
	for i := range have {
		peerwire.SetPiece(bf, i)
	}
	return peerwire.Message{ID: peerwire.Bitfield, Payload: bf}
}

// Hostile bundles whose transcripts the probe reads to a lower level than
// the one claimed: each must fail verify. The probe judges the possession
// messages a reader can find with peerwire.Claims (their order, a late
// bitfield, have_none, more than eight of them), and stops reading at a
// ut_metadata message that does not parse; a message whose type byte is
// in a hole may have been a possession message whose content is unknown.
func TestVerifyJudgesAsTheProbe(t *testing.T) {
	haveAll := peerwire.Message{ID: peerwire.HaveAll}
	haveNone := peerwire.Message{ID: peerwire.HaveNone}
	badMeta := peerwire.Message{ID: peerwire.Extended, ExtendedID: 1, Payload: []byte("x")}
	many := newProbeTr(true, true)
	for range 9 {
		many.msg(bitfieldOf(10, 10))
	}
	cases := []struct {
		name  string
		tr    *probeTr
		level string
		have  *int
	}{
		{"a ut_metadata message that does not parse, then have_all", newProbeTr(true, true).msg(badMeta).msg(haveAll), "complete", nil},
		{"a message whose type byte is in a hole, then have_all", newProbeTr(true, true).recv([]byte{0, 0, 0, 5}).cut(5).msg(haveAll), "complete", nil},
		{"a bitfield of 3, then have_all", newProbeTr(true, true).msg(bitfieldOf(10, 3)).msg(haveAll), "complete", nil},
		{"a whole bitfield, then have_none", newProbeTr(true, true).msg(bitfieldOf(10, 10)).msg(haveNone), "partial", intp(1)},
		{"a bitfield of 5, then a bitfield of 2", newProbeTr(true, true).msg(bitfieldOf(10, 5)).msg(bitfieldOf(10, 2)), "partial", intp(5)},
		{"nine whole bitfields (more than the probe keeps)", many, "complete", nil},
		{"a cut bitfield, then have_all", newProbeTr(true, true).recv(header(3, peerwire.Bitfield)).cut(2).msg(haveAll), "complete", nil},
		{"the handshake and two bytes", newProbeTr(true, true).recv([]byte{0, 0}), "acknowledged", nil},
	}
	for _, c := range cases {
		if problem := c.tr.checkHave(c.level, intp(10), c.have, 0); problem == "" {
			t.Errorf("%s: %s accepted", c.name, c.level)
		}
	}
	// What the probe counts verifies.
	ok := []struct {
		name  string
		tr    *probeTr
		level string
		have  *int
	}{
		{"have_all", newProbeTr(true, true).msg(haveAll), "complete", nil},
		{"a bitfield of 3 and two haves", newProbeTr(true, true).msg(bitfieldOf(10, 3)).msg(peerwire.Message{ID: peerwire.Have, Index: 7}).
			msg(peerwire.Message{ID: peerwire.Have, Index: 3}), "partial", intp(5)},
		{"have_none, then a have", newProbeTr(true, true).msg(haveNone).msg(peerwire.Message{ID: peerwire.Have, Index: 2}), "partial", intp(1)},
		{"a bitfield, padding withheld, a have", newProbeTr(true, true).msg(bitfieldOf(10, 3)).recv(header(1001, 99)).cut(1000).
			msg(peerwire.Message{ID: peerwire.Have, Index: 9}), "partial", intp(4)},
		{"a bitfield, then a hole over a length prefix", newProbeTr(true, true).msg(bitfieldOf(10, 10)).recv([]byte{0}).cut(4).
			msg(haveNone), "complete", nil},
	}
	for _, c := range ok {
		if problem := c.tr.checkHave(c.level, intp(10), c.have, 0); problem != "" {
			t.Errorf("%s: %s refused: %s", c.name, c.level, problem)
		}
	}
}
