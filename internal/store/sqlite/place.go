package sqlite

import (
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

// placeValue is the place column's value: the JSON object of
// internal/store/rowcodec, or NULL when nothing is known.
func placeValue(p *observe.Place) any {
	b, ok := rowcodec.AppendPlace(make([]byte, 0, 160), p)
	if !ok {
		return nil
	}
	return string(b)
}

func parsePlace(s string, p *observe.Place) error { return rowcodec.ParsePlace([]byte(s), p) }
