package observe

import (
	"fmt"
	"slices"
)

// Marks say what a reader of an observation must know before relying on
// it: that the peer broke the protocol, that the source could be forged,
// that the record is second-hand, that the transcript is not whole. A mark
// never raises anything; readers (scores, links, ISP requests, pages) lower
// their trust where a mark says so. Marks are short lower-case words with
// underscores, kept sorted and without repeats, so that two observations
// with the same marks compare equal and a store can keep them as one text.
const (
	// MarkMalformedBitfield: the peer's bitfield had the wrong length or
	// set spare bits past the last piece; only in-range bits were counted,
	// and only when the piece count was known, and the observation is
	// never complete (at most partial). For eD2K, the same of a
	// client's part map (OP_FILESTATUS): a part count that is not the
	// file's, or spare bits set; such a map is never complete.
	MarkMalformedBitfield = "malformed_bitfield"
	// MarkMalformedHave: the peer sent a have for a piece past the end,
	// or a have_all/have_none that contradicts what it said before; the
	// claim was not counted.
	MarkMalformedHave = "malformed_have"
	// MarkInfohashMismatch: the peer's handshake named another info-hash
	// than the one asked for; the exchange proves nothing about the item.
	MarkInfohashMismatch = "infohash_mismatch"
	// MarkSpoofableSource: the observation rests on an unauthenticated
	// datagram (UDP) whose source address could have been forged.
	MarkSpoofableSource = "spoofable_source"
	// MarkThirdParty: a third party (DHT node, tracker, PEX peer) named the
	// endpoint; the endpoint itself said nothing to the sensor.
	MarkThirdParty = "third_party"
	// MarkTranscriptCut: bytes of the exchange were left out of the
	// transcript (a record too long, the bound reached, or an eD2K
	// server's keyword search result, which names unwatched files); the
	// transcript says where and how many.
	MarkTranscriptCut = "transcript_cut"
	// MarkTranscriptPaused: recording was paused for part of the exchange
	// (a piece fetched for verification is hashed, never kept); the
	// transcript says where and how many bytes.
	MarkTranscriptPaused = "transcript_paused"
	// MarkNodeIDUnchecked: the DHT node id does not pass BEP 42 for the
	// address it came from (or could not be checked): it is self-declared
	// and may be forged, so no device link rests on it.
	MarkNodeIDUnchecked = "node_id_unchecked"
	// MarkNodeIDViaPing: the DHT node id was learnt by pinging the port the
	// peer declared in a PORT message, not from the peer's own connection:
	// behind carrier-grade NAT another subscriber of the same address may
	// hold that port and answer, so no device link rests on the id.
	MarkNodeIDViaPing = "node_id_via_ping"
	// MarkNonPublicAddress: the address is not globally routable (private,
	// loopback, link-local, CGNAT shared space); it names no subscriber on
	// its own. Recorded only in lab scope.
	MarkNonPublicAddress = "non_public_address"
	// MarkUnsigned: no sensor signed it: read from a file ('vigil
	// observations import'), or read from the bus by 'vigil ingest'
	// without a sensor's signature (every sensor signs what it publishes:
	// one made or stripped on the way). Nothing proves which sensor made
	// it, so it never backs an ISP row, it is not first-hand, and it
	// raises no possession level.
	MarkUnsigned = "unsigned_import"
	// MarkSignatureFailed: it came from the bus as a sensor's, but no
	// signature of a trusted sensor key covers it (a field changed after
	// the sensor signed it, an observation of its chain forged, reordered,
	// replayed or missing, an unknown or rotated-out key): ingest stored
	// it without its chain fields. It is not sensor evidence, not
	// first-hand, never an ISP row, and raises no possession level.
	MarkSignatureFailed = "signature_failed"
	// MarkTimeImplausible: ingest found its time impossible when it
	// stored it (before 1999, or more than the tolerance ahead of
	// ingest's clock; with a measured clock offset, the reference time,
	// time − offset, so judged): it was read on a clock that was wrong,
	// or lied, and when the peer was seen is unknown. It is kept, with
	// its time as the sensor read it, never corrected; no reader places
	// it in time: the analysis skips it (no target, last_seen, timeline,
	// score or link), the figures do not count it, it is not first-hand
	// (never an ISP row, never a device link, never a check's "seen").
	// Ingest alone sets it, after the sensor signed: it is an ingest
	// mark (IngestMarks), which a sensor's hash leaves out.
	MarkTimeImplausible = "time_implausible"
)

// IngestMarks are the marks ingest sets after a sensor signed: a
// sensor's hash (SensorHash) leaves them out of "marks", as it leaves out
// the keys ingest adds, so that a signed observation ingest marks stays
// verifiable; the log's leaf covers them (canon.IngestMarks, the same
// list).
var IngestMarks = []string{MarkTimeImplausible}

// IsIngestMark reports whether m is one of IngestMarks.
func IsIngestMark(m string) bool { return slices.Contains(IngestMarks, m) }

// KnownMarks lists the marks this version of Vigil sets, in order, with
// their meaning (the comments above, shortened), for help texts and pages.
var KnownMarks = []struct{ Name, Meaning string }{
	{MarkInfohashMismatch, "the peer's handshake named another info-hash"},
	{MarkMalformedBitfield, "bitfield of the wrong length or with spare bits set; only in-range pieces counted"},
	{MarkMalformedHave, "have past the last piece, or have_all/have_none contradicting the bitfield; not counted"},
	{MarkNodeIDUnchecked, "DHT node id fails BEP 42 for its address: self-declared, may be forged"},
	{MarkNodeIDViaPing, "DHT node id learnt by pinging a declared port: may be another subscriber's, links nothing"},
	{MarkNonPublicAddress, "not a public address: names no subscriber"},
	{MarkSignatureFailed, "came from the bus as a sensor's, but no trusted sensor's signature covers it: not sensor evidence, not first-hand, never an ISP row"},
	{MarkSpoofableSource, "rests on one unauthenticated UDP datagram: the source could be forged"},
	{MarkThirdParty, "a third party named this endpoint; it said nothing itself"},
	{MarkTimeImplausible, "its time was impossible when ingest stored it (before 1999, or over 10 minutes ahead of ingest's clock): when it was seen is unknown; kept, never counted, not first-hand, never an ISP row"},
	{MarkTranscriptCut, "bytes left out of the transcript (marked where)"},
	{MarkTranscriptPaused, "recording paused while a piece was hashed (marked where)"},
	{MarkUnsigned, "imported from a file, or received from the bus without a sensor's signature: not first-hand, never an ISP row"},
}

// ValidMark reports whether s has the form of a mark: 1 to 64 characters
// of a-z, 0-9 and '_'. Marks this version does not know are kept (files
// from a newer Vigil still load).
func ValidMark(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Mark adds m to o's marks, keeping them sorted and without repeats. It
// panics on a malformed mark: marks are constants of the code.
func (o *Observation) Mark(m string) {
	if !ValidMark(m) {
		panic(fmt.Sprintf("observe: malformed mark %q", m))
	}
	i, found := slices.BinarySearch(o.Marks, m)
	if !found {
		o.Marks = slices.Insert(o.Marks, i, m)
	}
}

// HasMark reports whether o carries mark m.
func (o *Observation) HasMark(m string) bool {
	_, found := slices.BinarySearch(o.Marks, m)
	return found
}

// FirstHand reports whether the endpoint itself talked to the sensor from
// an address a third party could not have forged: a completed TCP or uTP
// exchange (peer_probe), or a DHT announce whose token proves the address
// received the sensor's earlier reply. What a tracker, a PEX peer, a DHT
// node, an eD2K server or a Kad node said of the endpoint is never
// first-hand, whatever its marks (an observation imported from a Vigil
// that set no marks stays second-hand);
// neither is anything marked third_party, spoofable_source,
// unsigned_import or signature_failed (a file proves no conversation: whoever wrote it could
// have written any address), nor time_implausible (a conversation at an
// unknown time places no subscriber: an ISP identifies the one who held
// an address at a given time). Only first-hand observations back device
// links, ISP rows and the first-hand parts of a score.
func (o *Observation) FirstHand() bool {
	switch o.Method {
	case MethodDHTGetPeers, MethodTracker, MethodPEX, MethodED2KServerSources, MethodKadSources:
		return false
	}
	return !o.HasMark(MarkThirdParty) && !o.HasMark(MarkSpoofableSource) && !o.HasMark(MarkUnsigned) && !o.HasMark(MarkSignatureFailed) &&
		!o.HasMark(MarkTimeImplausible)
}

// CreditedLevel is the possession level the observation is credited with
// for its item (rule 3: only what the peer itself showed raises a level):
// the level it recorded, but at most Announced when no sensor signed it
// (MarkSignatureFailed, MarkUnsigned: a forger on the bus can strip a
// signature as easily as forge one) or when the peer answered for another
// item (MarkInfohashMismatch: the exchange proves nothing about this one).
// It starts from CountedLevel (a malformed bitfield is never complete).
// time_implausible does not lower it: the peer showed what it showed
// (its conversation, if signed, is as verifiable as any other); what is
// unknown is when, and no reader that counts levels counts a marked
// observation (the analysis skips it, the figures leave it out), so a
// cap would say nothing more and would misstate what the peer showed.
// The record keeps the level it said, with its marks, for the timeline;
// everything that counts levels (the analysis's file levels, the figures'
// level groups) counts this one.
func (o *Observation) CreditedLevel() Level {
	level := CountedLevel(o.Possession, o.Marks)
	if o.HasMark(MarkSignatureFailed) || o.HasMark(MarkUnsigned) || o.HasMark(MarkInfohashMismatch) {
		return min(level, Announced)
	}
	return level
}

// normalizeMarks sorts and de-duplicates marks read from a file or store,
// and checks their form.
func normalizeMarks(ms []string) ([]string, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	out := slices.Clone(ms)
	for _, m := range out {
		if !ValidMark(m) {
			return nil, fmt.Errorf("%w: mark %q: want a-z, 0-9 and _ (1 to 64)", ErrInvalid, m)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// NormalizeMarks is normalizeMarks for stores that keep marks in a
// column of their own.
func NormalizeMarks(ms []string) ([]string, error) { return normalizeMarks(ms) }

// CountedLevel is the level a reader counts of a possession recorded with
// marks: the recorded level, except that a peer whose bitfield broke the
// format (MarkMalformedBitfield) is never complete: partial with the
// pieces it set in range when the piece count is known, acknowledged when
// not, as the sensor records it now (docs/evidence.md, How a peer's
// advertisement is counted). Sensors before that rule recorded such a
// peer complete; stores keep their records, and a sensor not yet upgraded
// still sends them. The record keeps what it said; scores, a target's
// levels and ISP rows count this level.
func CountedLevel(p Possession, marks []string) Level {
	if p.Level != Complete || !slices.Contains(marks, MarkMalformedBitfield) {
		return p.Level
	}
	if p.PiecesTotal > 0 && p.PiecesHave > 0 {
		return Partial
	}
	return Acknowledged
}
