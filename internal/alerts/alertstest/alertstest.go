// Package alertstest is the contract of alerts.Store: one suite a store
// runs in its own tests, driving the real analysis Engine, the claims and
// the alerts' Evaluator and Worker over it, with synthetic observations
// and a clock the suite moves. Two handles on one store stand for two
// processes.
package alertstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/notify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Store is what the suite drives.
type Store interface {
	alerts.Store
	analysis.Backend
	casework.Store
	audit.Store
	InsertObservations(ctx context.Context, obs []observe.Observation) error
}

// Run runs the contract. open returns two handles on one new, empty
// store, closed when t ends.
func Run(t *testing.T, open func(t *testing.T) (Store, Store)) {
	t.Run("ListSeenFiresOncePerEvent", func(t *testing.T) { testListSeen(t, open) })
	t.Run("TargetRulesFireOncePerEvent", func(t *testing.T) { testTargetRules(t, open) })
	t.Run("HeldTargetAtANewAddress", func(t *testing.T) { testHeldNewAddress(t, open) })
	t.Run("NewAddressAlertGivesThatAddressesLevel", func(t *testing.T) { testNewAddressLevel(t, open) })
	t.Run("RateLimitHoldsAndSummarises", func(t *testing.T) { testRateLimit(t, open) })
	t.Run("RateLimitHoldsUnderConcurrentRecords", func(t *testing.T) { testRateLimitRace(t, open) })
	t.Run("RetriesUntilDeliveredAndStopsOnPermanent", func(t *testing.T) { testRetries(t, open) })
	t.Run("AnotherAgencysRuleSeesNothingOfA", func(t *testing.T) { testNeedToKnow(t, open) })
	t.Run("AnotherAgencysWebhookNeverGetsTheAlert", func(t *testing.T) { testWebhookAgency(t, open) })
	t.Run("RulesBelongToTheirAgency", func(t *testing.T) { testRules(t, open) })
	t.Run("ARemovedRulesIDIsNotReused", func(t *testing.T) { testRuleIDReuse(t, open) })
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

// Agencies of the suite: A's jurisdiction (Versailles) and B's (Lyon).
const (
	AgencyA = "fr-versailles"
	AgencyB = "fr-lyon"
)

func userHash(b byte) []byte {
	h := bytes.Repeat([]byte{b}, 16)
	h[5], h[14] = 14, 111
	return h
}

// probe is a first-hand eD2K observation of file at ep, routed to agency,
// the client saying user hash uh (one uh links addresses into a target).
func probe(ep string, file int, uh []byte, agency string, at time.Time) observe.Observation {
	ap := netip.MustParseAddrPort(ep)
	b := make([]byte, 16)
	b[0], b[1], b[2] = 0xED, byte(file>>8), byte(file)
	list := []observe.Match{{List: "national", Category: "1"}}
	if file%2 == 1 {
		list = []observe.Match{{List: "regional", Category: "2"}}
	}
	sub := "78"
	if agency == AgencyB {
		sub = "69"
	}
	return observe.Observation{
		ID: observe.NewID(at), Sensor: observe.Sensor{ID: "ed2k-lab-1"}, Network: observe.NetED2K, Method: observe.MethodPeerProbe, Time: at,
		Item:         observe.Item{Hash: hashkind.MustNew(hashkind.ED2K, b), Matched: list},
		Endpoint:     observe.Endpoint{IP: ap.Addr(), Port: ap.Port(), Transport: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:4662")},
		Client:       observe.Client{Name: "aMule", Version: "2.3.3", ListenPort: ap.Port(), UserHash: uh},
		Possession:   observe.Possession{Level: observe.Complete, PiecesHave: 1, PiecesTotal: 1},
		Transcript:   observe.Transcript{SHA256: bytes.Repeat([]byte{byte(file), byte(at.Unix())}, 16)},
		Place:        observe.Place{Country: "FR", Subdivisions: []string{"X", sub}, ASN: 64512, Org: "Lab Telecom"},
		Jurisdiction: observe.Jurisdiction{Agency: agency, Rule: "test"},
	}
}

// world is a store, its engine and the suite's clock.
type world struct {
	t       *testing.T
	st, st2 Store
	clk     *clock
	eng     *analysis.Engine
}

func newWorld(t *testing.T, open func(t *testing.T) (Store, Store)) *world {
	a, b := open(t)
	w := &world{t: t, st: a, st2: b, clk: &clock{now: t0}}
	cfg := analysis.DefaultConfig()
	cfg.Now = w.clk.Now
	cfg.SaveInterval = 0
	e, err := analysis.New(context.Background(), a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.eng = e
	return w
}

// add stores obs and lets the analysis see them.
func (w *world) add(obs ...observe.Observation) {
	w.t.Helper()
	ctx := context.Background()
	if err := w.st.InsertObservations(ctx, obs); err != nil {
		w.t.Fatal(err)
	}
	if err := w.eng.Add(ctx, obs); err != nil {
		w.t.Fatal(err)
	}
	if err := w.eng.Flush(ctx); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) evaluator(st Store) *alerts.Evaluator {
	return &alerts.Evaluator{Store: st, Source: st, Config: alerts.DefaultConfig(), Now: w.clk.Now}
}

func (w *world) evaluate(st Store) alerts.Pass {
	w.t.Helper()
	p, err := w.evaluator(st).Evaluate(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) rule(r alerts.Rule) alerts.Rule {
	w.t.Helper()
	if r.MaxPerHour == 0 {
		r.MaxPerHour = 1000
	}
	if r.Created.IsZero() {
		r.Created = w.clk.Now()
	}
	r.By = "suite"
	_, top, err := w.st.AnalysisSeqs(context.Background(), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	r.FromSeq = top
	if err := r.Validate(); err != nil {
		w.t.Fatal(err)
	}
	if err := w.st.AddAlertRule(context.Background(), r); err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *world) alerts(agency string) []alerts.Alert {
	w.t.Helper()
	as, err := w.st.AgencyAlerts(context.Background(), alerts.Query{Agency: agency, Limit: 10000})
	if err != nil {
		w.t.Fatal(err)
	}
	return as
}

func countRule(as []alerts.Alert, rule string) int {
	n := 0
	for _, a := range as {
		if a.Rule == rule {
			n++
		}
	}
	return n
}

// Each list_seen event (an observation of the list routed to the rule's
// agency, after the rule was made) fires once: evaluated again, by a
// restarted evaluator, by two evaluators at once on two handles, and when
// the watermark is replayed (an event recorded again changes nothing).
func testListSeen(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	w := newWorld(t, open)
	w.add(probe("203.0.113.1:4662", 0, userHash(1), AgencyA, t0)) // before the rule: no alert
	r := w.rule(alerts.Rule{ID: "nat-a", Agency: AgencyA, Kind: alerts.KindListSeen, Params: alerts.Params{List: "national"}})
	var obs []observe.Observation
	want := 0
	for i := range 12 {
		ag := AgencyA
		if i%3 == 2 {
			ag = AgencyB
		}
		o := probe(fmt.Sprintf("203.0.113.%d:4662", 10+i), i, userHash(byte(10+i)), ag, t0.Add(time.Duration(i+1)*time.Minute))
		if ag == AgencyA && i%2 == 0 {
			want++
		}
		obs = append(obs, o)
	}
	w.add(obs...)
	var wg sync.WaitGroup
	for _, st := range []Store{w.st, w.st2} {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = w.evaluator(st).Evaluate(ctx) }()
	}
	wg.Wait()
	w.evaluate(w.st)  // again
	w.evaluate(w.st2) // a restarted evaluator on another handle
	if got := countRule(w.alerts(AgencyA), r.ID); got != want {
		t.Fatalf("list_seen alerts: %d, want %d (one per matching observation routed to A after the rule)", got, want)
	}
	if got := len(w.alerts(AgencyB)); got != 0 {
		t.Fatalf("agency B got %d alerts of A's rule", got)
	}
	// A replay: every event recorded again changes nothing.
	for _, a := range w.alerts(AgencyA) {
		a.Created = w.clk.Now()
		ins, _, err := w.st2.RecordAlert(ctx, a, r.Channels(), r.MaxPerHour, time.Hour)
		if err != nil || ins {
			t.Fatalf("replayed alert %s: inserted %v, %v", a.Event, ins, err)
		}
	}
	for _, a := range w.alerts(AgencyA) {
		if a.Content.List != "national" || a.Content.Level != "complete" || a.Target != "" || a.Content.Address != "" {
			t.Fatalf("list_seen alert %+v: want the list and level, no target or address", a)
		}
	}
}

// score_passed fires once per target of the agency at or above the
// score; flagged_active once per day a flagged target is seen after the
// rule was made.
func testTargetRules(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	w := newWorld(t, open)
	w.add(probe("203.0.113.1:4662", 0, userHash(1), AgencyA, t0), probe("203.0.113.2:4662", 2, userHash(2), AgencyA, t0),
		probe("198.51.100.1:4662", 4, userHash(3), AgencyB, t0))
	ts, _, err := w.st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{All: true}, Limit: 10})
	if err != nil || len(ts) != 3 {
		t.Fatalf("targets: %d, %v", len(ts), err)
	}
	score := ts[len(ts)-1].Score / 2
	sr := w.rule(alerts.Rule{ID: "score-a", Agency: AgencyA, Kind: alerts.KindScorePassed, Params: alerts.Params{Score: score}})
	fr := w.rule(alerts.Rule{ID: "flag-a", Agency: AgencyA, Kind: alerts.KindFlaggedActive, Created: t0.Add(-time.Hour)})
	var flagged string
	for _, tg := range ts {
		if tg.Jurisdiction == AgencyA {
			flagged = tg.ID
			break
		}
	}
	if err := w.eng.SetFlag(ctx, flagged, analysis.FlagKnownOffender, true, "suite", "test"); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.evaluate(w.st)
		w.evaluate(w.st2)
	}
	as := w.alerts(AgencyA)
	if got := countRule(as, sr.ID); got != 2 {
		t.Fatalf("score_passed alerts: %d, want 2 (A's two targets, once each)", got)
	}
	if got := countRule(as, fr.ID); got != 1 {
		t.Fatalf("flagged_active alerts: %d, want 1", got)
	}
	// Seen again the next day: one more flagged_active alert, and none
	// more of the score.
	w.clk.Add(24 * time.Hour)
	w.add(probe("203.0.113.1:4662", 6, userHash(1), AgencyA, t0.Add(24*time.Hour)),
		probe("203.0.113.2:4662", 6, userHash(2), AgencyA, t0.Add(24*time.Hour)))
	w.evaluate(w.st2)
	w.evaluate(w.st)
	as = w.alerts(AgencyA)
	if got := countRule(as, fr.ID); got != 2 {
		t.Fatalf("flagged_active alerts after a new day: %d, want 2", got)
	}
	if got := countRule(as, sr.ID); got != 2 {
		t.Fatalf("score_passed alerts after a new day: %d, want still 2", got)
	}
	for _, a := range as {
		if a.Target == "" || a.Content.Level == "" {
			t.Fatalf("alert %+v: want its target and level", a)
		}
	}
}

// held_new_address fires once per address first seen after the claim,
// never for the addresses known before it.
func testHeldNewAddress(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	w := newWorld(t, open)
	uh := userHash(7)
	w.add(probe("203.0.113.7:4662", 0, uh, AgencyA, t0))
	ts, _, err := w.st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{All: true}, Limit: 10})
	if err != nil || len(ts) != 1 {
		t.Fatalf("targets: %d, %v", len(ts), err)
	}
	w.clk.Add(time.Hour)
	if _, err := w.st.TakeClaim(ctx, casework.Claim{Target: ts[0].ID, Agency: AgencyA, By: "suite", Since: w.clk.Now(), Active: w.clk.Now()}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	r := w.rule(alerts.Rule{ID: "held-a", Agency: AgencyA, Kind: alerts.KindHeldNewAddress})
	w.evaluate(w.st)
	if got := countRule(w.alerts(AgencyA), r.ID); got != 0 {
		t.Fatalf("alerts before a new address: %d, want 0", got)
	}
	w.clk.Add(time.Hour)
	w.add(probe("203.0.113.77:4662", 2, uh, AgencyA, w.clk.Now()), probe("203.0.113.77:4663", 2, uh, AgencyA, w.clk.Now().Add(time.Minute)))
	for range 2 {
		w.evaluate(w.st)
		w.evaluate(w.st2)
	}
	as := w.alerts(AgencyA)
	if got := countRule(as, r.ID); got != 1 {
		t.Fatalf("held_new_address alerts: %d, want 1 (one new IP, two ports)", got)
	}
	if as[0].Content.Address != "203.0.113.77" {
		t.Fatalf("alert address %q, want 203.0.113.77", as[0].Content.Address)
	}
	// The claim lapses (its last activity 30 days ago, as a renewal with
	// that date records): an address first seen after that is not one of
	// "a target you hold".
	if _, err := w.st.TakeClaim(ctx, casework.Claim{Target: ts[0].ID, Agency: AgencyA, By: "suite", Active: w.clk.Now().Add(-30*24*time.Hour + time.Minute)}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	w.clk.Add(time.Hour)
	w.add(probe("203.0.113.78:4662", 2, uh, AgencyA, w.clk.Now()))
	w.evaluate(w.st)
	if got := countRule(w.alerts(AgencyA), r.ID); got != 1 {
		t.Fatalf("held_new_address alerts after the claim lapsed: %d, want still 1", got)
	}
}

// A rule sends at most MaxPerHour alerts an hour: the surplus is
// recorded held (never lost), and summarised once the hour has room.
func testRateLimit(t *testing.T, open func(t *testing.T) (Store, Store)) {
	w := newWorld(t, open)
	r := w.rule(alerts.Rule{ID: "limited", Agency: AgencyA, Kind: alerts.KindListSeen, Params: alerts.Params{Category: "1"},
		MaxPerHour: 3, Webhooks: []string{"hook"}})
	var obs []observe.Observation
	for i := range 10 {
		obs = append(obs, probe(fmt.Sprintf("203.0.113.%d:4662", 10+i), 2*i, userHash(byte(10+i)), AgencyA, t0.Add(time.Duration(i)*time.Minute)))
	}
	w.add(obs...)
	// Two processes at once count against one limit.
	ps := make([]alerts.Pass, 2)
	var wg sync.WaitGroup
	for i, st := range []Store{w.st, w.st2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if ps[i], err = w.evaluator(st).Evaluate(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p := (alerts.Pass{Recorded: ps[0].Recorded + ps[1].Recorded, Held: ps[0].Held + ps[1].Held, Summaries: ps[0].Summaries + ps[1].Summaries}); p.Recorded != 10 || p.Held != 7 || p.Summaries != 0 {
		t.Fatalf("passes %+v: want 10 recorded, 7 held, no summary within the hour", ps)
	}
	ds, err := w.st.Deliveries(context.Background(), AgencyA, 100)
	if err != nil || len(ds) != 3 {
		t.Fatalf("deliveries %d (%v), want 3", len(ds), err)
	}
	w.clk.Add(61 * time.Minute)
	p := w.evaluate(w.st2)
	if p.Summaries != 1 {
		t.Fatalf("pass %+v: want one summary once the hour has room", p)
	}
	w.evaluate(w.st)
	as := w.alerts(AgencyA)
	held, sums := 0, 0
	for _, a := range as {
		if a.Held {
			held++
			if a.Summary == "" {
				t.Fatalf("held alert %s counted by no summary", a.ID)
			}
		}
		if a.SummaryOf > 0 {
			sums++
			if a.SummaryOf != 7 || a.Content.Held != 7 {
				t.Fatalf("summary %+v: want 7 held", a)
			}
		}
	}
	if held != 7 || sums != 1 || len(as) != 11 {
		t.Fatalf("alerts %d, held %d, summaries %d: want 11, 7, 1", len(as), held, sums)
	}
	if ds, _ := w.st.Deliveries(context.Background(), AgencyA, 100); len(ds) != 4 {
		t.Fatalf("deliveries %d, want 4 (3 alerts and the summary)", len(ds))
	}
	_ = r
}

// Many events of one rule recorded at once through two handles: exactly
// the limit is sent, the rest held, each event once.
func testRateLimitRace(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	now := t0
	const n, limit = 40, 3
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ev := fmt.Sprintf("obs:%d", i%(n/2)) // each event twice
			al := alerts.Alert{ID: alerts.AlertID("race", ev), Rule: "race", Agency: AgencyA, Kind: alerts.KindListSeen, Event: ev, At: now, Created: now, Subject: "s"}
			if _, _, err := st.RecordAlert(ctx, al, []string{"webhook:w"}, limit, time.Hour); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	as, err := a.AgencyAlerts(ctx, alerts.Query{Agency: AgencyA, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, al := range as {
		if !al.Held {
			sent++
		}
	}
	ds, err := b.Deliveries(ctx, AgencyA, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != n/2 || sent != limit || len(ds) != limit {
		t.Fatalf("%d alerts, %d sent, %d deliveries: want %d, %d, %d", len(as), sent, len(ds), n/2, limit, limit)
	}
}

// flaky fails its first n sends, then succeeds; it records every message.
type flaky struct {
	mu   sync.Mutex
	n    int
	err  error
	msgs []notify.Message
}

func (f *flaky) Send(_ context.Context, m notify.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, m)
	if f.n > 0 {
		f.n--
		return f.err
	}
	return nil
}

// A delivery is retried with backoff until the sender takes it; one that
// fails permanently is not retried; one that keeps failing is given up
// after MaxAttempts. Each sending is audited first.
func testRetries(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	w := newWorld(t, open)
	good := &flaky{n: 2, err: errors.New("connection refused")}
	bad := &flaky{n: 100, err: fmt.Errorf("%w: 404", notify.ErrPermanent)}
	down := &flaky{n: 100, err: errors.New("timeout")}
	w.rule(alerts.Rule{ID: "r", Agency: AgencyA, Kind: alerts.KindListSeen, Params: alerts.Params{List: "national"},
		Webhooks: []string{"good", "bad", "down"}})
	w.add(probe("203.0.113.5:4662", 0, userHash(5), AgencyA, t0))
	w.evaluate(w.st)
	cfg := alerts.DefaultConfig()
	cfg.MaxAttempts = 4
	wk := &alerts.Worker{Store: w.st2, Audit: &audit.Log{Store: w.st2, Now: w.clk.Now}, Config: cfg, Now: w.clk.Now,
		Channels: alerts.Channels{Webhooks: map[string]alerts.Webhook{"good": {Sender: good, Agency: AgencyA}, "bad": {Sender: bad, Agency: AgencyA},
			"down": {Sender: down, Agency: AgencyA}}}}
	for range 10 {
		if _, err := wk.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		w.clk.Add(cfg.MaxBackoff)
	}
	ds, err := w.st.Deliveries(ctx, AgencyA, 10)
	if err != nil || len(ds) != 3 {
		t.Fatalf("deliveries %d, %v", len(ds), err)
	}
	out := map[string]alerts.Delivery{}
	for _, d := range ds {
		out[d.Channel] = d
	}
	if d := out["webhook:good"]; d.Outcome != alerts.Delivered || d.Attempts != 3 || len(good.msgs) != 3 {
		t.Fatalf("flaky sender's delivery %+v (%d sends): want delivered at the third attempt", d, len(good.msgs))
	}
	if good.msgs[0].ID != good.msgs[2].ID || good.msgs[0].ID != out["webhook:good"].ID {
		t.Fatalf("retries of one delivery carry ids %s and %s: want one id", good.msgs[0].ID, good.msgs[2].ID)
	}
	if d := out["webhook:bad"]; d.Outcome != alerts.Failed || d.Attempts != 1 || len(bad.msgs) != 1 {
		t.Fatalf("permanent failure %+v (%d sends): want failed after one attempt", d, len(bad.msgs))
	}
	if d := out["webhook:down"]; d.Outcome != alerts.GaveUp || d.Attempts != 4 || len(down.msgs) != 4 {
		t.Fatalf("sender down %+v (%d sends): want given up after 4", d, len(down.msgs))
	}
	n := 0
	if err := w.st.AuditRecords(ctx, audit.Filter{Action: alerts.ActionAlertSend}, func(r audit.Record) error {
		if r.ActorAgency != AgencyA {
			t.Fatalf("audit record %+v: want agency A", r)
		}
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 3+1+4 {
		t.Fatalf("audit records of sendings: %d, want 8 (one per attempt)", n)
	}
}

// Agency B's rules never yield anything about a target only A may read,
// whatever their parameters say; a jurisdiction parameter naming another
// agency is refused, and one forged into the store finds nothing.
func testNeedToKnow(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	w := newWorld(t, open)
	for _, k := range []alerts.Rule{
		{ID: "b-list", Agency: AgencyB, Kind: alerts.KindListSeen, Params: alerts.Params{List: "national"}},
		{ID: "b-score", Agency: AgencyB, Kind: alerts.KindScorePassed, Params: alerts.Params{Score: 0.001}},
		{ID: "b-flag", Agency: AgencyB, Kind: alerts.KindFlaggedActive, Created: t0.Add(-time.Hour)},
		{ID: "b-held", Agency: AgencyB, Kind: alerts.KindHeldNewAddress},
	} {
		w.rule(k)
	}
	wide := alerts.Rule{ID: "b-wide", Agency: AgencyB, Kind: alerts.KindListSeen, Params: alerts.Params{List: "national", Jurisdiction: AgencyA},
		MaxPerHour: 10, Created: t0}
	if err := wide.Validate(); !errors.Is(err, alerts.ErrScope) {
		t.Fatalf("a rule of B on A's jurisdiction: %v, want ErrScope", err)
	}
	if err := w.st.AddAlertRule(ctx, wide); err != nil { // forged past Validate
		t.Fatal(err)
	}
	uh := userHash(9)
	w.add(probe("203.0.113.9:4662", 0, uh, AgencyA, t0))
	ts, _, _ := w.st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{All: true}, Limit: 10})
	if len(ts) != 1 {
		t.Fatalf("targets: %d", len(ts))
	}
	if err := w.eng.SetFlag(ctx, ts[0].ID, analysis.FlagKnownOffender, true, "suite", "test"); err != nil {
		t.Fatal(err)
	}
	// B even claims A's target (a claim is not a read): still nothing.
	if _, err := w.st.TakeClaim(ctx, casework.Claim{Target: ts[0].ID, Agency: AgencyB, By: "b", Since: t0.Add(-time.Hour), Active: t0}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	w.add(probe("203.0.113.99:4662", 2, uh, AgencyA, t0.Add(time.Hour)))
	w.evaluate(w.st)
	if as := w.alerts(AgencyB); len(as) != 0 {
		t.Fatalf("agency B got %d alerts about A's target: %+v", len(as), as[0])
	}
	// Shared with B, the target is B's to read: now its rules may tell.
	if err := w.eng.Share(ctx, ts[0].ID, AgencyB, true, "suite", "joint case"); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w.evaluate(w.st)
	if as := w.alerts(AgencyB); countRule(as, "b-score") != 1 || countRule(as, "b-list") != 0 || countRule(as, "b-wide") != 0 {
		t.Fatalf("after a share, B's alerts: %+v: want the score alert, and none of the observations (they stay A's jurisdiction)", as)
	}
}

// Rules are listed and removed by their agency only.
func testRules(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	w := newWorld(t, open)
	w.rule(alerts.Rule{ID: "a1", Agency: AgencyA, Kind: alerts.KindHeldNewAddress, Emails: []string{"a@example.org"}})
	w.rule(alerts.Rule{ID: "b1", Agency: AgencyB, Kind: alerts.KindHeldNewAddress})
	if err := w.st.AddAlertRule(ctx, alerts.Rule{ID: "a1", Agency: AgencyB, Kind: alerts.KindHeldNewAddress, MaxPerHour: 1}); !errors.Is(err, alerts.ErrExists) {
		t.Fatalf("a second rule a1: %v, want ErrExists", err)
	}
	if err := w.st.RemoveAlertRule(ctx, AgencyB, "a1"); !errors.Is(err, alerts.ErrNotFound) {
		t.Fatalf("B removing A's rule: %v, want ErrNotFound", err)
	}
	rs, err := w.st2.AlertRules(ctx, AgencyA)
	if err != nil || len(rs) != 1 || rs[0].ID != "a1" || rs[0].Emails[0] != "a@example.org" || !rs[0].Created.Equal(t0) {
		t.Fatalf("A's rules: %+v, %v", rs, err)
	}
	if err := w.st.RemoveAlertRule(ctx, AgencyA, "a1"); err != nil {
		t.Fatal(err)
	}
	if rs, _ := w.st.AlertRules(ctx, ""); len(rs) != 1 || rs[0].ID != "b1" {
		t.Fatalf("rules after removal: %+v", rs)
	}
}

// A rule's alerts are kept when it is removed, keyed by its id: a new
// rule under that id (another agency's, or the same agency's with other
// recipients) would find its events already "recorded" and never tell
// its agency, and count the old rule's alerts against its own limit.
// Hostile case: agency B's rule silently deduplicated against agency
// A's old alerts. A removed rule's id is refused while alerts carry it.
func testRuleIDReuse(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	w := newWorld(t, open)
	w.add(probe("203.0.113.7:4662", 0, userHash(7), AgencyA, t0))
	ts, _, _ := w.st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{All: true}, Limit: 10})
	if len(ts) != 1 {
		t.Fatalf("targets: %d", len(ts))
	}
	w.rule(alerts.Rule{ID: "hi", Agency: AgencyA, Kind: alerts.KindScorePassed, Params: alerts.Params{Score: 0.001}})
	w.evaluate(w.st)
	if as := w.alerts(AgencyA); countRule(as, "hi") != 1 {
		t.Fatalf("A's alerts: %+v, want one of rule hi", as)
	}
	if err := w.st.RemoveAlertRule(ctx, AgencyA, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.Share(ctx, ts[0].ID, AgencyB, true, "suite", "joint case"); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r := alerts.Rule{ID: "hi", Agency: AgencyB, Kind: alerts.KindScorePassed, Params: alerts.Params{Score: 0.001},
		MaxPerHour: 10, By: "suite", Created: w.clk.Now()}
	err := w.st.AddAlertRule(ctx, r)
	if err == nil {
		w.evaluate(w.st)
		if as := w.alerts(AgencyB); countRule(as, "hi") != 1 {
			t.Fatalf("B's new rule hi (the id of A's removed rule) made %d alerts on the target shared with B, want 1: "+
				"its event was taken as recorded by A's old alert", countRule(as, "hi"))
		}
		return
	}
	if !errors.Is(err, alerts.ErrExists) {
		t.Fatalf("re-adding the removed rule's id: %v, want ErrExists or a rule that fires", err)
	}
}

// A held target seen at a new address: the alert's level is what that
// address itself showed, not the target's highest (reached at another
// address). Hostile case: an alert that overstates, a link lending one
// endpoint's level to another ("complete" beside an address that only
// acknowledged a handshake).
func testNewAddressLevel(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	w := newWorld(t, open)
	uh := userHash(8)
	w.add(probe("203.0.113.8:4662", 0, uh, AgencyA, t0)) // complete
	ts, _, err := w.st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{All: true}, Limit: 10})
	if err != nil || len(ts) != 1 {
		t.Fatalf("targets: %d, %v", len(ts), err)
	}
	w.clk.Add(time.Hour)
	if _, err := w.st.TakeClaim(ctx, casework.Claim{Target: ts[0].ID, Agency: AgencyA, By: "suite", Since: w.clk.Now(), Active: w.clk.Now()}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	r := w.rule(alerts.Rule{ID: "held-lvl", Agency: AgencyA, Kind: alerts.KindHeldNewAddress})
	w.clk.Add(time.Hour)
	o := probe("203.0.113.88:4662", 2, uh, AgencyA, w.clk.Now())
	o.Possession = observe.Possession{Level: observe.Acknowledged}
	w.add(o)
	w.evaluate(w.st)
	var got []alerts.Alert
	for _, a := range w.alerts(AgencyA) {
		if a.Rule == r.ID {
			got = append(got, a)
		}
	}
	if len(got) != 1 || got[0].Content.Address != "203.0.113.88" {
		t.Fatalf("alerts %+v, want one of 203.0.113.88", got)
	}
	if got[0].Content.Level != observe.Acknowledged.String() {
		t.Fatalf("the new address's alert says level %q, want %q (what 203.0.113.88 itself showed; the target's %q was reached elsewhere)",
			got[0].Content.Level, observe.Acknowledged, observe.Complete)
	}
}

// A rule of A names webhooks of A, of B, of the national office, and one
// bound to no agency (a webhooks file written before webhooks had one).
// A's alert reaches A's and the national one; B's webhook and the unbound
// one never receive it: their deliveries fail at once, saying why, and
// nothing is audited as sent to them.
func testWebhookAgency(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	w := newWorld(t, open)
	hooks := map[string]*flaky{"a-desk": {}, "b-desk": {}, "national": {}, "legacy": {}}
	w.rule(alerts.Rule{ID: "r", Agency: AgencyA, Kind: alerts.KindListSeen, Params: alerts.Params{List: "national"},
		Webhooks: []string{"a-desk", "b-desk", "national", "legacy"}})
	w.add(probe("203.0.113.9:4662", 0, userHash(9), AgencyA, t0))
	w.evaluate(w.st)
	wk := &alerts.Worker{Store: w.st2, Audit: &audit.Log{Store: w.st2, Now: w.clk.Now}, Config: alerts.DefaultConfig(), Now: w.clk.Now,
		Channels: alerts.Channels{Webhooks: map[string]alerts.Webhook{
			"a-desk":   {Sender: hooks["a-desk"], Agency: AgencyA},
			"b-desk":   {Sender: hooks["b-desk"], Agency: AgencyB},
			"national": {Sender: hooks["national"], National: true},
			"legacy":   {Sender: hooks["legacy"]},
		}}}
	for range 3 {
		if _, err := wk.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		w.clk.Add(time.Hour)
	}
	for id, want := range map[string]int{"a-desk": 1, "national": 1, "b-desk": 0, "legacy": 0} {
		if got := len(hooks[id].msgs); got != want {
			t.Errorf("webhook %s received %d messages of agency A's alert, want %d", id, got, want)
		}
	}
	ds, err := w.st.Deliveries(ctx, AgencyA, 10)
	if err != nil || len(ds) != 4 {
		t.Fatalf("deliveries %d, %v", len(ds), err)
	}
	for _, d := range ds {
		refused := d.Channel == "webhook:b-desk" || d.Channel == "webhook:legacy"
		if refused && (d.Outcome != alerts.Failed || !strings.Contains(d.LastError, "agency")) || !refused && d.Outcome != alerts.Delivered {
			t.Errorf("delivery on %s: %s (%s)", d.Channel, d.Outcome, d.LastError)
		}
	}
	if err := w.st.AuditRecords(ctx, audit.Filter{Action: alerts.ActionAlertSend}, func(r audit.Record) error {
		if strings.Contains(string(r.Detail), "b-desk") || strings.Contains(string(r.Detail), "legacy") {
			t.Errorf("audited as sent to a webhook that is not A's: %s", r.Detail)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
