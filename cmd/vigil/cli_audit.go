package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/store"
)

// osActor names the operating-system account running this process, from
// the process's real user id (os/user), never from the environment: a
// caller sets $USER, $LOGNAME or $HOME to anything. The name is the
// account's, the uid is always given ("alice uid=1000"); an id with no
// account entry (a container) is "uid=1234".
func osActor() (name, uid string) {
	uid = strconv.Itoa(os.Getuid())
	if u, err := user.LookupId(uid); err == nil && u.Username != "" {
		return u.Username, uid
	}
	return "", uid
}

// cliActor is who runs this command, for the audit trail: "cli:<os user>"
// as the actor, "cli uid=<uid>" as where it came from.
func (a *app) cliActor() *access.Principal {
	name, uid := osActor()
	p := access.CLIActor(name)
	if name == "" {
		p = access.CLIActor("uid=" + uid)
	}
	p.Remote = "cli uid=" + uid
	return p
}

// cliUser is the name written as "by" into watch-list history when no
// --by is given: the operating-system account, as cliActor.
func cliUser() string {
	name, uid := osActor()
	if name == "" {
		return "uid=" + uid
	}
	return name
}

// auditCLI appends the record of a read made from the command line. The
// caller prints nothing when it fails: no data without its trace, on the
// command line as on the web.
func (a *app) auditCLI(ctx context.Context, sq backend, action, object string, detail any) error {
	return a.auditCLIPurpose(ctx, sq, action, object, "", detail)
}

func (a *app) auditCLIPurpose(ctx context.Context, sq backend, action, object, purpose string, detail any) error {
	return a.auditTo(ctx, sq, action, object, purpose, detail)
}

// auditStore appends a record to st's audit trail, if st keeps one (both
// the SQLite and the PostgreSQL store do); with a store that kept none the
// record could not be written, and the error says so.
func (a *app) auditStore(ctx context.Context, st store.Store, action, object, purpose string, detail any) error {
	as, ok := st.(audit.Store)
	if !ok {
		return fmt.Errorf("the audit trail is not written: store %s keeps none", redactDSN(a.dbPath))
	}
	return a.auditTo(ctx, as, action, object, purpose, detail)
}

func (a *app) auditTo(ctx context.Context, as audit.Store, action, object, purpose string, detail any) error {
	r := audit.Record{Action: action, Object: object, Purpose: purpose}
	p := a.cliActor()
	r.Actor, r.Role, r.Remote = p.Name, "cli", p.Remote
	if detail != nil {
		r.Detail = audit.Detail(detail)
	}
	if _, err := (&audit.Log{Store: as}).Append(ctx, r); err != nil {
		a.log.Error("audit trail not written", "action", action, "object", object, "err", err)
		return fmt.Errorf("the audit trail was not written (%s %s), so nothing is shown: %w", action, object, err)
	}
	return nil
}
