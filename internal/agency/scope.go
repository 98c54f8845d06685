package agency

import (
	"regexp"
	"slices"
	"strings"
)

// Scope is a reader's need to know: every agency's targets (a national
// office, which also sees unrouted ones), or those routed to one of
// Agencies and those shared with one of them. The zero Scope admits
// nothing: a principal whose scope could not be established sees no
// target.
type Scope struct {
	All      bool     // a national office: every agency, and unrouted targets
	Agencies []string // agency ids: the reader's own (and those sharing with it)
}

// Empty reports whether the scope admits nothing.
func (s Scope) Empty() bool { return !s.All && len(s.Agencies) == 0 }

// Allows says whether a target routed to agency, and shared with the
// agencies sharedWith, is in the scope. An unrouted target ("") is in
// the scope only with All.
func (s Scope) Allows(agency string, sharedWith ...string) bool {
	if s.All {
		return true
	}
	if agency != "" && slices.Contains(s.Agencies, agency) {
		return true
	}
	for _, a := range sharedWith {
		if a != "" && slices.Contains(s.Agencies, a) {
			return true
		}
	}
	return false
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// SQL returns a WHERE fragment that restricts col, a column holding an
// agency id (e.g. "t.agency"), to the scope, and its arguments:
//
//	Scope{All: true}.SQL("t.agency")          -> "1", nil
//	Scope{Agencies: {"a", "b"}}.SQL("t.agency") -> "t.agency IN (?,?)", ["a", "b"]
//	Scope{}.SQL("t.agency")                   -> "0", nil
//
// It fails closed: a col that is not a plain (optionally qualified) column
// name gives "0", which admits nothing. Use it as "... WHERE " + frag, or
// AND it with other conditions in parentheses.
func (s Scope) SQL(col string) (string, []any) {
	if s.All {
		return "1", nil
	}
	if s.Empty() || !identRE.MatchString(col) {
		return "0", nil
	}
	return col + " IN (" + placeholders(len(s.Agencies)) + ")", s.args()
}

// SQLWithShares is SQL that also admits the rows whose idCol (a target id
// column) appears in sharesTable (with columns target_id and agency) for
// one of the scope's agencies:
//
//	(t.agency IN (?) OR t.id IN (SELECT target_id FROM target_shares WHERE agency IN (?)))
//
// It fails closed like SQL when a name is not a plain column or table name.
func (s Scope) SQLWithShares(col, idCol, sharesTable string) (string, []any) {
	if s.All {
		return "1", nil
	}
	if s.Empty() || !identRE.MatchString(col) || !identRE.MatchString(idCol) || !identRE.MatchString(sharesTable) {
		return "0", nil
	}
	ph := placeholders(len(s.Agencies))
	frag := "(" + col + " IN (" + ph + ") OR " + idCol + " IN (SELECT target_id FROM " + sharesTable + " WHERE agency IN (" + ph + ")))"
	return frag, append(s.args(), s.args()...)
}

func (s Scope) args() []any {
	out := make([]any, len(s.Agencies))
	for i, a := range s.Agencies {
		out[i] = a
	}
	return out
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
