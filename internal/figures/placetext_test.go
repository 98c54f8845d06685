package figures

import (
	"net/netip"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// A geo database's country and subdivision are counted under the text
// the analysis's roll-ups count them under (observe.PlaceText): the
// exact figures and the roll-ups name one group, and a NUL or a bidi
// override in them reaches no page or CSV cell as it is. Before, the
// exact figures counted them as the database had them.
func TestAFactsPlaceIsTheAnalysissPlaceText(t *testing.T) {
	o := &observe.Observation{Network: observe.NetBitTorrent,
		Place: observe.Place{Country: "F\x00R", Subdivisions: []string{"x", "7\u202e8\xff"}}}
	f := FactOf(o, netip.MustParseAddr("192.0.2.1"), "T-1")
	if f.Country != `F\u0000R` || f.Subdivision != "7\\u202e8\uFFFD" {
		t.Fatalf("fact's country %q, subdivision %q; want observe.PlaceText's", f.Country, f.Subdivision)
	}
}
