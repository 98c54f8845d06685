package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// LiveAccess decides, when live events are about to be delivered, which of
// them a viewer may see now: access is decided at delivery, never by the
// agency an observation was routed to when it was stored.
type LiveAccess interface {
	// Deliverable returns, for each event, whether u may see it now. An
	// event whose endpoint belongs to a target is deliverable when the
	// target is in u's scope now (routed, assigned or shared with u's
	// agency), whatever agency the observation was routed to at ingest;
	// an event whose endpoint belongs to no target yet when its routed
	// agency is in scope; an alert (no endpoint) to a national scope only.
	// It may set an event's Target to its endpoint's current target.
	Deliverable(ctx context.Context, u *User, evs []Event) ([]bool, error)
}

// ErrSessionEnded is what a Recheck returns for a credential that no
// longer holds (logged out, expired, revoked, user disabled).
var ErrSessionEnded = errors.New("the session or token no longer holds")

// Defaults of the live stream.
const (
	DefaultRecheckEvery = 2 * time.Second
	DefaultLiveWindow   = 500 * time.Millisecond
	maxLiveBatch        = 500
)

// deliverable filters evs to those u may see now (Config.Live; without
// one, the agency each event was offered for, and alerts to a national
// scope only).
func (s *server) deliverable(ctx context.Context, u *User, evs []Event) ([]Event, error) {
	var ok []bool
	if s.cfg.Live != nil {
		var err error
		if ok, err = s.cfg.Live.Deliverable(ctx, u, evs); err != nil {
			return nil, err
		}
		if len(ok) != len(evs) {
			return nil, fmt.Errorf("live access: %d answers for %d events", len(ok), len(evs))
		}
	} else {
		ok = make([]bool, len(evs))
		for i := range evs {
			ok[i] = offered(u.Scope, &evs[i])
		}
	}
	out := evs[:0]
	for i := range evs {
		if ok[i] {
			out = append(out, evs[i])
		}
	}
	s.withheld.Add(float64(len(evs) - len(out)))
	return out, nil
}

// stillAllowed re-checks the request's credential (Config.Recheck): ""
// while it holds for the same user with the same rights, else why the
// stream must end.
func (s *server) stillAllowed(r *http.Request, u *User) string {
	if s.cfg.Recheck == nil {
		return ""
	}
	now, err := s.cfg.Recheck(r)
	switch {
	case err != nil && errors.Is(err, ErrSessionEnded):
		return "session ended"
	case err != nil:
		// The account store did not answer: no delivery it cannot vouch for.
		s.log.Warn("live: re-checking the session", "user", u.Name, "err", err)
		return "session could not be re-checked"
	case now == nil || now.Name != u.Name || now.Role != u.Role || now.Agency != u.Agency ||
		now.Scope.All != u.Scope.All || !slices.Equal(now.Scope.Agencies, u.Scope.Agencies):
		return "rights changed"
	}
	return ""
}

// liveDetail is what an audit record of a delivery names: every target and
// endpoint the batch shows.
func liveDetail(evs []Event) map[string]any {
	var targets, endpoints []string
	alerts := 0
	for i := range evs {
		if evs[i].Kind == EventAlert {
			alerts++
		}
		if t := evs[i].Target; t != "" && !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
		if ep := evs[i].Endpoint; ep != "" && !slices.Contains(endpoints, ep) {
			endpoints = append(endpoints, ep)
		}
	}
	slices.Sort(targets)
	slices.Sort(endpoints)
	return map[string]any{"events": len(evs), "alerts": alerts, "targets": targets, "endpoints": endpoints}
}

// serveEvents is GET /api/v1/events: server-sent events, one "data:" JSON
// line per Event (the Event's JSON fields; event type = Kind), with a
// comment line every 20 s to keep proxies from closing the stream.
//
// Every batch is decided at delivery: the credential is re-checked (a
// logged-out, expired or disabled session, or changed rights, end the
// stream before anything more is written), each event is filtered by who
// may see its target now (Config.Live), and the batch is audited, naming
// every target and endpoint in it, before it is written; an audit that
// fails ends the stream. The credential is also re-checked every
// Config.RecheckEvery while nothing arrives. The subscription and its end
// (with why, and how much was delivered) are audited too. When the client
// is dropped for being slow the stream ends; EventSource reconnects after
// the "retry" delay.
func (s *server) serveEvents(w http.ResponseWriter, r *http.Request, u *User) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming not supported", http.StatusInternalServerError)
		return
	}
	if !s.cfg.Trail.Before(w, r, refuseStream, ActionLiveSubscribe, "live", "", map[string]any{"scope_all": u.Scope.All, "scope": u.Scope.Agencies}) {
		return
	}
	sub := s.hub.Subscribe(u.Scope)
	defer sub.Close()
	reason, delivered, batches := "client closed the stream", 0, 0
	defer func() {
		s.ended.WithLabelValues(reason).Inc()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		_ = s.cfg.Trail.Record(ctx, r, ActionLiveEnd, "live", "", map[string]any{"reason": reason, "events": delivered, "batches": batches})
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n: vigil live\n\n")
	fl.Flush()
	recheck := time.NewTicker(s.recheckEvery)
	defer recheck.Stop()
	keep := time.NewTicker(20 * time.Second)
	defer keep.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-recheck.C:
			if why := s.stillAllowed(r, u); why != "" {
				reason = why
				return
			}
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case ev, ok := <-sub.C:
			if !ok {
				reason = "dropped: the client was too slow"
				return
			}
			batch, open := s.gather(ctx, sub, ev)
			if ctx.Err() != nil {
				return
			}
			if why := s.stillAllowed(r, u); why != "" {
				reason = why
				return
			}
			batch, err := s.deliverable(ctx, u, batch)
			if err != nil {
				s.log.Warn("live: deciding access", "user", u.Name, "err", err)
				reason = "access could not be decided"
				return
			}
			if len(batch) > 0 {
				if err := s.audit(r, ActionLiveDeliver, "live", "", liveDetail(batch)); err != nil {
					reason = "the audit trail did not answer"
					return
				}
				for i := range batch {
					b, err := json.Marshal(batch[i])
					if err != nil {
						continue
					}
					if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", batch[i].Kind, b); err != nil {
						return
					}
				}
				fl.Flush()
				delivered += len(batch)
				batches++
			}
			if !open {
				reason = "dropped: the client was too slow"
				return
			}
		}
	}
}

// refuseStream answers a subscription whose record could not be written.
func refuseStream(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "the audit trail did not answer", http.StatusServiceUnavailable)
}

// gather collects first and whatever else arrives within the live window
// (at most maxLiveBatch events): one access decision and one audit record
// per batch. open is false when the subscription was closed meanwhile.
func (s *server) gather(ctx context.Context, sub *Subscription, first Event) (batch []Event, open bool) {
	batch = append(batch, first)
	t := time.NewTimer(s.liveWindow)
	defer t.Stop()
	for len(batch) < maxLiveBatch {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				return batch, false
			}
			batch = append(batch, ev)
		case <-t.C:
			return batch, true
		case <-ctx.Done():
			return batch, true
		}
	}
	return batch, true
}
