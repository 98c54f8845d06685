package web

import (
	"context"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/web/api"
	"github.com/vigil-oss/vigil/internal/web/pages"
)

// Store is what the interface reads and writes through its store, and
// all it knows of it: the pages' (pages.Store: their views, the
// watch-lists, the audit trail), the API's (the analysis's targets, the
// observations of the bulk export, the live feed's delivery), and an
// agency's name and address (the head of an ISP request). Accounts and
// sessions go through Deps.Access, over the same store. The SQLite and
// the PostgreSQL store both implement it.
type Store interface {
	pages.Store
	api.Targets
	// AgencyAlerts and VisibleTargets answer the overview's Alerts block.
	AlertStore
	// Agency returns an agency, or access.ErrNotFound.
	Agency(ctx context.Context, id string) (access.Agency, error)
	// The operations pages' boards: operations, the claims and the case
	// steps they count.
	casework.Store
	casework.CaseStore
	casework.OperationStore
}

// operationBoards answers the operations pages (pages.Operations) over
// the store.
type operationBoards struct{ st Store }

func (o operationBoards) OperationList(ctx context.Context) ([]casework.Operation, error) {
	return o.st.Operations(ctx)
}

func (o operationBoards) OperationBoard(ctx context.Context, id int64, scope pages.Scope) (*casework.Board, error) {
	ops := &casework.Operations{Store: o.st, Claims: &casework.Claims{Store: o.st, Config: casework.DefaultConfig()},
		Access: o.st.TargetAgencies}
	return ops.Board(ctx, id, scope, o.caseSteps)
}

// caseSteps reads a target's case steps under the id it is in now: a
// target the analysis merged into another since the operation was made
// has its case there ('vigil operation show' reads them so too).
func (o operationBoards) caseSteps(ctx context.Context, target string) ([]casework.Step, error) {
	if d, err := o.st.TargetWithTimeline(ctx, target, analysis.AllAgencies, 1); err == nil {
		target = d.ID
	}
	return o.st.CaseSteps(ctx, target)
}
