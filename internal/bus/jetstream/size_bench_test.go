package jetstream

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// BenchmarkMessageSize reports the size of a message body (Encode) for
// the store benchmarks' observations (storetest.Observation: every field
// filled, a 256-byte transcript): what a stream and a sensor's queue hold
// an observation (docs/deployment.md sizes them from it).
func BenchmarkMessageSize(b *testing.B) {
	r := rand.New(rand.NewPCG(42, 42))
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var total, n int
	for i := 0; i < b.N; i++ {
		for j := 0; j < 10000; j++ {
			o := storetest.Observation(r, at.Add(time.Duration(j)*37*time.Microsecond), j)
			o.ID = observe.NewID(o.Time)
			body, err := Encode(&o)
			if err != nil {
				b.Fatal(err)
			}
			total += len(body)
			n++
		}
	}
	b.ReportMetric(float64(total)/float64(n), "bytes/msg")
}
