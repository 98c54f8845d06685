package agency

import (
	"fmt"
	"slices"
	"strings"
)

// Role is what a user does. What each role may do is the access
// package's table (access.RoleCan).
type Role string

// The roles.
const (
	RoleAdmin        Role = "admin"        // runs the system, manages accounts and lists; sees no target
	RoleAnalyst      Role = "analyst"      // national office: all targets, lists
	RoleSupervisor   Role = "supervisor"   // oversees one agency: its targets and its staff's audit trail
	RoleInvestigator Role = "investigator" // a local service: its agency's targets and those shared with it
	RoleAuditor      Role = "auditor"      // reads the audit trail, not the targets
	// RolePlatform is a platform's trust-and-safety team (a file host, a
	// chat service): it may only ask, through POST /api/v1/check, whether
	// addresses of its own users were seen, and learns nothing else.
	RolePlatform Role = "platform"
)

// Roles lists every role, in the order of the access package's table.
var Roles = []Role{RoleAdmin, RoleAnalyst, RoleSupervisor, RoleInvestigator, RoleAuditor, RolePlatform}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("role %q: want admin, analyst, supervisor, investigator, auditor or platform", s)
}
