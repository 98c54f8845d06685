// Package agency holds the words of need to know that every layer shares:
// agency ids, the Scope of what a principal may read (the agencies whose
// targets it sees, shares included), the roles a user can have, and
// ErrNotFound, the one answer for a thing that does not exist or that the
// reader may not see.
//
// An agency id is the id of an agency in the jurisdiction rules file
// ("fr-ofmin"): observations and targets are routed to it, users belong to
// it, and a target can be shared with it. Ids are plain strings
// everywhere; CheckID says which strings an agency may be stored under.
//
// The access package decides who is which role and what a role may do;
// the analysis, the stores and the web read through a Scope. This package
// only names: it must never do I/O, decide a permission or widen a scope
// (the zero Scope admits nothing).
package agency

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrNotFound is returned for a thing (a target, link, lead, list, entry,
// account, agency, session or token) that does not exist or that the
// reader's scope does not cover: the two are never told apart. Packages
// that name their own (access.ErrNotFound, analysis.ErrNotFound,
// store.ErrNotFound, pages.ErrNotFound) name this one, so that errors.Is
// holds across them.
var ErrNotFound = errors.New("not found")

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// CheckID validates an agency id before an agency is stored under it.
func CheckID(id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("agency id %q: want 1 to 64 of a-z, 0-9, '.', '_', '-' (the id in the jurisdiction rules)", id)
	}
	return nil
}
