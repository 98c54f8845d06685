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
//     info-hash (and the peer id recorded); the pieces it advertised
//     (bitfield, have, have_all), counted in range, are at least those
//     claimed, and all of them for complete;
//   - a dht_announce: the peer's announce_peer names the item and carries
//     a token, the one the sensor gave if the transcript holds it;
//   - an eD2K or Kad peer_probe: the client's hello answer (the user hash
//     and listen port recorded) and its file name answer or file status
//     for the item, each a packet kept whole;
//     for partial and complete, the file status, its parts counted as
//     for a bitfield.
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

// messages calls fn with each message after the handshake that a reader
// can find (the length prefix of every message before it is kept) and
// whether all of its bytes are kept; a message with bytes cut is skipped
// by its length. It stops at a length prefix not kept, and where the
// probe stopped reading: at a message its decoder refuses (longer than
// peerwire.DefaultMaxLength, or of a length its type cannot have), or
// when fn says so. What the probe did not read, it did not count.
func (s *keptStream) messages(fn func(msg []byte, whole bool) (stop bool)) {
	for pos := uint64(peerwire.HandshakeLen); pos+4 <= s.end; {
		hdr, ok := s.bytes(pos, pos+4)
		if !ok {
			return
		}
		n := binary.BigEndian.Uint32(hdr)
		end := pos + 4 + uint64(n)
		if n > peerwire.DefaultMaxLength || end > s.end {
			return
		}
		if id, ok := s.bytes(pos+4, min(pos+5, end)); ok && n > 0 && refused(id[0], n) {
			return
		}
		msg, whole := s.bytes(pos+4, end)
		if fn(msg, whole) {
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

// spoke reports whether the transcript shows the peer acknowledged: a
// byte it sent after its handshake is kept, or the sensor's note says it
// held the connection (transcript.HeldNote). Two handshakes alone are
// what a peer that echoes any info-hash and hangs up leaves.
func spoke(recs []transcript.Record, s *keptStream, ep netip.AddrPort) bool {
	for _, sp := range s.spans {
		if sp.at+uint64(len(sp.b)) > uint64(peerwire.HandshakeLen) {
			return true
		}
	}
	return hasNote(recs, ep, transcript.HeldNote)
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
	if !spoke(recs, s, o.endpoint()) {
		return "the peer's handshake and nothing after it: no acknowledgement (a peer may echo any info-hash and hang up)"
	}
	if o.Possession == "verified" && !hasNote(recs, o.endpoint(), transcript.VerifiedNote) {
		return "verified, but no note of the sensor's says a piece from this peer matched its hash"
	}
	total := -1
	if o.PiecesTotal != nil {
		total = *o.PiecesTotal
	}
	shown, all, ports := read(s, total, hs.Reserved)
	if o.ListenPort != 0 && !ports[o.ListenPort] {
		return "listen port " + itoa(int(o.ListenPort)) + ", but no extension handshake kept whole gives it"
	}
	if o.Possession != "partial" && o.Possession != "complete" && o.Possession != "verified" {
		return ""
	}
	if o.PiecesTotal == nil {
		if o.Possession == "partial" {
			return "partial with an unknown piece count: nothing can be counted in range"
		}
		// complete with the piece count unknown rests on a have_all.
		if !all && o.Possession == "complete" {
			return "complete with an unknown piece count, but the peer sent no have_all"
		}
		return ""
	}
	have := total
	if o.PiecesHave != nil {
		have = *o.PiecesHave
	}
	switch {
	case have > total:
		return "pieces_have exceeds pieces_total"
	case have > shown:
		return "the peer advertised " + itoa(shown) + " pieces in range, the observation claims " + itoa(have)
	case o.Possession == "complete" && !all && shown < total:
		return "complete, but the peer advertised " + itoa(shown) + " of " + itoa(total) + " pieces"
	}
	return ""
}

// read counts the distinct pieces below total that the peer's bitfield,
// have and have_all messages kept whole name (whatever their order: the
// sensor's stricter reading may count fewer, never more), whether it sent
// have_all, and the listen ports its extension handshakes kept whole
// give (any of them: the probe takes the last one it read, and a reader
// cannot always tell where it stopped reading: at a ut_metadata message
// that does not parse, a write that failed, with more received). As the probe, it takes a
// have_all only if the peer's handshake (its reserved bits res) set the
// fast extension bit, an extension message only if it set the extension
// bit, and stops at an extension handshake that does not parse.
func read(s *keptStream, total int, res peerwire.Reserved) (int, bool, map[uint16]bool) {
	seen := make(map[int]bool)
	all := false
	ports := map[uint16]bool{}
	s.messages(func(msg []byte, whole bool) bool {
		if !whole || len(msg) == 0 {
			return false
		}
		switch peerwire.MsgID(msg[0]) {
		case peerwire.Bitfield:
			for i := 0; i < total && i/8 < len(msg)-1; i++ {
				if msg[1+i/8]&(0x80>>(i%8)) != 0 {
					seen[i] = true
				}
			}
		case peerwire.Have:
			if len(msg) == 5 {
				if i := int(binary.BigEndian.Uint32(msg[1:])); i < total {
					seen[i] = true
				}
			}
		case peerwire.HaveAll:
			all = all || res.Fast() && len(msg) == 1
		case peerwire.Extended:
			if res.Extended() && len(msg) >= 2 && msg[1] == peerwire.ExtHandshakeID {
				eh, err := peerwire.ParseExtHandshake(msg[2:])
				if err != nil {
					return true // the probe stops there
				}
				ports[eh.Port] = true
			}
		}
		return false
	})
	if all {
		return max(total, 0), true, ports
	}
	return len(seen), false, ports
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

// ed2kClaims checks an eD2K client probe against the packets received
// from the endpoint that the transcript keeps whole (one packet a record,
// as the probe records them; a packet cut short shows nothing): its
// first hello answer, and after it (the probe reads nothing else before)
// a file name answer or the first file status for the item.
func ed2kClaims(o *obsLine, recs []transcript.Record, item []byte) string {
	var hello *wire.Hello
	var named bool
	var status *wire.FileStatus
	for _, r := range recs {
		if r.Type != transcript.Received || !from(r, o.endpoint()) || len(r.Data) == 0 || r.Data[0] != wire.ProtoEDonkey {
			continue // none of what is compared comes packed: nothing is inflated
		}
		p, n, err := wire.Decode(r.Data, wire.DefaultLimits())
		if err != nil || n == 0 || n != len(r.Data) || p.Proto != wire.ProtoEDonkey {
			continue
		}
		switch {
		case p.Opcode == wire.OpHelloAnswer:
			if h, err := wire.DecodeHello(p.Payload, true); err == nil && hello == nil {
				hello = &h
			}
			continue
		case hello == nil:
			continue // the probe reads nothing else until it has the hello answer
		}
		switch p.Opcode {
		case wire.OpReqFileNameAns:
			fn, err := wire.DecodeFileName(p.Payload)
			named = named || err == nil && bytes.Equal(fn.Hash[:], item)
		case wire.OpFileStatus:
			if fs, err := wire.DecodeFileStatus(p.Payload); err == nil && bytes.Equal(fs.Hash[:], item) && status == nil {
				status = &fs
			}
		}
	}
	switch {
	case hello == nil:
		return "no hello answer from the observation's endpoint " + o.endpoint().String() + " kept whole"
	case o.UserHash != "" && o.UserHash != hex.EncodeToString(hello.UserHash[:]):
		return "the hello answer gives user hash " + hex.EncodeToString(hello.UserHash[:]) + ", not " + o.UserHash
	case o.ListenPort != 0 && o.ListenPort != hello.Client().ListenPort:
		return "the hello answer gives listen port " + itoa(int(hello.Client().ListenPort)) + ", not " + itoa(int(o.ListenPort))
	case !named && status == nil:
		return "no file name answer or file status for the item kept whole"
	case o.Possession != "partial" && o.Possession != "complete" && o.Possession != "verified":
		return ""
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
	switch {
	case have > shown:
		return "the file status sets " + itoa(shown) + " parts in range, the observation claims " + itoa(have)
	case o.Possession == "complete" && shown < total:
		return "complete, but the file status sets " + itoa(shown) + " of " + itoa(total) + " parts"
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
