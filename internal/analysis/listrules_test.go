package analysis_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// A hash confirmed benign is disabled on every list that holds it, not
// only on the first: no list may go on alerting on it.
func TestListRulesDisableEveryListHoldingTheHash(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h := watchEntry(1)
	for _, name := range []string{"synthetic-a", "synthetic-b"} {
		if _, err := f.st.ImportList(ctx, store.ListImport{Name: name, Source: "test", Format: watchlist.FormatText, By: "test",
			Entries: []watchlist.Entry{h, watchEntry(2)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := (analysis.ListRules{Lists: f.st}).Disable(ctx, h.Hash, "analyst-1", "a common installer"); err != nil {
		t.Fatal(err)
	}
	recs, err := f.st.Lookup(ctx, h.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d entries hold the hash, want 2", len(recs))
	}
	for _, r := range recs {
		if !r.Disabled || r.Reason != "a common installer" {
			t.Errorf("list %s: disabled %v (%q), want disabled with the reason", r.List.Name, r.Disabled, r.Reason)
		}
	}
	if recs, _ := f.st.Lookup(ctx, watchEntry(2).Hash); len(recs) != 2 || recs[0].Disabled || recs[1].Disabled {
		t.Fatalf("another hash was disabled: %+v", recs)
	}
}

// A confirmed lead's file goes to the local-confirmed list; a lead with no
// hash of its own cannot be listed.
func TestListRulesConfirmedLeadGoesToLocalConfirmed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r := analysis.ListRules{Lists: f.st}
	e := watchEntry(3)
	if err := r.ConfirmLead(ctx, analysis.Lead{Key: analysis.HashKey(e.Hash), Hash: e.Hash, Size: 4096, Path: "dir/a.bin"}, "analyst-1", "reviewed"); err != nil {
		t.Fatal(err)
	}
	var got []watchlist.Entry
	if err := f.st.ListEntries(ctx, analysis.LocalConfirmedList, func(e *watchlist.Entry) error { got = append(got, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Hash != e.Hash || got[0].Size != 4096 || got[0].Name != "dir/a.bin" {
		t.Fatalf("%s holds %+v, want the lead's file", analysis.LocalConfirmedList, got)
	}
	if err := r.ConfirmLead(ctx, analysis.Lead{Key: "btih:00/dir/b.bin", Path: "dir/b.bin"}, "analyst-1", "reviewed"); err == nil {
		t.Fatal("a lead without a hash was listed")
	}
}

// The analysis's drops and holds are exported, not only logged.
func TestCollectorExportsDropsAndHolds(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	// A PEX peer names a private address: no endpoint of its own, held
	// until a first-hand contact there confirms it, and counted as held.
	o := observe.Observation{ID: observe.NewID(time.Now()), Network: observe.NetBitTorrent, Method: observe.MethodPEX,
		Time: time.Now().UTC(), Item: observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, make([]byte, 20))},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("192.168.1.20"), Port: 51413, Transport: "tcp"},
		Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
		Marks:      []string{observe.MarkThirdParty}}
	f.ingest(e, o)
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	held := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "vigil_analysis_held" && len(mf.GetMetric()) == 1 {
			held = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if held != 1 {
		t.Fatalf("vigil_analysis_held = %v, want 1 (the PEX-named private address)", held)
	}
}
