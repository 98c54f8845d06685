package casework

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Case progress: each target moves through the steps below, with dates,
// notes and, when closed, the outcomes. The subscriber an ISP names is
// entered here and shown only to the agency holding the target's claim
// and to the national office; the caller audits every read before it
// asks (Cases.Subscriber decides who may, it does not write the trail).

// Steps, in order.
const (
	StepLead       = "lead"
	StepISPRequest = "isp_request_sent"
	StepSubscriber = "subscriber_identified"
	StepSearch     = "search"
	StepClosed     = "closed"
)

// Steps lists the steps in order.
var Steps = []string{StepLead, StepISPRequest, StepSubscriber, StepSearch, StepClosed}

// Outcomes a closed case may record (any number of them).
var Outcomes = []string{"arrest", "devices_seized", "hands_on_abuse", "victims_identified", "no_further_action"}

// Errors of case progress.
var (
	ErrStep   = errors.New("casework: bad case step")
	ErrDenied = errors.New("casework: only the agency holding the target and the national office see its subscriber")
)

// Step is one recorded step of a target's case.
type Step struct {
	Target   string    `json:"target"`
	Step     string    `json:"step"`
	At       time.Time `json:"at"`
	Agency   string    `json:"agency"`
	By       string    `json:"by"`
	Note     string    `json:"note,omitempty"`
	Outcomes []string  `json:"outcomes,omitempty"` // closed only
}

// Subscriber is who an ISP named for a target's addresses.
type Subscriber struct {
	Target  string    `json:"target"`
	Details string    `json:"details"`
	Agency  string    `json:"agency"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
}

// CaseStore keeps case steps and subscribers.
type CaseStore interface {
	// AddCaseStep appends a step.
	AddCaseStep(ctx context.Context, s Step) error
	// CaseSteps returns target's steps, oldest first.
	CaseSteps(ctx context.Context, target string) ([]Step, error)
	// SetSubscriber records (or replaces) target's subscriber.
	SetSubscriber(ctx context.Context, s Subscriber) error
	// SubscriberOf returns target's subscriber, or nil.
	SubscriberOf(ctx context.Context, target string) (*Subscriber, error)
}

// Cases is case progress over the claims (who holds a target) and a
// CaseStore.
type Cases struct {
	Claims *Claims
	Store  CaseStore
}

// holds reports whether agency holds target's live claim.
func (c *Cases) holds(ctx context.Context, target, agency string) error {
	h, _, err := c.Claims.Holder(ctx, target)
	if err != nil {
		return err
	}
	if h == nil || h.Agency != agency {
		return fmt.Errorf("target %s, agency %s: %w (claim it first: vigil claim)", target, agency, ErrNotHeld)
	}
	return nil
}

// renew marks agency's claim on target active now: working the case is
// activity, and the claim does not lapse under an agency that works it.
func (c *Cases) renew(ctx context.Context, target, agency, by string) error {
	now := c.Claims.now()
	_, err := c.Claims.Store.TakeClaim(ctx, Claim{Target: target, Agency: agency, By: by, Since: now, Active: now},
		now.Add(-c.Claims.Config.LapseAfter))
	return err
}

// Advance records a step by the agency holding the target (and renews its
// claim: case work is activity): the same step again (a note) or a later
// one; outcomes only when closing, and only
// known ones; a closed case takes no further step.
func (c *Cases) Advance(ctx context.Context, target, agency, by, step, note string, outcomes []string) (Step, error) {
	idx := slices.Index(Steps, step)
	if idx < 0 {
		return Step{}, fmt.Errorf("%w: %q: want one of %s", ErrStep, step, strings.Join(Steps, ", "))
	}
	for _, o := range outcomes {
		if step != StepClosed || !slices.Contains(Outcomes, o) {
			return Step{}, fmt.Errorf("%w: outcome %q: outcomes (%s) close a case", ErrStep, o, strings.Join(Outcomes, ", "))
		}
	}
	if step == StepClosed && len(outcomes) == 0 {
		return Step{}, fmt.Errorf("%w: closing needs its outcome (%s)", ErrStep, strings.Join(Outcomes, ", "))
	}
	if err := c.holds(ctx, target, agency); err != nil {
		return Step{}, err
	}
	prev, err := c.Store.CaseSteps(ctx, target)
	if err != nil {
		return Step{}, err
	}
	if n := len(prev); n > 0 {
		cur := slices.Index(Steps, prev[n-1].Step)
		if cur == len(Steps)-1 || idx < cur {
			return Step{}, fmt.Errorf("%w: target %s is at %s: %s cannot follow", ErrStep, target, prev[n-1].Step, step)
		}
	}
	s := Step{Target: target, Step: step, At: c.Claims.now(), Agency: agency, By: by, Note: note, Outcomes: outcomes}
	if err := c.Store.AddCaseStep(ctx, s); err != nil {
		return Step{}, err
	}
	return s, c.renew(ctx, target, agency, by)
}

// SetSubscriber records the subscriber, for the agency holding the target
// (and renews its claim).
func (c *Cases) SetSubscriber(ctx context.Context, target, agency, by, details string) error {
	if strings.TrimSpace(details) == "" {
		return fmt.Errorf("%w: no subscriber details", ErrInput)
	}
	if err := c.holds(ctx, target, agency); err != nil {
		return err
	}
	if err := c.Store.SetSubscriber(ctx, Subscriber{Target: target, Details: details, Agency: agency, By: by, At: c.Claims.now()}); err != nil {
		return err
	}
	return c.renew(ctx, target, agency, by)
}

// Subscriber returns target's subscriber to the national office
// (national), and to the agency holding the target's claim when that
// agency entered it or received the target from it by hand-offs since
// (Passed); to anyone else ErrDenied. An agency that claims the target
// after a lapse or a release does not read what another identified: it is
// told whom to ask. The caller writes the audit record before it calls
// (and the refusal too).
func (c *Cases) Subscriber(ctx context.Context, target, agency string, national bool) (*Subscriber, error) {
	if err := c.MayReadSubscriber(ctx, target, agency, national); err != nil {
		return nil, err
	}
	return c.Store.SubscriberOf(ctx, target)
}

// MayReadSubscriber decides, as Subscriber does, whether agency (or the
// national office) may read target's subscriber, without returning it:
// nil, or an error wrapping ErrDenied (or the store's). The caller
// audits the read, or the refusal, by this decision before it reads.
func (c *Cases) MayReadSubscriber(ctx context.Context, target, agency string, national bool) error {
	if !national {
		if err := c.holds(ctx, target, agency); err != nil {
			return fmt.Errorf("target %s, agency %s: %w", target, agency, ErrDenied)
		}
	}
	sub, err := c.Store.SubscriberOf(ctx, target)
	if err != nil || sub == nil || national || sub.Agency == agency {
		return err
	}
	recs, err := c.Claims.Store.ClaimRecords(ctx, target)
	if err != nil {
		return err
	}
	if Passed(recs, sub.Agency, sub.At) != agency {
		return fmt.Errorf("target %s, agency %s: %w: the subscriber was identified by agency %s on %s, before this agency's claim; ask that agency or the national office",
			target, agency, ErrDenied, sub.Agency, sub.At.UTC().Format("2006-01-02"))
	}
	return nil
}

// Passed follows a target's claim records from agency from at since:
// each hand-off passes what the holder knew on to the next holder; a
// release, a lapse or a claim by another agency ends the chain, and it
// starts again whenever from holds the target again. It returns the
// agency holding the target at the chain's end, or "" when it broke.
func Passed(recs []Record, from string, since time.Time) string {
	cur := from
	for _, r := range recs {
		if r.At.Before(since) {
			continue
		}
		switch {
		case (r.Kind == RecordHandOff || r.Kind == RecordClaim) && r.Agency == from:
			cur = from // from holds it again: what it entered is its own
		case r.Kind == RecordHandOff && cur != "" && r.Note == "from "+cur:
			cur = r.Agency
		case r.Kind == RecordRelease && r.Agency == cur, r.Kind == RecordLapse, r.Kind == RecordClaim && r.Agency != cur:
			cur = ""
		}
	}
	return cur
}
