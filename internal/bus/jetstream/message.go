package jetstream

import (
	"fmt"

	"github.com/vigil-oss/vigil/internal/bus/wire"
	"github.com/vigil-oss/vigil/internal/observe"
)

// MaxMessageBytes is the most a message of several observations holds,
// well under NATS's default max_payload (1 MiB): a sensor's signed batch
// of 256 observations (about 460 KB) travels as one message, a batch of
// larger ones as a few. A single observation larger than this travels
// alone, as it always did.
const MaxMessageBytes = 512 << 10

// ErrNoObservation is a message body with no line to decode.
var ErrNoObservation = wire.ErrNoObservation

// message is one message of a published batch: obs[first:first+n], whose
// lines are body.
type message struct {
	subject string // the subject token of its sensor
	id      string // the Nats-Msg-Id that makes a re-publish a duplicate
	first   int
	n       int
	body    []byte
}

// messages cuts obs into message bodies (wire.Split): each at most limit
// bytes and of one sensor (one subject). An observation that does not
// encode is in no message: its index and error are returned.
func messages(obs []observe.Observation, limit int) ([]message, []int, []error) {
	ms, failed, errs := wire.Split(obs, limit, func(prev, next *observe.Observation) bool {
		return subjectToken(prev.Sensor.ID) == subjectToken(next.Sensor.ID)
	})
	out := make([]message, len(ms))
	for j, m := range ms {
		out[j] = message{subject: subjectToken(obs[m.First].Sensor.ID), id: messageID(obs[m.First : m.First+m.N]),
			first: m.First, n: m.N, body: m.Body}
	}
	return out, failed, errs
}

// messageID is a message's id for JetStream's duplicate window: the
// observation's id for a message of one (what every message was before
// batches, so that the two forms de-duplicate alike), else the first and
// last ids and the count between. A message is always a run of a
// sensor's observations in its order, so these name its content.
func messageID(obs []observe.Observation) string {
	if len(obs) == 1 {
		return obs[0].ID
	}
	return fmt.Sprintf("%s+%d+%s", obs[0].ID, len(obs)-2, obs[len(obs)-1].ID)
}

// DecodeMessage reads a message body (wire.Decode): one observation a
// line. A body of one line is what every message was before batches.
// Each line that does not decode is counted in dropped, the first
// wire.MaxLineErrors of them with an *observe.LineError naming its line;
// the others are still read.
func DecodeMessage(body []byte) (obs []observe.Observation, bad []error, dropped int) {
	return wire.Decode(body)
}
