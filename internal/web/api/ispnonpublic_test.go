package api

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestISPRequestFlagsANonPublicRow: a probe answered from a CGNAT
// (100.64.0.0/10) or private address is first-hand and carries no mark
// (the sensors mark an address only on a third party's claim), so it is a
// row; the request every caller builds (the API, the pages, the command)
// must say on that row and in its group's notes that the address names
// no subscriber of a public network, and say nothing of a public row.
func TestISPRequestFlagsANonPublicRow(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	entry := func(id, ep string, i int) analysis.TimelineEntry {
		return analysis.TimelineEntry{ID: id, Time: now.Add(-time.Hour + time.Duration(i)*time.Minute),
			Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Level: observe.Complete,
			Endpoint: ep, Transport: "tcp", Kind: "btih", Hash: strings.Repeat("ab", 20),
			Place: observe.Place{ASN: 64496, Org: "Example", Country: "FR"}, ClockSource: "none",
			SensorAddress: "81.2.69.1:6881", TranscriptSHA256: strings.Repeat("0", 63) + string(rune('1'+i)), FirstHand: true}
	}
	d := &analysis.TargetDetail{}
	d.ID, d.Jurisdiction = "T-1", "fr-a"
	d.Timeline = []analysis.TimelineEntry{
		entry("cgnat-1", "100.64.7.9:51413", 0), entry("cgnat-2", "100.64.7.9:51413", 1),
		entry("private-1", "192.168.1.20:51413", 2), entry("private-2", "192.168.1.20:51413", 3),
		entry("public-1", "81.2.69.160:51413", 4), entry("public-2", "81.2.69.160:51413", 5),
	}
	req := BuildISPRequest(d, "2026/0001", now, isp.DefaultRetention())
	if req.Kept != 6 || len(req.Groups) != 1 {
		t.Fatalf("kept %d in %d groups, want 6 rows in one group", req.Kept, len(req.Groups))
	}
	want := map[string]string{"cgnat": "cgnat", "private": "private", "public": ""}
	for _, r := range req.Groups[0].Rows {
		if w := want[strings.SplitN(r.ObservationID, "-", 2)[0]]; r.NonPublic != w {
			t.Errorf("row %s (%s): non_public %q, want %q", r.ObservationID, r.IP, r.NonPublic, w)
		}
	}
	if !req.Groups[0].Has(isp.NoteNonPublic) {
		t.Errorf("group notes %+v: no %s note", req.Groups[0].Notes, isp.NoteNonPublic)
	}
}

// TestISPExportAuditNamesEveryAddressItCarries: the audit record of an
// ISP request export (the API's, the pages', the command's: all name
// ISPEndpoints) must name every address the file shows: the rows', and
// also the annex's (a tracker's claim, an address seen at one instant)
// and the device links' ends, which the JSON and the PDF carry. An
// auditor asking who exported an address must find the export that
// showed it in its annex.
func TestISPExportAuditNamesEveryAddressItCarries(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	entry := func(id, ep, method string, i int) analysis.TimelineEntry {
		return analysis.TimelineEntry{ID: id, Time: now.Add(-time.Hour + time.Duration(i)*time.Minute),
			Network: observe.NetBitTorrent, Method: method, Level: observe.Complete,
			Endpoint: ep, Transport: "tcp", Kind: "btih", Hash: strings.Repeat("ab", 20),
			Place: observe.Place{ASN: 64496, Org: "Example", Country: "FR"}, ClockSource: "none",
			SensorAddress: "81.2.69.1:6881", TranscriptSHA256: strings.Repeat("0", 63) + string(rune('1'+i)), FirstHand: true}
	}
	d := &analysis.TargetDetail{}
	d.ID, d.Jurisdiction = "T-1", "fr-a"
	d.Timeline = []analysis.TimelineEntry{
		entry("row-1", "81.2.69.160:51413", observe.MethodPeerProbe, 0), entry("row-2", "81.2.69.160:51413", observe.MethodPeerProbe, 1),
		entry("once", "81.2.69.161:51413", observe.MethodPeerProbe, 2),
		entry("claim", "81.2.69.162:6881", observe.MethodTracker, 3),
	}
	d.Links = []analysis.Link{{A: "81.2.69.160:51413", B: "81.2.69.163:40000#2", Rule: "peer_id_session", State: "active"}}
	req := BuildISPRequest(d, "2026/0001", now, isp.DefaultRetention())
	if req.Kept != 2 || len(req.Annex) != 2 {
		t.Fatalf("kept %d, annex %d: want the two probes as rows, the single instant and the claim in the annex", req.Kept, len(req.Annex))
	}
	got := ISPEndpoints(&req)
	for _, want := range []string{"81.2.69.160:51413", "81.2.69.161:51413", "81.2.69.162:6881", "81.2.69.163:40000"} {
		if !contains(got, want) {
			t.Errorf("the export's audit names %v: not %s, which the file shows", got, want)
		}
	}
	if got[0] != "81.2.69.160:51413" {
		t.Errorf("the rows' addresses come first: %v", got)
	}
}
