package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A BitTorrent probe transcript for the tests below: the peer at
// 127.0.0.2:6881, its handshake (ext and fast say which reserved bits
// it sets), then the records rest gives.
type probeTr struct {
	ih   []byte
	recs []transcript.Record
}

const testPeer = "127.0.0.2:6881"

func newProbeTr(ext, fast bool) *probeTr {
	p := &probeTr{ih: bytes.Repeat([]byte{0x5a}, 20)}
	hs := peerwire.Handshake{InfoHash: [20]byte(p.ih)}
	hs.Reserved.SetExtended(ext)
	hs.Reserved.SetFast(fast)
	p.recv(hs.AppendTo(nil))
	return p
}

func (p *probeTr) recv(b []byte) *probeTr {
	p.recs = append(p.recs, transcript.Record{Type: transcript.Received, Peer: testPeer, Data: b})
	return p
}

func (p *probeTr) sent(b []byte) *probeTr {
	p.recs = append(p.recs, transcript.Record{Type: transcript.Sent, Peer: testPeer, Data: b})
	return p
}

func (p *probeTr) cut(n uint64) *probeTr {
	p.recs = append(p.recs, transcript.Record{Type: transcript.Cut, Peer: testPeer, ReceivedLeft: n})
	return p
}

func (p *probeTr) msg(m peerwire.Message) *probeTr { return p.recv(m.AppendTo(nil)) }

func extHS(port uint16) peerwire.Message {
	eh := peerwire.ExtHandshake{Port: port}
	return peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)}
}

// check compares the claims with the transcript: "" if verify accepts.
func (p *probeTr) check(level string, total *int, listen uint16) string {
	return p.checkHave(level, total, nil, listen)
}

func (p *probeTr) checkHave(level string, total, have *int, listen uint16) string {
	var b []byte
	for _, r := range p.recs {
		b = r.AppendTo(b)
	}
	o := &obsLine{Network: "bittorrent", Method: "peer_probe", IP: "127.0.0.2", Port: 6881, Item: hex.EncodeToString(p.ih),
		Possession: level, PiecesTotal: total, PiecesHave: have, Transcript: b, ListenPort: listen}
	r := checkTranscript(o)
	if r.outcome == transcriptFailed {
		return r.problem
	}
	return ""
}

func intp(n int) *int { return &n }

// krpcPing and krpcReply are the sensor's DHT ping of the peer's node (at
// the port its PORT message gave: here the port it listens on, as most
// clients have it) and the node's reply, which the sensor records in the
// probe's transcript after the stream. The reply is a datagram, not the
// stream: it must not complete a message the stream left unfinished.
var krpcPing = []byte("d1:ad2:id20:" + strings.Repeat("s", 20) + "e1:q4:ping1:t2:aa1:y1:qe")

func krpcReply(extra string) []byte {
	return []byte("d" + extra + "1:rd2:id20:" + strings.Repeat("\xff", 20) + "e1:t2:aa1:y1:re")
}

func header(n int, id peerwire.MsgID, more ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	return append(append(b, byte(id)), more...)
}

// A peer whose DHT node listens on its BitTorrent port ends its stream
// with the start of a message whose rest is the node's ping reply: the
// verifier read the reply as the message's body. With an extension
// handshake, the peer's genuine listen port failed verify (the reply's
// "p" was the last one); with a bitfield, the reply's bytes were counted
// as pieces the peer never advertised on the stream.
func TestPingReplyIsNotTheStream(t *testing.T) {
	reply := krpcReply("1:pi1e")
	p := newProbeTr(true, true).msg(extHS(51413)).msg(peerwire.Message{ID: peerwire.Port, Port: 6881}).
		recv(header(2+len(reply), peerwire.Extended, peerwire.ExtHandshakeID)).
		sent(krpcPing).recv(reply)
	if problem := p.check("acknowledged", nil, 51413); problem != "" {
		t.Errorf("the peer's own listen port fails: %s", problem)
	}
	plain := krpcReply("")
	q := newProbeTr(true, true).msg(peerwire.Message{ID: peerwire.Port, Port: 6881}).
		recv(header(1+len(plain), peerwire.Bitfield)).sent(krpcPing).recv(plain)
	if problem := q.checkHave("partial", intp(8*len(plain)), intp(1), 0); problem == "" {
		t.Errorf("partial accepted from pieces a DHT reply's bytes name")
	}
}

// What the sensor's probe does not count, the verifier must not either:
// a have_all on a connection whose handshake did not set the fast bit (BEP
// 6), one with a payload (the sensor's decoder refuses it and stops), an
// extension handshake from a peer without the extension bit (BEP 10), a
// have_all after a message the decoder refuses (too long, or of a wrong
// length for its type: the probe stopped reading there).
func TestVerifyNoLooserThanTheProbe(t *testing.T) {
	haveAll := peerwire.Message{ID: peerwire.HaveAll}
	cases := []struct {
		name   string
		tr     *probeTr
		level  string
		listen uint16
	}{
		{"have_all without the fast bit", newProbeTr(true, false).msg(haveAll), "complete", 0},
		{"have_all with a payload", newProbeTr(true, true).recv(header(2, peerwire.HaveAll, 0)), "complete", 0},
		{"extension handshake without the extension bit", newProbeTr(false, true).msg(extHS(51413)), "acknowledged", 51413},
		{"after a message too long", newProbeTr(true, true).recv(header(peerwire.DefaultMaxLength+1, peerwire.Request)).
			cut(peerwire.DefaultMaxLength).msg(haveAll), "complete", 0},
		{"after a have of 5 bytes", newProbeTr(true, true).recv(header(6, peerwire.Have, 0, 0, 0, 1, 0)).msg(haveAll), "complete", 0},
		{"after a bad extension handshake", newProbeTr(true, true).recv(header(3, peerwire.Extended, 0, 'x')).msg(haveAll), "complete", 0},
	}
	for _, c := range cases {
		if problem := c.tr.check(c.level, nil, c.listen); problem == "" {
			t.Errorf("%s: %s accepted (listen port %d)", c.name, c.level, c.listen)
		}
	}
	// The same messages where the probe counts them verify.
	if problem := newProbeTr(true, true).msg(extHS(51413)).msg(haveAll).check("complete", nil, 51413); problem != "" {
		t.Errorf("have_all and listen port where the probe takes them: %s", problem)
	}
}

// The probe records the listen port of the first extension handshake
// kept whole that parses (it can stop reading with more already read,
// and so in the transcript, at a write that fails: the last one it read
// is not always the last one kept, the first always is). Verify took the
// port of any extension handshake kept whole: a bundle claiming the one a
// later handshake gave, which the probe never records, verified.
func TestListenPortOfTheFirstKeptExtensionHandshake(t *testing.T) {
	p := newProbeTr(true, true).msg(extHS(51413)).msg(peerwire.Message{ID: peerwire.HaveAll}).msg(extHS(1))
	if problem := p.check("complete", nil, 51413); problem != "" {
		t.Errorf("the listen port the peer's first extension handshake gave fails: %s", problem)
	}
	if problem := p.check("complete", nil, 1); problem == "" {
		t.Errorf("the listen port of a second extension handshake, which the probe does not record, is accepted")
	}
	if problem := p.check("complete", nil, 2); problem == "" {
		t.Errorf("a listen port no extension handshake gives is accepted")
	}
	// One cut, or one that does not parse and is cut, gives nothing: the
	// first kept whole after it does.
	first := extHS(7).Payload
	cutFirst := newProbeTr(true, true).recv(header(len(first)+2, peerwire.Extended, peerwire.ExtHandshakeID)).cut(uint64(len(first))).
		msg(extHS(51413)).msg(extHS(9))
	if problem := cutFirst.check("acknowledged", nil, 51413); problem != "" {
		t.Errorf("the first extension handshake kept whole after a cut one: %s", problem)
	}
	for _, port := range []uint16{7, 9} {
		if problem := cutFirst.check("acknowledged", nil, port); problem == "" {
			t.Errorf("listen port %d accepted: the probe records 51413", port)
		}
	}
}

// Old transcripts' bound cuts between a message's length prefix and its
// type byte: the probe that wrote them said the peer spoke (a message
// after its handshake, its length prefix kept), and verify, which since
// stops at a type byte it cannot see without calling the message found,
// failed the honest acknowledged bundle. Two places the cut can land:
// a cut record from the type byte on, and an old transcript's end marker
// (no cut records) right after the length prefix. Nothing in the cut
// message, nor after it, counts.
func TestTypeByteCutAtTheBoundIsSpoken(t *testing.T) {
	haveAll := peerwire.Message{ID: peerwire.HaveAll}
	legacy := newProbeTr(true, true).recv([]byte{0, 0, 0, 1})
	legacy.recs = append(legacy.recs, transcript.Record{Type: transcript.LegacyCut, Left: 1})
	ok := []struct {
		name string
		tr   *probeTr
	}{
		{"a cut record from the type byte on", newProbeTr(true, true).recv([]byte{0, 0, 0, 5}).cut(5)},
		{"a cut record from the type byte on, a have_all after it", newProbeTr(true, true).recv([]byte{0, 0, 0, 1}).cut(1).msg(haveAll)},
		{"an old end marker after the length prefix", legacy},
	}
	for _, c := range ok {
		if problem := c.tr.check("acknowledged", intp(10), 0); problem != "" {
			t.Errorf("%s: acknowledged refused: %s", c.name, problem)
		}
		if problem := c.tr.check("complete", intp(10), 0); problem == "" {
			t.Errorf("%s: complete accepted from a message whose type no reader sees", c.name)
		}
	}
	// Not a cut: a stream that ends after a length prefix (the peer hung
	// up in the middle of a message) and an end marker that counts
	// nothing show no message.
	noCut := newProbeTr(true, true).recv([]byte{0, 0, 0, 5})
	emptyMarker := newProbeTr(true, true).recv([]byte{0, 0, 0, 5})
	emptyMarker.recs = append(emptyMarker.recs, transcript.Record{Type: transcript.LegacyCut})
	for name, tr := range map[string]*probeTr{"a length prefix, then the end": noCut, "an end marker of 0 bytes": emptyMarker} {
		if problem := tr.check("acknowledged", intp(10), 0); problem == "" {
			t.Errorf("%s: acknowledged accepted", name)
		}
	}
}

// A hostile bundle's cut records whose lengths add up past 2^64 wrapped
// the stream's offsets, so that bytes kept after them were read in place
// of the ones before: a stream that cannot be placed ends there.
func TestCutLengthsThatWrap(t *testing.T) {
	p := newProbeTr(true, true).cut(^uint64(0)).recv([]byte{0xaa}).msg(peerwire.Message{ID: peerwire.HaveAll})
	if problem := p.check("complete", nil, 0); problem == "" {
		t.Errorf("complete accepted from a have_all placed 2^64 bytes into the stream")
	}
}

// refused mirrors the sensor's decoder (peerwire): checked against it
// for every type and length up to 200.
func TestRefusedIsTheDecoders(t *testing.T) {
	for id := range 256 {
		for n := 1; n <= 200; n++ {
			var m peerwire.Message
			err := peerwire.ParseMessage(append([]byte{byte(id)}, make([]byte, n-1)...), &m)
			if got, want := refused(byte(id), uint32(n)), err != nil; got != want {
				t.Fatalf("refused(%d, %d) = %v, the decoder: %v", id, n, got, fmt.Sprint(err))
			}
		}
	}
}

// An eD2K client that sends a file status before its hello answer (the
// probe reads nothing but the hello answer until it has it, and takes the
// first status after it): the verifier took that first status, one that
// sets no part, and a client that then gave its whole file failed
// verify. Name and status count only after the hello answer, as for the
// probe.
func TestED2KStatusBeforeTheHelloIsNotTheProbes(t *testing.T) {
	ih := bytes.Repeat([]byte{0x5a}, 16)
	peer := "127.0.0.2:4662"
	rec := func(b []byte) []byte {
		return transcript.Record{Type: transcript.Received, Peer: peer, Data: b}.AppendTo(nil)
	}
	var tr []byte
	tr = append(tr, rec(wire.Append(nil, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: [16]byte(ih), Count: 3, Bits: []byte{0}}.AppendTo(nil)))...)
	tr = append(tr, rec(wire.Append(nil, wire.ProtoEDonkey, wire.OpHelloAnswer, wire.Hello{Answer: true, Port: 4662}.AppendTo(nil)))...)
	tr = append(tr, rec(wire.Append(nil, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: [16]byte(ih)}.AppendTo(nil)))...)
	total := 3
	o := &obsLine{Network: "ed2k", Method: "peer_probe", IP: "127.0.0.2", Port: 4662, Item: hex.EncodeToString(ih),
		Possession: "complete", PiecesTotal: &total, Transcript: tr}
	if r := checkTranscript(o); r.outcome != transcriptCompared {
		t.Fatalf("the status the probe took fails: %+v", r)
	}
	// A status before the hello alone shows nothing.
	o.Transcript = append(append([]byte(nil), tr[:len(tr)-len(rec(wire.Append(nil, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: [16]byte(ih)}.AppendTo(nil))))]...), nil...)
	o.Possession = "acknowledged"
	if r := checkTranscript(o); r.outcome != transcriptFailed {
		t.Fatalf("a status before the hello answer accepted: %+v", r)
	}
}
