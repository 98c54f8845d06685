package pipeline

import (
	"context"
	"sync"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/spool"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Tally counts observations by method and possession level.
type Tally map[string]map[string]int

// Total is the number of observations counted.
func (t Tally) Total() int {
	n := 0
	for _, byLevel := range t {
		for _, c := range byLevel {
			n += c
		}
	}
	return n
}

// tally is a Tally safe for concurrent use, with the publishes that
// failed.
type tally struct {
	mu     sync.Mutex
	t      Tally
	failed int
}

func (t *tally) add(batch []observe.Observation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.t == nil {
		t.t = Tally{}
	}
	for i := range batch {
		o := &batch[i]
		if t.t[o.Method] == nil {
			t.t[o.Method] = map[string]int{}
		}
		t.t[o.Method][o.Possession.Level.String()]++
	}
}

func (t *tally) snapshot() Tally {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(Tally, len(t.t))
	for m, byLevel := range t.t {
		out[m] = make(map[string]int, len(byLevel))
		for l, c := range byLevel {
			out[m][l] = c
		}
	}
	return out
}

// counting wraps p so that what it accepts is tallied: with a remote bus,
// what this process counts is what the bus acknowledged.
func (t *tally) counting(p bus.Publisher) bus.BatchPublisher { return countingPublisher{p, t} }

type countingPublisher struct {
	p bus.Publisher
	t *tally
}

func (c countingPublisher) Publish(ctx context.Context, o observe.Observation) error {
	if err := c.p.Publish(ctx, o); err != nil {
		c.t.mu.Lock()
		c.t.failed++
		c.t.mu.Unlock()
		return err
	}
	c.t.add([]observe.Observation{o})
	return nil
}

// PublishBatch tallies what of obs the bus accepted, and counts the rest
// as failed.
func (c countingPublisher) PublishBatch(ctx context.Context, obs []observe.Observation) error {
	err := bus.PublishBatch(ctx, c.p, obs)
	failed := bus.FailedOf(err, len(obs))
	if len(failed) == 0 {
		c.t.add(obs)
		return err
	}
	ok := make([]observe.Observation, 0, len(obs)-len(failed))
	for i, f := 0, 0; i < len(obs); i++ {
		if f < len(failed) && failed[f] == i {
			f++
			continue
		}
		ok = append(ok, obs[i])
	}
	c.t.add(ok)
	c.t.mu.Lock()
	c.t.failed += len(failed)
	c.t.mu.Unlock()
	return err
}

// Delivery says where this process's sensors' observations went.
type Delivery struct {
	// Remote: they were published to a remote bus (else stored here).
	Remote bool
	// Accepted is the number the bus, or the queue in front of it,
	// accepted (the Tally's total); Failed the number it refused (with a
	// queue: dropped because it was full).
	Accepted, Failed int
	// Queue is what the sensor queue did and holds; nil without one.
	Queue *spool.Stats
}

// Delivery returns where the sensors' observations went so far.
func (p *Pipeline) Delivery() Delivery {
	p.tally.mu.Lock()
	d := Delivery{Remote: p.cfg.Remote != nil, Accepted: p.tally.t.Total(), Failed: p.tally.failed}
	p.tally.mu.Unlock()
	if p.queue != nil {
		st := p.queue.Stats()
		d.Queue = &st
	}
	return d
}

// QueueHealth is the sensor queue's health (spool.Spool.Health); ok with
// no queue.
func (p *Pipeline) QueueHealth() (ok bool, why string) {
	if p.queue == nil {
		return true, "no sensor queue"
	}
	return p.queue.Health()
}
