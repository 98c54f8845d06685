package jetstream

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vigil-oss/vigil/internal/observe"
)

// MaxMessageBytes is the most a message of several observations holds,
// well under NATS's default max_payload (1 MiB): a sensor's signed batch
// of 256 observations (about 460 KB) travels as one message, a batch of
// larger ones as a few. A single observation larger than this travels
// alone, as it always did.
const MaxMessageBytes = 512 << 10

// ErrNoObservation is a message body with no line to decode.
var ErrNoObservation = errors.New("message holds no observation")

// message is one message of a published batch: obs[first:first+n], whose
// lines are body.
type message struct {
	subject string // the subject token of its sensor
	id      string // the Nats-Msg-Id that makes a re-publish a duplicate
	first   int
	n       int
	body    []byte
}

// messages cuts obs into message bodies of their JSON lines, in order: a
// new message when the next line would take the body past limit bytes,
// or when the sensor (the subject) changes. An observation that does
// not encode is in no message: its index and error are returned.
func messages(obs []observe.Observation, limit int) (out []message, failed []int, errs []error) {
	var cur *message
	for i := range obs {
		line, err := Encode(&obs[i])
		if err != nil {
			failed, errs = append(failed, i), append(errs, err)
			cur = nil // keep each message a run of consecutive observations
			continue
		}
		tok := subjectToken(obs[i].Sensor.ID)
		if cur == nil || cur.subject != tok || len(cur.body)+len(line) > limit {
			out = append(out, message{subject: tok, first: i})
			cur = &out[len(out)-1]
		}
		cur.body = append(cur.body, line...)
		cur.n++
	}
	for j := range out {
		m := &out[j]
		m.id = messageID(obs[m.first : m.first+m.n])
	}
	return out, failed, errs
}

// messageID is a message's id for JetStream's duplicate window: the
// observation's id for a message of one (what every message was before
// batches, so that the two forms de-duplicate alike), else the first and
// last ids and the count. A message is always a run of a sensor's
// observations in its order, so these name its content.
func messageID(obs []observe.Observation) string {
	if len(obs) == 1 {
		return obs[0].ID
	}
	return fmt.Sprintf("%s+%d+%s", obs[0].ID, len(obs)-2, obs[len(obs)-1].ID)
}

// DecodeMessage reads a message body: one observation a line, blank lines
// skipped. A body of one line is what every message was before batches
// (and what 'vigil observations publish' sends). Each line that does not
// decode gives an *observe.LineError naming its line in the body, and
// the lines around it are still read; a body with no line at all is one
// ErrNoObservation.
func DecodeMessage(body []byte) (obs []observe.Observation, bad []error) {
	lines := 0
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
		var o observe.Observation
		if err := observe.DecodeLine(line, &o); err != nil {
			var le *observe.LineError
			if errors.As(err, &le) {
				err = le.Err
			}
			bad = append(bad, &observe.LineError{Line: n, Err: err})
			continue
		}
		obs = append(obs, o)
	}
	if lines == 0 {
		bad = append(bad, &observe.LineError{Line: 1, Err: ErrNoObservation})
	}
	return obs, bad
}
