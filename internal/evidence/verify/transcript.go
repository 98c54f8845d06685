package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vigil-oss/vigil/internal/bencode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// transcriptResult is what checkTranscript found for one observation.
type transcriptResult struct {
	outcome transcriptOutcome
	// field and problem, when outcome is transcriptFailed: the key of the
	// observation that does not check, and why.
	field, problem string
}

type transcriptOutcome uint8

const (
	transcriptNone        transcriptOutcome = iota // no transcript, and none needed
	transcriptCompared                             // decoded and compared with the claims
	transcriptNotCompared                          // decoded; its method has no claim the verifier compares
	transcriptFailed
)

// checkTranscript decodes o's transcript and compares it with o's claims:
//   - transcript_sha256, when given, is the transcript's SHA-256 (in
//     evidence form 2, where the hashes cover the transcript only
//     through it, each must come with the other, unless transcript_ref
//     says where the transcript is kept);
//   - a BitTorrent peer_probe: the peer's handshake names the item's
//     info-hash (and the peer id recorded); its possession messages, as
//     far as a reader can follow the probe's decoder and judged by the
//     probe's own rules (peerwire.Claims: read), count at least the
//     pieces claimed, and all of them for complete;
//   - a dht_announce: the peer's announce_peer names the item and carries
//     a token, the one the sensor gave if the transcript holds it;
//   - an eD2K or Kad peer_probe: read as the probe reads it (readED2K),
//     the client's hello answer (the user hash and listen port recorded)
//     and its file name answer or file status for the item, each a packet
//     kept whole; for partial and complete, the file status, its parts
//     counted as for a bitfield (and for complete a map the probe does
//     not call malformed), and no later no-file answer for the item kept
//     whole (with --verify a client may withdraw its status: the probe
//     then keeps acknowledged).
//
// A transcript is decoded with internal/sensor/bittorrent/transcript, the
// format every network's transcripts use.
func checkTranscript(o *obsLine) transcriptResult {
	failed := func(field, problem string) transcriptResult {
		return transcriptResult{outcome: transcriptFailed, field: field, problem: problem}
	}
	if o.Form != nil && *o.Form == 2 {
		// Form 2's hashes cover the transcript only through its SHA-256:
		// the one must come with the other.
		switch {
		case len(o.Transcript) > 0 && o.TranscriptSHA256 == "":
			return failed("transcript_sha256", "missing: in evidence form 2 the hashes cover the transcript only through it")
		case len(o.Transcript) == 0 && o.TranscriptSHA256 != "" && o.TranscriptRef == "":
			return failed("transcript", "missing: transcript_sha256 names one, and in evidence form 2 the hashes do not cover the bytes themselves")
		}
	}
	if o.TranscriptSHA256 != "" {
		sum := sha256.Sum256(o.Transcript)
		if hex.EncodeToString(sum[:]) != o.TranscriptSHA256 {
			return failed("transcript_sha256", fmt.Sprintf("the transcript's SHA-256 is %x", sum))
		}
	}
	if len(o.Transcript) == 0 {
		if o.Network == "bittorrent" && o.Method == "peer_probe" && !hasMark(o.Marks, "unsigned_import") {
			return failed("transcript", "a peer probe without its transcript: nothing shows the peer said what is claimed")
		}
		return transcriptResult{}
	}
	recs, err := transcript.Decode(o.Transcript)
	if err != nil {
		return failed("transcript", fmt.Sprintf("does not decode: %v", err))
	}
	item, err := hex.DecodeString(o.Item)
	if err != nil {
		return failed("item", "not hex")
	}
	var problem string
	switch {
	case o.Network == "bittorrent" && o.Method == "peer_probe":
		problem = probeClaims(o, recs, item)
	case o.Network == "bittorrent" && o.Method == "dht_announce":
		problem = announceClaims(recs, item, o.endpoint())
	case (o.Network == "ed2k" || o.Network == "kad") && o.Method == "peer_probe":
		problem = ed2kClaims(o, recs, item)
	default:
		return transcriptResult{outcome: transcriptNotCompared}
	}
	if problem != "" {
		return failed("transcript", problem)
	}
	return transcriptResult{outcome: transcriptCompared}
}

// transcript counts what checkTranscript found for o in the report.
func (v *verifier) transcript(o *observation) {
	switch r := o.transcript; r.outcome {
	case transcriptCompared:
		v.rep.Transcripts++
	case transcriptNotCompared:
		v.rep.TranscriptsNotCompared++
	case transcriptFailed:
		v.rep.fail(FileObservations, o.field(r.field), "%s", r.problem)
	}
}

// endpoint is the observation's address and port (IPv4-mapped addresses
// unmapped), as a transcript's records name their peer.
func (o *obsLine) endpoint() netip.AddrPort {
	a, err := netip.ParseAddr(o.IP)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), o.Port)
}

// from reports whether r's peer is ep: the endpoint the observation names
// (and an ISP row would), not another address the sensor talked to.
func from(r transcript.Record, ep netip.AddrPort) bool {
	p, err := netip.ParseAddrPort(r.Peer)
	return err == nil && ep.IsValid() && netip.AddrPortFrom(p.Addr().Unmap(), p.Port()) == ep
}

// keptStream is the byte stream received from one endpoint as the
// transcript keeps it: each received record at its place in the stream,
// and the bytes a cut or paused record counts as received left as holes
// (a reader knows their length, not their content).
type keptStream struct {
	spans []span
	end   uint64 // the stream's length, holes included
	next  int    // the first span bytes may still be asked from
	// legacy: the stream stops at a legacy end marker, which counts
	// bytes cut from the end of the transcript: the bytes after end were
	// received, not kept.
	legacy bool
}

type span struct {
	at uint64
	b  []byte
}

// maxStream bounds a stream's length, holes included: cut records that
// add up past it (only a hostile bundle's can) cannot be placed, and the
// stream stops there rather than wrap.
const maxStream = 1 << 62

// streamOf is the stream received from ep. A legacy end marker counts
// its bytes somewhere unknown: the stream stops there. So does the
// sensor's DHT ping of the peer's node (a KRPC query, 'd', sent to ep:
// no handshake nor message the probe writes on the stream starts so),
// which the probe sends once the stream is over, to the port the peer's
// PORT message gave, often the one it listens on: what comes from ep
// after it is the node's reply, a datagram, never part of the stream.
func streamOf(recs []transcript.Record, ep netip.AddrPort) *keptStream {
	s := &keptStream{}
	for _, r := range recs {
		switch {
		case r.Type == transcript.LegacyCut:
			s.legacy = r.Left > 0
			return s
		case r.Type == transcript.Sent && len(r.Data) > 0 && r.Data[0] == 'd' && from(r, ep):
			return s
		case r.Gap():
			if r.ReceivedLeft > maxStream-s.end {
				return s
			}
			s.end += r.ReceivedLeft
		case r.Type == transcript.Received && from(r, ep):
			s.spans = append(s.spans, span{s.end, r.Data})
			s.end += uint64(len(r.Data))
		}
	}
	return s
}

// bytes returns the stream's bytes [lo, hi), if all of them are kept.
// Asked in increasing order (lo never below an earlier call's lo).
func (s *keptStream) bytes(lo, hi uint64) ([]byte, bool) {
	var out []byte
	pos := lo
	for i := s.next; i < len(s.spans) && pos < hi; i++ {
		sp := s.spans[i]
		end := sp.at + uint64(len(sp.b))
		if end <= pos {
			s.next = i + 1
			continue
		}
		if sp.at > pos {
			return nil, false // a hole
		}
		out = append(out, sp.b[pos-sp.at:min(end, hi)-sp.at]...)
		pos = min(end, hi)
	}
	return out, pos >= hi
}

// found is a message a reader finds in the kept stream.
type found struct {
	n     uint32 // its length, type byte included (0: a keep-alive)
	id    byte   // its type (when n > 0)
	msg   []byte // all of it (type byte included), when whole
	whole bool
	// lost: its length prefix is kept and the transcript's bound cut
	// it from its type byte on (a cut record there, or an old
	// transcript's end marker): the peer spoke, and nothing in it can
	// be read, nor anything after it.
	lost bool
}

// messages calls fn with each message after the handshake that a reader
// can find: its length prefix and type byte kept, and those of every
// message before it; a message with body bytes cut is passed with whole
// false (skipped by its length). It stops where a reader cannot follow
// the probe's decoder (peerwire.Decoder): at a length prefix or type byte
// in a hole (the probe's decoder may have refused the message: every
// length is wrong for some type), at a message the decoder refuses
// (longer than peerwire.DefaultMaxLength, or of a length its type cannot
// have) or that the stream does not hold to its end, and when fn says
// so. What the probe did not read, it did not count; the probe counts
// nothing past where a reader stops either (probe.peerConn.run). A
// message whose length prefix is kept and whose type byte is not (cut
// at the bound; in an old transcript, past its end marker) is passed
// as lost, last: the peer said more than its handshake, as the probe
// that wrote it says (a reader cannot see whether the probe's decoder
// refused it, and the probe counts it spoken either way).
func (s *keptStream) messages(fn func(m found) (stop bool)) {
	for pos := uint64(peerwire.HandshakeLen); pos+4 <= s.end; {
		hdr, ok := s.bytes(pos, pos+4)
		if !ok {
			return
		}
		n := binary.BigEndian.Uint32(hdr)
		end := pos + 4 + uint64(n)
		switch {
		case n > peerwire.DefaultMaxLength:
			return
		case n > 0 && pos+4 == s.end && s.legacy:
			fn(found{n: n, lost: true})
			return
		case end > s.end:
			return
		}
		m := found{n: n}
		if n > 0 {
			id, ok := s.bytes(pos+4, pos+5)
			if !ok {
				fn(found{n: n, lost: true})
				return
			}
			if refused(id[0], n) {
				return
			}
			m.id = id[0]
		}
		m.msg, m.whole = s.bytes(pos+4, end)
		if fn(m) {
			return
		}
		pos = end
	}
}

// refused reports whether the probe's decoder (peerwire.Decoder) refuses
// a message of length n (type byte included) of type id, which ends the
// probe's reading.
func refused(id byte, n uint32) bool {
	p := int64(n) - 1
	switch peerwire.MsgID(id) {
	case peerwire.Choke, peerwire.Unchoke, peerwire.Interested, peerwire.NotInterested, peerwire.HaveAll, peerwire.HaveNone:
		return p != 0
	case peerwire.Have, peerwire.Suggest, peerwire.AllowedFast:
		return p != 4
	case peerwire.Request, peerwire.Cancel, peerwire.Reject:
		return p != 12
	case peerwire.Port:
		return p != 2
	case peerwire.Piece:
		return p < 8
	case peerwire.Extended:
		return p < 1
	case peerwire.HashRequest, peerwire.HashReject:
		return p != 48
	case peerwire.Hashes:
		return p < 48 || (p-48)%32 != 0
	}
	return false
}

func hasNote(recs []transcript.Record, ep netip.AddrPort, text string) bool {
	for _, r := range recs {
		if r.Type == transcript.Note && from(r, ep) && bytes.Contains(r.Data, []byte(text)) {
			return true
		}
	}
	return false
}

func probeClaims(o *obsLine, recs []transcript.Record, item []byte) string {
	s := streamOf(recs, o.endpoint())
	b, ok := s.bytes(0, uint64(peerwire.HandshakeLen))
	if !ok {
		return "no whole handshake from the observation's endpoint " + o.endpoint().String()
	}
	hs, err := peerwire.ParseHandshake(b)
	if err != nil {
		return "the peer's handshake: " + err.Error()
	}
	if len(item) < 20 || !bytes.Equal(hs.InfoHash[:], item[:20]) {
		return "the peer's handshake names info-hash " + hex.EncodeToString(hs.InfoHash[:]) + ", not the item"
	}
	if o.PeerID != "" && o.PeerID != hex.EncodeToString(hs.PeerID[:]) {
		return "the peer's handshake gives peer id " + hex.EncodeToString(hs.PeerID[:]) + ", not " + o.PeerID
	}
	sh := read(s, hs.Reserved)
	if !sh.spoke && !hasNote(recs, o.endpoint(), transcript.HeldNote) {
		// Two handshakes alone are what a peer that echoes any info-hash
		// and hangs up leaves.
		return "the peer's handshake and no message after it: no acknowledgement (a peer may echo any info-hash and hang up)"
	}
	if o.Possession == "verified" && !hasNote(recs, o.endpoint(), transcript.VerifiedNote) {
		return "verified, but no note of the sensor's says a piece from this peer matched its hash"
	}
	switch {
	case o.ListenPort == 0:
	case !sh.ext:
		return "listen port " + itoa(int(o.ListenPort)) + ", but no extension handshake kept whole where the probe reads it gives one"
	case o.ListenPort != sh.port:
		return "listen port " + itoa(int(o.ListenPort)) + ", but the first extension handshake kept whole, the one the probe takes it from, gives " + itoa(int(sh.port))
	}
	if o.Possession != "partial" && o.Possession != "complete" && o.Possession != "verified" {
		return ""
	}
	total := -1
	if o.PiecesTotal != nil {
		total = *o.PiecesTotal
	}
	v := sh.claims.Judge(total)
	if o.PiecesTotal == nil {
		if o.Possession == "partial" {
			return "partial with an unknown piece count: nothing can be counted in range"
		}
		// complete with the piece count unknown rests on a have_all.
		if !v.All && o.Possession == "complete" {
			return "complete with an unknown piece count, but no have_all the probe's rules count"
		}
		return ""
	}
	have, counted := total, v.Have
	if o.PiecesHave != nil {
		have = *o.PiecesHave
	}
	if v.All {
		counted = total
	}
	switch {
	case have > total:
		return "pieces_have exceeds pieces_total"
	case have > counted:
		return "the peer's possession messages, judged by the probe's rules, count " + itoa(counted) + " pieces in range, the observation claims " + itoa(have)
	case o.Possession == "partial" && have <= 0:
		return "partial, but it claims no piece"
	case o.Possession == "complete" && counted < total:
		return "complete, but the peer's possession messages, judged by the probe's rules, count " + itoa(counted) + " of " + itoa(total) + " pieces"
	}
	return ""
}

// utMetadataID is the extension id the sensor's probe asks peers to use
// for ut_metadata messages to it (probe.ExtMetadataID).
const utMetadataID = 1

// shown is what a reader finds the peer said on the stream, counted as
// the probe counts it.
type shown struct {
	spoke  bool            // a message after the handshake was found
	claims peerwire.Claims // its possession messages, judged by the probe's own rules
	// ext says an extension handshake was found kept whole and parsed;
	// port is the listen port of the first such one, the one the probe
	// records (probe.peerConn.onExtHandshake).
	ext  bool
	port uint16
}

// read replays the messages a reader finds (messages) through
// peerwire.Claims, the accounting the probe itself uses, fed as the probe
// feeds it (probe.peerConn.account): a bitfield or have kept whole with
// its content, one cut as a message whose content is unknown, have_all
// and have_none (nothing to cut: found, they are whole); a have_all only
// if the peer's handshake (its reserved bits res) set the fast extension
// bit, else as one that shows nothing. Claims then applies the probe's
// rules: their order (a bitfield only first, a have_all or have_none
// against what came before), ranges, and more than eight possession
// messages counting nothing. An extension message counts only if the
// handshake set the extension bit; reading stops, as the probe's does, at
// an extension handshake or ut_metadata message kept whole that does not
// parse (one that is cut the probe reads past: a reader could not see it
// fail). The listen port is that of the first extension handshake kept
// whole that parses, as for the probe: the probe may stop reading at a
// write that failed with more already in the transcript, so that a reader
// cannot always tell which one it read last, but always which one it read
// first. A
// message cut at its type byte (lost) shows that the peer spoke, and
// nothing more: reading stops there.
func read(s *keptStream, res peerwire.Reserved) *shown {
	sh := &shown{}
	s.messages(func(m found) bool {
		sh.spoke = true
		if m.lost {
			return true
		}
		if m.n == 0 {
			return false // a keep-alive
		}
		switch peerwire.MsgID(m.id) {
		case peerwire.Bitfield:
			if m.whole {
				sh.claims.Bitfield(m.msg[1:])
			} else {
				sh.claims.Unknown()
			}
		case peerwire.Have:
			if m.whole {
				sh.claims.Have(binary.BigEndian.Uint32(m.msg[1:]))
			} else {
				sh.claims.Unknown()
			}
		case peerwire.HaveAll:
			if res.Fast() {
				sh.claims.HaveAll()
			} else {
				sh.claims.HaveAllUnnegotiated()
			}
		case peerwire.HaveNone:
			sh.claims.HaveNone()
		case peerwire.Extended:
			if !res.Extended() || !m.whole {
				return false
			}
			switch m.msg[1] {
			case peerwire.ExtHandshakeID:
				eh, err := peerwire.ParseExtHandshake(m.msg[2:])
				if err != nil {
					return true // the probe stops there
				}
				if !sh.ext {
					sh.ext, sh.port = true, eh.Port
				}
			case utMetadataID:
				if _, err := peerwire.ParseMetadata(m.msg[2:]); err != nil {
					return true // the probe stops there
				}
			}
		}
		return false
	})
	return sh
}

// announceClaims finds the announce_peer for the item, sent from ep (the
// datagram's source: the observation's endpoint), with a token; if the
// transcript holds the sensor's reply giving a token, the announce must
// carry that one.
func announceClaims(recs []transcript.Record, item []byte, ep netip.AddrPort) string {
	given := map[string]bool{}
	for _, r := range recs {
		if r.Type != transcript.Sent {
			continue
		}
		if d, ok := decodeDict(r.Data); ok {
			if resp, ok := d.Get("r"); ok {
				if rd, ok := resp.(bencode.Dict); ok {
					if t, ok := rd.Get("token"); ok {
						if tb, ok := t.([]byte); ok {
							given[string(tb)] = true
						}
					}
				}
			}
		}
	}
	for _, r := range recs {
		if r.Type != transcript.Received || !from(r, ep) {
			continue
		}
		d, ok := decodeDict(r.Data)
		if !ok {
			continue
		}
		if q, _ := d.Get("q"); !isBytes(q, "announce_peer") {
			continue
		}
		a, _ := d.Get("a")
		ad, ok := a.(bencode.Dict)
		if !ok {
			continue
		}
		ih, _ := ad.Get("info_hash")
		if ihb, ok := ih.([]byte); !ok || len(item) < 20 || !bytes.Equal(ihb, item[:20]) {
			continue
		}
		tok, _ := ad.Get("token")
		tb, ok := tok.([]byte)
		if !ok || len(tb) == 0 {
			return "the announce_peer carries no token"
		}
		if len(given) > 0 && !given[string(tb)] {
			return "the announce_peer's token is not one the sensor gave"
		}
		return ""
	}
	return "no announce_peer from the observation's endpoint " + ep.String() + " names the item"
}

// The eD2K probe's bounds (internal/sensor/ed2k/probe, DefaultConfig):
// the packets it reads, the limits of each.
var (
	ed2kMaxPackets = 64
	ed2kLimits     = wire.DefaultLimits()
)

// ed2kRead is what the eD2K probe read of the packets received from an
// endpoint, up to where it stopped.
type ed2kRead struct {
	hello  *wire.Hello
	named  bool
	status *wire.FileStatus
	// withdrawn: after the status, the client said it has no such file
	// (ed2kWithdrawn).
	withdrawn bool
	// fail: the probe would have dropped the client (another file, or
	// no such file, or an answer a reader cannot check).
	fail string
}

// readED2K replays the packets received from ep as the eD2K probe reads
// them (internal/sensor/ed2k/probe, ask), one packet a record: a packet
// withheld is a cut record of its own; a packet cut short is a record of
// its start and a cut record of the rest. The probe reads at most
// ed2kMaxPackets packets. Until it has the first hello answer it reads
// nothing else; after it, the first name answer and the first file
// status or no-file answer, and it stops there. It stops at a packet
// whose header does not parse or that does not unpack, at a hello answer,
// name answer, file status or no-file answer that does not decode, and
// at a hello answer, file status or no-file answer cut short (ed2kStops).
// A name answer, status or no-file answer for another file drops the
// client, as does a no-file answer for the item: nothing is claimed. The
// probe reads one packet at a time: where it stops, its transcript ends,
// so that none of these stops refuses a transcript the probe wrote. After
// the status it looks for a withdrawal (ed2kWithdrawn).
func readED2K(recs []transcript.Record, ep netip.AddrPort, item []byte) ed2kRead {
	var out ed2kRead
	packets := 0
	rest := false // the last record was a packet cut short: the next cut record is its rest
	for i, r := range recs {
		if !from(r, ep) {
			continue
		}
		if r.Gap() {
			if r.ReceivedLeft > 0 && !rest {
				packets++ // a packet withheld: the probe takes nothing from those
			}
			rest = false
			continue
		}
		if r.Type != transcript.Received {
			continue
		}
		if packets >= ed2kMaxPackets {
			return out // the probe stopped
		}
		packets++
		p, n, err := wire.Decode(r.Data, ed2kLimits)
		rest = err == nil && n == 0
		switch {
		case err != nil || n != len(r.Data) && n != 0:
			return out // the probe's reading of it failed, or it is not one packet
		case n == 0:
			if h, err := wire.ParseHeader(r.Data, ed2kLimits); err == nil && h.Proto == wire.ProtoEDonkey && ed2kStops(&out, h.Opcode) {
				return out // cut short where the probe always stops
			}
			continue // the probe took nothing from it, and may have read on
		case p.Proto != wire.ProtoEDonkey || !ed2kTakes(&out, p.Opcode):
			continue
		}
		if done := ed2kTake(&out, p, item); done {
			out.withdrawn = out.status != nil && ed2kWithdrawn(recs[i+1:], ep, item)
			return out
		}
	}
	return out
}

// ed2kWithdrawn reports whether recs, what follows the client's file
// status, hold a no-file answer for the item (OP_FILEREQANSNOFIL) from
// ep kept whole: with --verify the probe reads on, asks for the hash set
// and an upload slot, and keeps the lower of the two statements at any
// such answer it reads (internal/sensor/ed2k/probe, withdraws). It
// stops reading where it stops verifying, and its transcript ends there
// (part data it reads while the transcript is paused, which no record
// keeps): any such answer a reader finds is one the probe read, so the
// verifier looks in all of them.
func ed2kWithdrawn(recs []transcript.Record, ep netip.AddrPort, item []byte) bool {
	for _, r := range recs {
		if r.Type != transcript.Received || !from(r, ep) {
			continue
		}
		p, n, err := wire.Decode(r.Data, ed2kLimits)
		if err != nil || n != len(r.Data) || p.Proto != wire.ProtoEDonkey || p.Opcode != wire.OpFileReqAnsNoFile {
			continue
		}
		if m, err := wire.DecodeHashMsg(p.Payload); err == nil && bytes.Equal(m.Hash[:], item) {
			return true
		}
	}
	return false
}

// ed2kTakes reports whether the probe acts on an eDonkey packet of
// opcode op, where it stands.
func ed2kTakes(out *ed2kRead, op byte) bool {
	if out.hello == nil {
		return op == wire.OpHelloAnswer
	}
	return op == wire.OpReqFileNameAns && !out.named || op == wire.OpFileStatus || op == wire.OpFileReqAnsNoFile
}

// ed2kStops reports whether the probe, where it stands, stops at an
// eDonkey packet of opcode op that the transcript does not keep whole (a
// hello answer, file status or no-file answer: it stops at any of them it
// cannot show). At one it reads past (a name answer cut short names
// nothing) what follows may be kept.
func ed2kStops(out *ed2kRead, op byte) bool {
	if out.hello == nil {
		return op == wire.OpHelloAnswer
	}
	return op == wire.OpFileStatus || op == wire.OpFileReqAnsNoFile
}

// ed2kTake takes a packet the probe acts on (ed2kTakes), kept whole; done
// says the probe stopped reading.
func ed2kTake(out *ed2kRead, p wire.Packet, item []byte) (done bool) {
	other := func(h [16]byte) bool { return !bytes.Equal(h[:], item) }
	switch p.Opcode {
	case wire.OpHelloAnswer:
		h, err := wire.DecodeHello(p.Payload, true)
		if err != nil {
			return true
		}
		out.hello = &h
		return false
	case wire.OpReqFileNameAns:
		fn, err := wire.DecodeFileName(p.Payload)
		switch {
		case err != nil:
			return true
		case other(fn.Hash):
			out.fail = "a file name answer for another file: the probe drops the client"
			return true
		}
		out.named = true
		return false
	case wire.OpFileStatus:
		fs, err := wire.DecodeFileStatus(p.Payload)
		switch {
		case err != nil:
		case other(fs.Hash):
			out.fail = "a file status for another file: the probe drops the client"
		default:
			out.status = &fs
		}
		return true
	default: // wire.OpFileReqAnsNoFile
		m, err := wire.DecodeHashMsg(p.Payload)
		switch {
		case err != nil:
		case other(m.Hash):
			out.fail = "a no-file answer for another file: the probe drops the client"
		default:
			out.fail = "the client said it has no such file"
		}
		return true
	}
}

// ed2kClaims checks an eD2K client probe against what the probe read
// (readED2K): its hello answer (user hash and listen port), a name
// answer or file status for the item, and for partial, complete or
// verified the file status, its parts counted as for a bitfield, not
// withdrawn by a later no-file answer.
func ed2kClaims(o *obsLine, recs []transcript.Record, item []byte) string {
	rd := readED2K(recs, o.endpoint(), item)
	hello, status := rd.hello, rd.status
	switch {
	case rd.fail != "":
		return rd.fail
	case hello == nil:
		return "no hello answer from the observation's endpoint " + o.endpoint().String() + " kept whole where the probe reads it"
	case o.UserHash != "" && o.UserHash != hex.EncodeToString(hello.UserHash[:]):
		return "the hello answer gives user hash " + hex.EncodeToString(hello.UserHash[:]) + ", not " + o.UserHash
	case o.ListenPort != 0 && o.ListenPort != hello.Client().ListenPort:
		return "the hello answer gives listen port " + itoa(int(hello.Client().ListenPort)) + ", not " + itoa(int(o.ListenPort))
	case !rd.named && status == nil:
		return "no file name answer or file status for the item kept whole where the probe reads it"
	case o.Possession != "partial" && o.Possession != "complete" && o.Possession != "verified":
		return ""
	case rd.withdrawn:
		return o.Possession + ", but after its file status the client said it has no such file: of the two statements the probe keeps the lower (acknowledged)"
	case status == nil:
		return o.Possession + ", but no file status for the item kept whole"
	case status.Count == 0:
		return "" // the whole file, in eD2K's words
	case o.PiecesTotal == nil:
		return o.Possession + " with an unknown part count, but the file status names parts"
	}
	total, have := *o.PiecesTotal, *o.PiecesTotal
	if o.PiecesHave != nil {
		have = *o.PiecesHave
	}
	shown := 0
	for i := 0; i < total && i < int(status.Count); i++ {
		if status.Has(i) {
			shown++
		}
	}
	// The probe never calls a malformed map complete (wire.PartMap): a
	// count that is not the file's (size/PartSize+1: the part count, or
	// one more for a size that is an exact multiple of PartSize, which
	// the verifier cannot tell apart without the size), or a bit set past
	// the count.
	malformed := int(status.Count) != total && int(status.Count) != total+1
	for i := int(status.Count); i < len(status.Bits)*8; i++ {
		malformed = malformed || status.Has(i)
	}
	switch {
	case have > shown:
		return "the file status sets " + itoa(shown) + " parts in range, the observation claims " + itoa(have)
	case o.Possession == "complete" && shown < total:
		return "complete, but the file status sets " + itoa(shown) + " of " + itoa(total) + " parts"
	case o.Possession == "complete" && malformed:
		return "complete, but the file status is malformed (its part count, or a bit past it): the probe never calls such a map complete"
	}
	return ""
}

func decodeDict(b []byte) (bencode.Dict, bool) {
	v, err := bencode.Decode(b, 8)
	if err != nil {
		return nil, false
	}
	d, ok := v.(bencode.Dict)
	return d, ok
}

func isBytes(v any, s string) bool {
	b, ok := v.([]byte)
	return ok && string(b) == s
}

func itoa(n int) string { return strconv.Itoa(n) }
