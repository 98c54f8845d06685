// Package casework is what services do with targets once the analysis
// has found them: claims (deconfliction), so that two services never work
// on one person unknowingly. A service claims a target; every other
// service is told who holds it, since when and whom to call, and cannot
// claim it; a claim lapses after a set time without activity, with a
// warning before.
//
// It must never let two agencies hold one target at once, nor forget a
// claim, a release or a refusal: each is kept as a record. It does no I/O
// of its own: a store keeps the claims (Store, checked by casetest).
package casework

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Claim is an agency's hold on a target.
type Claim struct {
	Target  string    `json:"target"`
	Agency  string    `json:"agency"`
	By      string    `json:"by"`      // who claimed it (a user, or the operator of the command line)
	Contact string    `json:"contact"` // whom to call about it
	Since   time.Time `json:"since"`
	Active  time.Time `json:"active"` // its last activity (a claim again by its agency, a touch)
}

// Claim states, as Config.State says them.
const (
	Held    = "held"
	Lapsing = "lapsing" // within Config.WarnBefore of lapsing: its agency is warned
	Lapsed  = "lapsed"  // no activity for Config.LapseAfter: anyone may claim the target
)

// Config says when a claim lapses.
type Config struct {
	// LapseAfter: a claim without activity for this long lapses.
	LapseAfter time.Duration
	// WarnBefore: a claim is "lapsing" (its agency is warned) this long
	// before it lapses.
	WarnBefore time.Duration
}

// DefaultConfig: a claim lapses after 30 days without activity, with a
// warning 7 days before.
func DefaultConfig() Config {
	return Config{LapseAfter: 30 * 24 * time.Hour, WarnBefore: 7 * 24 * time.Hour}
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	if c.LapseAfter <= 0 {
		return fmt.Errorf("casework: lapse after %s: want a positive duration", c.LapseAfter)
	}
	if c.WarnBefore < 0 || c.WarnBefore >= c.LapseAfter {
		return fmt.Errorf("casework: warn before %s: want at least 0 and less than the lapse (%s)", c.WarnBefore, c.LapseAfter)
	}
	return nil
}

// LapsesAt is when cl lapses without further activity.
func (c Config) LapsesAt(cl Claim) time.Time { return cl.Active.Add(c.LapseAfter) }

// State is cl's state at now.
func (c Config) State(cl Claim, now time.Time) string {
	switch at := c.LapsesAt(cl); {
	case !now.Before(at):
		return Lapsed
	case !now.Before(at.Add(-c.WarnBefore)):
		return Lapsing
	}
	return Held
}

// Errors a caller tests with errors.Is.
var (
	ErrClaimed = errors.New("casework: the target is claimed by another agency")
	ErrNotHeld = errors.New("casework: the target is not claimed by this agency")
	ErrInput   = errors.New("casework: incomplete claim")
)

// ClaimedError is the answer to a claim on a target another agency holds:
// who holds it, since when, and whom to call.
type ClaimedError struct {
	Holder Claim
}

func (e *ClaimedError) Error() string {
	contact := e.Holder.Contact
	if contact == "" {
		contact = "no contact given"
	}
	return fmt.Sprintf("target %s is claimed by agency %s since %s (by %s; call: %s)", e.Holder.Target, e.Holder.Agency,
		e.Holder.Since.UTC().Format(time.RFC3339), e.Holder.By, contact)
}

func (e *ClaimedError) Unwrap() error { return ErrClaimed }

// Record kinds: what happened to a claim.
const (
	RecordClaim   = "claim"   // an agency took the target (or renewed its claim)
	RecordRefused = "refused" // another agency held it: the claimant was told who
	RecordRelease = "release" // its agency let it go
	RecordLapse   = "lapse"   // it lapsed, and another agency took the target
	RecordHandOff = "handoff" // the target was handed off: its claim moved to another agency
)

// Record is one event of a target's claims, kept forever.
type Record struct {
	Target string    `json:"target"`
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Agency string    `json:"agency"`
	By     string    `json:"by"`
	Note   string    `json:"note,omitempty"` // for a refusal or a lapse, the holder
}

// Store keeps claims and their records. Every method is atomic: two
// callers claiming one target at once, in one process or two, get one
// claim and one refusal.
type Store interface {
	// TakeClaim gives c.Target to c.Agency unless another agency holds a
	// claim on it whose Active is after liveAfter: then it records the
	// refusal and returns the holder's claim and a *ClaimedError. A claim
	// by the holding agency renews it (Active = c.Active; Since, By and,
	// unless c gives one, Contact kept). A lapsed claim is replaced, with
	// a RecordLapse.
	TakeClaim(ctx context.Context, c Claim, liveAfter time.Time) (Claim, error)
	// HandOffClaim moves target's claim, if there is one, to agency to
	// (the target was handed off to it): since and active at, by by, no
	// contact yet; recorded with the agency it came from. Without a claim
	// it does nothing. With from given, it moves the claim only while
	// from holds it, in the same transaction as the check (a claim
	// released and taken by another agency meanwhile stays where it is).
	HandOffClaim(ctx context.Context, target, from, to, by string, at time.Time) error
	// ReleaseClaim ends agency's claim on target, or returns ErrNotHeld.
	ReleaseClaim(ctx context.Context, target, agency, by string, at time.Time) error
	// ClaimOf returns target's claim, lapsed or not, or nil when none.
	ClaimOf(ctx context.Context, target string) (*Claim, error)
	// ClaimRecords returns target's records, oldest first.
	ClaimRecords(ctx context.Context, target string) ([]Record, error)
}

// Claims is the claims service over a store.
type Claims struct {
	Store  Store
	Config Config
	Now    func() time.Time // nil: time.Now
	// Merged lists the ids the analysis merged into a target (nil: none).
	// A claim taken on one of them before the merge still holds the
	// person: Holder reports it for the target, and a claim on the target
	// by another agency is refused, so that two services never work one
	// person unknowingly because the analysis joined two of its targets.
	Merged func(ctx context.Context, target string) ([]string, error)
}

func (s *Claims) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Claim gives target to agency, or returns a *ClaimedError naming the
// agency that holds it.
func (s *Claims) Claim(ctx context.Context, target, agency, by, contact string) (Claim, error) {
	if strings.TrimSpace(target) == "" || strings.TrimSpace(agency) == "" || strings.TrimSpace(by) == "" {
		return Claim{}, fmt.Errorf("%w: target %q, agency %q, by %q", ErrInput, target, agency, by)
	}
	now := s.now()
	c := Claim{Target: target, Agency: agency, By: by, Contact: contact, Since: now, Active: now}
	if err := s.refuseMerged(ctx, c); err != nil {
		return Claim{}, err
	}
	return s.Store.TakeClaim(ctx, c, now.Add(-s.Config.LapseAfter))
}

// refuseMerged refuses c when another agency holds a live claim on an id
// merged into c.Target: the refusal is put to that id's claim (and so
// recorded there, naming its holder).
func (s *Claims) refuseMerged(ctx context.Context, c Claim) error {
	held, err := s.mergedHolder(ctx, c.Target)
	if err != nil || held == nil || held.Agency == c.Agency {
		return err
	}
	m := c
	m.Target = held.Target
	if _, err := s.Store.TakeClaim(ctx, m, s.now().Add(-s.Config.LapseAfter)); err != nil {
		return err
	}
	// It lapsed between the two reads: the claim on the merged id is the
	// claimant's now; the target's own follows.
	return nil
}

// liveMerged returns the live claims on ids merged into target.
func (s *Claims) liveMerged(ctx context.Context, target string) ([]Claim, error) {
	if s.Merged == nil {
		return nil, nil
	}
	ids, err := s.Merged(ctx, target)
	if err != nil {
		return nil, err
	}
	return s.Config.live(ctx, s.Store, s.now(), ids)
}

// mergedHolder returns the oldest live claim on an id merged into target,
// or nil.
func (s *Claims) mergedHolder(ctx context.Context, target string) (*Claim, error) {
	merged, err := s.liveMerged(ctx, target)
	if err != nil || len(merged) == 0 {
		return nil, err
	}
	return oldest(merged), nil
}

// ClaimReader reads claims: the part of Store a page needs.
type ClaimReader interface {
	ClaimOf(ctx context.Context, target string) (*Claim, error)
}

// live returns the claims on ids that are live at now.
func (c Config) live(ctx context.Context, r ClaimReader, now time.Time, ids []string) ([]Claim, error) {
	var out []Claim
	for _, id := range ids {
		cl, err := r.ClaimOf(ctx, id)
		if err != nil {
			return nil, err
		}
		if cl != nil && c.State(*cl, now) != Lapsed {
			out = append(out, *cl)
		}
	}
	return out, nil
}

func oldest(cs []Claim) *Claim {
	best := cs[0]
	for _, c := range cs[1:] {
		if c.Since.Before(best.Since) {
			best = c
		}
	}
	return &best
}

// HolderOf is Holder for a reader: target's live claim or, without one,
// the oldest live claim on an id merged into it (merged), with its state
// at now; nil when nobody holds it.
func (c Config) HolderOf(ctx context.Context, r ClaimReader, now time.Time, target string, merged []string) (*Claim, string, error) {
	held, err := c.live(ctx, r, now, []string{target})
	if err == nil && len(held) == 0 {
		held, err = c.live(ctx, r, now, merged)
	}
	if err != nil || len(held) == 0 {
		return nil, "", err
	}
	h := oldest(held)
	return h, c.State(*h, now), nil
}

// Release ends agency's claim on target, and its claims on ids merged
// into target; ErrNotHeld when it holds none of them.
func (s *Claims) Release(ctx context.Context, target, agency, by string) error {
	err := s.Store.ReleaseClaim(ctx, target, agency, by, s.now())
	if err != nil && !errors.Is(err, ErrNotHeld) {
		return err
	}
	released := err == nil
	merged, err := s.liveMerged(ctx, target)
	if err != nil {
		return err
	}
	for _, c := range merged {
		if c.Agency != agency {
			continue
		}
		if err := s.Store.ReleaseClaim(ctx, c.Target, agency, by, s.now()); err != nil && !errors.Is(err, ErrNotHeld) {
			return err
		}
		released = true
	}
	if !released {
		return fmt.Errorf("target %s, agency %s: %w", target, agency, ErrNotHeld)
	}
	return nil
}

// HandOff moves target's claim to agency to (a hand-off: 'vigil target
// share --assign'), if it is claimed, and the live claims on ids merged
// into it.
func (s *Claims) HandOff(ctx context.Context, target, to, by string) error {
	return s.handOff(ctx, target, "", to, by)
}

// handOff is HandOff; with from given, only from's live claims on ids
// merged into target move (an accepted proposal is from's: another
// agency's claim on a merged id is not taken from it).
func (s *Claims) handOff(ctx context.Context, target, from, to, by string) error {
	if err := s.Store.HandOffClaim(ctx, target, from, to, by, s.now()); err != nil {
		return err
	}
	return s.handOffMerged(ctx, target, from, to, by)
}

// handOffMerged moves the live claims on ids merged into target to to;
// with from given, only from's, each checked and moved in one store
// transaction.
func (s *Claims) handOffMerged(ctx context.Context, target, from, to, by string) error {
	merged, err := s.liveMerged(ctx, target)
	if err != nil {
		return err
	}
	for _, c := range merged {
		if from != "" && c.Agency != from {
			continue
		}
		if err := s.Store.HandOffClaim(ctx, c.Target, from, to, by, s.now()); err != nil {
			return err
		}
	}
	return nil
}

// Holder returns target's claim and its state now, or nil when nobody
// holds it (never claimed, released, or lapsed). Without a live claim on
// the target itself, one on an id merged into it holds the person.
func (s *Claims) Holder(ctx context.Context, target string) (*Claim, string, error) {
	var merged []string
	if s.Merged != nil {
		var err error
		if merged, err = s.Merged(ctx, target); err != nil {
			return nil, "", err
		}
	}
	return s.Config.HolderOf(ctx, s.Store, s.now(), target, merged)
}
