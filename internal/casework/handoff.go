package casework

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Hand-off proposals: when a claimed target's newest first-hand
// observations fall in another agency's jurisdiction (the person moved,
// or changed provider), Vigil proposes to hand the target off to that
// agency; someone accepts or declines, and the answer is kept.

// Proposal states.
const (
	Pending  = "pending"
	Accepted = "accepted"
	Declined = "declined"
)

// ErrNoProposal: no pending proposal for the target.
var ErrNoProposal = errors.New("casework: no pending hand-off proposal for the target")

// ErrStaleProposal: the proposal's From no longer holds the target (it was
// released or lapsed, and another agency claimed it): accepting it would
// take that agency's claim away.
var ErrStaleProposal = errors.New("casework: the hand-off proposal is stale: another agency holds the target now")

// Proposal is a proposed hand-off of a claimed target.
type Proposal struct {
	Target    string    `json:"target"`
	From      string    `json:"from"` // the agency holding the claim
	To        string    `json:"to"`   // the agency of the newest first-hand observations
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
	State     string    `json:"state"`
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Note      string    `json:"note,omitempty"`
}

// Movement says where a target was last seen first-hand: the agency the
// newest first-hand observation was routed to ("" when unrouted or none),
// and its time. Only what the peer itself showed moves a target: a third
// party's claim never proposes a hand-off.
type Movement interface {
	NewestFirstHand(ctx context.Context, target string) (agency string, at time.Time, err error)
}

// ProposalStore keeps the proposals.
type ProposalStore interface {
	// LiveClaims returns every claim whose Active is after liveAfter.
	LiveClaims(ctx context.Context, liveAfter time.Time) ([]Claim, error)
	// ProposeHandOff records p (pending) unless a pending proposal for
	// p.Target exists; it reports whether it recorded it.
	ProposeHandOff(ctx context.Context, p Proposal) (bool, error)
	// Proposals returns the proposals in state ("" all), oldest first.
	Proposals(ctx context.Context, state string) ([]Proposal, error)
	// DecideHandOff sets target's pending proposal to state (Accepted or
	// Declined) with who, when and a note, or returns ErrNoProposal.
	DecideHandOff(ctx context.Context, target, state, by, note string, at time.Time) (Proposal, error)
	// AcceptHandOff accepts target's pending proposal and moves target's
	// claim from the proposal's From to its To, in one transaction (of
	// two accepts at once, or an accept and a release, a claim or a
	// second proposal, one is served after the other). When the claim on
	// target is another agency's than From (live or lapsed), it takes
	// nothing: it keeps the proposal as declined, saying who holds the
	// target, and returns ErrStaleProposal. Without a claim it accepts
	// and moves nothing. Without a pending proposal, ErrNoProposal.
	AcceptHandOff(ctx context.Context, target, by, note string, at time.Time) (Proposal, error)
}

// StaleNote is the note a stale proposal is declined with: who holds the
// target now, instead of the proposal's From, and the decider's note.
func StaleNote(holder, from, note string) string {
	return fmt.Sprintf("not accepted: stale, the target is held by %s now, not %s; %s", holder, from, note)
}

// ProposeHandOffs proposes a hand-off for every live claim whose target's
// newest first-hand observation was routed to another agency, and returns
// the proposals it made.
func (s *Claims) ProposeHandOffs(ctx context.Context, ps ProposalStore, m Movement) ([]Proposal, error) {
	now := s.now()
	claims, err := ps.LiveClaims(ctx, now.Add(-s.Config.LapseAfter))
	if err != nil {
		return nil, err
	}
	var out []Proposal
	for _, c := range claims {
		to, at, err := m.NewestFirstHand(ctx, c.Target)
		if err != nil {
			return out, fmt.Errorf("target %s: %w", c.Target, err)
		}
		if to == "" || to == c.Agency {
			continue
		}
		p := Proposal{Target: c.Target, From: c.Agency, To: to, At: now, State: Pending,
			Reason: fmt.Sprintf("newest first-hand observation (%s) routed to %s, the claim is %s's", at.UTC().Format(time.RFC3339), to, c.Agency)}
		ok, err := ps.ProposeHandOff(ctx, p)
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// DecideHandOff accepts or declines target's pending proposal; an
// accepted one moves the claim (the caller hands the target off too):
// the proposing agency's, never another agency's claim on an id merged
// into the target.
//
// A proposal whose From no longer holds the target, another agency
// holding it now, is not accepted: it is kept as declined, with why, and
// ErrStaleProposal is returned (the claim stays where it is). The check
// and the move are one store transaction (ProposalStore.AcceptHandOff):
// a release, a claim or another accept between them cannot make it move
// a claim From no longer holds, or move one twice.
func (s *Claims) DecideHandOff(ctx context.Context, ps ProposalStore, target string, accept bool, by, note string) (Proposal, error) {
	if !accept {
		return ps.DecideHandOff(ctx, target, Declined, by, note, s.now())
	}
	p, err := ps.AcceptHandOff(ctx, target, by, note, s.now())
	if err != nil {
		return p, err
	}
	return p, s.handOffMerged(ctx, target, p.From, p.To, by)
}
