package pages

import (
	"context"
	"errors"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/audit"
)

// storeAudit answers Audit (the audit page) from the store.
type storeAudit struct {
	store audit.Store
}

// errNoAuditRight is returned to a viewer whose role reads no audit record.
var errNoAuditRight = errors.New("this role reads no audit record")

// List implements Audit with the access rules of
// access.Principal.AuditScope: an auditor reads every record, a supervisor
// those of the actors of their agency, anyone else none.
func (a storeAudit) List(ctx context.Context, u *User, f AuditFilter) ([]AuditRecord, error) {
	af := audit.Filter{Actor: f.Actor, Action: f.Action, Object: f.Object, Since: f.Since, Until: f.Until,
		AfterSeq: f.BeforeSeq, Limit: f.Limit, Desc: true}
	switch {
	case u == nil:
		return nil, errNoAuditRight
	case u.Role == RoleAuditor:
	case u.Role == RoleSupervisor && u.Agency != "":
		af.ActorAgency = u.Agency
	default:
		return nil, errNoAuditRight
	}
	if af.Limit <= 0 || af.Limit > 1000 {
		af.Limit = 200
	}
	var out []AuditRecord
	err := a.store.AuditRecords(ctx, af, func(r audit.Record) error {
		out = append(out, AuditRecord{Seq: r.Seq, Time: r.Time, Actor: r.Actor, ActorAgency: r.ActorAgency, Role: agency.Role(r.Role),
			Remote: r.Remote, Action: r.Action, Object: r.Object, Purpose: r.Purpose, Detail: string(r.Detail)})
		return nil
	})
	return out, err
}
