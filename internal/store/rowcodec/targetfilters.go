package rowcodec

import (
	"strings"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// TargetFilters appends the conditions of q's filters (all but the scope
// and the sort) on targets t, scoreCol being the score column in force.
// Targets and WebTargets of both stores use it, so that the API and the
// pages filter alike, and both stores alike (SQL both accept, with ?
// placeholders).
func TargetFilters(q analysis.TargetQuery, scoreCol string, where []string, args []any) ([]string, []any) {
	if q.Jurisdiction != "" {
		where = append(where, `t.agency = ?`)
		args = append(args, q.Jurisdiction)
	}
	if q.Network != "" {
		where = append(where, `t.networks LIKE ?`)
		args = append(args, "%,"+q.Network+",%")
	}
	if q.MinScore > 0 {
		where = append(where, scoreCol+` >= ?`)
		args = append(args, q.MinScore)
	}
	if q.MinLevel > 0 {
		where = append(where, `t.max_level >= ?`)
		args = append(args, int(q.MinLevel))
	}
	if q.VPN != nil {
		where = append(where, `t.vpn = ?`)
		args = append(args, boolInt(*q.VPN))
	}
	if !q.Since.IsZero() {
		where = append(where, `t.last_ns >= ?`)
		args = append(args, q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		where = append(where, `t.first_ns < ?`)
		args = append(args, q.Until.UnixNano())
	}
	if q.Category != "" {
		where = append(where, `EXISTS (SELECT 1 FROM target_categories c WHERE c.target = t.id AND c.category = ?)`)
		args = append(args, q.Category)
	}
	if q.MinSeverity > 0 {
		where = append(where, `t.max_severity >= ?`)
		args = append(args, q.MinSeverity)
	}
	if q.MinFiles > 0 {
		where = append(where, `t.files >= ?`)
		args = append(args, q.MinFiles)
	}
	for _, f := range q.Flags {
		// t.flags is the JSON array of the target's flags: the flag's
		// quoted name, LIKE's wildcards escaped (a flag is a word of
		// letters and underscores).
		where = append(where, `t.flags LIKE ? ESCAPE '\'`)
		args = append(args, `%"`+likeEscaper.Replace(f)+`"%`)
	}
	return where, args
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
