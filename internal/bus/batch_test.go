package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigil-oss/vigil/internal/observe"
)

// oneByOne is a Publisher that fails the observations whose id it names.
type oneByOne struct {
	fail map[string]bool
	got  []string
}

func (p *oneByOne) Publish(_ context.Context, o observe.Observation) error {
	if p.fail[o.ID] {
		return errors.New("refused (test)")
	}
	p.got = append(p.got, o.ID)
	return nil
}

func batchOf(n int) []observe.Observation {
	obs := make([]observe.Observation, n)
	for i := range obs {
		obs[i].ID = fmt.Sprintf("o%d", i)
	}
	return obs
}

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// To a publisher that takes one observation at a time, a batch is a
// Publish each, every one tried; the error names those that failed, and
// Counted counts each observation, accepted or failed.
func TestPublishBatchOneByOneCountsEachObservation(t *testing.T) {
	p := &oneByOne{fail: map[string]bool{"o1": true, "o3": true}}
	m := NewMetrics()
	err := Counted(p, m).PublishBatch(context.Background(), batchOf(5))
	if got := fmt.Sprint(FailedOf(err, 5)); got != "[1 3]" {
		t.Fatalf("failed %s (%v), want [1 3]", got, err)
	}
	if fmt.Sprint(p.got) != "[o0 o2 o4]" {
		t.Fatalf("published %v, want the other three in order", p.got)
	}
	if value(t, m.Published) != 3 || value(t, m.Errors) != 2 {
		t.Fatalf("counted %v published, %v errors; want 3 and 2", value(t, m.Published), value(t, m.Errors))
	}
	if got := fmt.Sprint(FailedOf(errors.New("down"), 3)); got != "[0 1 2]" {
		t.Fatalf("an error that is not a BatchError fails %s, want all", got)
	}
	if FailedOf(nil, 3) != nil {
		t.Fatal("no error fails something")
	}
}
