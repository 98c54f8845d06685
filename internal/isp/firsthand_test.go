package isp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// TestOnlyFirstHandContactsBecomeRows: a target seen through a tracker's
// list, a PEX message and one probe gives exactly one row, the probe's,
// with the port of that connection and the sensor's own address; the
// tracker's and the PEX peer's claims (with the port they reported) are in
// the annex, each with why.
func TestOnlyFirstHandContactsBecomeRows(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.44")
	base := fixedNow.Add(-48 * time.Hour)
	claim := func(id, m string, port uint16, at time.Time) Sighting {
		return Sighting{IP: ip, Port: port, Transport: "tcp", Time: at, ObservationID: id, Network: observe.NetBitTorrent,
			Method: m, Level: observe.Announced, Item: item, ASN: 64496, Org: "A", Country: "FR",
			Marks: []string{observe.MarkThirdParty}}
	}
	probe := Sighting{IP: ip, Port: 51413, Transport: "utp", Time: base.Add(2 * time.Hour), ObservationID: "probe",
		Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Level: observe.Complete, Item: item,
		ASN: 64496, Org: "A", Country: "FR", SensorAddress: netip.MustParseAddrPort("198.51.100.200:40123"),
		TranscriptSHA256: sum("probe")}
	s := []Sighting{
		claim("tracker", observe.MethodTracker, 6881, base),
		claim("pex", observe.MethodPEX, 7000, base.Add(time.Hour)),
		probe,
	}
	req := Build(Target{ID: "T"}, s, fixedNow, DefaultRetention())
	if req.Kept != 1 || len(req.Groups) != 1 || len(req.Groups[0].Rows) != 1 {
		t.Fatalf("%d rows in %d groups, want exactly the probe: %+v", req.Kept, len(req.Groups), req.Groups)
	}
	r := req.Groups[0].Rows[0]
	if r.ObservationID != "probe" || r.Port != 51413 || r.Transport != "utp" || r.SensorAddress != probe.SensorAddress ||
		r.Method != observe.MethodPeerProbe || r.TranscriptSHA256 != probe.TranscriptSHA256 || r.Direction != "sensor_to_peer" {
		t.Fatalf("row %+v, want the probe's own port, transport, sensor address and transcript digest", r)
	}
	if len(req.Annex) != 2 {
		t.Fatalf("annex %+v, want the tracker's and the PEX peer's claims", req.Annex)
	}
	for _, a := range req.Annex {
		if a.Reason != AnnexThirdParty || !strings.Contains(a.EN, "third party") || a.FR == "" {
			t.Errorf("annex entry %+v: want reason %s with its explanation", a, AnnexThirdParty)
		}
	}
}

// TestThirdPartyOnlyTargetHasNoRows: what trackers, PEX peers and DHT
// nodes said of an endpoint never becomes a row, however often they said
// it, and whatever marks the claim lacks (old records carry none: the
// method decides).
func TestThirdPartyOnlyTargetHasNoRows(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.45")
	var s []Sighting
	for i, m := range []string{observe.MethodTracker, observe.MethodPEX, observe.MethodDHTGetPeers, observe.MethodTracker} {
		// Even with a sensor address and a transcript digest set (a
		// forged or confused record), a claim is no row.
		s = append(s, Sighting{IP: ip, Port: 6881, Transport: "tcp", Time: fixedNow.Add(-time.Duration(i+1) * time.Hour),
			ObservationID: m, Method: m, ASN: 64496, Org: "A", Country: "FR",
			SensorAddress: netip.MustParseAddrPort("198.51.100.200:6881"), TranscriptSHA256: sum(m)})
	}
	req := Build(Target{ID: "T"}, s, fixedNow, DefaultRetention())
	if req.Kept != 0 || len(req.Annex) != len(s) || !req.Has(NoteNothing) {
		t.Fatalf("kept %d, annex %d of %d, nothing-note %v: a third-party-only target must give no row", req.Kept, len(req.Annex), len(s), req.Has(NoteNothing))
	}
}

// TestED2KSourceListsAreThirdPartyWhateverTheirMarks: an eD2K server's or
// a Kad node's source entry names a client another party says shares the
// file; without its marks (an old record, another tool's) the method
// still decides, and the annex says a third party reported it (not that
// it rests on one forgeable datagram: a server's list comes over TCP).
func TestED2KSourceListsAreThirdPartyWhateverTheirMarks(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.47")
	var s []Sighting
	for i, m := range []string{observe.MethodED2KServerSources, observe.MethodKadSources, observe.MethodED2KServerSources} {
		s = append(s, Sighting{IP: ip, Port: 4662, Transport: "tcp", Time: fixedNow.Add(-time.Duration(i+1) * time.Hour),
			ObservationID: fmt.Sprint(m, i), Network: observe.NetED2K, Method: m, ASN: 64496, Org: "A", Country: "FR",
			SensorAddress: netip.MustParseAddrPort("198.51.100.200:40123"), TranscriptSHA256: sum(m)})
	}
	req := Build(Target{ID: "T"}, s, fixedNow, DefaultRetention())
	if req.Kept != 0 || len(req.Annex) != len(s) {
		t.Fatalf("kept %d, annex %d of %d: a source list's entry is no row", req.Kept, len(req.Annex), len(s))
	}
	for _, a := range req.Annex {
		if a.Reason != AnnexThirdParty || !strings.Contains(a.EN, a.Method) {
			t.Errorf("annex entry %s: reason %s (%q), want %s naming the method", a.ObservationID, a.Reason, a.EN, AnnexThirdParty)
		}
	}
}

// TestRowNeedsBothEndsAndTheConversationsPort: a first-hand contact
// without the sensor's own address (older data), without a transcript
// digest, or a DHT announce stored with its declared TCP port rather than
// the datagram's source port, is not a row; a spoofable one neither.
func TestRowNeedsBothEndsAndTheConversationsPort(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.46")
	ok := func(id string, at time.Time) Sighting {
		return fh(Sighting{IP: ip, Port: 6881, Time: at, ObservationID: id, ASN: 64496, Org: "A", Country: "FR"})
	}
	at := fixedNow.Add(-time.Hour)
	noLocal := ok("no-local", at.Add(time.Minute))
	noLocal.SensorAddress = netip.AddrPort{}
	noSum := ok("no-sum", at.Add(2*time.Minute))
	noSum.TranscriptSHA256 = ""
	declared := ok("declared", at.Add(3*time.Minute))
	declared.Method, declared.Transport = observe.MethodDHTAnnounce, "tcp"
	spoof := ok("spoofable", at.Add(4*time.Minute))
	spoof.Method, spoof.Transport, spoof.Marks = observe.MethodDHTAnnounce, "udp", []string{observe.MarkSpoofableSource}
	private := ok("private", at.Add(5*time.Minute))
	private.Marks = []string{observe.MarkNonPublicAddress}
	unsigned := ok("unsigned", at.Add(6*time.Minute))
	unsigned.Marks = []string{observe.MarkUnsigned}
	forged := ok("signature-failed", at.Add(7*time.Minute))
	forged.Marks = []string{observe.MarkSignatureFailed}
	// Marked time_implausible, and at another instant of the row's
	// address than "row": neither a row nor a second instant.
	lateClock := ok("time-implausible", at.Add(8*time.Minute))
	lateClock.Marks = []string{observe.MarkTimeImplausible}
	oldClock := ok("time-implausible-1990", time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC))
	oldClock.Marks = []string{observe.MarkTimeImplausible}
	s := []Sighting{ok("row", at), noLocal, noSum, declared, spoof, private, unsigned, forged, lateClock, oldClock}
	req := Build(Target{ID: "T"}, s, fixedNow, DefaultRetention())
	if req.Kept != 1 || req.Groups[0].Rows[0].ObservationID != "row" {
		t.Fatalf("rows %+v, want only %q", req.Groups, "row")
	}
	want := map[string]string{"no-local": AnnexNoSensorAddress, "no-sum": AnnexNoTranscript, "declared": AnnexDeclaredPort,
		"spoofable": AnnexSpoofable, "private": AnnexNonPublic, "unsigned": AnnexUnsigned,
		"signature-failed": AnnexSignatureFailed, "time-implausible": AnnexTimeImplausible, "time-implausible-1990": AnnexTimeImplausible}
	for _, a := range req.Annex {
		if want[a.ObservationID] != a.Reason {
			t.Errorf("annex %s: reason %s, want %s", a.ObservationID, a.Reason, want[a.ObservationID])
		}
		delete(want, a.ObservationID)
	}
	if len(want) != 0 {
		t.Errorf("not in the annex: %v", want)
	}
}

// TestLinksAreShownWithTheForgeryWarning: the JSON and the PDF annex list
// each device link with its rule, evidence and confidence, under the
// words "identifiers can be forged".
func TestLinksAreShownWithTheForgeryWarning(t *testing.T) {
	tg := Target{ID: "T", Links: []Link{{A: "192.0.2.1:6881", B: "192.0.2.2:6881", Rule: "peer_id_session",
		Evidence: "2d5452333030302d", Reason: "same peer id", Confidence: 0.7, State: "active"}}}
	req := Build(tg, nil, fixedNow, DefaultRetention())
	if !req.Has(NoteLinks) {
		t.Fatalf("no links note: %+v", req.Notes)
	}
	var b strings.Builder
	if err := WriteJSON(&b, &req); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Identifiers can be forged", `"rule": "peer_id_session"`, `"confidence": 0.7`, `"evidence": "2d5452333030302d"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("JSON lacks %s", want)
		}
	}
	pdf := buildPDF(t, &req, LangEN)
	if !strings.Contains(string(pdf), "(Identifiers can be forged") && !strings.Contains(string(pdf), "Identifiers can be") {
		t.Errorf("PDF lacks the forgery warning")
	}
}

// TestAForgedSightingIsNoSecondInstant: a hub that replays a sensor's one
// probe of an address under a new id and time gets a sighting marked
// signature_failed; it must not count as the second instant that makes
// the genuine probe a row.
func TestAForgedSightingIsNoSecondInstant(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.48")
	at := fixedNow.Add(-time.Hour)
	real := fh(Sighting{IP: ip, Port: 6881, Time: at, ObservationID: "real", ASN: 64496, Org: "A", Country: "FR"})
	replay := real
	replay.ObservationID, replay.Time, replay.Marks = "replay", at.Add(24*time.Minute), []string{observe.MarkSignatureFailed}
	req := Build(Target{ID: "T"}, []Sighting{real, replay}, fixedNow, DefaultRetention())
	if req.Kept != 0 {
		t.Fatalf("rows %+v: a forged sighting made the real one a row", req.Groups)
	}
	for _, a := range req.Annex {
		if want := map[string]string{"real": AnnexSeenOnce, "replay": AnnexSignatureFailed}[a.ObservationID]; a.Reason != want {
			t.Errorf("annex %s: %s, want %s", a.ObservationID, a.Reason, want)
		}
	}
}

// TestOnlyAConversationMethodIsARow: methods are free strings (later
// networks add their own), so the first-hand rule of observe, which names
// the third parties it knows, cannot decide a row alone. A sighting of a
// method this package does not know as a conversation of the endpoint
// with the sensor (a Gnutella query hit relayed through the overlay, say,
// which carries the address its sender declared) is no row, however
// complete its record: it is in the annex, naming the method.
func TestOnlyAConversationMethodIsARow(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.48")
	var s []Sighting
	for i, m := range []string{"gnutella_query_hit", "gnutella_query_hit", ""} {
		s = append(s, fh(Sighting{IP: ip, Port: 6346, Time: fixedNow.Add(-time.Duration(i+1) * time.Hour),
			ObservationID: fmt.Sprint("hit", i), Network: observe.NetGnutella, Method: m, ASN: 64496, Org: "A", Country: "FR"}))
		s[i].Method = m // fh gives an empty method the probe's
	}
	req := Build(Target{ID: "T"}, s, fixedNow, DefaultRetention())
	if req.Kept != 0 || len(req.Annex) != len(s) {
		t.Fatalf("kept %d, annex %d of %d: a method not known as a conversation is no row", req.Kept, len(req.Annex), len(s))
	}
	for _, a := range req.Annex {
		if a.Reason != AnnexNotAConversation || !strings.Contains(a.EN, strconvQuote(a.Method)) || a.FR == "" {
			t.Errorf("annex entry %s: reason %s (%q), want %s naming the method", a.ObservationID, a.Reason, a.EN, AnnexNotAConversation)
		}
	}
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// TestImplausibleTimeIsNoRowNorASecondInstant: a sighting marked
// time_implausible (its time is not when the peer was seen) is never a
// row, and its time is not a second instant of its address: the one
// first-hand contact beside it stays seen once, and out of the rows.
// Before, it was annexed as spoofable_source (or retention, by its time),
// and its time, a second instant, made the other contact a row.
func TestImplausibleTimeIsNoRowNorASecondInstant(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.47")
	at := fixedNow.Add(-time.Hour)
	only := fh(Sighting{IP: ip, Port: 6881, Time: at, ObservationID: "only", ASN: 64496, Org: "A", Country: "FR"})
	marked := only
	marked.ObservationID, marked.Time, marked.Marks = "marked", at.Add(20*time.Minute), []string{observe.MarkTimeImplausible}
	req := Build(Target{ID: "T"}, []Sighting{only, marked}, fixedNow, DefaultRetention())
	if req.Kept != 0 {
		t.Fatalf("%d rows, want none: %+v", req.Kept, req.Groups)
	}
	want := map[string]string{"only": AnnexSeenOnce, "marked": AnnexTimeImplausible}
	for _, a := range req.Annex {
		if want[a.ObservationID] != a.Reason {
			t.Errorf("annex %s: reason %s, want %s", a.ObservationID, a.Reason, want[a.ObservationID])
		}
		if a.ObservationID == "marked" && (!strings.Contains(a.EN, "unknown") || !strings.Contains(a.FR, "inconnue")) {
			t.Errorf("annex %s says %q / %q", a.ObservationID, a.EN, a.FR)
		}
		delete(want, a.ObservationID)
	}
	if len(want) != 0 {
		t.Errorf("not in the annex: %v", want)
	}
}
