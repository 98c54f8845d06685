package casework

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
)

// Operations: a national analyst selects targets by criteria, shares them
// out to services and follows a board (per service, how many targets, at
// which case step, with what outcomes). An operation keeps its criteria as
// given and a snapshot of what they selected when it was created (each
// target's score and level then), so that the board says what was decided
// on, not what the targets became. Assigning a target to a service never
// takes away a claim another service holds: that target is reported as
// held and left.

// Criteria are an operation's selection, as given (kept with it).
type Criteria struct {
	MinScore         float64 `json:"min_score,omitempty"`
	Category         string  `json:"category,omitempty"`
	MinFiles         int     `json:"min_files,omitempty"` // volume: distinct watched files
	KnownOffender    bool    `json:"known_offender,omitempty"`
	AccessToChildren bool    `json:"access_to_children,omitempty"`
	Jurisdiction     string  `json:"jurisdiction,omitempty"`
	Network          string  `json:"network,omitempty"`
	MinLevel         string  `json:"min_level,omitempty"` // a possession level's name
	Limit            int     `json:"limit,omitempty"`
}

// OperationTarget is one target an operation selected, as it was then,
// and the service it was assigned to ("" not yet).
type OperationTarget struct {
	Target     string    `json:"target"`
	Score      float64   `json:"score"` // when the operation was created
	Level      string    `json:"level"` // its highest possession level then
	Agency     string    `json:"agency,omitempty"`
	AssignedBy string    `json:"assigned_by,omitempty"`
	AssignedAt time.Time `json:"assigned_at,omitzero"`
}

// Operation is a national selection of targets shared out to services.
type Operation struct {
	ID       int64             `json:"id"`
	Name     string            `json:"name"`
	Criteria Criteria          `json:"criteria"`
	By       string            `json:"by"`
	At       time.Time         `json:"at"`
	Targets  []OperationTarget `json:"targets"`
}

// Errors of operations.
var (
	// ErrNoOperation: no such operation, or none the reader may see (never
	// told apart: agency.ErrNotFound).
	ErrNoOperation = fmt.Errorf("casework: operation: %w", agency.ErrNotFound)
	// ErrNotInOperation: the target is not one the operation selected.
	ErrNotInOperation = errors.New("casework: the target is not in the operation")
	// ErrNotNational: only the national office creates and shares out
	// operations.
	ErrNotNational = errors.New("casework: only the national office creates or assigns operations")
)

// OperationStore keeps operations.
type OperationStore interface {
	// CreateOperation stores op with its targets (unassigned) in one
	// transaction and returns its id.
	CreateOperation(ctx context.Context, op Operation) (int64, error)
	// Operation returns the operation with its targets in their order of
	// selection, or ErrNoOperation.
	Operation(ctx context.Context, id int64) (*Operation, error)
	// Operations returns every operation, newest first, without targets.
	Operations(ctx context.Context) ([]Operation, error)
	// AssignOperationTarget gives target to agency in operation id unless
	// it is assigned already; atomic (of two assigning at once, one wins),
	// it returns the agency the target is assigned to after the call, or
	// ErrNotInOperation.
	AssignOperationTarget(ctx context.Context, id int64, target, agency, by string, at time.Time) (string, error)
}

// Assignment outcomes.
const (
	Assigned        = "assigned"         // the target is now the service's in the operation
	AlreadyAssigned = "already_assigned" // it was already the service's
	AssignedElse    = "assigned_to_other"
	HeldByOther     = "held"     // another service holds its claim: left as it is
	Gone            = "gone"     // no longer a target (its observations expired): left
	Unrouted        = "unrouted" // routed to no service, and none was named: left
)

// Assignment is what became of one target's assignment.
type Assignment struct {
	Target string `json:"target"`
	Agency string `json:"agency"` // the service asked for
	Result string `json:"result"`
	Other  string `json:"other,omitempty"` // the service holding the claim, or assigned it before
}

func (a Assignment) String() string {
	switch a.Result {
	case HeldByOther:
		return fmt.Sprintf("%s: held by %s, left (not assigned to %s)", a.Target, a.Other, a.Agency)
	case AssignedElse:
		return fmt.Sprintf("%s: already assigned to %s in this operation (not to %s)", a.Target, a.Other, a.Agency)
	case Gone:
		return fmt.Sprintf("%s: no longer a target, left", a.Target)
	case Unrouted:
		return fmt.Sprintf("%s: routed to no service, left (assign it with --target and --agency)", a.Target)
	case AlreadyAssigned:
		return fmt.Sprintf("%s: already assigned to %s", a.Target, a.Agency)
	}
	return fmt.Sprintf("%s: assigned to %s", a.Target, a.Agency)
}

// Operations is the operations service over a store and the claims.
type Operations struct {
	Store  OperationStore
	Claims *Claims
	// Access, if set, says who may see a target now: the agency it is
	// routed or assigned to and those it is shared with, a merged id
	// followed to the target it is in (the store's TargetAgencies;
	// agency.ErrNotFound for one that is gone). A board shows a local
	// service a target assigned to it only while the service may see
	// it: one handed off or unshared since leaves its row, with its case
	// steps and outcomes. nil: by the assignment alone (tests only).
	Access func(ctx context.Context, target string) (route string, shares []string, err error)
}

// Gave reports whether op gave scope a target it may see now: a national
// scope any operation; a local service one with a target assigned to it
// that it may still see (Operations.Access), as its board shows it.
func (o *Operations) Gave(ctx context.Context, op *Operation, scope agency.Scope) (bool, error) {
	if scope.All {
		return true, nil
	}
	for _, t := range op.Targets {
		if t.Agency == "" || !scope.Allows(t.Agency) {
			continue
		}
		ok, err := o.seesNow(ctx, scope, t.Target)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// seesNow says whether scope may see target now (Operations.Access).
func (o *Operations) seesNow(ctx context.Context, scope agency.Scope, target string) (bool, error) {
	if scope.All || o.Access == nil {
		return true, nil
	}
	route, shares, err := o.Access(ctx, target)
	switch {
	case errors.Is(err, agency.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("target %s: who may see it: %w", target, err)
	}
	return scope.Allows(route, shares...), nil
}

// Create checks op and stores it, made by by now.
func (o *Operations) Create(ctx context.Context, op Operation, by string) (Operation, error) {
	op.Name = strings.TrimSpace(op.Name)
	if op.Name == "" || strings.TrimSpace(by) == "" {
		return op, fmt.Errorf("%w: operation name %q, by %q", ErrInput, op.Name, by)
	}
	op.By, op.At = by, o.Claims.now()
	for i := range op.Targets {
		op.Targets[i].Agency, op.Targets[i].AssignedBy, op.Targets[i].AssignedAt = "", "", time.Time{}
	}
	id, err := o.Store.CreateOperation(ctx, op)
	op.ID = id
	return op, err
}

// Assign gives target to agency in operation id, unless another service
// holds the target's live claim (Result HeldByOther: nothing is written,
// the claim stays) or the operation assigned it to another service before
// (AssignedElse). The caller shares the target with the agency when the
// Result is Assigned.
func (o *Operations) Assign(ctx context.Context, id int64, target, agency, by string) (Assignment, error) {
	a := Assignment{Target: target, Agency: agency}
	if strings.TrimSpace(agency) == "" {
		return a, fmt.Errorf("%w: target %s: no agency to assign it to", ErrInput, target)
	}
	h, _, err := o.Claims.Holder(ctx, target)
	if err != nil {
		return a, err
	}
	if h != nil && h.Agency != agency {
		a.Result, a.Other = HeldByOther, h.Agency
		return a, nil
	}
	cur, err := o.Store.AssignOperationTarget(ctx, id, target, agency, by, o.Claims.now())
	switch {
	case err != nil:
		return a, err
	case cur != agency:
		a.Result, a.Other = AssignedElse, cur
	default:
		a.Result = Assigned
	}
	return a, nil
}

// StepNone is the board's column of targets whose case has no step yet.
const StepNone = "none"

// BoardRow is one service's line of the board (Agency "" for targets not
// assigned yet).
type BoardRow struct {
	Agency   string         `json:"agency"`
	Targets  int            `json:"targets"`
	Steps    map[string]int `json:"steps"`    // the case's latest step (StepNone: none yet) → targets
	Outcomes map[string]int `json:"outcomes"` // outcome of a closed case → targets
}

// Board is an operation's board: one row per service, and the totals.
type Board struct {
	Operation Operation  `json:"operation"`
	Rows      []BoardRow `json:"rows"`
	Total     BoardRow   `json:"total"`
}

func newRow(ag string) BoardRow {
	r := BoardRow{Agency: ag, Steps: map[string]int{StepNone: 0}, Outcomes: map[string]int{}}
	for _, s := range Steps {
		r.Steps[s] = 0
	}
	for _, o := range Outcomes {
		r.Outcomes[o] = 0
	}
	return r
}

func (r *BoardRow) add(steps []Step) {
	r.Targets++
	if len(steps) == 0 {
		r.Steps[StepNone]++
		return
	}
	last := steps[len(steps)-1]
	r.Steps[last.Step]++
	for _, o := range last.Outcomes {
		r.Outcomes[o]++
	}
}

// Board reads operation id's board as scope may see it: the national
// office (scope.All) every row and the totals; a local service only its
// own row (its targets that it may still see now: Operations.Access, as
// the totals), and ErrNoOperation when the operation gave it no target it
// may see now (as for an operation that does not exist).
// steps reads a target's case steps (a merged target's under the id it
// is in now: the caller resolves).
func (o *Operations) Board(ctx context.Context, id int64, scope agency.Scope, steps func(ctx context.Context, target string) ([]Step, error)) (*Board, error) {
	op, err := o.Store.Operation(ctx, id)
	if err != nil {
		return nil, err
	}
	b := &Board{Operation: *op, Total: newRow("")}
	rows := map[string]*BoardRow{}
	var kept []OperationTarget
	for _, t := range op.Targets {
		if !scope.All && (t.Agency == "" || !scope.Allows(t.Agency)) {
			continue
		}
		if ok, err := o.seesNow(ctx, scope, t.Target); err != nil {
			return nil, fmt.Errorf("operation %d: %w", id, err)
		} else if !ok {
			continue // handed off or unshared since it was assigned
		}
		kept = append(kept, t)
		st, err := steps(ctx, t.Target)
		if err != nil {
			return nil, fmt.Errorf("operation %d, target %s: %w", id, t.Target, err)
		}
		r := rows[t.Agency]
		if r == nil {
			nr := newRow(t.Agency)
			r = &nr
			rows[t.Agency] = r
		}
		r.add(st)
		b.Total.add(st)
	}
	if !scope.All && len(kept) == 0 {
		return nil, fmt.Errorf("operation %d: %w", id, ErrNoOperation)
	}
	b.Operation.Targets = kept
	for _, r := range rows {
		b.Rows = append(b.Rows, *r)
	}
	slices.SortFunc(b.Rows, func(x, y BoardRow) int {
		switch {
		case x.Agency == "" && y.Agency != "":
			return 1
		case y.Agency == "" && x.Agency != "":
			return -1
		}
		return strings.Compare(x.Agency, y.Agency)
	})
	return b, nil
}
