package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-oss/vigil/internal/observe"
)

// BatchPublisher is a Publisher that takes many observations at once: a
// sensor's signed batch then crosses a remote bus as one message (or a
// few) instead of one message and one acknowledgement each. PublishBatch
// keeps obs in order. A nil error means the bus holds every one of them;
// a *BatchError says which it does not hold; any other error means it
// holds none.
type BatchPublisher interface {
	Publisher
	PublishBatch(ctx context.Context, obs []observe.Observation) error
}

// BatchError is PublishBatch's error when some of the batch did not
// reach the bus.
type BatchError struct {
	// Failed are the indexes, ascending, of the observations the bus does
	// not hold.
	Failed []int
	// Err is why (the first failure, or all of them joined).
	Err error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%d observations of the batch not published: %v", len(e.Failed), e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// FailedOf returns the indexes of the n observations of a batch that err,
// returned by PublishBatch for them, says did not reach the bus: none for
// nil, those a *BatchError names, and all n for any other error.
func FailedOf(err error, n int) []int {
	if err == nil {
		return nil
	}
	var be *BatchError
	if errors.As(err, &be) {
		return be.Failed
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	return all
}

// PublishBatch hands obs to p: in one call when p is a BatchPublisher,
// else one Publish each, every one tried, the failures returned as a
// *BatchError.
func PublishBatch(ctx context.Context, p Publisher, obs []observe.Observation) error {
	if len(obs) == 0 {
		return nil
	}
	if bp, ok := p.(BatchPublisher); ok {
		return bp.PublishBatch(ctx, obs)
	}
	var failed []int
	var errs []error
	for i := range obs {
		if err := p.Publish(ctx, obs[i]); err != nil {
			failed = append(failed, i)
			errs = append(errs, fmt.Errorf("observation %s: %w", obs[i].ID, err))
		}
	}
	if failed == nil {
		return nil
	}
	return &BatchError{Failed: failed, Err: errors.Join(errs...)}
}
