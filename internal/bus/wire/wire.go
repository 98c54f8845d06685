// Package wire is the body of a bus message: observations in the JSON
// Lines form of package observe, one a line. A sensor's signed batch is
// one body (or a few: Split keeps each under a size); a body of one line
// is what every message was before batches. Bytes in, values out: it
// does no I/O, and it must never drop a line silently (Decode returns
// an error for each line it cannot read, naming the line).
package wire

import (
	"bytes"
	"errors"

	"github.com/vigil-oss/vigil/internal/observe"
)

// ErrNoObservation is a body with no line to decode.
var ErrNoObservation = errors.New("message holds no observation")

// Message is one body of a split batch: the lines of obs[First:First+N].
type Message struct {
	First, N int
	Body     []byte
}

// Split cuts obs into bodies of their lines, in order: a new body when
// the next line would take it past limit bytes (a line longer than limit
// is a body alone), or when together says the next observation may not
// share a body with the one before it (nil: any may). An observation that
// does not encode is in no body: its index and error are returned, and
// the bodies on either side of it stay runs of consecutive observations.
func Split(obs []observe.Observation, limit int, together func(prev, next *observe.Observation) bool) (msgs []Message, failed []int, errs []error) {
	var cur *Message
	for i := range obs {
		line, err := observe.MarshalLine(&obs[i])
		if err != nil {
			failed, errs = append(failed, i), append(errs, err)
			cur = nil
			continue
		}
		if cur == nil || len(cur.Body)+len(line) > limit || (together != nil && !together(&obs[i-1], &obs[i])) {
			msgs = append(msgs, Message{First: i})
			cur = &msgs[len(msgs)-1]
		}
		cur.Body = append(cur.Body, line...)
		cur.N++
	}
	return msgs, failed, errs
}

// MaxLineErrors is the most errors Decode keeps of one body: a hostile
// publisher's 1 MiB message of half a million lines that do not decode
// must not become half a million errors held in memory.
const MaxLineErrors = 16

// presizeLines is the most observations Decode makes room for before it
// reads them: a sensor's signed batch (256 lines) and more.
const presizeLines = 1024

// Decode reads a body: one observation a line, blank lines skipped, a
// line read as a Decoder reads it (a carriage return before the newline
// dropped). Each line that does not decode is counted in dropped, and
// the first MaxLineErrors give an *observe.LineError naming its line in
// the body; the lines around it are still read. A body with no line at
// all is one ErrNoObservation (dropped 1).
func Decode(body []byte) (obs []observe.Observation, bad []error, dropped int) {
	lines := 0
	// Each line is decoded in its place in obs, grown once to the body's
	// lines (at most presizeLines: a hostile body of half a million
	// lines that do not decode must not reserve room for them all), not
	// appended from a copy and regrown by doubling.
	obs = make([]observe.Observation, 0, min(bytes.Count(body, []byte("\n"))+1, presizeLines))
	for n := 1; len(body) > 0; n++ {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i+1], body[i+1:]
		} else {
			body = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		lines++
		obs = append(obs, observe.Observation{})
		if err := observe.DecodeLine(line, &obs[len(obs)-1]); err != nil {
			obs[len(obs)-1] = observe.Observation{} // what it read keeps nothing alive
			obs = obs[:len(obs)-1]
			dropped++
			if len(bad) < MaxLineErrors {
				var le *observe.LineError
				if errors.As(err, &le) {
					err = le.Err
				}
				bad = append(bad, &observe.LineError{Line: n, Err: err})
			}
			continue
		}
	}
	if len(obs) == 0 {
		obs = nil
	}
	if lines == 0 {
		bad = append(bad, &observe.LineError{Line: 1, Err: ErrNoObservation})
		dropped = 1
	}
	return obs, bad, dropped
}
