package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// lineByLine is Decode as it was before it decoded in place: each line
// into an observation of its own, appended.
func lineByLine(body []byte) (obs []observe.Observation, dropped int) {
	for _, line := range bytes.SplitAfter(body, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var o observe.Observation
		if err := observe.DecodeLine(line, &o); err != nil {
			dropped++
			continue
		}
		obs = append(obs, o)
	}
	return obs, dropped
}

// inPlaceBody is a sensor's batch of 256 lines with lines that do not
// decode (one that fails after fields were read), blank lines and
// carriage returns among them.
func inPlaceBody(t testing.TB) []byte {
	r := rand.New(rand.NewPCG(21, 21))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var body []byte
	for i := range 256 {
		o := storetest.Observation(r, at, i)
		line, err := observe.MarshalLine(&o)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 50 {
		case 7:
			body = append(body, "not json\n"...)
		case 13:
			// Fields read, then a key given twice: the line is dropped.
			body = append(body, bytes.Replace(line, []byte(`{`), []byte(`{"sensor_id":"x","sensor_id":"y",`), 1)...)
			continue
		case 21:
			body = append(body, "\n  \r\n"...)
		case 33:
			line = bytes.Replace(line, []byte("\n"), []byte("\r\n"), 1)
		}
		body = append(body, line...)
	}
	return body
}

// TestDecodeInPlaceIsLineByLine: decoding each line in its place in the
// result reads the same observations as decoding each into its own and
// appending it, with lines that do not decode (after some of their
// fields were read) left out and nothing of them kept.
func TestDecodeInPlaceIsLineByLine(t *testing.T) {
	body := inPlaceBody(t)
	want, wantDropped := lineByLine(body)
	got, _, dropped := Decode(body)
	if dropped != wantDropped || len(got) != len(want) || dropped == 0 {
		t.Fatalf("%d observations and %d dropped, want %d and %d (and some dropped)", len(got), dropped, len(want), wantDropped)
	}
	for i := range got {
		if !got[i].Equal(&want[i]) {
			t.Fatalf("observation %d:\n%+v\nwant\n%+v", i, got[i], want[i])
		}
	}
	if spare := got[len(got):cap(got)]; len(spare) > 0 {
		for i := range spare {
			if !spare[i].Equal(&observe.Observation{}) {
				t.Fatalf("room after the observations holds what a dropped line read: %+v", spare[i])
			}
		}
	}
}

// TestDecodeGrowsOnce: a body's observations are decoded into one slice
// made for them, not appended and regrown (each regrowth copied every
// observation decoded so far, 920 bytes each): Decode allocates no more
// than decoding its lines one by one into a slice made beforehand, plus
// that slice.
func TestDecodeGrowsOnce(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 22))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var body []byte
	for i := range 256 {
		o := storetest.Observation(r, at, i)
		line, err := observe.MarshalLine(&o)
		if err != nil {
			t.Fatal(err)
		}
		body = append(body, line...)
	}
	lines := bytes.SplitAfter(body, []byte("\n"))
	dst := make([]observe.Observation, len(lines))
	perLine := testing.AllocsPerRun(20, func() {
		for i, line := range lines {
			if len(bytes.TrimSpace(line)) > 0 {
				dst[i] = observe.Observation{}
				_ = observe.DecodeLine(line, &dst[i])
			}
		}
	})
	got := testing.AllocsPerRun(20, func() { Decode(body) })
	if extra := got - perLine; extra > 1 {
		t.Fatalf("Decode allocates %.0f times a body, %.0f more than its lines' decoding", got, extra)
	}
}
