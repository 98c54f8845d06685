package api

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// A sighting that a sensor older than the rule that a malformed bitfield
// is never complete recorded complete (marked malformed_bitfield) is
// answered at the level the sensor records now (observe.CountedLevel:
// partial with the pieces known, acknowledged without), as the analysis
// and the ISP rows count it; and it does not outrank a valid partial
// sighting on the same port. Before the fix the platform was told
// complete.
func TestCheckCountsAnOlderMalformedBitfieldAsTheSensorNowRecordsIt(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	r := rand.New(rand.NewPCG(9, 9))
	mk := func(i int, at time.Duration, level observe.Level, have, total int, marks ...string) observe.Observation {
		o := storetest.Observation(r, checkT.Add(at), 100+i)
		o.Method, o.Marks = observe.MethodPeerProbe, marks
		o.Endpoint = observe.Endpoint{IP: netip.MustParseAddr("127.20.0.13"), Port: 51413, Transport: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:6881")}
		o.Possession = observe.Possession{Level: level, PiecesHave: have, PiecesTotal: total}
		o.Jurisdiction = observe.Jurisdiction{Agency: "fr-a", Rule: "test"}
		return o
	}
	old := mk(1, 0, observe.Complete, -1, -1, observe.MarkMalformedBitfield)
	if err := f.st.InsertObservations(context.Background(), []observe.Observation{old}); err != nil {
		t.Fatal(err)
	}
	got := f.answer(t, "plat", one("127.20.0.13", 51413, checkT)).Results[0]
	if !got.Seen || got.Level != observe.Acknowledged.String() || !slices.Contains(got.Marks, observe.MarkMalformedBitfield) {
		t.Fatalf("127.20.0.13:51413 = %+v, want seen at acknowledged (complete from a malformed bitfield, pieces unknown), marked", got)
	}
	valid := mk(2, time.Minute, observe.Partial, 5, 10)
	if err := f.st.InsertObservations(context.Background(), []observe.Observation{valid}); err != nil {
		t.Fatal(err)
	}
	got = f.answer(t, "plat", one("127.20.0.13", 51413, checkT)).Results[0]
	if got.Level != observe.Partial.String() || len(got.Marks) != 0 {
		t.Fatalf("127.20.0.13:51413 = %+v, want the valid partial sighting before the malformed one", got)
	}
}
