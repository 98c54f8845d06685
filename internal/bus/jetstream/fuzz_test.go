package jetstream

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// FuzzDecodeMessage reads any body as a message: it never panics, it
// accounts for every line (an observation or an error naming its line),
// and what it decodes, sent again as PublishBatch sends it, decodes to
// the same observations. Seeds (testdata/fuzz/FuzzDecodeMessage) are
// named for the case they cover: a body of the previous release (one
// line), a batch, a batch with a bad line, blank lines and carriage
// returns, nothing.
func FuzzDecodeMessage(f *testing.F) {
	obs := observations(3)
	var batch []byte
	for i := range obs {
		line, err := Encode(&obs[i])
		if err != nil {
			f.Fatal(err)
		}
		batch = append(batch, line...)
	}
	f.Add(batch)
	f.Add([]byte("not json\n{}\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, bad := DecodeMessage(body)
		lines := 0
		for _, l := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				lines++
			}
		}
		if lines == 0 {
			if len(got) != 0 || len(bad) != 1 || !errors.Is(bad[0], ErrNoObservation) {
				t.Fatalf("a body without a line: %d observations, errors %v; want one ErrNoObservation", len(got), bad)
			}
			return
		}
		if len(got)+len(bad) != lines {
			t.Fatalf("%d lines read as %d observations and %d errors", lines, len(got), len(bad))
		}
		for _, err := range bad {
			var le *observe.LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error %v does not name its line", err)
			}
		}
		msgs, failed, errs := messages(got, MaxMessageBytes)
		if len(failed) > 0 {
			t.Fatalf("decoded observations that do not encode again: %v", errs)
		}
		var again []observe.Observation
		for _, m := range msgs {
			o, bad := DecodeMessage(m.body)
			if len(bad) > 0 {
				t.Fatalf("a message PublishBatch sends does not decode: %v", bad)
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
