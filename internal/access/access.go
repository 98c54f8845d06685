// Package access decides who may do what in Vigil: agencies, users and
// their roles, local passwords (argon2id) with lockout, OpenID Connect
// login, sessions and API tokens, and need-to-know scoping of every query.
// It provides http.Handler middleware (Authenticate, CSRF, RequireRole,
// RequirePermission, SecurityHeaders) and the login and logout handlers;
// the web package mounts them.
//
// Need to know is enforced in the query, not the template: a handler asks
// PrincipalFrom(ctx).Scope() and adds Scope.SQL (or SQLWithShares) to its
// WHERE clause, so that an investigator's lists, details, exports and
// counts only ever read the targets routed to their agency and those
// shared with it. A target outside the scope answers 404 (never 403, which
// would confirm that it exists), and the refusal is audited.
//
// Roles and what they may do (Can):
//
//	permission           admin  analyst  supervisor  investigator  auditor  platform
//	view targets          -     all      own+shared  own+shared     -        -
//	search, count         -     all      own+shared  own+shared     -        -
//	export (+ purpose)    -     all      own+shared  own+shared     -        -
//	claim targets         -      -       yes         yes            -        -
//	share / hand off      -     yes      yes          -             -        -
//	confirm assoc. files  -     yes      yes          -             -        -
//	manage lists          yes   yes       -           -             -        -
//	manage users, tokens  yes    -        -           -             -        -
//	read audit trail      -      -       own agency   -             all      -
//	check addresses       -      -        -           -             -        yes
//
// "own+shared": the targets routed to the user's agency and those another
// agency shared with it. The admin runs the system and manages accounts
// but sees no target: administering Vigil is not a reason to know who is
// suspected. The auditor reads the whole trail (who looked at what, when
// and why: target ids, actions, purposes) but not the targets themselves;
// an audit that needs a target's content is a case for an analyst. A
// supervisor oversees one agency: its targets, hand-offs and the trail of
// its own staff. A platform (a file host's trust-and-safety team) may only
// check addresses it holds, through one narrow route (POST /api/v1/check):
// Confine refuses it every other route and page, whatever its permissions
// say, so that a route added later without a permission check is still
// closed to it.
//
// This package must never decide access from anything the client sends
// other than its credential, never store a password, session id or token
// in clear, and never tell a caller whether an account exists.
package access

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
)

// Role is what a user does: agency.Role, the one set of roles.
type Role = agency.Role

// The roles.
const (
	RoleAdmin        = agency.RoleAdmin
	RoleAnalyst      = agency.RoleAnalyst
	RoleSupervisor   = agency.RoleSupervisor
	RoleInvestigator = agency.RoleInvestigator
	RoleAuditor      = agency.RoleAuditor
	RolePlatform     = agency.RolePlatform
)

// Roles lists every role, in the order of the package table.
var Roles = agency.Roles

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) { return agency.ParseRole(s) }

// Permission is one thing a role may do.
type Permission string

// The permissions of the package table.
const (
	PermViewTargets       Permission = "view_targets" // list, detail, search and count targets (within the Scope)
	PermExport            Permission = "export"       // export targets or evidence (within the Scope, with a purpose)
	PermClaimTargets      Permission = "claim_targets"
	PermShareTargets      Permission = "share_targets" // share with or hand off to another agency
	PermConfirmAssociated Permission = "confirm_associated"
	PermManageLists       Permission = "manage_lists"
	PermManageUsers       Permission = "manage_users"    // users, agencies, tokens
	PermReadAudit         Permission = "read_audit"      // within AuditScope
	PermCheckAddresses    Permission = "check_addresses" // POST /api/v1/check: was an address seen (platforms)
)

var perms = map[Role][]Permission{
	RoleAdmin:        {PermManageLists, PermManageUsers},
	RoleAnalyst:      {PermViewTargets, PermExport, PermShareTargets, PermConfirmAssociated, PermManageLists},
	RoleSupervisor:   {PermViewTargets, PermExport, PermClaimTargets, PermShareTargets, PermConfirmAssociated, PermReadAudit},
	RoleInvestigator: {PermViewTargets, PermExport, PermClaimTargets},
	RoleAuditor:      {PermReadAudit},
	RolePlatform:     {PermCheckAddresses},
}

// RoleCan says whether role r has permission p.
func RoleCan(r Role, p Permission) bool { return slices.Contains(perms[r], p) }

// Lang is a user's interface language.
type Lang string

// The languages of the interface.
const (
	LangFR Lang = "fr"
	LangEN Lang = "en"
)

// Agency is a police service that users belong to and targets are routed
// to. Its id is the id in the jurisdiction rules file.
type Agency struct {
	ID            string
	Name          string
	Country       string   // ISO 3166-1 alpha-2, may be empty
	Jurisdictions []string // what it covers, e.g. "FR-69", "FR" (informational: routing is by the rules file)
	Address       string   // postal address, lines separated by "\n", for the head of its ISP requests; may be empty
	Created       time.Time
}

// CheckAgency validates an agency before it is stored.
func CheckAgency(a Agency) error {
	if err := agency.CheckID(a.ID); err != nil {
		return err
	}
	if strings.TrimSpace(a.Name) == "" {
		return fmt.Errorf("agency %s: a name is required", a.ID)
	}
	if a.Country != "" && !regexp.MustCompile(`^[A-Z]{2}$`).MatchString(a.Country) {
		return fmt.Errorf("agency %s: country %q: want an ISO 3166-1 alpha-2 code such as FR", a.ID, a.Country)
	}
	return nil
}

// User is an account. PasswordHash is empty for an account that logs in
// only through OpenID Connect.
type User struct {
	ID             int64
	Name           string
	Agency         string
	Role           Role
	PasswordHash   string // PHC string, see HashPassword
	Disabled       bool
	DisabledReason string
	FailedCount    int       // failed logins in the current window
	FirstFailure   time.Time // start of the current window; zero if none
	LockedUntil    time.Time // zero: not locked
	Lang           Lang
	TimeZone       string // IANA name, e.g. Europe/Paris
	Created        time.Time
	PasswordSet    time.Time
}

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)

// CheckUser validates the fields of a new or changed user.
func CheckUser(u User) error {
	if !userNameRE.MatchString(u.Name) {
		return fmt.Errorf("user name %q: want 1 to 128 of letters, digits, '.', '_', '@', '+', '-'", u.Name)
	}
	if _, err := ParseRole(string(u.Role)); err != nil {
		return fmt.Errorf("user %s: %w", u.Name, err)
	}
	if u.Agency == "" {
		return fmt.Errorf("user %s: an agency is required", u.Name)
	}
	if u.Lang != LangFR && u.Lang != LangEN {
		return fmt.Errorf("user %s: language %q: want fr or en", u.Name, u.Lang)
	}
	if _, err := time.LoadLocation(u.TimeZone); err != nil || u.TimeZone == "" || u.TimeZone == "Local" {
		return fmt.Errorf("user %s: time zone %q: want an IANA name such as Europe/Paris", u.Name, u.TimeZone)
	}
	return nil
}

// Principal is who makes a request, as the middleware established it.
type Principal struct {
	UserID   int64
	Name     string
	Agency   string
	Role     Role
	Lang     Lang
	TimeZone string
	// Via is how the request was authenticated: "session", "token", "cli".
	Via string
	// Remote is the client address the request came from.
	Remote string
}

// Can says whether the principal's role has permission p.
func (p *Principal) Can(perm Permission) bool { return p != nil && RoleCan(p.Role, perm) }

// Scope says which targets a principal may read.
func (p *Principal) Scope() Scope {
	if p == nil {
		return Scope{}
	}
	switch p.Role {
	case RoleAnalyst:
		return Scope{All: true}
	case RoleInvestigator, RoleSupervisor:
		if p.Agency == "" {
			return Scope{}
		}
		return Scope{Agencies: []string{p.Agency}}
	}
	return Scope{} // admin, auditor: no target
}

// AuditScope says whose audit records a principal may read: all (auditor),
// the actors of their agency (supervisor), or none.
func (p *Principal) AuditScope() (all bool, agency string, ok bool) {
	switch {
	case p == nil:
		return false, "", false
	case p.Role == RoleAuditor:
		return true, "", true
	case p.Role == RoleSupervisor && p.Agency != "":
		return false, p.Agency, true
	}
	return false, "", false
}

// ErrNotFound is returned for an account, agency, session or token that
// does not exist (or, to a caller without the right, is not visible). It
// is agency.ErrNotFound.
var ErrNotFound = agency.ErrNotFound

// ErrExists is returned when creating something that already exists.
var ErrExists = errors.New("already exists")
