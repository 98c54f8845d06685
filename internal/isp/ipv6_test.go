package isp

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// ipv6Fixture: a subscriber's machine answered the sensor at two
// temporary addresses of its /64 (each twice), which an active
// subscriber_prefix link groups; a tracker named a third address of the
// /64; another subscriber of the same ISP answered twice in another /64.
func ipv6Fixture(basis, state string) (Target, []Sighting) {
	at := func(ip, when, id string) Sighting {
		return fh(Sighting{IP: netip.MustParseAddr(ip), Port: 41234, Time: ts(when), ClockSource: "ntp:127.0.0.1",
			ObservationID: id, Network: observe.NetBitTorrent, Level: observe.Complete, Item: item,
			ASN: 64496, Org: "Example Telecom", Country: "FR"})
	}
	s := []Sighting{
		at("2001:db8:1:2:a8f3:11ff:fe42:9a01", "2026-02-20T10:00:00Z", "obs-a1"),
		at("2001:db8:1:2:a8f3:11ff:fe42:9a01", "2026-02-20T11:00:00Z", "obs-a2"),
		at("2001:db8:1:2:3c1a:92ff:fe00:4d21", "2026-02-21T09:00:00Z", "obs-b1"),
		at("2001:db8:1:2:3c1a:92ff:fe00:4d21", "2026-02-21T09:30:00.25Z", "obs-b2"),
		at("2001:db8:9:9::1", "2026-02-22T09:00:00Z", "obs-c1"),
		at("2001:db8:9:9::1", "2026-02-22T10:00:00Z", "obs-c2"),
	}
	claim := at("2001:db8:1:2::77", "2026-02-21T12:00:00Z", "obs-tracker")
	claim.Method, claim.Level, claim.SensorAddress, claim.TranscriptSHA256 = observe.MethodTracker, observe.Announced, netip.AddrPort{}, ""
	claim.Marks = []string{observe.MarkThirdParty}
	s = append(s, claim, at("192.0.2.10", "2026-02-20T10:00:00Z", "obs-v4-1"), at("192.0.2.10", "2026-02-20T11:00:00Z", "obs-v4-2"))
	tg := Target{ID: "T-000042-69", Case: "2026/0042", Links: []Link{{
		A: "[2001:db8:1:2:a8f3:11ff:fe42:9a01]:41234", B: "[2001:db8:1:2:3c1a:92ff:fe00:4d21]:41234",
		Rule: RuleSubscriberPrefix, Evidence: "AS64496|2001:db8:1:2::/64|41234|" + basis,
		Reason: "same subscriber prefix and port", Confidence: 0.6, State: state}}}
	return tg, s
}

// Each IPv6 row names the full address, its port and time, and a note on
// the prefix: the subscriber prefix and the allocation it comes from where
// a subscriber_prefix link grouped the address, else that it stands
// alone. Only first-hand contacts are rows, as for IPv4.
func TestIPv6RowsCarryAPrefixNote(t *testing.T) {
	tg, s := ipv6Fixture("table", "active")
	req := Build(tg, s, fixedNow, DefaultRetention())
	if len(req.Groups) != 1 {
		t.Fatalf("groups %+v, want one (Example Telecom, FR)", req.Groups)
	}
	g := &req.Groups[0]
	if len(g.Rows) != 8 || !g.Has(NoteIPv6) {
		t.Fatalf("%d rows, notes %+v: want 8 rows and the ipv6 note", len(g.Rows), g.Notes)
	}
	for _, n := range g.Notes {
		if n.Code == NoteIPv6 && (!strings.HasPrefix(n.EN, "6 row(s) name an IPv6 address in full") || !strings.Contains(n.FR, "préfixe contenant l'adresse")) {
			t.Errorf("ipv6 note %+v", n)
		}
	}
	grouped := "subscriber prefix 2001:db8:1:2::/64 (/64 per Example Telecom allocation)"
	want := map[string]string{
		"2001:db8:1:2:a8f3:11ff:fe42:9a01": grouped,
		"2001:db8:1:2:3c1a:92ff:fe00:4d21": grouped,
		"2001:db8:9:9::1":                  "address only: not grouped with another address of a subscriber prefix",
		"192.0.2.10":                       "",
	}
	for _, r := range g.Rows {
		w, ok := want[r.IP.String()]
		if !ok {
			t.Fatalf("row of %s: not a first-hand contact", r.IP)
		}
		if r.PrefixNote.EN != w || r.Port != 41234 || r.Time.IsZero() {
			t.Errorf("row %s:%d at %v: note %q, want %q", r.IP, r.Port, r.Time, r.PrefixNote.EN, w)
		}
		if (w == grouped) != (r.SubscriberPrefix.String() == "2001:db8:1:2::/64") {
			t.Errorf("row %s: subscriber prefix %v", r.IP, r.SubscriberPrefix)
		}
		if w == grouped && !strings.Contains(r.PrefixNote.FR, "préfixe d'abonné 2001:db8:1:2::/64 (/64 selon l'allocation de Example Telecom)") {
			t.Errorf("row %s: French note %q", r.IP, r.PrefixNote.FR)
		}
	}
	if len(req.Annex) != 1 || req.Annex[0].Reason != AnnexThirdParty || req.Annex[0].IP.String() != "2001:db8:1:2::77" {
		t.Fatalf("annex %+v: want the tracker's claim in the /64, as a third party's", req.Annex)
	}

	var b bytes.Buffer
	if err := WriteCSV(&b, &req); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	sawGrouped := false
	for _, r := range recs[1:] {
		if r[col["ip"]] == "2001:db8:1:2:3c1a:92ff:fe00:4d21" && r[col["source_port"]] == "41234" && r[col["time_utc"]] == "2026-02-21T09:30:00.250Z" &&
			r[col["subscriber_prefix"]] == "2001:db8:1:2::/64" && r[col["prefix_note"]] == grouped {
			sawGrouped = true
		}
		if r[col["ip"]] == "192.0.2.10" && (r[col["subscriber_prefix"]] != "" || r[col["prefix_note"]] != "") {
			t.Errorf("IPv4 row with a prefix: %q", r)
		}
	}
	if !sawGrouped {
		t.Errorf("CSV lacks the grouped row with its full address, port, time, prefix and note:\n%q", recs)
	}

	b.Reset()
	if err := WriteJSON(&b, &req); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Groups []struct {
			Rows []struct {
				IP               string `json:"ip"`
				SubscriberPrefix string `json:"subscriber_prefix"`
				PrefixNote       *Note  `json:"prefix_note"`
			}
		}
	}
	if err := json.Unmarshal(b.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	for _, r := range v.Groups[0].Rows {
		switch {
		case r.IP == "192.0.2.10" && (r.PrefixNote != nil || r.SubscriberPrefix != ""):
			t.Errorf("JSON IPv4 row with a prefix: %+v", r)
		case r.IP == "2001:db8:9:9::1" && (r.PrefixNote == nil || r.PrefixNote.Code != NoteAddressOnly || r.SubscriberPrefix != ""):
			t.Errorf("JSON lone IPv6 row: %+v", r)
		case strings.HasPrefix(r.IP, "2001:db8:1:2:") && (r.PrefixNote == nil || r.PrefixNote.Code != NoteSubscriberPrefix || r.SubscriberPrefix != "2001:db8:1:2::/64"):
			t.Errorf("JSON grouped row: %+v", r)
		}
	}

	text := pdftotext(t, buildPDF(t, &req, LangBoth))
	for _, want := range []string{
		"IPv6 addresses: subscriber prefix (same line numbers)", "Adresses IPv6 : préfixe d'abonné (mêmes numéros de ligne)",
		"2001:db8:1:2:a8f3:11ff:fe42:9a01", "2001:db8:1:2:3c1a:92ff:fe00:4d21", "2026-02-21T09:30:00.250Z",
		grouped, "(/64 selon l'allocation de Example Telecom)", "address only: not grouped",
		"please identify the subscriber to whom the prefix holding the address was delegated",
		"merci d'identifier l'abonné auquel était délégué",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
}

// The note says when the length is the analysis's default rather than the
// ISP's known allocation, and a link that is not active, that names
// another AS or that cannot be read groups nothing.
func TestIPv6PrefixNoteRestsOnActiveLinksOnly(t *testing.T) {
	tg, s := ipv6Fixture("default", "active")
	req := Build(tg, s, fixedNow, DefaultRetention())
	for _, r := range req.Groups[0].Rows {
		if strings.HasPrefix(r.IP.String(), "2001:db8:1:2:") &&
			r.PrefixNote.EN != "subscriber prefix 2001:db8:1:2::/64 (/64 assumed: Vigil's default, Example Telecom's allocation is not in its table)" {
			t.Errorf("row %s: note %q", r.IP, r.PrefixNote.EN)
		}
	}
	for name, mutate := range map[string]func(*Link){
		"withdrawn":      func(l *Link) { l.State = "withdrawn" },
		"rejected":       func(l *Link) { l.State = "rejected" },
		"another rule":   func(l *Link) { l.Rule = "peer_id_session" },
		"another AS":     func(l *Link) { l.Evidence = "AS64497|2001:db8:1:2::/64|41234|table" },
		"another prefix": func(l *Link) { l.Evidence = "AS64496|2001:db8:1:3::/64|41234|table" },
		"not masked":     func(l *Link) { l.Evidence = "AS64496|2001:db8:1:2::1/64|41234|table" },
		"a /32":          func(l *Link) { l.Evidence = "AS64496|2001:db8::/32|41234|table" },
		"an IPv4 prefix": func(l *Link) { l.Evidence = "AS64496|::ffff:192.0.2.0/120|41234|table" },
		"no basis":       func(l *Link) { l.Evidence = "AS64496|2001:db8:1:2::/64|41234" },
		"unknown basis":  func(l *Link) { l.Evidence = "AS64496|2001:db8:1:2::/64|41234|guess" },
		"hex evidence":   func(l *Link) { l.Evidence = "41533634343936" },
	} {
		tg, s := ipv6Fixture("table", "active")
		mutate(&tg.Links[0])
		req := Build(tg, s, fixedNow, DefaultRetention())
		for _, r := range req.Groups[0].Rows {
			if r.IP.Is6() && (r.PrefixNote.Code != NoteAddressOnly || r.SubscriberPrefix.IsValid()) {
				t.Errorf("%s: row %s noted %+v under %v", name, r.IP, r.PrefixNote, r.SubscriberPrefix)
			}
		}
	}
	// The prefix is part of what the request asks: its id changes with it.
	a, _ := ipv6Fixture("table", "active")
	b, _ := ipv6Fixture("table", "withdrawn")
	_, s = ipv6Fixture("table", "active")
	if Build(a, s, fixedNow, DefaultRetention()).ID == Build(b, s, fixedNow, DefaultRetention()).ID {
		t.Error("a request with and without the subscriber prefix have one id")
	}
}

// FuzzLinkedPrefixes: whatever a stored link's evidence and endpoint say,
// reading them never panics, and what it yields is a masked IPv6 prefix
// whose text reads back to itself and an endpoint without zone or mapped
// form (a row's address never has either).
func FuzzLinkedPrefixes(f *testing.F) {
	for _, s := range []string{"AS64496|2001:db8:1:2::/64|41234|table", "AS64496|2001:db8:1:2::/64|41234|table|Transmission|3.00", "AS1|::/0|0|default", "AS|x|y|z", "|||", "AS4294967296|fd00::/48|1|table", "AS64496|2001:db8::1/64|1|table"} {
		f.Add(s, "[2001:db8:1:2::a]:41234")
	}
	f.Add("AS64496|2001:db8:1:2::/64|41234|table", "[2001:db8:1:2::a%eth0]:41234#3#4")
	f.Add("AS64496|2001:db8:1:2::/64|41234|table", "[::ffff:192.0.2.1]:1")
	f.Fuzz(func(t *testing.T, ev, a string) {
		for _, sp := range linkedPrefixes([]Link{{Rule: RuleSubscriberPrefix, State: "active", Evidence: ev,
			A: a, B: "[2001:db8:1:2::b]:41234#2"}}) {
			if sp.ends[0].Addr().Zone() != "" || sp.ends[0].Addr().Is4In6() {
				t.Fatalf("%q: endpoint %v keeps a zone or a mapped form", a, sp.ends[0])
			}
			if !sp.pfx.Addr().Is6() || sp.pfx.Addr().Is4In6() || sp.pfx != sp.pfx.Masked() || sp.pfx.Bits() < 48 {
				t.Fatalf("%q: prefix %v", ev, sp.pfx)
			}
			if back, err := netip.ParsePrefix(sp.pfx.String()); err != nil || back != sp.pfx {
				t.Fatalf("%q: %v reads back as %v, %v", ev, sp.pfx, back, err)
			}
		}
	})
}

// The prefix note rests on the link's own endpoints: a row at another
// address of the linked /64 (weeks later, perhaps another subscriber's
// machine or a later holder of the prefix), or at a linked address on
// another port, stands alone; only the link's A and B read "grouped".
func TestIPv6PrefixNoteOnlyForTheLinksEndpoints(t *testing.T) {
	tg, s := ipv6Fixture("table", "active")
	at := func(ip string, port uint16, when, id string) Sighting {
		return fh(Sighting{IP: netip.MustParseAddr(ip), Port: port, Time: ts(when), ClockSource: "ntp:127.0.0.1",
			ObservationID: id, Network: observe.NetBitTorrent, Level: observe.Complete, Item: item,
			ASN: 64496, Org: "Example Telecom", Country: "FR"})
	}
	s = append(s,
		at("2001:db8:1:2::99", 41234, "2026-02-27T10:00:00Z", "obs-later-1"), at("2001:db8:1:2::99", 41234, "2026-02-27T11:00:00Z", "obs-later-2"),
		at("2001:db8:1:2:a8f3:11ff:fe42:9a01", 50000, "2026-02-27T12:00:00Z", "obs-port-1"), at("2001:db8:1:2:a8f3:11ff:fe42:9a01", 50000, "2026-02-27T13:00:00Z", "obs-port-2"))
	// A later generation of an endpoint is written "ip:port#n" by the
	// analysis: it is still that address and port.
	tg.Links[0].B += "#2"
	req := Build(tg, s, fixedNow, DefaultRetention())
	grouped := 0
	for _, r := range req.Groups[0].Rows {
		if !r.IP.Is6() {
			continue
		}
		lone := strings.HasPrefix(r.ObservationID, "obs-later") || strings.HasPrefix(r.ObservationID, "obs-port") || strings.HasPrefix(r.ObservationID, "obs-c")
		if lone && (r.PrefixNote.Code != NoteAddressOnly || r.SubscriberPrefix.IsValid()) {
			t.Errorf("row %s [%s]:%d: note %q under %v, want address only", r.ObservationID, r.IP, r.Port, r.PrefixNote.EN, r.SubscriberPrefix)
		}
		if !lone {
			grouped++
			if r.PrefixNote.Code != NoteSubscriberPrefix {
				t.Errorf("row %s [%s]:%d: note %q, want grouped", r.ObservationID, r.IP, r.Port, r.PrefixNote.EN)
			}
		}
	}
	if grouped != 4 {
		t.Errorf("%d grouped rows, want the link's 4", grouped)
	}
}

// The analysis's evidence names the client after the basis; links stored
// before it did have four fields. Both read, whatever the client's name.
func TestIPv6PrefixNoteReadsEvidenceWithAClient(t *testing.T) {
	for _, ev := range []string{"AS64496|2001:db8:1:2::/64|41234|table|Transmission|3.00", "AS64496|2001:db8:1:2::/64|41234|table|We|ird|1.0", "AS64496|2001:db8:1:2::/64|41234|table||"} {
		tg, s := ipv6Fixture("table", "active")
		tg.Links[0].Evidence = ev
		req := Build(tg, s, fixedNow, DefaultRetention())
		n := 0
		for _, r := range req.Groups[0].Rows {
			if r.PrefixNote.Code == NoteSubscriberPrefix && r.SubscriberPrefix.String() == "2001:db8:1:2::/64" {
				n++
			}
		}
		if n != 4 {
			t.Errorf("%q: %d grouped rows, want 4", ev, n)
		}
	}
}
