package api

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestISPRequestUsesTheAnalysisWindow: a second instant of an address
// counts for a row only within the analysis's endpoint window of the
// row's own. A deployment that runs with --endpoint-window 48h made its
// targets joining instants 30 hours apart; its letters must count them
// the same, and with the default window (24 h) keep them apart, as the
// analysis then does.
func TestISPRequestUsesTheAnalysisWindow(t *testing.T) {
	now := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	entry := func(id string, at time.Time) analysis.TimelineEntry {
		return analysis.TimelineEntry{ID: id, Time: at,
			Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Level: observe.Complete,
			Endpoint: "81.2.69.160:51413", Transport: "tcp", Kind: "btih", Hash: strings.Repeat("ab", 20),
			Place: observe.Place{ASN: 64496, Org: "Example", Country: "FR"}, ClockSource: "none",
			SensorAddress: "81.2.69.1:6881", TranscriptSHA256: strings.Repeat("0", 63) + id[len(id)-1:], FirstHand: true}
	}
	d := &analysis.TargetDetail{}
	d.ID, d.Jurisdiction = "T-1", "fr-a"
	d.Timeline = []analysis.TimelineEntry{entry("probe-2", now.Add(-2*time.Hour)), entry("probe-1", now.Add(-32*time.Hour))}
	for _, c := range []struct {
		window time.Duration
		rows   int
	}{{0, 0}, {24 * time.Hour, 0}, {48 * time.Hour, 2}} {
		req := BuildISPRequestFor(d, "2026/0001", now, isp.DefaultRetention(), isp.Requester{ID: "fr-a"}, c.window)
		if req.Kept != c.rows || len(req.Annex) != 2-c.rows {
			t.Errorf("window %v: %d rows, %d in the annex; want %d rows, %d in the annex", c.window, req.Kept, len(req.Annex), c.rows, 2-c.rows)
		}
	}
}
