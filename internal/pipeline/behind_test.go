package pipeline

import (
	"testing"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/ingest"
)

// waiting is a consumer that only says how much waits on it.
type waiting struct {
	bus.Consumer
	n int
}

func (w waiting) Len() int { return w.n }

// The analysis hears that ingest is behind while its bus holds at least
// another full batch, and not otherwise.
func TestBehindIsAFullBatchWaiting(t *testing.T) {
	for _, c := range []struct {
		batch, waiting int
		want           bool
	}{
		{0, ingest.DefaultConfig().BatchSize - 1, false},
		{0, ingest.DefaultConfig().BatchSize, true},
		{500, 499, false},
		{500, 500, true},
		{500, 0, false},
	} {
		p := &Pipeline{consumer: waiting{n: c.waiting}}
		p.cfg.Ingest.BatchSize = c.batch
		if got := p.behind(); got != c.want {
			t.Errorf("batch %d, %d waiting: behind %v, want %v", c.batch, c.waiting, got, c.want)
		}
	}
	if (&Pipeline{}).behind() {
		t.Error("no consumer: behind")
	}
}
