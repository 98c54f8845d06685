// Package casetest is the contract of casework.Store: one suite a store
// runs in its own tests, through the casework.Claims service, with a
// clock the suite moves.
package casetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/casework"
)

// Store is what the suite checks: claims and hand-off proposals.
type Store interface {
	casework.Store
	casework.ProposalStore
	casework.CaseStore
	casework.OperationStore
	casework.OutcomeStore
}

// Run runs the contract. open must return two handles on one new, empty
// store (as two processes, or two services, see it), closed when t ends.
func Run(t *testing.T, open func(t *testing.T) (Store, Store)) {
	t.Run("TwoServicesRaceForOneTarget", func(t *testing.T) { testRace(t, open) })
	t.Run("ClaimLapsesAfterAWarning", func(t *testing.T) { testLapse(t, open) })
	t.Run("RenewAndRelease", func(t *testing.T) { testRenewRelease(t, open) })
	t.Run("HandOffMovesTheClaim", func(t *testing.T) { testHandOff(t, open) })
	t.Run("HandOffProposedByMovement", func(t *testing.T) { testProposal(t, open) })
	t.Run("StaleHandOffMovesNoOtherClaim", func(t *testing.T) { testStaleProposal(t, open) })
	t.Run("AcceptBetweenAReleaseAndAClaimMovesNoOtherClaim", func(t *testing.T) { testAcceptInterleaved(t, open) })
	t.Run("AcceptsRaceReleasesClaimsAndProposals", func(t *testing.T) { testAcceptRace(t, open) })
	t.Run("CaseWorkKeepsTheClaim", func(t *testing.T) { testCaseWorkIsActivity(t, open) })
	t.Run("CaseProgressAndItsSubscriber", func(t *testing.T) { testCase(t, open) })
	t.Run("SubscriberNotReadByALapseClaimant", func(t *testing.T) { testSubscriberAfterLapse(t, open) })
	t.Run("AClaimHoldsAcrossAMerge", func(t *testing.T) { testMergedClaim(t, open) })
	t.Run("AcceptedHandOffLeavesAnotherAgencysMergedClaim", func(t *testing.T) { testHandOffLeavesMergedClaim(t, open) })
	t.Run("OperationKeepsItsCriteriaAndSnapshot", func(t *testing.T) { testOperation(t, open) })
	t.Run("TwoAssignsOfOneTargetRace", func(t *testing.T) { testAssignRace(t, open) })
	t.Run("AssignLeavesAnotherServicesClaim", func(t *testing.T) { testAssignHeld(t, open) })
	t.Run("BoardCountsStepsAndOutcomesOnANeedToKnow", func(t *testing.T) { testBoard(t, open) })
}

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func service(s Store, c *clock) *casework.Claims {
	return &casework.Claims{Store: s, Config: casework.DefaultConfig(), Now: c.Now}
}

// Two services claim one target at the same instant, each through its own
// handle: one holds it, the other is told who, since when and whom to
// call, and both events are on record.
func testRace(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	const target = "T-000042-69"
	for round := range 20 {
		tgt := target
		if round > 0 {
			tgt = target + "-" + string(rune('a'+round))
		}
		type result struct {
			c   casework.Claim
			err error
		}
		res := make([]result, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, sv := range []struct {
			s              Store
			agency, person string
		}{{a, "fr-lyon", "lyon-officer"}, {b, "fr-versailles", "versailles-officer"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				c, err := service(sv.s, clk).Claim(ctx, tgt, sv.agency, sv.person, "+33 1 00 00 00 0"+string(rune('0'+i)))
				res[i] = result{c, err}
			}()
		}
		close(start)
		wg.Wait()
		won, lost := 0, 1
		if res[0].err != nil {
			won, lost = 1, 0
		}
		if res[won].err != nil {
			t.Fatalf("round %d: neither claim won: %v / %v", round, res[0].err, res[1].err)
		}
		var ce *casework.ClaimedError
		if !errors.As(res[lost].err, &ce) || !errors.Is(res[lost].err, casework.ErrClaimed) {
			t.Fatalf("round %d: both claims won, or the loser was not told who: %v", round, res[lost].err)
		}
		w := res[won].c
		if ce.Holder.Agency != w.Agency || ce.Holder.Contact != w.Contact || !ce.Holder.Since.Equal(w.Since) || ce.Holder.By != w.By {
			t.Fatalf("round %d: loser told %+v, the holder is %+v", round, ce.Holder, w)
		}
		held, err := a.ClaimOf(ctx, tgt)
		if err != nil || held == nil || held.Agency != w.Agency {
			t.Fatalf("round %d: stored claim %+v (%v), want %s's", round, held, err, w.Agency)
		}
		recs, err := b.ClaimRecords(ctx, tgt)
		if err != nil || len(recs) != 2 || recs[0].Kind != casework.RecordClaim || recs[0].Agency != w.Agency || recs[1].Kind != casework.RecordRefused {
			t.Fatalf("round %d: records %+v (%v), want %s's claim then the refusal", round, recs, err, w.Agency)
		}
	}
}

// A claim without activity is "lapsing" WarnBefore before LapseAfter,
// then lapses: another agency may then take the target, on record.
func testLapse(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, _ := open(t)
	clk := &clock{now: t0}
	s := service(a, clk)
	cfg := s.Config
	if _, err := s.Claim(ctx, "T-1", "fr-lyon", "u1", "04 00 00 00 00"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		after time.Duration
		want  string
	}{
		{0, casework.Held},
		{cfg.LapseAfter - cfg.WarnBefore - time.Second, casework.Held},
		{cfg.LapseAfter - cfg.WarnBefore, casework.Lapsing},
		{cfg.LapseAfter - time.Second, casework.Lapsing},
	} {
		clk.now = t0.Add(c.after)
		h, st, err := s.Holder(ctx, "T-1")
		if err != nil || h == nil || st != c.want {
			t.Fatalf("after %s: holder %+v state %q (%v), want %q", c.after, h, st, err, c.want)
		}
	}
	if _, err := s.Claim(ctx, "T-1", "fr-versailles", "u2", ""); !errors.Is(err, casework.ErrClaimed) {
		t.Fatalf("claim of a lapsing target by another agency: %v, want ErrClaimed", err)
	}
	clk.now = t0.Add(cfg.LapseAfter)
	if h, _, err := s.Holder(ctx, "T-1"); err != nil || h != nil {
		t.Fatalf("after the lapse: holder %+v (%v), want none", h, err)
	}
	c, err := s.Claim(ctx, "T-1", "fr-versailles", "u2", "01 00 00 00 00")
	if err != nil || c.Agency != "fr-versailles" || !c.Since.Equal(clk.now) {
		t.Fatalf("claim after the lapse: %+v %v", c, err)
	}
	recs, _ := a.ClaimRecords(ctx, "T-1")
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	if got, want := kinds, []string{casework.RecordClaim, casework.RecordRefused, casework.RecordLapse, casework.RecordClaim}; len(got) != len(want) || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("records %v, want %v", got, want)
	}
}

// The holder's claim again renews it (Since kept); only the holder may
// release it, and then another agency may claim it.
func testRenewRelease(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	sa, sb := service(a, clk), service(b, clk)
	if _, err := sa.Claim(ctx, "T-2", "fr-lyon", "u1", "04 11"); err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * 24 * time.Hour)
	c, err := sa.Claim(ctx, "T-2", "fr-lyon", "u3", "")
	if err != nil || !c.Since.Equal(t0) || !c.Active.Equal(clk.Now()) || c.Contact != "04 11" || c.By != "u1" {
		t.Fatalf("renewal: %+v %v; want since %s, active now, contact and claimant kept", c, err, t0)
	}
	if _, err := sa.Claim(ctx, "", "fr-lyon", "u1", ""); !errors.Is(err, casework.ErrInput) {
		t.Fatalf("a claim without a target: %v", err)
	}
	if err := sb.Release(ctx, "T-2", "fr-versailles", "u2"); !errors.Is(err, casework.ErrNotHeld) {
		t.Fatalf("release by another agency: %v, want ErrNotHeld", err)
	}
	if err := sa.Release(ctx, "T-2", "fr-lyon", "u1"); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := sb.Holder(ctx, "T-2"); h != nil {
		t.Fatalf("released target still held: %+v", h)
	}
	if _, err := sb.Claim(ctx, "T-2", "fr-versailles", "u2", ""); err != nil {
		t.Fatalf("claim after the release: %v", err)
	}
}

// A hand-off moves the claim to the agency the target is handed to, on
// record; a target nobody claims stays unclaimed.
func testHandOff(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	sa := service(a, clk)
	if err := sa.HandOff(ctx, "T-3", "fr-lille", "analyst"); err != nil {
		t.Fatal(err)
	}
	if c, _ := b.ClaimOf(ctx, "T-3"); c != nil {
		t.Fatalf("a hand-off of an unclaimed target made a claim: %+v", c)
	}
	if _, err := sa.Claim(ctx, "T-3", "fr-lyon", "u1", "04"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	if err := sa.HandOff(ctx, "T-3", "fr-lille", "analyst"); err != nil {
		t.Fatal(err)
	}
	c, err := b.ClaimOf(ctx, "T-3")
	if err != nil || c == nil || c.Agency != "fr-lille" || !c.Since.Equal(clk.Now()) {
		t.Fatalf("after the hand-off: %+v (%v), want fr-lille's since now", c, err)
	}
	if _, err := service(b, clk).Claim(ctx, "T-3", "fr-lyon", "u1", ""); !errors.Is(err, casework.ErrClaimed) {
		t.Fatalf("the old holder claims again after the hand-off: %v, want ErrClaimed", err)
	}
	recs, _ := b.ClaimRecords(ctx, "T-3")
	if n := len(recs); n < 2 || recs[1].Kind != casework.RecordHandOff || recs[1].Note != "from fr-lyon" {
		t.Fatalf("records %+v, want the hand-off from fr-lyon", recs)
	}
}

// movement is where each target was last seen first-hand.
type movement map[string]string

func (m movement) NewestFirstHand(_ context.Context, target string) (string, time.Time, error) {
	return m[target], t0, nil
}

// A claimed target last seen first-hand in another jurisdiction gets one
// pending proposal to hand it off there (however often the check runs);
// an accepted one moves the claim, a declined one stays on record; a
// target still seen where it is held gets none.
func testProposal(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	s := service(a, clk)
	for _, tg := range []string{"T-4", "T-5", "T-6"} {
		if _, err := s.Claim(ctx, tg, "fr-lyon", "u1", "04"); err != nil {
			t.Fatal(err)
		}
	}
	moved := movement{"T-4": "fr-lille", "T-5": "fr-marseille", "T-6": "fr-lyon"}
	for round := range 2 {
		ps, err := s.ProposeHandOffs(ctx, a, moved)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{0: 2, 1: 0}[round]; len(ps) != want {
			t.Fatalf("round %d: %d proposals %+v, want %d", round, len(ps), ps, want)
		}
	}
	pending, err := b.Proposals(ctx, casework.Pending)
	if err != nil || len(pending) != 2 || pending[0].Target != "T-4" || pending[0].From != "fr-lyon" || pending[0].To != "fr-lille" {
		t.Fatalf("pending %+v (%v), want T-4 to fr-lille and T-5", pending, err)
	}
	sb := service(b, clk)
	if _, err := sb.DecideHandOff(ctx, b, "T-4", true, "analyst", "agreed by phone"); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.ClaimOf(ctx, "T-4"); c == nil || c.Agency != "fr-lille" {
		t.Fatalf("accepted hand-off: claim %+v, want fr-lille's", c)
	}
	if _, err := sb.DecideHandOff(ctx, b, "T-5", false, "lyon-chief", "search planned Monday"); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.ClaimOf(ctx, "T-5"); c == nil || c.Agency != "fr-lyon" {
		t.Fatalf("declined hand-off: claim %+v, want still fr-lyon's", c)
	}
	if _, err := sb.DecideHandOff(ctx, b, "T-6", true, "x", ""); !errors.Is(err, casework.ErrNoProposal) {
		t.Fatalf("deciding a proposal never made: %v", err)
	}
	all, _ := a.Proposals(ctx, "")
	if len(all) != 2 || all[0].State != casework.Accepted || all[1].State != casework.Declined || all[1].Note != "search planned Monday" || all[1].DecidedBy != "lyon-chief" {
		t.Fatalf("records %+v", all)
	}
}

// A proposal made while fr-lyon held the target, accepted after fr-lyon
// let it go and fr-marseille claimed it, must not take fr-marseille's claim
// away: it is refused, the claim stays fr-marseille's, and the proposal is
// kept as declined with why.
func testStaleProposal(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	s := service(a, clk)
	if _, err := s.Claim(ctx, "T-7", "fr-lyon", "u1", "04"); err != nil {
		t.Fatal(err)
	}
	if ps, err := s.ProposeHandOffs(ctx, a, movement{"T-7": "fr-lille"}); err != nil || len(ps) != 1 {
		t.Fatalf("proposals %+v, %v", ps, err)
	}
	clk.Add(time.Hour)
	if err := s.Release(ctx, "T-7", "fr-lyon", "u1"); err != nil {
		t.Fatal(err)
	}
	sb := service(b, clk)
	if _, err := sb.Claim(ctx, "T-7", "fr-marseille", "u2", "04 91"); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.DecideHandOff(ctx, b, "T-7", true, "analyst", "ok"); !errors.Is(err, casework.ErrStaleProposal) {
		t.Fatalf("accepting a proposal from fr-lyon while fr-marseille holds the target: %v, want ErrStaleProposal", err)
	}
	if c, _ := a.ClaimOf(ctx, "T-7"); c == nil || c.Agency != "fr-marseille" {
		t.Fatalf("claim %+v, want still fr-marseille's", c)
	}
	if pend, _ := a.Proposals(ctx, casework.Pending); len(pend) != 0 {
		t.Fatalf("pending %+v: the stale proposal should be closed", pend)
	}
}

// An agency working a case (its steps, its subscriber) is active on it: its
// claim does not lapse under it 30 days after it was taken, letting
// another agency claim the target and read the subscriber it entered.
func testCaseWorkIsActivity(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	s := service(a, clk)
	cases := &casework.Cases{Claims: s, Store: a}
	if _, err := s.Claim(ctx, "T-8", "fr-lyon", "u1", "04"); err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * 24 * time.Hour)
	if _, err := cases.Advance(ctx, "T-8", "fr-lyon", "u1", casework.StepISPRequest, "PV 1", nil); err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * 24 * time.Hour)
	if err := cases.SetSubscriber(ctx, "T-8", "fr-lyon", "u1", "lab subscriber alpha"); err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * 24 * time.Hour)
	sb := service(b, clk)
	if _, err := sb.Claim(ctx, "T-8", "fr-marseille", "u2", ""); !errors.Is(err, casework.ErrClaimed) {
		t.Fatalf("claim by fr-marseille 20 days after fr-lyon's last case work: %v, want refused", err)
	}
	if _, err := (&casework.Cases{Claims: sb, Store: b}).Subscriber(ctx, "T-8", "fr-marseille", false); !errors.Is(err, casework.ErrDenied) {
		t.Fatalf("fr-marseille reading fr-lyon's subscriber: %v, want ErrDenied", err)
	}
}

// Only the agency holding a target moves its case, forward, closing with
// outcomes; its subscriber is shown to that agency and the national
// office only, also after a hand-off (to the new holder, not the old).
func testCase(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	cases := &casework.Cases{Claims: service(a, clk), Store: b}
	const tg = "T-7"
	if _, err := cases.Advance(ctx, tg, "fr-lyon", "u1", casework.StepLead, "", nil); !errors.Is(err, casework.ErrNotHeld) {
		t.Fatalf("a step on an unclaimed target: %v, want ErrNotHeld", err)
	}
	if _, err := cases.Claims.Claim(ctx, tg, "fr-lyon", "u1", "04"); err != nil {
		t.Fatal(err)
	}
	for _, st := range []struct {
		step     string
		outcomes []string
		ok       bool
	}{
		{casework.StepLead, nil, true},
		{casework.StepISPRequest, nil, true},
		{casework.StepISPRequest, nil, true}, // a note on the same step
		{casework.StepLead, nil, false},      // backwards
		{"arrested", nil, false},
		{casework.StepSubscriber, []string{"arrest"}, false}, // outcomes close a case
		{casework.StepSubscriber, nil, true},
		{casework.StepSearch, nil, true},
		{casework.StepClosed, nil, false}, // without its outcome
		{casework.StepClosed, []string{"arrest", "devices_seized"}, true},
		{casework.StepSearch, nil, false}, // after the close
	} {
		clk.Add(time.Hour)
		_, err := cases.Advance(ctx, tg, "fr-lyon", "u1", st.step, "note "+st.step, st.outcomes)
		if st.ok != (err == nil) {
			t.Fatalf("step %s %v: %v, want ok=%v", st.step, st.outcomes, err, st.ok)
		}
	}
	steps, err := a.CaseSteps(ctx, tg)
	if err != nil || len(steps) != 6 || steps[5].Step != casework.StepClosed || len(steps[5].Outcomes) != 2 || !steps[1].At.After(steps[0].At) {
		t.Fatalf("steps %+v (%v)", steps, err)
	}
	const details = "synthetic subscriber 0001, 1 rue de l'Exemple"
	if err := cases.SetSubscriber(ctx, tg, "fr-versailles", "u2", details); !errors.Is(err, casework.ErrNotHeld) {
		t.Fatalf("a subscriber entered by an agency not holding the target: %v", err)
	}
	if err := cases.SetSubscriber(ctx, tg, "fr-lyon", "u1", details); err != nil {
		t.Fatal(err)
	}
	for _, who := range []struct {
		agency   string
		national bool
		ok       bool
	}{{"fr-lyon", false, true}, {"ocrvp", true, true}, {"fr-versailles", false, false}} {
		sub, err := cases.Subscriber(ctx, tg, who.agency, who.national)
		if who.ok && (err != nil || sub == nil || sub.Details != details) || !who.ok && (!errors.Is(err, casework.ErrDenied) || sub != nil) {
			t.Fatalf("subscriber for %s (national %v): %+v %v", who.agency, who.national, sub, err)
		}
	}
	if err := cases.Claims.HandOff(ctx, tg, "fr-versailles", "analyst"); err != nil {
		t.Fatal(err)
	}
	if _, err := cases.Subscriber(ctx, tg, "fr-lyon", false); !errors.Is(err, casework.ErrDenied) {
		t.Fatalf("the old holder reads the subscriber after the hand-off: %v", err)
	}
	if sub, err := cases.Subscriber(ctx, tg, "fr-versailles", false); err != nil || sub == nil {
		t.Fatalf("the new holder: %+v %v", sub, err)
	}
}

// A curious service waits for a claim to lapse, claims the target and
// asks for the subscriber another service identified: refused, and told
// whom to ask. A hand-off from the service that entered it passes it on
// (along a chain of hand-offs); a lapse or a release breaks the chain.
func testSubscriberAfterLapse(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	cases := &casework.Cases{Claims: service(a, clk), Store: a}
	const tg = "T-9"
	if _, err := cases.Claims.Claim(ctx, tg, "fr-lyon", "u1", "04"); err != nil {
		t.Fatal(err)
	}
	if err := cases.SetSubscriber(ctx, tg, "fr-lyon", "u1", "synthetic subscriber 0009"); err != nil {
		t.Fatal(err)
	}
	clk.Add(31 * 24 * time.Hour) // lapsed
	other := &casework.Cases{Claims: service(b, clk), Store: b}
	if _, err := other.Claims.Claim(ctx, tg, "fr-marseille", "u3", ""); err != nil {
		t.Fatalf("claim after the lapse: %v", err)
	}
	sub, err := other.Subscriber(ctx, tg, "fr-marseille", false)
	if !errors.Is(err, casework.ErrDenied) || sub != nil || !strings.Contains(err.Error(), "fr-lyon") {
		t.Fatalf("the claimant after a lapse reads fr-lyon's subscriber: %+v %v, want ErrDenied naming fr-lyon", sub, err)
	}
	if sub, err := other.Subscriber(ctx, tg, "ocrvp", true); err != nil || sub == nil {
		t.Fatalf("the national office: %+v %v", sub, err)
	}
	// Marseille hands it back to Lyon, which hands it to Versailles: Lyon
	// reads its own; Versailles got it from Lyon and reads it too.
	if err := other.Claims.HandOff(ctx, tg, "fr-lyon", "analyst"); err != nil {
		t.Fatal(err)
	}
	if sub, err := other.Subscriber(ctx, tg, "fr-lyon", false); err != nil || sub == nil {
		t.Fatalf("the agency that entered it, holding again: %+v %v", sub, err)
	}
	clk.Add(time.Hour)
	if err := other.Claims.HandOff(ctx, tg, "fr-versailles", "analyst"); err != nil {
		t.Fatal(err)
	}
	if sub, err := other.Subscriber(ctx, tg, "fr-versailles", false); err != nil || sub == nil {
		t.Fatalf("handed off by the agency that entered it: %+v %v", sub, err)
	}
}

// Lyon claimed T-21; the analysis then merged T-21 into T-20 (one
// person). Marseille's claim on T-20 is refused naming Lyon, and the
// refusal is on T-21's record; Lyon works the case under T-20 and keeps
// it; releasing T-20 lets the person go; a hand-off moves the claim.
func testMergedClaim(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	merged := func(_ context.Context, target string) ([]string, error) {
		if target == "T-20" {
			return []string{"T-21"}, nil
		}
		return nil, nil
	}
	lyon, marseille := service(a, clk), service(b, clk)
	lyon.Merged, marseille.Merged = merged, merged
	if _, err := lyon.Claim(ctx, "T-21", "fr-lyon", "u1", "04"); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	var ce *casework.ClaimedError
	if _, err := marseille.Claim(ctx, "T-20", "fr-marseille", "u3", ""); !errors.As(err, &ce) || ce.Holder.Agency != "fr-lyon" {
		t.Fatalf("claim on the merged target while Lyon holds its older id: %v, want refused naming fr-lyon", err)
	}
	if recs, err := b.ClaimRecords(ctx, "T-21"); err != nil || recs[len(recs)-1].Kind != casework.RecordRefused || recs[len(recs)-1].Agency != "fr-marseille" {
		t.Fatalf("records of T-21: %+v %v, want Marseille's refusal last", recs, err)
	}
	if h, _, err := marseille.Holder(ctx, "T-20"); err != nil || h == nil || h.Agency != "fr-lyon" {
		t.Fatalf("holder of T-20: %+v %v, want fr-lyon", h, err)
	}
	cases := &casework.Cases{Claims: lyon, Store: a}
	if _, err := cases.Advance(ctx, "T-20", "fr-lyon", "u1", casework.StepLead, "", nil); err != nil {
		t.Fatalf("Lyon's case step on the merged target: %v", err)
	}
	if err := marseille.HandOff(ctx, "T-20", "fr-lille", "analyst"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"T-20", "T-21"} {
		if c, _ := a.ClaimOf(ctx, id); c == nil || c.Agency != "fr-lille" {
			t.Fatalf("after the hand-off, %s held by %+v, want fr-lille", id, c)
		}
	}
	if err := lyon.Release(ctx, "T-20", "fr-lille", "u9"); err != nil {
		t.Fatal(err)
	}
	if h, _, err := lyon.Holder(ctx, "T-20"); err != nil || h != nil {
		t.Fatalf("after the release: %+v %v, want nobody", h, err)
	}
	if _, err := marseille.Claim(ctx, "T-20", "fr-marseille", "u3", ""); err != nil {
		t.Fatalf("claim after the release: %v", err)
	}
}

// Two services claimed two ids before the analysis merged them into one
// person. A hand-off proposed from one of them (Marseille, holding the
// target's own id) and accepted moves Marseille's claim only: Lyon's
// claim on the merged id is not taken from it by a proposal it never
// saw (hostile case: a hand-off that takes a claim from its holder).
func testHandOffLeavesMergedClaim(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	lyon, marseille := service(a, clk), service(b, clk)
	if _, err := lyon.Claim(ctx, "T-31", "fr-lyon", "u1", "04"); err != nil {
		t.Fatal(err)
	}
	if _, err := marseille.Claim(ctx, "T-30", "fr-marseille", "u3", "04 91"); err != nil {
		t.Fatal(err)
	}
	// The analysis merges T-31 into T-30 afterwards.
	merged := func(_ context.Context, target string) ([]string, error) {
		if target == "T-30" {
			return []string{"T-31"}, nil
		}
		return nil, nil
	}
	lyon.Merged, marseille.Merged = merged, merged
	clk.Add(time.Hour)
	if ps, err := marseille.ProposeHandOffs(ctx, b, movement{"T-30": "fr-lille"}); err != nil || len(ps) != 1 || ps[0].From != "fr-marseille" {
		t.Fatalf("proposals %+v, %v: want one from fr-marseille", ps, err)
	}
	if _, err := marseille.DecideHandOff(ctx, b, "T-30", true, "analyst", "agreed"); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.ClaimOf(ctx, "T-30"); c == nil || c.Agency != "fr-lille" {
		t.Fatalf("T-30 held by %+v, want fr-lille (Marseille's claim handed off)", c)
	}
	if c, _ := a.ClaimOf(ctx, "T-31"); c == nil || c.Agency != "fr-lyon" {
		t.Fatalf("T-31 held by %+v after Marseille's hand-off was accepted, want still fr-lyon's", c)
	}
}

// interleaved is a store whose every call of the accepting service runs,
// before the call number at, what another service does meanwhile: so
// that the suite tries each point between an accept's reads and writes.
type interleaved struct {
	Store
	calls, at int
	meanwhile func()
}

func (s *interleaved) step() {
	if s.calls++; s.calls == s.at {
		s.meanwhile()
	}
}

func (s *interleaved) ClaimOf(ctx context.Context, target string) (*casework.Claim, error) {
	s.step()
	return s.Store.ClaimOf(ctx, target)
}

func (s *interleaved) Proposals(ctx context.Context, state string) ([]casework.Proposal, error) {
	s.step()
	return s.Store.Proposals(ctx, state)
}

func (s *interleaved) DecideHandOff(ctx context.Context, target, state, by, note string, at time.Time) (casework.Proposal, error) {
	s.step()
	return s.Store.DecideHandOff(ctx, target, state, by, note, at)
}

func (s *interleaved) AcceptHandOff(ctx context.Context, target, by, note string, at time.Time) (casework.Proposal, error) {
	s.step()
	return s.Store.AcceptHandOff(ctx, target, by, note, at)
}

func (s *interleaved) HandOffClaim(ctx context.Context, target, from, to, by string, at time.Time) error {
	s.step()
	return s.Store.HandOffClaim(ctx, target, from, to, by, at)
}

// checkMoves fails t unless every hand-off on target's record is an
// accepted proposal's, each accepted proposal moving the claim at most
// once, and the stored claim is the one the records end with.
func checkMoves(t *testing.T, s Store, target string) {
	t.Helper()
	ctx := context.Background()
	recs, err := s.ClaimRecords(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.Proposals(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	accepted := map[string]int{}
	for _, p := range all {
		if p.Target == target && p.State == casework.Accepted {
			accepted["from "+p.From+" to "+p.To]++
		}
	}
	holder := ""
	for _, r := range recs {
		switch r.Kind {
		case casework.RecordHandOff:
			move := r.Note + " to " + r.Agency
			if accepted[move] == 0 {
				t.Fatalf("%s: hand-off %q on record, not an accepted proposal's (or one accepted proposal moved the claim twice); records %+v, proposals %+v", target, move, recs, all)
			}
			accepted[move]--
			holder = r.Agency
		case casework.RecordClaim, casework.RecordLapse:
			if r.Kind == casework.RecordClaim {
				holder = r.Agency
			}
		case casework.RecordRelease:
			holder = ""
		}
	}
	c, err := s.ClaimOf(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if got := ""; c != nil && c.Agency != holder || c == nil && holder != "" {
		if c != nil {
			got = c.Agency
		}
		t.Fatalf("%s: claim held by %q, the records end with %q: %+v", target, got, holder, recs)
	}
}

// Lyon holds a target and a hand-off to Lille is proposed; while it is
// being accepted, Lyon lets the target go and Marseille claims it, or a
// second proposal is made and accepted, at every point between the
// accept's reads and writes. The accept never moves Marseille's claim,
// nor moves a claim twice: it is accepted whole before, or found stale.
func testAcceptInterleaved(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	other := service(b, clk)
	for _, kind := range []string{"release and claim", "second proposal"} {
		for at := 1; at <= 6; at++ {
			tg := fmt.Sprintf("T-50-%d-%d", len(kind), at)
			if _, err := other.Claim(ctx, tg, "fr-lyon", "u1", "04"); err != nil {
				t.Fatal(err)
			}
			if ps, err := other.ProposeHandOffs(ctx, b, movement{tg: "fr-lille"}); err != nil || len(ps) != 1 {
				t.Fatalf("proposals %+v, %v", ps, err)
			}
			ran := false
			meanwhile := func() {
				ran = true
				if kind == "release and claim" {
					if err := other.Release(ctx, tg, "fr-lyon", "u1"); err != nil && !errors.Is(err, casework.ErrNotHeld) {
						t.Error(err)
					}
					if _, err := other.Claim(ctx, tg, "fr-marseille", "u3", "04 91"); err != nil && !errors.Is(err, casework.ErrClaimed) {
						t.Error(err)
					}
					return
				}
				if _, err := other.ProposeHandOffs(ctx, b, movement{tg: "fr-paris"}); err != nil {
					t.Error(err)
				}
				if _, err := other.DecideHandOff(ctx, b, tg, true, "paris-analyst", "second"); err != nil &&
					!errors.Is(err, casework.ErrNoProposal) && !errors.Is(err, casework.ErrStaleProposal) {
					t.Error(err)
				}
			}
			st := &interleaved{Store: a, at: at, meanwhile: meanwhile}
			_, err := service(st, clk).DecideHandOff(ctx, st, tg, true, "analyst", "agreed")
			if err != nil && !errors.Is(err, casework.ErrNoProposal) && !errors.Is(err, casework.ErrStaleProposal) {
				t.Fatalf("%s at call %d: %v", kind, at, err)
			}
			if !ran {
				meanwhile()
			}
			checkMoves(t, a, tg)
			if c, _ := a.ClaimOf(ctx, tg); kind == "release and claim" && c != nil && c.Agency == "fr-lille" {
				if recs, _ := a.ClaimRecords(ctx, tg); len(recs) < 2 || recs[1].Note != "from fr-lyon" {
					t.Fatalf("%s at call %d: Lille holds the target, not by Lyon's hand-off: %+v", kind, at, recs)
				}
			}
		}
	}
}

// Many accepts of one proposal race, from two processes, with Lyon
// releasing the target and Marseille claiming it, and a second proposal
// made and accepted: the claim moves at most once per accepted proposal,
// only from the agency that proposed, and ends where the records say.
func testAcceptRace(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	for round := range 12 {
		tg := fmt.Sprintf("T-60-%d", round)
		sa, sb := service(a, clk), service(b, clk)
		if _, err := sa.Claim(ctx, tg, "fr-lyon", "u1", "04"); err != nil {
			t.Fatal(err)
		}
		if ps, err := sa.ProposeHandOffs(ctx, a, movement{tg: "fr-lille"}); err != nil || len(ps) != 1 {
			t.Fatalf("proposals %+v, %v", ps, err)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		fine := func(err error) {
			if err != nil && !errors.Is(err, casework.ErrNoProposal) && !errors.Is(err, casework.ErrStaleProposal) &&
				!errors.Is(err, casework.ErrNotHeld) && !errors.Is(err, casework.ErrClaimed) {
				errs <- err
			}
		}
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				s, st := sa, a
				if i%2 == 1 {
					s, st = sb, b
				}
				_, err := s.DecideHandOff(ctx, st, tg, true, fmt.Sprintf("analyst-%d", i), "agreed")
				fine(err)
			}()
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			fine(sb.Release(ctx, tg, "fr-lyon", "u1"))
			_, err := sb.Claim(ctx, tg, "fr-marseille", "u3", "04 91")
			fine(err)
		}()
		go func() {
			defer wg.Done()
			<-start
			_, err := sa.ProposeHandOffs(ctx, a, movement{tg: "fr-paris"})
			fine(err)
			_, err = sa.DecideHandOff(ctx, a, tg, true, "paris-analyst", "second")
			fine(err)
		}()
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		checkMoves(t, b, tg)
	}
}
