package pages

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Operations answers the operations pages (internal/casework): the list
// of operations and one operation's board as a scope may see it (a local
// service its own row; casework.ErrNoOperation for an operation that gave
// it nothing, as for one that does not exist).
type Operations interface {
	OperationList(ctx context.Context) ([]casework.Operation, error)
	OperationBoard(ctx context.Context, id int64, scope Scope) (*casework.Board, error)
}

// boardView is a board as the page prints it: the columns in order and,
// per row, its service and figures.
type boardView struct {
	Op       casework.Operation
	Steps    []string // casework.StepNone then casework.Steps
	Outcomes []string
	Rows     []boardLine
	Total    boardLine
	Targets  []boardTarget
	National bool
}

// boardTarget is a selected target as it was when the operation was made.
type boardTarget struct {
	Target string
	Score  float64
	Level  observe.Level
	Agency string
}

type boardLine struct {
	Agency string
	Cells  []int
}

func lineOf(r casework.BoardRow, steps, outcomes []string) boardLine {
	l := boardLine{Agency: r.Agency, Cells: []int{r.Targets}}
	for _, s := range steps {
		l.Cells = append(l.Cells, r.Steps[s])
	}
	for _, o := range outcomes {
		l.Cells = append(l.Cells, r.Outcomes[o])
	}
	return l
}

// operations lists the operations: the national office only (another
// user is answered as for a page that does not exist, and the refusal
// audited).
func (s *server) operations(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Operations == nil || s.cfg.Trail == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	if !u.Scope.All {
		s.denied.Inc()
		if s.audited(w, r, u, ActionDenied, "operations", "", map[string]string{"page": "operations"}) {
			s.fail(w, r, u, http.StatusNotFound, "error.notfound")
		}
		return
	}
	ops, err := s.cfg.Operations.OperationList(r.Context())
	if err != nil {
		s.log.Error("operations", "user", u.Name, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	if !s.audited(w, r, u, ActionSearch, "operations", "", map[string]int{"operations": len(ops)}) {
		return
	}
	s.render(w, http.StatusOK, "operations", s.newView(r, u, "operations", "operations.title", ops))
}

// operation shows one operation's board to the national office, and to a
// local service its own row; an operation that gave the service nothing
// answers as one that does not exist (404), audited as denied.
func (s *server) operation(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Operations == nil || s.cfg.Trail == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		s.fail(w, r, u, http.StatusNotFound, "operations.notfound")
		return
	}
	b, err := s.cfg.Operations.OperationBoard(r.Context(), id, u.Scope)
	switch {
	case errors.Is(err, casework.ErrNoOperation):
		s.denied.Inc()
		if s.audited(w, r, u, ActionDenied, "operation:"+raw, "", map[string]string{"page": "operation"}) {
			s.fail(w, r, u, http.StatusNotFound, "operations.notfound")
		}
		return
	case err != nil:
		s.log.Error("operation board", "id", id, "user", u.Name, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	ids := make([]string, 0, len(b.Operation.Targets))
	for _, t := range b.Operation.Targets {
		ids = append(ids, t.Target)
	}
	if !s.audited(w, r, u, ActionListTargets, "operation:"+raw, "", map[string]any{"board": true, "targets": ids}) {
		return
	}
	bv := boardView{Op: b.Operation, Steps: append([]string{casework.StepNone}, casework.Steps...), Outcomes: casework.Outcomes,
		National: u.Scope.All}
	for _, row := range b.Rows {
		bv.Rows = append(bv.Rows, lineOf(row, bv.Steps, bv.Outcomes))
	}
	bv.Total = lineOf(b.Total, bv.Steps, bv.Outcomes)
	for _, t := range b.Operation.Targets {
		l, _ := observe.ParseLevel(t.Level) // a level stored by its name; an unknown one shows as unknown
		bv.Targets = append(bv.Targets, boardTarget{Target: t.Target, Score: t.Score, Level: l, Agency: t.Agency})
	}
	v := s.newView(r, u, "operations", "", bv)
	v.Title = v.T("operation.title", b.Operation.Name)
	s.render(w, http.StatusOK, "operation", v)
}
