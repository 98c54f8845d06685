package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// FuzzDecode reads any body as a message: it never panics, it
// accounts for every line (an observation or an error naming its line),
// and what it decodes, split again as a publisher splits a batch, decodes
// to the same observations. Seeds (testdata/fuzz/FuzzDecode) are
// named for the case they cover: a body of the previous release (one
// line), a batch, a batch with a bad line, blank lines and carriage
// returns, nothing.
func FuzzDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 5))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	obs := []observe.Observation{storetest.Observation(r, at, 0), storetest.Observation(r, at, 1), storetest.Observation(r, at, 2)}
	var batch []byte
	for i := range obs {
		line, err := observe.MarshalLine(&obs[i])
		if err != nil {
			f.Fatal(err)
		}
		batch = append(batch, line...)
	}
	f.Add(batch)
	f.Add([]byte("not json\n{}\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, bad, dropped := Decode(body)
		lines := 0
		for _, l := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines++
			}
		}
		if lines == 0 {
			if len(got) != 0 || len(bad) != 1 || dropped != 1 || !errors.Is(bad[0], ErrNoObservation) {
				t.Fatalf("a body without a line: %d observations, errors %v; want one ErrNoObservation", len(got), bad)
			}
			return
		}
		if len(got)+dropped != lines || len(bad) != min(dropped, MaxLineErrors) {
			t.Fatalf("%d lines read as %d observations and %d dropped, %d errors kept", lines, len(got), dropped, len(bad))
		}
		for _, err := range bad {
			var le *observe.LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error %v does not name its line", err)
			}
		}
		msgs, failed, errs := Split(got, 4<<10, nil)
		if len(failed) > 0 {
			t.Fatalf("decoded observations that do not encode again: %v", errs)
		}
		var again []observe.Observation
		for _, m := range msgs {
			if len(m.Body) > 4<<10 && m.N > 1 {
				t.Fatalf("a body of %d observations holds %d bytes, more than 4 KiB", m.N, len(m.Body))
			}
			o, bad, _ := Decode(m.Body)
			if len(bad) > 0 {
				t.Fatalf("a body Split made does not decode: %v", bad)
			}
			again = append(again, o...)
		}
		if len(again) != len(got) {
			t.Fatalf("%d observations sent again came back as %d", len(got), len(again))
		}
		for i := range got {
			if !again[i].Equal(&got[i]) {
				t.Fatalf("observation %d changed on the way:\n%+v\n%+v", i, again[i], got[i])
			}
		}
	})
}
