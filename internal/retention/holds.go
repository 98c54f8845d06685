package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
)

// Sentinel errors of the holds.
var (
	// ErrForbidden: the actor's role may not place or release a hold, or
	// a supervisor asked for a target outside their agency.
	ErrForbidden = errors.New("only a national office analyst, or a supervisor of an agency that sees the target, may place or release a legal hold")
	// ErrNoHold: no active hold to release.
	ErrNoHold = errors.New("no active legal hold")
	// ErrReason: a hold and its release need a reason.
	ErrReason = errors.New("a legal hold and its release need a reason (--reason)")
)

// ErrNotFound is agency.ErrNotFound: the target does not exist.
var ErrNotFound = agency.ErrNotFound

// MaxReason bounds a reason or case reference.
const MaxReason = 512

// Hold is a legal hold on a target: while it is active, nothing of the
// target (the observations at its endpoints, their transcripts, its leads)
// is purged. A hold follows a merge: a hold on a target merged into
// another protects the survivor, whose endpoints are now its own.
type Hold struct {
	ID     int64
	Target string // as given (a merged id stays as given; the store follows it)
	Case   string // the case reference it was placed for, if any
	Reason string
	By     string
	At     time.Time
	// Released is zero while the hold is active.
	Released      time.Time
	ReleasedBy    string
	ReleaseReason string
}

// Active reports whether the hold still protects its target.
func (h Hold) Active() bool { return h.Released.IsZero() }

// HoldStore keeps the holds.
type HoldStore interface {
	// AddHold stores h (ID set by the store) and returns it; an unknown
	// target (never given, live or merged) is ErrNotFound.
	AddHold(ctx context.Context, h Hold) (Hold, error)
	// ReleaseHolds releases the active holds on target (of caseRef only,
	// when not empty) and returns them; none is ErrNoHold.
	ReleaseHolds(ctx context.Context, target, caseRef, by, reason string, at time.Time) ([]Hold, error)
	// Holds lists the holds, oldest first; active only when asked.
	Holds(ctx context.Context, activeOnly bool) ([]Hold, error)
}

// Targets says which agencies see a target (analysis.Views.TargetAgencies).
type Targets interface {
	TargetAgencies(ctx context.Context, id string) (string, []string, error)
}

// Appender is the audit trail (*audit.Log).
type Appender interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// Actor is who asks: a user's name, agency and role, and where from.
type Actor struct {
	Name, Agency, Remote string
	Role                 agency.Role
}

// Holds places, releases and lists legal holds: for a national office
// analyst (every target) or a supervisor (the targets their agency sees).
// Every change, every list and every refusal is in the audit trail, the
// record written before the change.
type Holds struct {
	Store   HoldStore
	Targets Targets
	Trail   Appender
	Now     func() time.Time
}

// Audit actions of the holds and the purge.
const (
	ActionHoldAdd     = "legal_hold_add"
	ActionHoldRelease = "legal_hold_release"
	ActionHoldList    = "legal_hold_list"
	ActionPurgePlan   = "retention_purge"      // written before a run removes anything
	ActionPurgeDone   = "retention_purge_done" // what the run removed
)

func (h *Holds) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

func (h *Holds) record(ctx context.Context, who Actor, action, object string, detail any) error {
	r := audit.Record{Actor: who.Name, ActorAgency: who.Agency, Role: string(who.Role), Remote: who.Remote,
		Action: action, Object: object, Detail: audit.Detail(detail)}
	if _, err := h.Trail.Append(ctx, r); err != nil {
		return fmt.Errorf("the audit trail was not written (%s %s), so nothing was changed: %w", action, object, err)
	}
	return nil
}

// allowed checks who may act on target, recording a refusal.
func (h *Holds) allowed(ctx context.Context, who Actor, action, target string) error {
	ok := who.Role == agency.RoleAnalyst
	if who.Role == agency.RoleSupervisor && who.Agency != "" {
		// An unknown target is refused as another agency's is, and
		// recorded alike: "not found" would tell a supervisor that an id
		// refused them is one that exists.
		route, shares, err := h.Targets.TargetAgencies(ctx, target)
		if err != nil && !errors.Is(err, agency.ErrNotFound) {
			return err
		}
		ok = err == nil && (route == who.Agency || slices.Contains(shares, who.Agency))
	}
	if ok {
		return nil
	}
	if err := h.record(ctx, who, audit.ActionDenied, "target:"+target, map[string]any{"wanted": action}); err != nil {
		return err
	}
	return fmt.Errorf("%s (%s, role %q): %w", action, who.Name, who.Role, ErrForbidden)
}

func checkText(name, v string, required bool) error {
	v = strings.TrimSpace(v)
	if required && v == "" {
		return fmt.Errorf("%s: %w", name, ErrReason)
	}
	if len(v) > MaxReason {
		return fmt.Errorf("%w: %s: %d bytes, at most %d", ErrConfig, name, len(v), MaxReason)
	}
	return nil
}

// Add places a hold on target for caseRef (may be empty) with a reason.
func (h *Holds) Add(ctx context.Context, who Actor, target, caseRef, reason string) (Hold, error) {
	if err := checkText("--reason", reason, true); err != nil {
		return Hold{}, err
	}
	if err := checkText("--case", caseRef, false); err != nil {
		return Hold{}, err
	}
	if err := h.allowed(ctx, who, ActionHoldAdd, target); err != nil {
		return Hold{}, err
	}
	if err := h.record(ctx, who, ActionHoldAdd, "target:"+target, map[string]any{"case": caseRef, "reason": reason}); err != nil {
		return Hold{}, err
	}
	return h.Store.AddHold(ctx, Hold{Target: target, Case: strings.TrimSpace(caseRef), Reason: strings.TrimSpace(reason), By: who.Name, At: h.now()})
}

// Release releases the active holds on target (of caseRef, if given).
func (h *Holds) Release(ctx context.Context, who Actor, target, caseRef, reason string) ([]Hold, error) {
	if err := checkText("--reason", reason, true); err != nil {
		return nil, err
	}
	if err := h.allowed(ctx, who, ActionHoldRelease, target); err != nil {
		return nil, err
	}
	if err := h.ownHolds(ctx, who, target, strings.TrimSpace(caseRef)); err != nil {
		return nil, err
	}
	if err := h.record(ctx, who, ActionHoldRelease, "target:"+target, map[string]any{"case": caseRef, "reason": reason}); err != nil {
		return nil, err
	}
	return h.Store.ReleaseHolds(ctx, target, strings.TrimSpace(caseRef), who.Name, strings.TrimSpace(reason), h.now())
}

// ownHolds refuses (and records) a supervisor's release that would
// release an active hold someone else placed: only a national office
// analyst releases another's hold (a supervisor of an agency the target is
// shared with must not lift a hold placed for another agency's case).
func (h *Holds) ownHolds(ctx context.Context, who Actor, target, caseRef string) error {
	if who.Role != agency.RoleSupervisor {
		return nil
	}
	want := strings.TrimSpace(target)
	if c, ok := analysis.CanonicalTargetID(want); ok {
		want = c
	}
	hs, err := h.Store.Holds(ctx, true)
	if err != nil {
		return err
	}
	for _, x := range hs {
		if x.Target != want || (caseRef != "" && x.Case != caseRef) || x.By == who.Name {
			continue
		}
		if err := h.record(ctx, who, audit.ActionDenied, "target:"+target, map[string]any{"wanted": ActionHoldRelease, "hold": x.ID, "placed_by": x.By}); err != nil {
			return err
		}
		return fmt.Errorf("%s (%s, role %q): hold %d was placed by %s, only a national office analyst may release it: %w", ActionHoldRelease, who.Name, who.Role, x.ID, x.By, ErrForbidden)
	}
	return nil
}

// List lists the holds (active only, when asked): analysts and supervisors
// only, recorded.
func (h *Holds) List(ctx context.Context, who Actor, activeOnly bool) ([]Hold, error) {
	if who.Role != agency.RoleAnalyst && who.Role != agency.RoleSupervisor {
		if err := h.record(ctx, who, audit.ActionDenied, "legal_holds", map[string]any{"wanted": ActionHoldList}); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s (%s, role %q): %w", ActionHoldList, who.Name, who.Role, ErrForbidden)
	}
	if err := h.record(ctx, who, ActionHoldList, "legal_holds", map[string]any{"active_only": activeOnly}); err != nil {
		return nil, err
	}
	hs, err := h.Store.Holds(ctx, activeOnly)
	if err != nil || who.Role == agency.RoleAnalyst {
		return hs, err
	}
	// A supervisor sees the holds on the targets their agency sees.
	var out []Hold
	for _, x := range hs {
		route, shares, err := h.Targets.TargetAgencies(ctx, x.Target)
		if errors.Is(err, agency.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if route == who.Agency || slices.Contains(shares, who.Agency) {
			out = append(out, x)
		}
	}
	return out, nil
}
