package access

import "github.com/vigil-oss/vigil/internal/agency"

// Scope is the set of targets a principal may read (Principal.Scope): all
// of them, or those routed to one of Agencies and those shared with one of
// them. It is agency.Scope, the one the analysis, the stores and the web
// read through; the zero Scope admits nothing.
type Scope = agency.Scope
