package webapp

import (
	"context"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/web/api"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// Store is what the interface reads and writes through its store, and
// all it knows of it: the pages' views, the analysis's targets, the
// watch-lists (the lists page imports them), the observations (the API's
// export), an agency's name and address (the head of an ISP request) and
// the audit trail (the audit page). Accounts and sessions go through
// Deps.Access, over the same store. The SQLite store implements it; the
// PostgreSQL store does not yet (it keeps no targets, accounts or audit
// trail).
type Store interface {
	store.Store
	webviews.Store
	api.Targets
	// TargetAgencies returns the routing agency and the shares of a live
	// target (resolving merged ids), or analysis.ErrNotFound.
	TargetAgencies(ctx context.Context, id string) (string, []string, error)
	// Agency returns an agency, or access.ErrNotFound.
	Agency(ctx context.Context, id string) (access.Agency, error)
	audit.Store
}
