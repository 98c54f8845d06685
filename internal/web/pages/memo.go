package pages

import (
	"context"
	"sync"
	"time"
)

// memo keeps answers by key for ttl, for figures that may lag a little
// (the overview, the count of a filtered list). One computation runs per
// key at a time: concurrent requests for a key not yet known wait for it
// rather than repeat it. An answer older than ttl (but younger than
// 4 ttl) is served as it is while one background refresh replaces it,
// so that no request waits for a refresh under load; an older one is
// recomputed before answering. Errors are not kept.
type memo struct {
	ttl  time.Duration
	max  int             // entries kept at most (then all are dropped)
	base context.Context // bounds background refreshes

	mu sync.Mutex
	m  map[string]*memoEntry
}

type memoEntry struct {
	ready      chan struct{} // closed when the first computation ends
	at         time.Time
	v          any
	err        error
	refreshing bool
}

func newMemo(base context.Context, ttl time.Duration, max int) *memo {
	return &memo{ttl: ttl, max: max, base: base, m: map[string]*memoEntry{}}
}

// get returns the answer for key, computing it with fn if need be.
func (m *memo) get(ctx context.Context, key string, now time.Time, fn func(context.Context) (any, error)) (any, error) {
	m.mu.Lock()
	e := m.m[key]
	if e != nil {
		select {
		case <-e.ready:
			if e.err == nil && now.Sub(e.at) >= 4*m.ttl {
				e = nil // too old to serve: recompute
			}
		default:
		}
	}
	if e == nil {
		if len(m.m) >= m.max {
			m.m = map[string]*memoEntry{}
		}
		e = &memoEntry{ready: make(chan struct{})}
		m.m[key] = e
		m.mu.Unlock()
		v, err := fn(ctx)
		m.mu.Lock()
		e.v, e.err, e.at = v, err, now
		close(e.ready)
		if err != nil && m.m[key] == e {
			delete(m.m, key)
		}
		m.mu.Unlock()
		return v, err
	}
	m.mu.Unlock()
	select {
	case <-e.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	m.mu.Lock()
	v, err := e.v, e.err
	refresh := err == nil && now.Sub(e.at) >= m.ttl && !e.refreshing
	if refresh {
		e.refreshing = true
	}
	m.mu.Unlock()
	if refresh {
		go func() {
			ctx, cancel := context.WithTimeout(m.base, time.Minute)
			defer cancel()
			nv, nerr := fn(ctx)
			m.mu.Lock()
			defer m.mu.Unlock()
			e.refreshing = false
			if nerr == nil {
				e.v, e.at = nv, now
			}
		}()
	}
	return v, err
}
