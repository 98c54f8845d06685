package postgres

// The column encodings are internal/store/rowcodec's, shared with the
// SQLite store: the same JSON shapes for matches and places, the same id
// rule.

import (
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

// placeValue is the place column's value, or NULL when nothing is known.
func placeValue(p *observe.Place) any {
	b, ok := rowcodec.AppendPlace(make([]byte, 0, 160), p)
	if !ok {
		return nil
	}
	return string(b)
}

func parsePlace(s []byte, p *observe.Place) error { return rowcodec.ParsePlace(s, p) }

var (
	appendMatched    = rowcodec.AppendMatched
	appendJSONString = rowcodec.AppendJSONString
	parseUUID        = rowcodec.ParseUUID
	formatUUID       = rowcodec.FormatUUID
)
