// Package analysistest is the contract every store of the analysis must
// keep (analysis.Views): one suite a store runs in its own tests, so that
// the same observations give the same targets, the same scopes and the
// same answers whatever keeps them. The suite drives the real Engine over
// the store, as Vigil does, and reads the answers back through the store.
//
// It uses synthetic observations only (documentation and private
// addresses, hashes of counters); it must never hold real data.
package analysistest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// Store is what the suite checks: the analysis's part of a store, and the
// observations and lists it is derived from.
type Store interface {
	analysis.Views
	store.Store
}

// Run runs the contract. open must return a new, empty store for t and
// close it when t ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st Store)
	}{
		{"EmptyStoreHasNothing", testEmptyStoreHasNothing},
		{"ObservationsComeBackInArrivalOrder", testObservationsComeBackInArrivalOrder},
		{"ScopeHidesOtherAgencies", testScopeHidesOtherAgencies},
		{"TimelineIsNewestFirstAndBounded", testTimelineIsNewestFirstAndBounded},
		{"SharesAndHandOffsChangeWhoSees", testSharesAndHandOffsChangeWhoSees},
		{"ASecondEngineResumesFromTheStore", testASecondEngineResumesFromTheStore},
		{"MergedTargetRedirects", testMergedTargetRedirects},
		{"DecisionsAndLeadsPersist", testDecisionsAndLeadsPersist},
		{"FiltersAndOrders", testFiltersAndOrders},
		{"SuspectLeadsPersistAndTouchNoTarget", testSuspectLeadsPersistAndTouchNoTarget},
		{"SuspectLeadsAreBounded", testSuspectLeadsAreBounded},
		{"KeywordSearchesAreNoSightingsOfATargetsLead", testKeywordSearchesAreNoSightingsOfATargetsLead},
		{"TargetsLeadsCarryNoKeywordSearch", testTargetsLeadsCarryNoKeywordSearch},
		{"PeerTextIsStoredEscapedAlike", testPeerTextIsStoredEscapedAlike},
		{"PlaceTextIsStoredEscapedAlike", testPlaceTextIsStoredEscapedAlike},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
	t.Run("CatchUpSameWhateverTheSaveSpan", func(t *testing.T) {
		testCatchUpSameWhateverTheSaveSpan(t, open)
	})
	t.Run("EnginesOfSeveralProcessesMakeWhatOneMakes", func(t *testing.T) {
		testEnginesOfSeveralProcessesMakeWhatOneMakes(t, open(t), open(t))
	})
}

// t0 is when the synthetic observations begin; the engine's clock is a
// month later.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const (
	versailles = "fr-versailles"
	lyon       = "fr-lyon"
)

func engine(t *testing.T, st Store) *analysis.Engine {
	t.Helper()
	cfg := analysis.DefaultConfig()
	cfg.Now = func() time.Time { return t0.Add(30 * 24 * time.Hour) }
	cfg.SaveInterval = 0
	e, err := analysis.New(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// ingest stores obs and feeds them to e (nil: another process stored
// them), as ingest's OnCommit does.
func ingest(t *testing.T, st Store, e *analysis.Engine, obs ...observe.Observation) {
	t.Helper()
	if err := st.InsertObservations(context.Background(), obs); err != nil {
		t.Fatal(err)
	}
	if e != nil {
		if err := e.Add(context.Background(), obs); err != nil {
			t.Fatal(err)
		}
	}
}

func file(n int) hashkind.Hash {
	b := make([]byte, 20)
	b[0], b[1], b[2] = 0xAB, byte(n>>8), byte(n)
	return hashkind.MustNew(hashkind.BTIH, b)
}

// ob is one first-hand observation of file n at endpoint "ip:port",
// routed to agency.
func ob(ep string, n int, level observe.Level, at time.Time, agency string) observe.Observation {
	ap := netip.MustParseAddrPort(ep)
	return observe.Observation{
		ID: observe.NewID(at), Sensor: observe.Sensor{ID: "bt-lab-1"}, Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Time: at,
		Item:         observe.Item{Hash: file(n), Matched: []observe.Match{{List: "national", Category: "1"}}},
		Endpoint:     observe.Endpoint{IP: ap.Addr(), Port: ap.Port(), Transport: "tcp"},
		Client:       observe.Client{Name: "Transmission", Version: "3.00"},
		Possession:   observe.Possession{Level: level, PiecesHave: -1, PiecesTotal: -1},
		Place:        observe.Place{Country: "FR", Subdivisions: []string{"Île-de-France", "78"}, ASN: 64512, Org: "Lab Telecom"},
		Jurisdiction: observe.Jurisdiction{Agency: agency, Rule: "test"},
	}
}

func scopeOf(agencies ...string) analysis.Scope {
	if len(agencies) == 0 {
		return analysis.AllAgencies
	}
	return analysis.Scope{Agencies: agencies}
}

// targets lists every target scope sees, checking the total agrees.
func targets(t *testing.T, st Store, q analysis.TargetQuery) []analysis.TargetSummary {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 1000
	}
	out, n, err := st.Targets(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if q.Offset == 0 && n != len(out) {
		t.Fatalf("Targets: total %d, page of %d", n, len(out))
	}
	return out
}

func ids(ts []analysis.TargetSummary) []string {
	var s []string
	for _, x := range ts {
		s = append(s, x.ID)
	}
	sort.Strings(s)
	return s
}

// byLabel returns the id of the target whose latest endpoint is label.
func byLabel(t *testing.T, st Store, label string) string {
	t.Helper()
	for _, x := range targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies}) {
		if x.Label == label {
			return x.ID
		}
	}
	t.Fatalf("no target with endpoint %s", label)
	return ""
}

func testEmptyStoreHasNothing(t *testing.T, st Store) {
	ctx := context.Background()
	snap, err := st.AnalysisLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Watermark != 0 || len(snap.Endpoints) != 0 || len(snap.Decisions) != 0 || len(snap.Quarantine) != 0 || len(snap.Leads) != 0 {
		t.Fatalf("an empty store loads %+v", snap)
	}
	seqs, top, err := st.AnalysisSeqs(ctx, []string{observe.NewID(t0)})
	if err != nil || len(seqs) != 1 || seqs[0] != 0 || top != 0 {
		t.Fatalf("AnalysisSeqs on an empty store = %v, %d, %v; want [0], 0", seqs, top, err)
	}
	if ts, n, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies}); err != nil || len(ts) != 0 || n != 0 {
		t.Fatalf("Targets = %v, %d, %v; want none", ts, n, err)
	}
	if _, err := st.Target(ctx, analysis.TargetID(1), analysis.AllAgencies); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("Target of an empty store: %v, want analysis.ErrNotFound", err)
	}
	if _, _, err := st.TargetAgencies(ctx, analysis.TargetID(1)); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("TargetAgencies of an empty store: %v, want analysis.ErrNotFound", err)
	}
	if s, err := st.Stats(ctx, analysis.AllAgencies, time.Time{}); err != nil || s.Targets != 0 || len(s.Daily) != 0 {
		t.Fatalf("Stats = %+v, %v; want zero", s, err)
	}
}

// AnalysisObservations reads stored observations in arrival order within
// (after, upTo], without their transcripts; AnalysisSeqs numbers them.
func testObservationsComeBackInArrivalOrder(t *testing.T, st Store) {
	ctx := context.Background()
	var all []observe.Observation
	for i := range 3 {
		// Later batches hold earlier times: arrival order is not time order.
		o := ob(fmt.Sprintf("10.1.2.%d:51000", i+1), i, observe.Complete, t0.Add(time.Duration(3-i)*time.Hour), versailles)
		o.Transcript = observe.Transcript{Bytes: []byte("synthetic transcript")}
		ingest(t, st, nil, o)
		all = append(all, o)
	}
	seqs, top, err := st.AnalysisSeqs(ctx, []string{all[2].ID, "not-stored", all[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if seqs[1] != 0 || seqs[2] <= 0 || seqs[0] <= seqs[2] || top != seqs[0] {
		t.Fatalf("AnalysisSeqs = %v, top %d; want the last stored highest, 0 for an unknown id", seqs, top)
	}
	read := func(after, upTo int64) (got []string) {
		t.Helper()
		err := st.AnalysisObservations(ctx, after, upTo, func(seq int64, o *observe.Observation) error {
			if len(o.Transcript.Bytes) != 0 {
				t.Errorf("observation %s read with its transcript", o.ID)
			}
			got = append(got, fmt.Sprintf("%d:%s", seq, o.ID))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := seqs[2]
	want := []string{fmt.Sprintf("%d:%s", first, all[0].ID), fmt.Sprintf("%d:%s", first+1, all[1].ID), fmt.Sprintf("%d:%s", first+2, all[2].ID)}
	if got := read(0, 0); !slices.Equal(got, want) {
		t.Fatalf("everything: %v, want %v", got, want)
	}
	if got := read(first, first+1); !slices.Equal(got, want[1:2]) {
		t.Fatalf("(first, first+1]: %v, want %v", got, want[1:2])
	}
	if got := read(top, 0); len(got) != 0 {
		t.Fatalf("after the top: %v, want nothing", got)
	}
}

func testScopeHidesOtherAgencies(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.2.3:51000", 1, observe.Complete, t0, versailles), ob("10.1.2.4:51000", 2, observe.Complete, t0, lyon))
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all := targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies})
	if len(all) != 2 {
		t.Fatalf("%d targets, want 2", len(all))
	}
	v, l := byLabel(t, st, "10.1.2.3:51000"), byLabel(t, st, "10.1.2.4:51000")
	if got := targets(t, st, analysis.TargetQuery{Scope: scopeOf(lyon)}); len(got) != 1 || got[0].ID != l || got[0].Jurisdiction != lyon {
		t.Fatalf("lyon sees %+v, want only %s", got, l)
	}
	if _, err := st.Target(ctx, v, scopeOf(lyon)); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("lyon reads versailles' target: %v", err)
	}
	if _, err := st.TargetWithTimeline(ctx, v, scopeOf(lyon), 10); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("lyon reads versailles' timeline: %v", err)
	}
	if _, err := st.Target(ctx, v, analysis.Scope{}); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("the empty scope reads a target: %v", err)
	}
	if ts, _, err := st.Targets(ctx, analysis.TargetQuery{}); err != nil || len(ts) != 0 {
		t.Fatalf("the empty scope lists %v (%v)", ts, err)
	}
	d, err := st.Target(ctx, v, scopeOf(versailles))
	if err != nil {
		t.Fatal(err)
	}
	if d.Jurisdiction != versailles || len(d.Endpoints) != 1 || len(d.Files) != 1 || d.Files[0].Hash != file(1) || len(d.Timeline) != 1 {
		t.Fatalf("versailles' target %+v", d)
	}
	if route, shares, err := st.TargetAgencies(ctx, v); err != nil || route != versailles || len(shares) != 0 {
		t.Fatalf("TargetAgencies = %q %v %v; want versailles, no shares", route, shares, err)
	}
	s, err := st.Stats(ctx, scopeOf(lyon), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Targets != 1 || s.ByAgency[versailles] != 0 || s.ByAgency[lyon] != 1 || len(s.Daily) != 1 || s.Daily[0].Observations != 1 {
		t.Fatalf("lyon's figures %+v", s)
	}
	if s, _ := st.Stats(ctx, analysis.AllAgencies, time.Time{}); s.Targets != 2 || s.ByCountry["FR"] != 2 || s.ByNetwork[observe.NetBitTorrent] != 2 {
		t.Fatalf("national figures %+v", s)
	}
}

func testTimelineIsNewestFirstAndBounded(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	var want []string
	for i := range 5 {
		o := ob("10.1.2.3:51000", i%2, observe.Complete, t0.Add(time.Duration(i)*time.Hour), versailles)
		ingest(t, st, e, o)
		want = append([]string{o.ID}, want...)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	id := byLabel(t, st, "10.1.2.3:51000")
	timeline := func(limit int) []string {
		t.Helper()
		d, err := st.TargetWithTimeline(ctx, id, analysis.AllAgencies, limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range d.Timeline {
			got = append(got, x.ID)
		}
		return got
	}
	if got := timeline(2); !slices.Equal(got, want[:2]) {
		t.Fatalf("newest 2: %v, want %v", got, want[:2])
	}
	if got := timeline(1 << 20); !slices.Equal(got, want) {
		t.Fatalf("every sighting: %v, want %v", got, want)
	}
	d, err := st.Target(ctx, id, analysis.AllAgencies)
	if err != nil || len(d.Timeline) != 5 || d.Observations != 5 || d.TargetSummary.Files != 2 {
		t.Fatalf("Target: %+v %v; want 5 sightings of 2 files", d, err)
	}
}

func testSharesAndHandOffsChangeWhoSees(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.2.3:51000", 1, observe.Complete, t0, versailles))
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	v := byLabel(t, st, "10.1.2.3:51000")
	sees := func(agency string) bool {
		t.Helper()
		_, err := st.Target(ctx, v, scopeOf(agency))
		if err != nil && !errors.Is(err, analysis.ErrNotFound) {
			t.Fatal(err)
		}
		listed := slices.Contains(ids(targets(t, st, analysis.TargetQuery{Scope: scopeOf(agency)})), v)
		if listed != (err == nil) {
			t.Fatalf("%s: listed %v but Target says %v", agency, listed, err)
		}
		return err == nil
	}
	if sees(lyon) {
		t.Fatal("lyon sees versailles' target before any share")
	}
	if err := e.Share(ctx, v, lyon, true, "inv-v", "suspect moved to Lyon"); err != nil {
		t.Fatal(err)
	}
	if !sees(lyon) || !sees(versailles) {
		t.Fatal("after the share lyon and versailles should both see the target")
	}
	if route, shares, err := st.TargetAgencies(ctx, v); err != nil || route != versailles || !slices.Equal(shares, []string{lyon}) {
		t.Fatalf("TargetAgencies after the share = %q %v %v", route, shares, err)
	}
	d, err := st.Target(ctx, v, analysis.AllAgencies)
	if err != nil || len(d.Shares) != 1 || d.Shares[0].Agency != lyon || d.Shares[0].By != "inv-v" {
		t.Fatalf("shares %+v %v", d.Shares, err)
	}
	if err := e.Share(ctx, v, lyon, false, "inv-v", "back"); err != nil {
		t.Fatal(err)
	}
	if sees(lyon) {
		t.Fatal("lyon still sees the target after the share ended")
	}
	const paris = "fr-paris"
	if err := e.Assign(ctx, v, paris, "analyst-1", "handed off"); err != nil {
		t.Fatal(err)
	}
	if !sees(paris) || sees(versailles) {
		t.Fatalf("after a hand-off to %s: paris sees %v, versailles %v; want only paris", paris, sees(paris), sees(versailles))
	}
	if route, _, err := st.TargetAgencies(ctx, v); err != nil || route != paris {
		t.Fatalf("TargetAgencies after the hand-off = %q %v", route, err)
	}
}

// What the engine wrote survives it: a second engine over the store loads
// it, keeps the target ids and reads what another process stored.
func testASecondEngineResumesFromTheStore(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.2.3:51000", 1, observe.Complete, t0, versailles), ob("10.8.8.8:6000", 2, observe.Partial, t0, lyon))
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before := targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies})
	snap, err := st.AnalysisLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Watermark != e.Watermark() || len(snap.Endpoints) != 2 || snap.NextSeq <= 2 {
		t.Fatalf("loaded watermark %d (engine %d), %d endpoints, next target %d", snap.Watermark, e.Watermark(), len(snap.Endpoints), snap.NextSeq)
	}
	// Another process stores more; a new engine catches up with it.
	ingest(t, st, nil, ob("10.1.2.3:51000", 3, observe.Complete, t0.Add(time.Hour), versailles), ob("10.9.9.9:7000", 4, observe.Complete, t0, versailles))
	e2 := engine(t, st)
	if err := e2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	after := targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies})
	if len(after) != 3 {
		t.Fatalf("%d targets after the catch-up, want 3", len(after))
	}
	for _, b := range before {
		i := slices.IndexFunc(after, func(a analysis.TargetSummary) bool { return a.ID == b.ID })
		if i < 0 || after[i].Label != b.Label {
			t.Fatalf("target %s (%s) is not kept after the restart: %+v", b.ID, b.Label, after)
		}
	}
	if d, err := st.Target(ctx, byLabel(t, st, "10.1.2.3:51000"), analysis.AllAgencies); err != nil || d.TargetSummary.Files != 2 || d.Observations != 2 {
		t.Fatalf("the first target after the catch-up: %+v %v; want 2 files", d, err)
	}
}

func testMergedTargetRedirects(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.2.3:51000", 1, observe.Complete, t0, versailles))
	ingest(t, st, e, ob("10.9.8.7:52000", 2, observe.Complete, t0.Add(time.Hour), versailles))
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies})); n != 2 {
		t.Fatalf("%d targets before the link, want 2", n)
	}
	// One peer id at both: one device.
	const pid = "-TR3000-k3j4h5g6f7d8"
	a, b := ob("10.1.2.3:51000", 1, observe.Complete, t0.Add(2*time.Hour), versailles), ob("10.9.8.7:52000", 2, observe.Complete, t0.Add(3*time.Hour), versailles)
	a.Client.PeerID, b.Client.PeerID = []byte(pid), []byte(pid)
	ingest(t, st, e, a, b)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	after := targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies})
	if len(after) != 1 || after[0].ID != analysis.TargetID(1) || after[0].Endpoints != 2 {
		t.Fatalf("after the link %+v, want the single target %s with 2 endpoints", after, analysis.TargetID(1))
	}
	d, err := st.Target(ctx, analysis.TargetID(2), analysis.AllAgencies)
	if err != nil || d.ID != analysis.TargetID(1) || !slices.Contains(d.MergedFrom, analysis.TargetID(2)) || len(d.Links) != 1 {
		t.Fatalf("the merged id reads %+v, %v; want the survivor, merged from it, with the link", d, err)
	}
	if route, _, err := st.TargetAgencies(ctx, analysis.TargetID(2)); err != nil || route != versailles {
		t.Fatalf("TargetAgencies of the merged id = %q %v", route, err)
	}
}

func testDecisionsAndLeadsPersist(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.2.3:51000", 1, observe.Complete, t0, versailles))
	id := analysis.TargetID(1)
	if err := e.SetFlag(ctx, id, analysis.FlagKnownOffender, true, "analyst-1", "reviewed"); err != nil {
		t.Fatal(err)
	}
	ep := observe.Endpoint{IP: netip.MustParseAddr("10.1.2.3"), Port: 51000, Transport: "tcp"}
	other := hashkind.MustNew(hashkind.SHA1, make([]byte, 20))
	if err := e.AddAssociated(ctx, []analysis.Associated{{Torrent: file(1), Endpoint: ep, Time: t0, Files: []analysis.AssocFile{
		{Path: "dir/a.bin", Size: 100, Hash: other}, {Path: "dir/b.bin", Size: 200}}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.DismissLead(ctx, analysis.HashKey(file(1))+"/dir/b.bin", "analyst-1", "a readme"); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := st.AnalysisLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range snap.Decisions {
		kinds = append(kinds, d.Kind+":"+d.Subject+":"+d.By)
	}
	if !slices.Contains(kinds, analysis.DecideFlag+":"+id+":analyst-1") || !slices.Contains(kinds, analysis.DecideDismissLead+":"+analysis.HashKey(file(1))+"/dir/b.bin:analyst-1") {
		t.Fatalf("stored decisions %v, want the flag and the dismissal", kinds)
	}
	// A second engine reads them back.
	e2 := engine(t, st)
	d, err := st.Target(ctx, id, analysis.AllAgencies)
	if err != nil || !slices.Contains(d.Flags, analysis.FlagKnownOffender) {
		t.Fatalf("flags after a restart %v (%v)", d.Flags, err)
	}
	for state, want := range map[string]int{analysis.LeadOpen: 1, analysis.LeadDismissed: 1, analysis.LeadConfirmed: 0, "": 2} {
		ls, n, err := e2.Leads(ctx, analysis.LeadQuery{State: state})
		if err != nil || n != want || len(ls) != want {
			t.Errorf("%q leads: %d (%d listed), %v; want %d", state, n, len(ls), err, want)
		}
	}
	if q, err := st.Quarantined(ctx); err != nil || len(q) != 0 {
		t.Fatalf("Quarantined = %v, %v; want none", q, err)
	}
	if a, err := st.Alerts(ctx, time.Time{}); err != nil || len(a) != 0 {
		t.Fatalf("Alerts = %v, %v; want none", a, err)
	}
}

func testFiltersAndOrders(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e,
		ob("10.1.2.1:51000", 1, observe.Announced, t0, versailles),
		ob("10.1.2.2:51000", 2, observe.Complete, t0.Add(time.Hour), versailles),
		ob("10.1.2.2:51000", 3, observe.Complete, t0.Add(2*time.Hour), versailles),
		ob("10.1.2.3:51000", 4, observe.Partial, t0.Add(3*time.Hour), lyon),
	)
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	labels := func(q analysis.TargetQuery) []string {
		t.Helper()
		q.Scope = analysis.AllAgencies
		var s []string
		for _, x := range targets(t, st, q) {
			s = append(s, x.Label)
		}
		return s
	}
	for _, c := range []struct {
		name string
		q    analysis.TargetQuery
		want []string
	}{
		{"by last seen", analysis.TargetQuery{Sort: "last_seen"}, []string{"10.1.2.3:51000", "10.1.2.2:51000", "10.1.2.1:51000"}},
		{"by first seen, oldest first", analysis.TargetQuery{Sort: "first_seen"}, []string{"10.1.2.1:51000", "10.1.2.2:51000", "10.1.2.3:51000"}},
		{"by files", analysis.TargetQuery{Sort: "files", MinLevel: observe.Partial}, []string{"10.1.2.2:51000", "10.1.2.3:51000"}},
		{"one jurisdiction", analysis.TargetQuery{Jurisdiction: lyon}, []string{"10.1.2.3:51000"}},
		{"at least complete", analysis.TargetQuery{MinLevel: observe.Complete}, []string{"10.1.2.2:51000"}},
		{"seen since", analysis.TargetQuery{Since: t0.Add(90 * time.Minute), Sort: "last_seen"}, []string{"10.1.2.3:51000", "10.1.2.2:51000"}},
		{"first seen before", analysis.TargetQuery{Until: t0.Add(30 * time.Minute)}, []string{"10.1.2.1:51000"}},
		{"another network", analysis.TargetQuery{Network: "ed2k"}, nil},
		{"at least two files", analysis.TargetQuery{MinFiles: 2}, []string{"10.1.2.2:51000"}},
		{"no flag yet", analysis.TargetQuery{Flags: []string{analysis.FlagKnownOffender}}, nil},
	} {
		if got := labels(c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// The analysts' flags: every one asked for, by its exact name.
	lyons := targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies, Jurisdiction: lyon})
	if err := e.SetFlag(ctx, lyons[0].ID, analysis.FlagKnownOffender, true, "analyst", "test"); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		flags []string
		want  []string
	}{
		{[]string{analysis.FlagKnownOffender}, []string{"10.1.2.3:51000"}},
		{[]string{analysis.FlagChildAccess}, nil},
		{[]string{analysis.FlagKnownOffender, analysis.FlagChildAccess}, nil},
		{[]string{"known%"}, nil},
		{[]string{"known_offende_"}, nil},
	} {
		if got := labels(analysis.TargetQuery{Flags: c.flags}); !slices.Equal(got, c.want) {
			t.Errorf("flags %v: %v, want %v", c.flags, got, c.want)
		}
	}
	// Pages: the total counts every match, the page holds Limit.
	page, n, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Sort: "last_seen", Limit: 1, Offset: 1})
	if err != nil || n != 3 || len(page) != 1 || page[0].Label != "10.1.2.2:51000" {
		t.Fatalf("second page of one: %+v, total %d, %v", page, n, err)
	}
}

// testSuspectLeadsPersistAndTouchNoTarget: the files of keyword searches
// are stored as leads with their keywords, networks and the sources the
// networks claimed, at no endpoint; a second engine reads them back;
// confirming one changes no target's score.
func testSuspectLeadsPersistAndTouchNoTarget(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.2.3:51000", 1, observe.Complete, t0, versailles))
	before := targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies})
	sus := hashkind.MustNew(hashkind.ED2K, []byte("lab-suspect-0001"))
	if err := e.AddSuspects(ctx, []analysis.Suspect{
		{Hash: sus, Name: "lab-keyword-alpha 02.bin", Size: 300_000, Sources: 2, Keyword: "lab-keyword-alpha", Network: observe.NetED2K, Time: t0},
		{Hash: sus, Name: "lab-keyword-alpha 02.bin", Size: 300_000, Sources: 5, Keyword: "lab-keyword-alpha", Network: observe.NetKad, Time: t0.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddSuspects(ctx, []analysis.Suspect{{Hash: sus, Keyword: "x"}}); err == nil {
		t.Fatal("a suspect without a time or network accepted")
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := engine(t, st)
	ls, n, err := e2.Leads(ctx, analysis.LeadQuery{})
	if err != nil || n != 1 || len(ls) != 1 {
		t.Fatalf("leads %+v (%d), %v; want one", ls, n, err)
	}
	l := ls[0]
	if l.Key != analysis.HashKey(sus) || l.Path != "lab-keyword-alpha 02.bin" || l.Size != 300_000 || l.Count != 0 || l.Searched != 2 || l.Sources != 5 ||
		!slices.Equal(l.Keywords, []string{"lab-keyword-alpha"}) || !slices.Equal(l.Networks, []string{observe.NetED2K, observe.NetKad}) ||
		l.Endpoints != 0 || len(l.Torrents) != 0 || !l.FirstSeen.Equal(t0) || !l.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("lead %+v", l)
	}
	if err := e2.ConfirmLead(ctx, l.Key, "analyst-1", "reviewed"); err != nil {
		t.Fatal(err)
	}
	if err := e2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	after := targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies})
	if len(after) != len(before) || len(after) != 1 || after[0].Score != before[0].Score {
		t.Fatalf("targets %+v after a confirmed suspect lead, were %+v", after, before)
	}
}

// testSuspectLeadsAreBounded: a server or Kad node that answers every
// search with new files fills no more than MaxSuspectLeads leads, also
// after a restart; what is left out is counted; a file already a lead
// is still counted as searched.
func testSuspectLeadsAreBounded(t *testing.T, st Store) {
	ctx := context.Background()
	open := func() *analysis.Engine {
		cfg := analysis.DefaultConfig()
		cfg.Now = func() time.Time { return t0.Add(30 * 24 * time.Hour) }
		cfg.SaveInterval, cfg.MaxSuspectLeads = 0, 3
		e, err := analysis.New(ctx, st, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	suspect := func(i int) analysis.Suspect {
		return analysis.Suspect{Hash: hashkind.MustNew(hashkind.ED2K, []byte(fmt.Sprintf("lab-flood-%06d", i))), Name: "lab-keyword-alpha flood.bin",
			Size: 1000, Sources: 1, Keyword: "lab-keyword-alpha", Network: observe.NetKad, Time: t0}
	}
	e := open()
	var ss []analysis.Suspect
	for i := range 5 {
		ss = append(ss, suspect(i))
	}
	if err := e.AddSuspects(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Dropped(); d[analysis.DropSuspectLeadsFull] != 2 {
		t.Fatalf("dropped %v, want 2 suspect_leads_full", d)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := open()
	if err := e2.AddSuspects(ctx, []analysis.Suspect{suspect(6), suspect(0)}); err != nil {
		t.Fatal(err)
	}
	if err := e2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ls, n, err := e2.Leads(ctx, analysis.LeadQuery{})
	if err != nil || n != 3 {
		t.Fatalf("%d leads after a restart, %v; want the bound, 3", n, err)
	}
	if d, _ := e2.Dropped(); d[analysis.DropSuspectLeadsFull] != 1 {
		t.Fatalf("after a restart: dropped %v, want 1", d)
	}
	for _, l := range ls {
		if l.Key == analysis.HashKey(suspect(0).Hash) && l.Searched != 2 {
			t.Fatalf("a lead searched again: %+v, want searched 2", l)
		}
	}
}

// testKeywordSearchesAreNoSightingsOfATargetsLead: a file seen once in a
// target's torrent and returned by keyword searches every hour is, on
// the target's page, seen once, under the torrent's path and size; the
// leads' review counts the searches apart (Searched), and the name and
// size a server or Kad node gave do not stand in for what the torrent
// showed.
func testKeywordSearchesAreNoSightingsOfATargetsLead(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.2.3:51000", 1, observe.Complete, t0, versailles))
	sus := hashkind.MustNew(hashkind.ED2K, []byte("lab-suspect-0002"))
	search := func(at time.Time) {
		t.Helper()
		if err := e.AddSuspects(ctx, []analysis.Suspect{{Hash: sus, Name: "lab-keyword-alpha server-name.bin", Size: 999, Sources: 40,
			Keyword: "lab-keyword-alpha", Network: observe.NetED2K, Time: at}}); err != nil {
			t.Fatal(err)
		}
	}
	search(t0.Add(-time.Hour)) // found by a search first
	ep := observe.Endpoint{IP: netip.MustParseAddr("10.1.2.3"), Port: 51000, Transport: "tcp"}
	if err := e.AddAssociated(ctx, []analysis.Associated{{Torrent: file(1), Endpoint: ep, Time: t0, Files: []analysis.AssocFile{
		{Path: "dir/torrent-path.bin", Size: 300, Hash: sus}}}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		search(t0.Add(time.Duration(i) * time.Hour))
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := st.Target(ctx, analysis.TargetID(1), analysis.AllAgencies)
	if err != nil || len(d.Leads) != 1 {
		t.Fatalf("target's leads %+v, %v; want one", d, err)
	}
	l := d.Leads[0]
	if l.Count != 1 || l.Endpoints != 1 || l.Path != "dir/torrent-path.bin" || l.Size != 300 {
		t.Fatalf("lead on the target's page %+v: want seen once (in the torrent), at its path and size", l)
	}
	ls, _, err := engine(t, st).Leads(ctx, analysis.LeadQuery{})
	if err != nil || len(ls) != 1 || ls[0].Count != 1 || ls[0].Searched != 4 {
		t.Fatalf("leads after a restart %+v, %v", ls, err)
	}
}

// testTargetsLeadsCarryNoKeywordSearch: a file of a target's torrent that
// a keyword search also returned is on the target's page (API, exports)
// for the torrent only: the analyst's keywords, the networks searched,
// the search results and the source count a server claimed stay with
// the leads' review ('vigil leads list'), never with a target, where the
// count would read as something of the target's.
func testTargetsLeadsCarryNoKeywordSearch(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.2.3:51000", 1, observe.Complete, t0, versailles))
	sus := hashkind.MustNew(hashkind.ED2K, []byte("lab-suspect-0003"))
	ep := observe.Endpoint{IP: netip.MustParseAddr("10.1.2.3"), Port: 51000, Transport: "tcp"}
	if err := e.AddAssociated(ctx, []analysis.Associated{{Torrent: file(1), Endpoint: ep, Time: t0, Files: []analysis.AssocFile{
		{Path: "dir/torrent-path.bin", Size: 300, Hash: sus}}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.AddSuspects(ctx, []analysis.Suspect{{Hash: sus, Name: "lab-keyword-alpha x.bin", Size: 300, Sources: 4000,
		Keyword: "lab-keyword-alpha", Network: observe.NetKad, Time: t0.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() (*analysis.TargetDetail, error){
		"Target": func() (*analysis.TargetDetail, error) {
			return st.Target(ctx, analysis.TargetID(1), analysis.AllAgencies)
		},
		"TargetWithTimeline": func() (*analysis.TargetDetail, error) {
			return st.TargetWithTimeline(ctx, analysis.TargetID(1), analysis.AllAgencies, 10)
		},
	} {
		d, err := read()
		if err != nil || len(d.Leads) != 1 {
			t.Fatalf("%s: leads %+v, %v; want one", name, d, err)
		}
		if l := d.Leads[0]; len(l.Keywords) != 0 || len(l.Networks) != 0 || l.Searched != 0 || l.Sources != -1 || !l.LastSeen.Equal(t0) {
			t.Errorf("%s: the target's lead carries its keyword search: %+v", name, l)
		}
	}
	ls, _, err := e.Leads(ctx, analysis.LeadQuery{})
	if err != nil || len(ls) != 1 || len(ls[0].Keywords) != 1 || ls[0].Sources != 4000 {
		t.Fatalf("the leads' review lost the search: %+v, %v", ls, err)
	}
}
