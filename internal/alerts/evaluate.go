package alerts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/vigil-oss/vigil/internal/casework"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Source is what the evaluator reads: the analysis's observations and
// targets (analysis.Backend; both stores are one), always through the
// rule's scope.
type Source interface {
	AnalysisSeqs(ctx context.Context, ids []string) (seqs []int64, maxSeq int64, err error)
	AnalysisObservations(ctx context.Context, after, upTo int64, fn func(seq int64, o *observe.Observation) error) error
	Targets(ctx context.Context, q analysis.TargetQuery) ([]analysis.TargetSummary, int, error)
	Target(ctx context.Context, id string, scope Scope) (*analysis.TargetDetail, error)
}

// Config says how often alerts are sent and retried.
type Config struct {
	// Window is the rate limit's window: a rule sends at most its
	// MaxPerHour alerts in any Window (default one hour).
	Window time.Duration
	// Chunk is how many observations one evaluation step reads before
	// it advances the watermark (default 5000).
	Chunk int64
	// MaxAttempts: a delivery that failed this many times (not
	// permanently) is given up (default 8).
	MaxAttempts int
	// Backoff is the wait after a delivery's first failure; it doubles
	// after each further one, up to MaxBackoff (defaults 30 s and 1 h).
	Backoff, MaxBackoff time.Duration
	// Lease is how long a worker holds a delivery it took before another
	// worker may take it again (default 2 min).
	Lease time.Duration
	// Batch is how many deliveries a worker takes at once (default 50).
	Batch int
}

// DefaultConfig returns the defaults named in Config.
func DefaultConfig() Config {
	return Config{Window: time.Hour, Chunk: 5000, MaxAttempts: 8, Backoff: 30 * time.Second, MaxBackoff: time.Hour,
		Lease: 2 * time.Minute, Batch: 50}
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	switch {
	case c.Window <= 0:
		return fmt.Errorf("alerts: window %s: want a positive duration", c.Window)
	case c.Chunk < 1 || c.Batch < 1:
		return fmt.Errorf("alerts: chunk %d, batch %d: want at least 1", c.Chunk, c.Batch)
	case c.MaxAttempts < 1:
		return fmt.Errorf("alerts: max attempts %d: want at least 1", c.MaxAttempts)
	case c.Backoff <= 0 || c.MaxBackoff < c.Backoff:
		return fmt.Errorf("alerts: backoff %s, max %s: want 0 < backoff <= max", c.Backoff, c.MaxBackoff)
	case c.Lease <= 0:
		return fmt.Errorf("alerts: lease %s: want a positive duration", c.Lease)
	}
	return nil
}

// Evaluator turns what the store holds into alerts.
type Evaluator struct {
	Store  Store
	Source Source
	Config Config
	Now    func() time.Time // nil: time.Now
	Log    *slog.Logger
	// OnAlert, if set, is called with each alert this evaluator recorded
	// (held ones included): the live feed's hook.
	OnAlert func(Alert)
}

func (e *Evaluator) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Evaluator) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// Pass counts what one evaluation did.
type Pass struct {
	Observations int64 // observations read after the watermark
	Recorded     int   // new alerts (held included)
	Held         int   // of them, held by their rule's rate limit
	Summaries    int   // summaries of held alerts
}

// Evaluate runs every rule once: the observations after the watermark for
// list_seen rules, the targets in each rule's scope for the others, then
// the summaries of held alerts. An event already recorded is skipped;
// two evaluators at once record it once (the store's unique key).
func (e *Evaluator) Evaluate(ctx context.Context) (Pass, error) {
	var p Pass
	rules, err := e.Store.AlertRules(ctx, "")
	if err != nil {
		return p, fmt.Errorf("alert rules: %w", err)
	}
	if err := e.observations(ctx, rules, &p); err != nil {
		return p, err
	}
	for _, r := range rules {
		var err error
		switch r.Kind {
		case KindScorePassed, KindFlaggedActive:
			err = e.targets(ctx, r, &p)
		case KindHeldNewAddress:
			err = e.held(ctx, r, &p)
		}
		if err != nil {
			return p, fmt.Errorf("alert rule %s: %w", r.ID, err)
		}
	}
	for _, r := range rules {
		s, err := e.Store.SummariseHeld(ctx, r.ID, e.now(), r.MaxPerHour, e.Config.Window, r.Channels(),
			func(held []Alert) Alert { return summary(r, held, e.now()) })
		if err != nil {
			return p, fmt.Errorf("alert rule %s: summary: %w", r.ID, err)
		}
		if s != nil {
			p.Summaries++
			e.emit(*s)
		}
	}
	if p.Recorded > 0 || p.Summaries > 0 {
		e.log().Info("alerts evaluated", "observations", p.Observations, "recorded", p.Recorded, "held", p.Held, "summaries", p.Summaries)
	}
	return p, nil
}

// observations reads the observations after the watermark, chunk by
// chunk, and advances the watermark after each chunk it evaluated.
func (e *Evaluator) observations(ctx context.Context, rules []Rule, p *Pass) error {
	var seen []Rule
	for _, r := range rules {
		if r.Kind == KindListSeen {
			seen = append(seen, r)
		}
	}
	wm, err := e.Store.AlertWatermark(ctx)
	if err != nil {
		return fmt.Errorf("alert watermark: %w", err)
	}
	_, top, err := e.Source.AnalysisSeqs(ctx, nil)
	if err != nil {
		return fmt.Errorf("observation seqs: %w", err)
	}
	for wm < top {
		upTo := min(top, wm+e.Config.Chunk)
		err := e.Source.AnalysisObservations(ctx, wm, upTo, func(seq int64, o *observe.Observation) error {
			p.Observations++
			for _, r := range seen {
				if seq <= r.FromSeq {
					continue
				}
				if a, ok := listSeen(r, o); ok {
					if err := e.record(ctx, r, a, p); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("observations after %d: %w", wm, err)
		}
		if err := e.Store.AdvanceAlertWatermark(ctx, upTo); err != nil {
			return fmt.Errorf("alert watermark %d: %w", upTo, err)
		}
		wm = upTo
	}
	return nil
}

// listSeen is the alert r makes of o, if o is a file of r's list or
// category routed to r's agency. Nothing of the endpoint travels: the
// address may belong to a target another agency holds.
func listSeen(r Rule, o *observe.Observation) (Alert, bool) {
	routed := o.Jurisdiction.Agency
	if routed == "" || !r.Scope().Allows(routed) || (r.Params.Jurisdiction != "" && r.Params.Jurisdiction != routed) {
		return Alert{}, false
	}
	i := slices.IndexFunc(o.Item.Matched, func(m observe.Match) bool {
		return (r.Params.List == "" || m.List == r.Params.List) && (r.Params.Category == "" || m.Category == r.Params.Category)
	})
	if i < 0 {
		return Alert{}, false
	}
	m := o.Item.Matched[i]
	// The country and subdivision are a geo database's text: written by
	// observe.PlaceText, as the analysis writes them (a newline in them
	// would forge a line of the alert's mail).
	c := Content{List: m.List, Category: m.Category, Network: o.Network, Level: o.Possession.Level.String(),
		Marks: slices.Clone(o.Marks), Country: observe.PlaceText(o.Place.Country)}
	if n := len(o.Place.Subdivisions); n > 0 {
		c.Subdivision = observe.PlaceText(o.Place.Subdivisions[n-1])
	}
	subject := fmt.Sprintf("list %s seen in your jurisdiction (%s, %s)", m.List, o.Network, c.Level)
	return Alert{Event: "obs:" + o.ID, At: o.Time.UTC(), Subject: subject, Content: c}, true
}

// targets evaluates a score_passed or flagged_active rule over the
// targets in its scope.
func (e *Evaluator) targets(ctx context.Context, r Rule, p *Pass) error {
	q := analysis.TargetQuery{Scope: r.Scope(), Sort: "last_seen", Limit: 1000}
	flag := r.Params.Flag
	if r.Kind == KindScorePassed {
		q.MinScore = r.Params.Score
	} else {
		q.Since = r.Created
		if flag == "" {
			flag = analysis.FlagKnownOffender
		}
	}
	var cands []Alert
	for {
		ts, _, err := e.Source.Targets(ctx, q)
		if err != nil {
			return err
		}
		for _, t := range ts {
			c := Content{Score: t.Score, Level: t.MaxLevel.String(), Flags: t.Flags, Country: t.Country, Subdivision: t.Subdivision}
			switch {
			case r.Kind == KindScorePassed && t.Score >= r.Params.Score:
				cands = append(cands, Alert{Event: "score:" + t.ID, Target: t.ID, At: t.LastSeen.UTC(), Content: c,
					Subject: fmt.Sprintf("target %s passed score %g (%.1f)", t.ID, r.Params.Score, t.Score)})
			case r.Kind == KindFlaggedActive && slices.Contains(t.Flags, flag) && !t.LastSeen.Before(r.Created):
				day := t.LastSeen.UTC().Format(time.DateOnly)
				cands = append(cands, Alert{Event: "active:" + t.ID + ":" + day, Target: t.ID, At: t.LastSeen.UTC(), Content: c,
					Subject: fmt.Sprintf("target %s (%s) active again on %s", t.ID, flag, day)})
			}
		}
		if len(ts) < q.Limit {
			break
		}
		q.Offset += len(ts)
	}
	return e.recordNew(ctx, r, cands, p)
}

// held evaluates a held_new_address rule: each address of a target the
// agency holds first seen after its claim began.
func (e *Evaluator) held(ctx context.Context, r Rule, p *Pass) error {
	hs, err := e.Store.AlertHeldTargets(ctx, r.Agency)
	if err != nil {
		return err
	}
	var cands []Alert
	lapse := casework.DefaultConfig()
	for _, h := range hs {
		t, err := e.Source.Target(ctx, h.Target, r.Scope())
		if errors.Is(err, ErrNotFound) {
			continue // held but no longer in the agency's scope: nothing to tell
		} else if err != nil {
			return err
		}
		seen, levels := map[string]bool{}, addressLevels(t)
		for _, ep := range t.Endpoints {
			ip := ep.IP.Unmap().String()
			// Seen before the claim, or after it lapsed: not while the
			// agency held the target.
			if seen[ip] || ep.FirstSeen.Before(h.Since) || !ep.FirstSeen.Before(lapse.LapsesAt(casework.Claim{Active: h.Active})) {
				continue
			}
			seen[ip] = true
			c := Content{Address: ip, Network: strings.Join(t.Networks, ","), Level: levels[ip].String(),
				Country: ep.Country, Subdivision: ep.Subdivision}
			cands = append(cands, Alert{Event: "addr:" + t.ID + ":" + ip, Target: t.ID, At: ep.FirstSeen.UTC(), Content: c,
				Subject: fmt.Sprintf("target %s you hold seen at a new address", t.ID)})
		}
	}
	return e.recordNew(ctx, r, cands, p)
}

// addressLevels is the highest level each IP address of t itself
// reached for any file (analysis.FileAt): a link never lends one
// address's level to another.
func addressLevels(t *analysis.TargetDetail) map[string]observe.Level {
	out := map[string]observe.Level{}
	for _, f := range t.Files {
		for _, at := range f.At {
			key, _, _ := strings.Cut(at.Endpoint, "#")
			ap, err := netip.ParseAddrPort(key)
			if err != nil {
				continue
			}
			ip := ap.Addr().Unmap().String()
			out[ip] = max(out[ip], at.Level)
		}
	}
	return out
}

// recordNew records the candidates whose event has no alert yet.
func (e *Evaluator) recordNew(ctx context.Context, r Rule, cands []Alert, p *Pass) error {
	if len(cands) == 0 {
		return nil
	}
	keys := make([]string, len(cands))
	for i := range cands {
		keys[i] = cands[i].Event
	}
	done, err := e.Store.AlertsRecorded(ctx, r.ID, keys)
	if err != nil {
		return err
	}
	for _, a := range cands {
		if !done[a.Event] {
			if err := e.record(ctx, r, a, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// record completes a and stores it (once per event).
func (e *Evaluator) record(ctx context.Context, r Rule, a Alert, p *Pass) error {
	a.ID = AlertID(r.ID, a.Event)
	a.Rule, a.Agency, a.Kind, a.Created = r.ID, r.Agency, r.Kind, e.now()
	ins, held, err := e.Store.RecordAlert(ctx, a, r.Channels(), r.MaxPerHour, e.Config.Window)
	if err != nil {
		return fmt.Errorf("alert %s: %w", a.Event, err)
	}
	if ins {
		a.Held = held
		p.Recorded++
		if held {
			p.Held++
		}
		e.emit(a)
	}
	return nil
}

func (e *Evaluator) emit(a Alert) {
	if e.OnAlert != nil {
		e.OnAlert(a)
	}
}

// AlertID is the id of rule's alert of event: the same on every replay.
func AlertID(rule, event string) string {
	h := sha256.Sum256([]byte(rule + "\x00" + event))
	return "A-" + hex.EncodeToString(h[:10])
}

// summary is the alert counting a rule's held alerts.
func summary(r Rule, held []Alert, now time.Time) Alert {
	first, last := held[0].Created, held[len(held)-1].Created
	ev := "held:" + held[0].ID
	return Alert{ID: AlertID(r.ID, ev), Rule: r.ID, Agency: r.Agency, Kind: r.Kind, Event: ev, At: last, Created: now,
		SummaryOf: len(held),
		Subject:   fmt.Sprintf("%d more alerts of rule %s were held by its limit of %d an hour", len(held), r.ID, r.MaxPerHour),
		Content:   Content{Held: len(held), From: first.Format(time.RFC3339), To: last.Format(time.RFC3339)}}
}

// Run evaluates the rules and sends the due deliveries every every, until
// ctx ends (vigil serve runs it). An error of one round is logged and the
// next round tries again: a store that did not answer loses no alert (the
// watermark did not move, the deliveries stay due).
func Run(ctx context.Context, every time.Duration, e *Evaluator, w *Worker) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := e.Evaluate(ctx); err != nil && ctx.Err() == nil {
			e.log().Warn("alerts: evaluation", "err", err)
		}
		if s, err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			e.log().Warn("alerts: deliveries", "err", err)
		} else if s != (Sent{}) {
			e.log().Info("alerts: deliveries", "delivered", s.Delivered, "retry", s.Retry, "failed", s.Failed, "gave_up", s.GaveUp)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
