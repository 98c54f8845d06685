package webapp

import (
	"context"
	"errors"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/web/pages"
)

// auditReader answers pages.Audit (the audit page) from the store.
type auditReader struct {
	store audit.Store
}

// errNoAuditRight is returned to a viewer whose role reads no audit record.
var errNoAuditRight = errors.New("this role reads no audit record")

// List implements pages.Audit with the access rules of
// access.Principal.AuditScope: an auditor reads every record, a supervisor
// those of the actors of their agency, anyone else none.
func (a auditReader) List(ctx context.Context, u *pages.User, f pages.AuditFilter) ([]pages.AuditRecord, error) {
	af := audit.Filter{Actor: f.Actor, Action: f.Action, Object: f.Object, Since: f.Since, Until: f.Until,
		AfterSeq: f.BeforeSeq, Limit: f.Limit, Desc: true}
	switch {
	case u == nil:
		return nil, errNoAuditRight
	case u.Role == pages.RoleAuditor:
	case u.Role == pages.RoleSupervisor && u.Agency != "":
		af.ActorAgency = u.Agency
	default:
		return nil, errNoAuditRight
	}
	if af.Limit <= 0 || af.Limit > 1000 {
		af.Limit = 200
	}
	var out []pages.AuditRecord
	err := a.store.AuditRecords(ctx, af, func(r audit.Record) error {
		out = append(out, pages.AuditRecord{Seq: r.Seq, Time: r.Time, Actor: r.Actor, ActorAgency: r.ActorAgency, Role: r.Role,
			Remote: r.Remote, Action: r.Action, Object: r.Object, Purpose: r.Purpose, Detail: string(r.Detail)})
		return nil
	})
	return out, err
}
