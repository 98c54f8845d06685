package pages

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/observe"
)

// QueryError names the query parameter that was not understood. Reason
// is in English (logs, the API); Key is the message key of the same
// reason for the pages, in the viewer's language.
type QueryError struct {
	Param, Value, Reason string
	Key                  string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("%s=%q: %s", e.Param, e.Value, e.Reason)
}

// maxSearch bounds the search text.
const maxSearch = 200

// ParseTargetQuery reads the targets page's filters from URL query
// parameters: jurisdiction, network, minscore, level, vpn (yes|no), from,
// to (YYYY-MM-DD, days in zone), q, sort (score|last|first), order
// (asc|desc), page (1-based). pageSize sets Limit.
func ParseTargetQuery(v url.Values, zone *time.Location, pageSize int) (TargetQuery, error) {
	q := TargetQuery{Jurisdiction: strings.TrimSpace(v.Get("jurisdiction")), Network: strings.TrimSpace(v.Get("network")), Limit: pageSize}
	for _, p := range []struct{ name, val string }{{"jurisdiction", q.Jurisdiction}, {"network", q.Network}} {
		if len(p.val) > 64 || !utf8.ValidString(p.val) {
			return q, &QueryError{p.name, p.val, "not a valid name", "query.name"}
		}
	}
	if s := v.Get("minscore"); s != "" {
		// A French user types a decimal comma ("2,5"), as the pages write it.
		f, err := strconv.ParseFloat(strings.Replace(strings.TrimSpace(s), ",", ".", 1), 64)
		if err != nil || f != f || f < 0 || f > 1e9 {
			return q, &QueryError{"minscore", s, "want a number ≥ 0", "query.number"}
		}
		q.MinScore = f
	}
	if s := v.Get("level"); s != "" {
		l, err := observe.ParseLevel(s)
		if err != nil {
			return q, &QueryError{"level", s, "want announced, acknowledged, partial, complete or verified", "query.level"}
		}
		q.MinLevel = l
	}
	switch s := v.Get("vpn"); s {
	case "", "yes", "no":
		q.VPN = s
	default:
		return q, &QueryError{"vpn", s, "want yes or no", "query.yesno"}
	}
	day := func(name string) (time.Time, error) {
		s := v.Get(name)
		if s == "" {
			return time.Time{}, nil
		}
		t, err := time.ParseInLocation("2006-01-02", s, zone)
		if err != nil {
			return time.Time{}, &QueryError{name, s, "want a date YYYY-MM-DD", "query.date"}
		}
		return t.UTC(), nil
	}
	var err error
	if q.From, err = day("from"); err != nil {
		return q, err
	}
	if q.Until, err = day("to"); err != nil {
		return q, err
	}
	if !q.Until.IsZero() {
		q.Until = q.Until.AddDate(0, 0, 1) // the whole last day
	}
	q.Search = strings.TrimSpace(v.Get("q"))
	if len(q.Search) > maxSearch || !utf8.ValidString(q.Search) {
		return q, &QueryError{"q", q.Search, "too long or not text", "query.search"}
	}
	switch s := v.Get("sort"); s {
	case "", SortScore:
		q.Sort = SortScore
	case SortLast, SortFirst:
		q.Sort = s
	default:
		return q, &QueryError{"sort", s, "want score, last or first", "query.sort"}
	}
	switch s := v.Get("order"); s {
	case "", "desc":
	case "asc":
		q.Asc = true
	default:
		return q, &QueryError{"order", s, "want asc or desc", "query.order"}
	}
	if s := v.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1_000_000 {
			return q, &QueryError{"page", s, "want a page number ≥ 1", "query.page"}
		}
		q.Offset = (n - 1) * pageSize
	}
	return q, nil
}
