package analysis

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// apply folds a stored decision into the state. It is called at load for
// every decision, in order, and live after a decision is stored.
func (e *Engine) apply(d Decision) {
	switch d.Kind {
	case DecideUnlink:
		e.blocked[d.Subject] = d
		rule, ev, _ := strings.Cut(d.Subject, "|")
		e.dropLinks(func(k linkKey) bool { return k.rule == rule && k.ev == ev }, "rejected",
			fmt.Sprintf("rejected by %s at %s: %s", d.By, d.At.UTC().Format("2006-01-02 15:04"), d.Why))
	case DecideFlag, DecideUnflag:
		seq, ok := ParseTargetID(d.Subject)
		if !ok {
			return
		}
		if e.flags[seq] == nil {
			e.flags[seq] = map[string]bool{}
		}
		e.flags[seq][d.Value] = d.Kind == DecideFlag
		e.markHome(seq)
	case DecideShare, DecideUnshare:
		seq, ok := ParseTargetID(d.Subject)
		if !ok {
			return
		}
		if e.shares[seq] == nil {
			e.shares[seq] = map[string]Share{}
		}
		if d.Kind == DecideShare {
			e.shares[seq][d.Value] = Share{Agency: d.Value, By: d.By, At: d.At, Note: d.Why}
		} else {
			delete(e.shares[seq], d.Value)
		}
		e.markHome(seq)
	case DecideAssign, DecideInvestigator:
		seq, ok := ParseTargetID(d.Subject)
		if !ok {
			return
		}
		if d.Kind == DecideAssign {
			e.assigned[seq] = d
		} else {
			e.investigator[seq] = d
		}
		e.markHome(seq)
	case DecideRelease, DecideDisable:
		for h, q := range e.quarantine {
			if HashKey(h) == d.Subject {
				q.State, q.By, q.Why, q.DecidedAt = QuarantineReleased, d.By, d.Why, d.At
				if d.Kind == DecideDisable {
					q.State = QuarantineDisabled
				}
				e.changes.Quarantine = append(e.changes.Quarantine, *q)
				if it := e.items[h]; it != nil {
					e.rescoreItem(it)
				}
			}
		}
	case DecideConfirmLead, DecideDismissLead:
		l := e.leads[d.Subject]
		if l == nil {
			return
		}
		l.State, l.By, l.Why, l.DecidedAt = LeadDismissed, d.By, d.Why, d.At
		if d.Kind == DecideConfirmLead {
			l.State = LeadConfirmed
		}
		e.dirtyLeads[l.Key] = true
		e.markLeadTargets(l)
	}
}

// markHome marks the component of the endpoint born with target number seq.
func (e *Engine) markHome(seq int64) {
	if id, ok := e.homeEp[seq]; ok {
		e.markComponent(id)
	}
}

// decide stores a decision, then applies it and writes what it changed.
func (e *Engine) decide(ctx context.Context, ds ...Decision) error {
	for i := range ds {
		d := &ds[i]
		if strings.TrimSpace(d.By) == "" || strings.TrimSpace(d.Why) == "" {
			return fmt.Errorf("analysis: decision %s on %s: who and why are required", d.Kind, d.Subject)
		}
		d.At = e.now()
	}
	if err := e.retry(ctx, func(ctx context.Context) error { return e.write(ctx, &Changes{Decisions: ds}) }); err != nil {
		return fmt.Errorf("analysis: storing decision %s on %s: %w", ds[0].Kind, ds[0].Subject, err)
	}
	for _, d := range ds {
		e.apply(d)
		e.lastDec = max(e.lastDec, d.ID)
	}
	return e.save(ctx)
}

// homesOf returns the target numbers of the live target id (or of the one
// it was merged into), or ErrNotFound.
func (e *Engine) homesOf(id string) ([]int64, error) {
	seq, ok := ParseTargetID(id)
	if !ok {
		return nil, fmt.Errorf("target %q: %w", id, ErrNotFound)
	}
	if id, ok := e.homeEp[seq]; ok {
		{
			var hs []int64
			for _, m := range e.uf.members(id) {
				if h := e.eps[m].home; !slices.Contains(hs, h) {
					hs = append(hs, h)
				}
			}
			slices.Sort(hs)
			return hs, nil
		}
	}
	return nil, fmt.Errorf("target %q: %w", id, ErrNotFound)
}

// Unlink rejects a link and every link made by the same evidence (the
// same identifier, or for the overlap rule the same pair): they are split
// now and never joined again by it. The decision is kept.
func (e *Engine) Unlink(ctx context.Context, linkID int64, by, why string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, l := range e.links {
		if l.id == linkID {
			return e.decide(ctx, Decision{By: by, Why: why, Kind: DecideUnlink, Subject: blockKey(k.rule, k.ev)})
		}
	}
	return fmt.Errorf("link %d: %w", linkID, ErrNotFound)
}

// SetFlag sets or clears an analyst flag (FlagKnownOffender,
// FlagChildAccess) on a target; each adds its documented score part.
func (e *Engine) SetFlag(ctx context.Context, targetID, flag string, on bool, by, why string) error {
	if !slices.Contains(Flags, flag) {
		return fmt.Errorf("analysis: flag %q: want one of %s", flag, strings.Join(Flags, ", "))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	hs, err := e.homesOf(targetID)
	if err != nil {
		return err
	}
	if on {
		return e.decide(ctx, Decision{By: by, Why: why, Kind: DecideFlag, Subject: TargetID(hs[0]), Value: flag})
	}
	// Clear it on every id of the target, so that a later split keeps none.
	var ds []Decision
	for _, h := range hs {
		if e.flags[h][flag] {
			ds = append(ds, Decision{By: by, Why: why, Kind: DecideUnflag, Subject: TargetID(h), Value: flag})
		}
	}
	if len(ds) == 0 {
		return nil
	}
	return e.decide(ctx, ds...)
}

// Share lets another agency see a target (or stops it, on=false).
func (e *Engine) Share(ctx context.Context, targetID, agency string, on bool, by, note string) error {
	if agency == "" {
		return fmt.Errorf("analysis: share of %s: no agency", targetID)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	hs, err := e.homesOf(targetID)
	if err != nil {
		return err
	}
	if on {
		return e.decide(ctx, Decision{By: by, Why: note, Kind: DecideShare, Subject: TargetID(hs[0]), Value: agency})
	}
	var ds []Decision
	for _, h := range hs {
		if _, ok := e.shares[h][agency]; ok {
			ds = append(ds, Decision{By: by, Why: note, Kind: DecideUnshare, Subject: TargetID(h), Value: agency})
		}
	}
	if len(ds) == 0 {
		return nil
	}
	return e.decide(ctx, ds...)
}

// Assign hands a target off to another agency ("" returns it to the
// agency its observations route it to).
func (e *Engine) Assign(ctx context.Context, targetID, agency, by, why string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	hs, err := e.homesOf(targetID)
	if err != nil {
		return err
	}
	return e.decide(ctx, Decision{By: by, Why: why, Kind: DecideAssign, Subject: TargetID(hs[0]), Value: agency})
}

// SetInvestigator names the investigator in charge of a target.
func (e *Engine) SetInvestigator(ctx context.Context, targetID, investigator, by, why string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	hs, err := e.homesOf(targetID)
	if err != nil {
		return err
	}
	return e.decide(ctx, Decision{By: by, Why: why, Kind: DecideInvestigator, Subject: TargetID(hs[0]), Value: investigator})
}

// Release returns a quarantined hash to scoring.
func (e *Engine) Release(ctx context.Context, h hashkind.Hash, by, why string) error {
	return e.quarantineDecision(ctx, h, DecideRelease, by, why)
}

// Disable confirms that a quarantined hash is benign: it stays out of every
// score and Config.OnDisable disables its entries on the lists.
func (e *Engine) Disable(ctx context.Context, h hashkind.Hash, by, why string) error {
	return e.quarantineDecision(ctx, h, DecideDisable, by, why)
}

func (e *Engine) quarantineDecision(ctx context.Context, h hashkind.Hash, kind, by, why string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := e.quarantine[h]
	if q == nil || q.State != QuarantineHeld {
		return fmt.Errorf("quarantine of %s: %w (not held)", HashKey(h), ErrNotFound)
	}
	if kind == DecideDisable && e.cfg.OnDisable != nil {
		if err := e.cfg.OnDisable(ctx, h, by, why); err != nil {
			return fmt.Errorf("analysis: disabling %s on its lists: %w", HashKey(h), err)
		}
	}
	return e.decide(ctx, Decision{By: by, Why: why, Kind: kind, Subject: HashKey(h)})
}

// ConfirmLead confirms a lead: Config.OnLeadConfirmed adds it to the local
// list, and it adds the new_material part to the targets it was seen with.
func (e *Engine) ConfirmLead(ctx context.Context, key, by, why string) error {
	return e.leadDecision(ctx, key, DecideConfirmLead, by, why)
}

// DismissLead dismisses a lead.
func (e *Engine) DismissLead(ctx context.Context, key, by, why string) error {
	return e.leadDecision(ctx, key, DecideDismissLead, by, why)
}

func (e *Engine) leadDecision(ctx context.Context, key, kind, by, why string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.leads[key]
	if l == nil {
		return fmt.Errorf("lead %q: %w", key, ErrNotFound)
	}
	if kind == DecideConfirmLead && e.cfg.OnLeadConfirmed != nil {
		if strings.TrimSpace(by) == "" || strings.TrimSpace(why) == "" {
			return fmt.Errorf("analysis: decision %s on %s: who and why are required", kind, key)
		}
		if err := e.cfg.OnLeadConfirmed(ctx, l.Lead, by, why); err != nil {
			return fmt.Errorf("analysis: adding lead %s to the local list: %w", key, err)
		}
	}
	return e.decide(ctx, Decision{By: by, Why: why, Kind: kind, Subject: key})
}
