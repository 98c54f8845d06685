package evidence_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// Transcripts cut by their bound (or shaped by a hostile peer's padding)
// and the claims they back: vigil verify refuses a claim the kept bytes
// do not show, and accepts one they do, wherever the cut fell.

// cutRec is one record of a hand-made transcript: received bytes, a cut
// of n received bytes, or a note.
type cutRec struct {
	data []byte
	cut  int
	note string
}

// withRecords gives o a transcript of the sensor's handshake and then
// recs, all with o's endpoint; peerHS is o's peer's handshake (to start
// recs with).
func withRecords(o observe.Observation, recs ...cutRec) observe.Observation {
	peer := netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)
	sent := []byte("the sensor's hello")
	if ih := o.Item.Hash.Bytes(); len(ih) >= 20 {
		sent = (&peerwire.Handshake{InfoHash: [20]byte(ih[:20])}).AppendTo(nil)
	}
	b := transcript.Record{Type: transcript.Sent, Peer: peer.String(), Data: sent}.AppendTo(nil)
	for i, r := range recs {
		off := time.Duration(i+1) * time.Millisecond
		switch {
		case r.cut > 0:
			b = transcript.Record{Type: transcript.Cut, Offset: off, Peer: peer.String(), ReceivedLeft: uint64(r.cut)}.AppendTo(b)
		case r.note != "":
			b = transcript.Record{Type: transcript.Note, Offset: off, Peer: peer.String(), Data: []byte(r.note)}.AppendTo(b)
		default:
			b = transcript.Record{Type: transcript.Received, Offset: off, Peer: peer.String(), Data: r.data}.AppendTo(b)
		}
	}
	o.Transcript = observe.Transcript{Bytes: b}
	return o
}

// peerHS is the peer's handshake, with the extension protocol bit set
// (BEP 10: without it an extension handshake means nothing, to the probe
// and to the verifier).
func peerHS(o observe.Observation) []byte {
	hs := peerwire.Handshake{InfoHash: [20]byte(o.Item.Hash.Bytes()), PeerID: [20]byte(o.Client.PeerID)}
	hs.Reserved.SetExtended(true)
	return hs.AppendTo(nil)
}

func wireMsg(m peerwire.Message) []byte { return m.AppendTo(nil) }

func TestCutTranscriptClaims(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 12))
	base := func(i int, level observe.Level, have, total int) observe.Observation {
		o := probe(r, i, 3, 10)
		o.Possession = observe.Possession{Level: level, PiecesHave: have, PiecesTotal: total}
		return o
	}
	bf := make([]byte, peerwire.BitfieldLen(10))
	for p := range 3 {
		peerwire.SetPiece(bf, p)
	}
	bitfield := wireMsg(peerwire.Message{ID: peerwire.Bitfield, Payload: bf})
	junk := wireMsg(peerwire.Message{ID: peerwire.Extended, ExtendedID: 99, Payload: bytes.Repeat([]byte{'x'}, 1000)})
	eh := peerwire.ExtHandshake{M: map[string]uint8{}, Client: "Transmission 3.00", Port: 51413}
	ext := wireMsg(peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)})

	type tc struct {
		name string
		o    observe.Observation
		ok   bool
	}
	var cases []tc
	add := func(name string, ok bool, o observe.Observation) { cases = append(cases, tc{name, o, ok}) }

	// Acknowledged: the peer said more than its handshake, or held the
	// connection (the sensor's note). Two handshakes alone are what an
	// echo-then-hang-up peer leaves: nothing acknowledged.
	o := base(len(cases), observe.Acknowledged, -1, 10)
	add("handshake only", false, withRecords(o, cutRec{data: peerHS(o)}))
	o = base(len(cases), observe.Acknowledged, -1, 10)
	add("handshake then a cut", false, withRecords(o, cutRec{data: peerHS(o)}, cutRec{cut: 2000}))
	o = base(len(cases), observe.Acknowledged, -1, 10)
	add("handshake then held", true, withRecords(o, cutRec{data: peerHS(o)}, cutRec{note: transcript.HeldNote + " 1.5s after its handshake"}))
	o = base(len(cases), observe.Acknowledged, -1, 10)
	add("handshake then a keep-alive", true, withRecords(o, cutRec{data: append(peerHS(o), 0, 0, 0, 0)}))

	// Partial from a bitfield after a cut: found when the cut message's
	// length prefix is kept (a reader skips the message), not when the
	// prefix itself was cut.
	o = base(len(cases), observe.Partial, 3, 10)
	add("bitfield after a cut payload", true, withRecords(o, cutRec{data: append(peerHS(o), junk[:100]...)}, cutRec{cut: len(junk) - 100}, cutRec{data: bitfield}))
	o = base(len(cases), observe.Partial, 3, 10)
	add("bitfield after a cut length prefix", false, withRecords(o, cutRec{data: append(peerHS(o), junk[:2]...)}, cutRec{cut: len(junk) - 2}, cutRec{data: bitfield}))
	o = base(len(cases), observe.Partial, 3, 10)
	add("bitfield cut", false, withRecords(o, cutRec{data: append(peerHS(o), bitfield[:5]...)}, cutRec{cut: len(bitfield) - 5}))

	// The listen port comes from the extension handshake, kept whole.
	o = base(len(cases), observe.Partial, 3, 10)
	o.Client.ListenPort = 51413
	add("listen port kept", true, withRecords(o, cutRec{data: bytes.Join([][]byte{peerHS(o), ext, bitfield}, nil)}))
	o = base(len(cases), observe.Partial, 3, 10)
	o.Client.ListenPort = 51413
	add("listen port cut", false, withRecords(o, cutRec{data: append(peerHS(o), ext[:10]...)}, cutRec{cut: len(ext) - 10}, cutRec{data: bitfield}))
	o = base(len(cases), observe.Partial, 3, 10)
	o.Client.ListenPort = 6881
	add("listen port not the extension handshake's", false, withRecords(o, cutRec{data: bytes.Join([][]byte{peerHS(o), ext, bitfield}, nil)}))

	// Verified rests on the sensor's note of the piece it hashed (the
	// piece itself is never kept).
	o = base(len(cases), observe.Verified, 3, 10)
	add("verified without its note", false, withRecords(o, cutRec{data: append(peerHS(o), bitfield...)}))
	o = base(len(cases), observe.Verified, 3, 10)
	add("verified with its note", true, withRecords(o, cutRec{data: append(peerHS(o), bitfield...)},
		cutRec{note: "piece 1 (16384 bytes) fetched from this peer alone, hashed in memory and discarded; " + transcript.VerifiedNote}))

	// eD2K: the hello answer and a file name answer or status for the
	// item, whole; partial and complete from the status kept whole.
	ed2kObs := func(name string, level observe.Level, have, total int, ok bool, recs func(hash [16]byte) []cutRec) {
		h := [16]byte(bytes.Repeat([]byte{byte(len(cases))}, 16))
		o := base(len(cases), level, have, total)
		o.Network, o.Item.Hash = observe.NetED2K, hashkind.MustNew(hashkind.ED2K, h[:])
		o.Client = observe.Client{Name: "aMule", Version: "2.3.3"}
		add(name, ok, withRecords(o, recs(h)...))
	}
	hello := wire.Append(nil, wire.ProtoEDonkey, wire.OpHelloAnswer, wire.Hello{Answer: true, Port: 4662}.AppendTo(nil))
	named := func(h [16]byte) []byte {
		return wire.Append(nil, wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: h, Name: "x"}.AppendTo(nil))
	}
	status := func(h [16]byte, count uint16, bits ...byte) []byte {
		return wire.Append(nil, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: h, Count: count, Bits: bits}.AppendTo(nil))
	}
	ed2kObs("ed2k complete, status kept", observe.Complete, 3, 3, true, func(h [16]byte) []cutRec {
		return []cutRec{{data: hello}, {data: named(h)}, {data: status(h, 3, 0x07)}}
	})
	ed2kObs("ed2k partial 2/3, status kept", observe.Partial, 2, 3, true, func(h [16]byte) []cutRec {
		return []cutRec{{data: hello}, {data: named(h)}, {data: status(h, 3, 0x03)}}
	})
	ed2kObs("ed2k complete, status cut", observe.Complete, 3, 3, false, func(h [16]byte) []cutRec {
		st := status(h, 3, 0x07)
		return []cutRec{{data: hello}, {data: named(h)}, {data: st[:20]}, {cut: len(st) - 20}}
	})
	ed2kObs("ed2k partial 3/3 over a status of 2", observe.Partial, 3, 3, false, func(h [16]byte) []cutRec {
		return []cutRec{{data: hello}, {data: named(h)}, {data: status(h, 3, 0x03)}}
	})
	ed2kObs("ed2k user hash not the hello's", observe.Complete, 3, 3, false, func(h [16]byte) []cutRec {
		return []cutRec{{data: hello}, {data: named(h)}, {data: status(h, 3, 0x07)}}
	})
	cases[len(cases)-1].o.Client.UserHash = bytes.Repeat([]byte{7}, 16)
	ed2kObs("ed2k listen port not the hello's", observe.Complete, 3, 3, false, func(h [16]byte) []cutRec {
		return []cutRec{{data: hello}, {data: named(h)}, {data: status(h, 3, 0x07)}}
	})
	cases[len(cases)-1].o.Client.ListenPort = 4663
	ed2kObs("ed2k user hash and listen port the hello's", observe.Complete, 3, 3, true, func(h [16]byte) []cutRec {
		return []cutRec{{data: hello}, {data: named(h)}, {data: status(h, 3, 0x07)}}
	})
	cases[len(cases)-1].o.Client.UserHash, cases[len(cases)-1].o.Client.ListenPort = make([]byte, 16), 4662
	ed2kObs("ed2k acknowledged from a padding packet that holds the hash", observe.Acknowledged, -1, -1, false, func(h [16]byte) []cutRec {
		pad := wire.Append(nil, wire.ProtoEDonkey, 0x99, bytes.Repeat(h[:], 4))
		return []cutRec{{data: hello}, {data: pad}}
	})

	obs := make([]observe.Observation, len(cases))
	for i, c := range cases {
		obs[i] = c.o
	}
	f := newFixture(t, obs)
	f.checkpoint(t)
	rep := check(t, f.bundle(t, f.ids))
	bad := map[int]string{}
	for _, p := range rep.Problems {
		var line int
		if _, err := fmt.Sscanf(p.Field, "line %d", &line); err == nil && p.File == verify.FileObservations && strings.HasSuffix(p.Field, "transcript") {
			bad[line] = p.Detail
		}
	}
	for i, c := range cases {
		if _, failed := bad[i+1]; failed == c.ok {
			t.Errorf("%s (line %d): refused %v (%q), want refused %v", c.name, i+1, failed, bad[i+1], !c.ok)
		}
	}
}
