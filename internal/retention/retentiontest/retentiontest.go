// Package retentiontest is the contract of retention.Store: one suite a
// store runs in its own tests. It drives the real analysis Engine over the
// store (so that targets, endpoints, merges and timelines are the store's
// own), places holds through the retention.Holds service and purges with
// the retention.Runner, reading the audit trail back.
//
// It uses synthetic observations only (private addresses, hashes of
// counters); it must never hold real data.
package retentiontest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store"
)

// Store is what the suite checks.
type Store interface {
	retention.Store
	analysis.Views
	store.Store
	store.LogStore
	audit.Store
}

// Run runs the contract. open must return a new, empty store for t and
// close it when t ends.
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, st Store)
	}{
		{"HeldTargetSurvivesItsNeighboursPurge", testHeldSurvives},
		{"HoldFollowsTheMerge", testHoldFollowsMerge},
		{"TranscriptsGoBeforeObservations", testTranscriptsFirst},
		{"DryRunChangesNothing", testDryRun},
		{"NoRecordNoPurge", testNoRecordNoPurge},
		{"AnInterruptedPurgeIsFinishedByTheNextRun", testResume},
		{"OnlyAnalystsAndTheTargetsSupervisorsHold", testWhoMayHold},
		{"ReleasedHoldLetsThePurgeThrough", testRelease},
		{"OldLeadsGoUnlessConfirmedOrHeld", testLeads},
		{"APurgedObservationReplayedIsNotStoredAgain", testReplayAfterPurge},
		{"ASupervisorReleasesOnlyTheirOwnHolds", testSupervisorRelease},
		{"AHoldAddedWhileAPurgeRunsIsNamedInItsRecord", testHoldAddedMidRun},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// t0 is when the synthetic observations were made; purges run years later.
var t0 = time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)

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

func ingest(t *testing.T, st Store, e *analysis.Engine, obs ...observe.Observation) {
	t.Helper()
	ctx := context.Background()
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Add(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func file(n int) hashkind.Hash {
	b := make([]byte, 20)
	b[0], b[1], b[2] = 0xAC, byte(n>>8), byte(n)
	return hashkind.MustNew(hashkind.BTIH, b)
}

// ob is a first-hand observation of file n at "ip:port" with a transcript.
func ob(ep string, n int, at time.Time, ag string) observe.Observation {
	ap := netip.MustParseAddrPort(ep)
	return observe.Observation{
		ID: observe.NewID(at), Sensor: observe.Sensor{ID: "bt-lab-1"}, Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Time: at,
		Item:         observe.Item{Hash: file(n), Matched: []observe.Match{{List: "national", Category: "1"}}},
		Endpoint:     observe.Endpoint{IP: ap.Addr(), Port: ap.Port(), Transport: "tcp"},
		Client:       observe.Client{Name: "Transmission", Version: "3.00"},
		Possession:   observe.Possession{Level: observe.Complete, PiecesHave: -1, PiecesTotal: -1},
		Transcript:   observe.Transcript{Bytes: []byte(fmt.Sprintf("synthetic transcript %d", n))},
		Jurisdiction: observe.Jurisdiction{Agency: ag, Rule: "test"},
	}
}

// targetOf returns the live target at endpoint label.
func targetOf(t *testing.T, st Store, label string) string {
	t.Helper()
	ts, _, err := st.Targets(context.Background(), analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		if x.Label == label {
			return x.ID
		}
	}
	t.Fatalf("no target at %s", label)
	return ""
}

// stored returns which of ids are still stored, and the transcript of each.
func stored(t *testing.T, st Store, ids ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		err := st.ObservationsByID(context.Background(), []string{id}, func(o *observe.Observation) error {
			out[id] = string(o.Transcript.Bytes)
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	return out
}

func records(t *testing.T, st Store, action string) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := st.AuditRecords(context.Background(), audit.Filter{}, func(r audit.Record) error {
		if action == "" || r.Action == action {
			out = append(out, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

var analyst = retention.Actor{Name: "analyst-1", Agency: "fr-ofmin", Role: agency.RoleAnalyst, Remote: "test"}

func holds(st Store, now time.Time) *retention.Holds {
	return &retention.Holds{Store: st, Targets: st, Trail: &audit.Log{Store: st, Now: func() time.Time { return now }}, Now: func() time.Time { return now }}
}

func runner(st Store, now time.Time) *retention.Runner {
	return &retention.Runner{Store: st, Trail: &audit.Log{Store: st, Now: func() time.Time { return now }}, Config: retention.DefaultConfig(),
		Now: func() time.Time { return now }, Actor: retention.Actor{Name: "retention-job", Role: "system", Remote: "test"}}
}

// Three targets seen in March 2024; a hold on one; a purge three years
// later removes the two others' observations (rows gone, leaves kept,
// records written) and leaves the held one's whole, transcripts included.
func testHeldSurvives(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	a, b, c := ob("10.1.0.1:51000", 1, t0, versailles), ob("10.2.0.1:51000", 2, t0.Add(time.Minute), versailles), ob("10.3.0.1:51000", 3, t0.Add(2*time.Minute), lyon)
	ingest(t, st, e, a, b, c)
	held := targetOf(t, st, "10.1.0.1:51000")
	if _, err := holds(st, t0.Add(time.Hour)).Add(ctx, analyst, held, "PV 2024/17", "seized devices under examination"); err != nil {
		t.Fatal(err)
	}
	now := t0.AddDate(3, 0, 0)
	before, err := st.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runner(st, now).Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Purged[retention.KindObservations].N; got != 2 {
		t.Fatalf("purged %d observations, want the 2 unheld: %+v", got, rep)
	}
	if got := rep.Due[retention.KindObservations].Held; got != 1 {
		t.Fatalf("held back %d observations, want 1", got)
	}
	left := stored(t, st, a.ID, b.ID, c.ID)
	if len(left) != 1 || left[a.ID] != "synthetic transcript 1" {
		t.Fatalf("after the purge the store holds %v, want only the held %s with its transcript", left, a.ID)
	}
	after, err := st.LogSize(ctx)
	if err != nil || after != before {
		t.Fatalf("the evidence log went from %d to %d leaves (%v): a purge must keep every leaf", before, after, err)
	}
	p, err := st.PurgedObservations(ctx, []string{a.ID, b.ID, c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 || p[b.ID].What != retention.KindObservations || !p[b.ID].Time.Equal(b.Time) || !p[c.ID].At.Equal(now) {
		t.Fatalf("purged records %+v, want b and c as observations purged at %v", p, now)
	}
	if of, err := st.PurgedOfTarget(ctx, targetOf(t, st, "10.2.0.1:51000")); err != nil || len(of) != 1 || of[0].ObservationID != b.ID {
		t.Fatalf("PurgedOfTarget = %+v, %v; want b's record", of, err)
	}
	// The target keeps its figures as computed (docs/deployment.md).
	d, err := st.Target(ctx, targetOf(t, st, "10.2.0.1:51000"), analysis.AllAgencies)
	if err != nil || d.Observations != 1 {
		t.Fatalf("the purged target reads %+v, %v; want it kept with its count", d, err)
	}
	// The record came first and says what, how many, when and which holds.
	plan, done := records(t, st, retention.ActionPurgePlan), records(t, st, retention.ActionPurgeDone)
	if len(plan) != 1 || len(done) != 1 || plan[0].Seq > done[0].Seq {
		t.Fatalf("records: %d plans, %d done, want one of each, the plan first", len(plan), len(done))
	}
	for _, want := range []string{`"observations":{"count":2`, `"oldest":"` + b.Time.Format(time.RFC3339Nano), `"newest":"` + c.Time.Format(time.RFC3339Nano),
		`"held_back":1`, `"target":"` + held + `"`, `"case":"PV 2024/17"`, `"observations":"2y"`, `"audit":"10y"`, `"audit_purged":false`} {
		if !strings.Contains(string(done[0].Detail), want) {
			t.Errorf("the purge's record %s lacks %s", done[0].Detail, want)
		}
	}
	if !strings.Contains(string(plan[0].Detail), `"due":{`) {
		t.Errorf("the plan record %s says nothing due", plan[0].Detail)
	}
	// Nothing is due any more: a second run writes nothing.
	n := len(records(t, st, ""))
	if rep, err := runner(st, now).Run(ctx, false); err != nil || rep.Total() != 0 || len(records(t, st, "")) != n {
		t.Fatalf("a second run: %+v, %v, %d records (was %d)", rep, err, len(records(t, st, "")), n)
	}
}

// Two endpoints become one target by a shared peer id; the hold placed on
// the merged-away id protects both.
func testHoldFollowsMerge(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	x, y := ob("10.1.2.3:51000", 1, t0, versailles), ob("10.9.8.7:52000", 2, t0.Add(time.Hour), versailles)
	ingest(t, st, e, x, y)
	second := targetOf(t, st, "10.9.8.7:52000")
	const pid = "-TR3000-k3j4h5g6f7d8"
	x2, y2 := ob("10.1.2.3:51000", 1, t0.Add(2*time.Hour), versailles), ob("10.9.8.7:52000", 2, t0.Add(3*time.Hour), versailles)
	x2.Client.PeerID, y2.Client.PeerID = []byte(pid), []byte(pid)
	ingest(t, st, e, x2, y2)
	other := ob("10.5.5.5:50000", 5, t0, lyon)
	ingest(t, st, e, other)
	d, err := st.Target(ctx, second, analysis.AllAgencies)
	if err != nil || d.ID == second {
		t.Fatalf("the test needs %s merged: %+v, %v", second, d, err)
	}
	if _, err := holds(st, t0).Add(ctx, analyst, second, "", "merged target held"); err != nil {
		t.Fatal(err)
	}
	if _, err := runner(st, t0.AddDate(3, 0, 0)).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	left := stored(t, st, x.ID, y.ID, x2.ID, y2.ID, other.ID)
	if _, ok := left[other.ID]; len(left) != 4 || ok {
		t.Fatalf("after the purge %d observations are left (%v): want the merged target's 4 (the hold follows the merge), not its neighbour's", len(left), left)
	}
}

// 18 months on, the transcripts (1 year) go and the rows (2 years) stay.
func testTranscriptsFirst(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	a := ob("10.1.0.1:51000", 1, t0, versailles)
	ingest(t, st, e, a)
	rep, err := runner(st, t0.AddDate(1, 6, 0)).Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Purged[retention.KindTranscripts].N != 1 || rep.Purged[retention.KindObservations].N != 0 {
		t.Fatalf("purged %+v, want one transcript and no observation", rep.Purged)
	}
	if left := stored(t, st, a.ID); len(left) != 1 || left[a.ID] != "" {
		t.Fatalf("the observation reads %q, want it stored without its transcript", left)
	}
	p, err := st.PurgedObservations(ctx, []string{a.ID})
	if err != nil || p[a.ID].What != retention.KindTranscripts {
		t.Fatalf("record %+v, %v; want transcripts", p, err)
	}
	// Later the row goes too: the record says so.
	if _, err := runner(st, t0.AddDate(2, 1, 0)).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if p, err := st.PurgedObservations(ctx, []string{a.ID}); err != nil || p[a.ID].What != retention.KindObservations {
		t.Fatalf("record %+v, %v; want observations", p, err)
	}
}

func testDryRun(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	a, b := ob("10.1.0.1:51000", 1, t0, versailles), ob("10.2.0.1:51000", 2, t0, versailles)
	ingest(t, st, e, a, b)
	n := len(records(t, st, ""))
	rep, err := runner(st, t0.AddDate(3, 0, 0)).Run(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Due[retention.KindObservations].N != 2 || rep.Due[retention.KindTranscripts].N != 2 || len(rep.Purged) != 0 {
		t.Fatalf("dry run %+v: want 2 observations and 2 transcripts due, none purged", rep)
	}
	if left := stored(t, st, a.ID, b.ID); len(left) != 2 || left[a.ID] == "" {
		t.Fatalf("a dry run removed something: %v", left)
	}
	if p, _ := st.PurgedObservations(ctx, []string{a.ID, b.ID}); len(p) != 0 {
		t.Fatalf("a dry run wrote purge records %v", p)
	}
	if got := len(records(t, st, "")); got != n {
		t.Fatalf("a dry run wrote %d audit records", got-n)
	}
}

type failingTrail struct{}

func (failingTrail) Append(context.Context, audit.Record) (audit.Record, error) {
	return audit.Record{}, errors.New("disk full")
}

// When the audit record cannot be written, nothing is purged.
func testNoRecordNoPurge(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	a := ob("10.1.0.1:51000", 1, t0, versailles)
	ingest(t, st, e, a)
	r := runner(st, t0.AddDate(3, 0, 0))
	r.Trail = failingTrail{}
	if _, err := r.Run(ctx, false); err == nil {
		t.Fatal("a run with no audit trail went through")
	}
	if left := stored(t, st, a.ID); left[a.ID] == "" {
		t.Fatalf("purged without a record: %v", left)
	}
}

// A run stopped after one chunk (a crash: its context cancelled) leaves
// whole chunks, each with its records; the next run removes the rest.
func testResume(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	var obs []observe.Observation
	var ids []string
	for i := range 7 {
		o := ob(fmt.Sprintf("10.7.0.%d:51000", i+1), i, t0.Add(time.Duration(i)*time.Minute), versailles)
		obs, ids = append(obs, o), append(ids, o.ID)
	}
	ingest(t, st, e, obs...)
	now := t0.AddDate(3, 0, 0)
	r := runner(st, now)
	r.Config.Chunk = 2
	cctx, cancel := context.WithCancel(ctx)
	var progress []int64
	r.Progress = func(k retention.Kind, done retention.Span, due retention.Due) {
		progress = append(progress, done.N)
		if k == retention.KindObservations {
			cancel()
		}
	}
	if _, err := r.Run(cctx, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted run: %v", err)
	}
	left := stored(t, st, ids...)
	if len(left) != 5 {
		t.Fatalf("after one chunk of 2, %d of 7 left", len(left))
	}
	p, _ := st.PurgedObservations(ctx, ids)
	gone := 0
	for _, x := range p {
		if x.What == retention.KindObservations {
			gone++
		}
	}
	if gone != 2 {
		t.Fatalf("%d purge records of whole observations, want 2 (one per row gone)", gone)
	}
	if !slices.Equal(progress[:4], []int64{2, 4, 6, 7}) {
		t.Fatalf("progress %v, want the transcripts counted 2, 4, 6, 7", progress)
	}
	r.Progress = nil
	if _, err := r.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if left := stored(t, st, ids...); len(left) != 0 {
		t.Fatalf("the next run left %d", len(left))
	}
	if n := len(records(t, st, retention.ActionPurgePlan)); n != 2 {
		t.Fatalf("%d plan records, want one per run", n)
	}
}

// An investigator, an auditor, an admin, or a supervisor of an agency that
// does not see the target cannot place or release a hold, nor list them;
// each refusal is recorded and no hold is stored.
func testWhoMayHold(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.0.1:51000", 1, t0, versailles))
	id := targetOf(t, st, "10.1.0.1:51000")
	h := holds(st, t0)
	for _, who := range []retention.Actor{
		{Name: "inv-1", Agency: versailles, Role: agency.RoleInvestigator},
		{Name: "aud-1", Agency: versailles, Role: agency.RoleAuditor},
		{Name: "admin-1", Role: agency.RoleAdmin},
		{Name: "sup-lyon", Agency: lyon, Role: agency.RoleSupervisor},
		{Name: "sup-none", Role: agency.RoleSupervisor},
	} {
		if _, err := h.Add(ctx, who, id, "", "curious"); !errors.Is(err, retention.ErrForbidden) {
			t.Errorf("%s placed a hold: %v", who.Name, err)
		}
		if _, err := h.Release(ctx, who, id, "", "curious"); !errors.Is(err, retention.ErrForbidden) {
			t.Errorf("%s released a hold: %v", who.Name, err)
		}
	}
	for _, who := range []retention.Actor{{Name: "inv-1", Agency: versailles, Role: agency.RoleInvestigator}, {Name: "aud-1", Role: agency.RoleAuditor}} {
		if _, err := h.List(ctx, who, false); !errors.Is(err, retention.ErrForbidden) {
			t.Errorf("%s listed the holds: %v", who.Name, err)
		}
	}
	if hs, _ := st.Holds(ctx, false); len(hs) != 0 {
		t.Fatalf("holds stored by the refused: %+v", hs)
	}
	if n := len(records(t, st, audit.ActionDenied)); n != 12 {
		t.Fatalf("%d refusals recorded, want 12", n)
	}
	// The target's own supervisor may; a lyon supervisor does not see it
	// in the list.
	sup := retention.Actor{Name: "sup-v", Agency: versailles, Role: agency.RoleSupervisor}
	if _, err := h.Add(ctx, sup, id, "", "ordered by the magistrate"); err != nil {
		t.Fatal(err)
	}
	if hs, err := h.List(ctx, retention.Actor{Name: "sup-lyon", Agency: lyon, Role: agency.RoleSupervisor}, true); err != nil || len(hs) != 0 {
		t.Fatalf("a lyon supervisor lists %+v, %v", hs, err)
	}
	if hs, err := h.List(ctx, analyst, true); err != nil || len(hs) != 1 || hs[0].By != "sup-v" {
		t.Fatalf("the analyst lists %+v, %v", hs, err)
	}
	// No reason, no hold; an unknown target is not found.
	if _, err := h.Add(ctx, analyst, id, "", "  "); !errors.Is(err, retention.ErrReason) {
		t.Fatalf("a hold without reason: %v", err)
	}
	if _, err := h.Add(ctx, analyst, "T-999999-00", "", "x"); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("a hold on an unknown target: %v", err)
	}
	// A supervisor is answered about an unknown target as about another
	// agency's, and the attempt recorded alike: neither the answer nor
	// the trail tells that the other agency's target exists.
	lyonSup := retention.Actor{Name: "sup-lyon", Agency: lyon, Role: agency.RoleSupervisor}
	_, errOther := h.Add(ctx, lyonSup, id, "", "curious")
	_, errNone := h.Add(ctx, lyonSup, "T-999999-00", "", "curious")
	if !errors.Is(errNone, retention.ErrForbidden) || errOther == nil || errNone.Error() != errOther.Error() {
		t.Fatalf("a lyon supervisor's hold on an unknown target: %v; on versailles's: %v", errNone, errOther)
	}
	if n := len(records(t, st, audit.ActionDenied)); n != 14 {
		t.Fatalf("%d refusals recorded, want 14", n)
	}
	if n := len(records(t, st, retention.ActionHoldAdd)); n != 2 {
		t.Fatalf("%d hold records, want the supervisor's and the analyst's attempt on the unknown target", n)
	}
}

func testRelease(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	a := ob("10.1.0.1:51000", 1, t0, versailles)
	ingest(t, st, e, a)
	id := targetOf(t, st, "10.1.0.1:51000")
	h := holds(st, t0)
	if _, err := h.Add(ctx, analyst, id, "C1", "case one"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Add(ctx, analyst, id, "C2", "case two"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Release(ctx, analyst, id, "C1", "case one closed"); err != nil {
		t.Fatal(err)
	}
	now := t0.AddDate(3, 0, 0)
	if _, err := runner(st, now).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if left := stored(t, st, a.ID); len(left) != 1 {
		t.Fatal("a hold of another case still active, yet the observation went")
	}
	rel, err := h.Release(ctx, analyst, id, "", "all closed")
	if err != nil || len(rel) != 1 || rel[0].Case != "C2" || rel[0].ReleasedBy != analyst.Name {
		t.Fatalf("release: %+v, %v", rel, err)
	}
	if _, err := h.Release(ctx, analyst, id, "", "again"); !errors.Is(err, retention.ErrNoHold) {
		t.Fatalf("a second release: %v", err)
	}
	if _, err := runner(st, now).Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if left := stored(t, st, a.ID); len(left) != 0 {
		t.Fatal("released, yet kept")
	}
	all, err := st.Holds(ctx, false)
	if err != nil || len(all) != 2 || all[0].Active() || all[1].Released.IsZero() {
		t.Fatalf("holds after release %+v, %v: want both kept, released", all, err)
	}
}

// Leads last seen before the period go, unless an analyst confirmed them
// or they were seen at a held target's endpoint.
func testLeads(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	ingest(t, st, e, ob("10.1.0.1:51000", 1, t0, versailles), ob("10.2.0.1:51000", 2, t0, versailles))
	other := hashkind.MustNew(hashkind.SHA1, make([]byte, 20))
	for i, ep := range []string{"10.1.0.1:51000", "10.2.0.1:51000"} {
		ap := netip.MustParseAddrPort(ep)
		if err := e.AddAssociated(ctx, []analysis.Associated{{Torrent: file(i + 1), Endpoint: observe.Endpoint{IP: ap.Addr(), Port: ap.Port(), Transport: "tcp"}, Time: t0,
			Files: []analysis.AssocFile{{Path: "dir/a.bin", Size: 100, Hash: other}, {Path: fmt.Sprintf("dir/%d.bin", i), Size: 200}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before, n, err := st.Leads(ctx, analysis.LeadQuery{Limit: 100})
	if err != nil || n == 0 {
		t.Fatalf("the test needs leads: %v %d %v", before, n, err)
	}
	if _, err := holds(st, t0).Add(ctx, analyst, targetOf(t, st, "10.1.0.1:51000"), "", "held"); err != nil {
		t.Fatal(err)
	}
	rep, err := runner(st, t0.AddDate(3, 0, 0)).Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	after, m, err := st.Leads(ctx, analysis.LeadQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Purged[retention.KindLeads].N == 0 || m == 0 || m >= n || int64(n-m) != rep.Purged[retention.KindLeads].N {
		t.Fatalf("leads %d before, %d after, %d purged: want the unheld ones gone and the held ones kept (%+v)", n, m, rep.Purged[retention.KindLeads].N, after)
	}
}

// Attack: an observation purged under retention is delivered again (a
// sensor's queue or the bus replaying an old message, or a forged copy).
// Its row is gone, so the id's unique index no longer refuses it: it must
// not come back (a purge that undoes itself), nor get a second leaf.
func testReplayAfterPurge(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	a := ob("10.7.0.1:51000", 7, t0, versailles)
	ingest(t, st, e, a)
	now := t0.AddDate(3, 0, 0)
	if rep, err := runner(st, now).Run(ctx, false); err != nil || rep.Purged[retention.KindObservations].N != 1 {
		t.Fatalf("purge: %+v, %v; want a purged", rep, err)
	}
	before, err := st.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again := ob("10.7.0.1:51000", 7, t0, versailles)
	again.ID = a.ID
	if err := st.InsertObservations(ctx, []observe.Observation{again}); err != nil {
		t.Fatal(err)
	}
	if left := stored(t, st, a.ID); len(left) != 0 {
		t.Fatalf("the purged observation %s was stored again by a replay: %v", a.ID, left)
	}
	if after, err := st.LogSize(ctx); err != nil || after != before {
		t.Fatalf("the evidence log went from %d to %d leaves (%v): a replay of a purged observation must not add a leaf", before, after, err)
	}
}

// Attack: a supervisor of an agency the target is shared with (or routed
// to) released every active hold on it, the national office's for another
// agency's case included, and the next purge removed the evidence. A
// supervisor releases only the holds they placed; the others are refused,
// audited, and stay active.
func testSupervisorRelease(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	a := ob("10.8.0.1:51000", 8, t0, versailles)
	ingest(t, st, e, a)
	id := targetOf(t, st, "10.8.0.1:51000")
	h := holds(st, t0)
	if _, err := h.Add(ctx, analyst, id, "PV 2024/99", "national case"); err != nil {
		t.Fatal(err)
	}
	sup := retention.Actor{Name: "sup-v", Agency: versailles, Role: agency.RoleSupervisor}
	denied := len(records(t, st, audit.ActionDenied))
	if _, err := h.Release(ctx, sup, id, "", "not our case"); !errors.Is(err, retention.ErrForbidden) {
		t.Fatalf("a supervisor released the national office's hold: %v", err)
	}
	if n := len(records(t, st, audit.ActionDenied)); n != denied+1 {
		t.Fatalf("%d refusals recorded, want %d", n, denied+1)
	}
	if hs, err := st.Holds(ctx, true); err != nil || len(hs) != 1 {
		t.Fatalf("active holds after the refused release: %+v, %v", hs, err)
	}
	// Their own hold they may release; the national one stays.
	if _, err := h.Add(ctx, sup, id, "PV 2024/100", "our case"); err != nil {
		t.Fatal(err)
	}
	if rel, err := h.Release(ctx, sup, id, "PV 2024/100", "closed"); err != nil || len(rel) != 1 {
		t.Fatalf("a supervisor's release of their own hold: %+v, %v", rel, err)
	}
	if hs, err := st.Holds(ctx, true); err != nil || len(hs) != 1 || hs[0].By != analyst.Name {
		t.Fatalf("active holds: %+v, %v; want the national office's", hs, err)
	}
}

// A hold placed while a purge runs (after its first chunk) stops the
// rest of it, and the purge's done record names that hold, marked added
// during the run, beside the one it started with.
func testHoldAddedMidRun(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	a, b, c := ob("10.9.0.1:51000", 1, t0, versailles), ob("10.9.0.2:51000", 2, t0.Add(time.Minute), versailles), ob("10.9.0.3:51000", 3, t0.Add(2*time.Minute), versailles)
	d := ob("10.9.0.4:51000", 4, t0.Add(3*time.Minute), versailles)
	ingest(t, st, e, a, b, c, d)
	first, late := targetOf(t, st, "10.9.0.4:51000"), targetOf(t, st, "10.9.0.3:51000")
	if _, err := holds(st, t0.Add(time.Hour)).Add(ctx, analyst, first, "PV 2024/1", "held before the run"); err != nil {
		t.Fatal(err)
	}
	now := t0.AddDate(3, 0, 0)
	r := runner(st, now)
	r.Config.Chunk = 1
	added := false
	r.Progress = func(k retention.Kind, done retention.Span, due retention.Due) {
		if added {
			return
		}
		added = true
		if _, err := holds(st, now).Add(ctx, analyst, late, "PV 2027/9", "placed while the purge ran"); err != nil {
			t.Error(err)
		}
	}
	rep, err := r.Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if left := stored(t, st, c.ID, d.ID); len(left) != 2 || left[c.ID] != "synthetic transcript 3" {
		t.Fatalf("left %v: the hold added during the run did not keep its target whole", left)
	}
	if rep.Added != 1 || len(rep.Holds) != 2 {
		t.Fatalf("report: %d holds, %d added, want 2 and 1", len(rep.Holds), rep.Added)
	}
	done := records(t, st, retention.ActionPurgeDone)
	if len(done) != 1 {
		t.Fatalf("%d done records", len(done))
	}
	for _, want := range []string{`"target":"` + first + `"`, `"case":"PV 2027/9"`, `"target":"` + late + `"`, `"added_during_run":true`,
		`"holds_honoured":2`, `"holds_added_during_run":1`} {
		if !strings.Contains(string(done[0].Detail), want) {
			t.Errorf("the done record %s lacks %s", done[0].Detail, want)
		}
	}
	if strings.Contains(string(records(t, st, retention.ActionPurgePlan)[0].Detail), late) {
		t.Errorf("the plan record names a hold placed after it")
	}
}
