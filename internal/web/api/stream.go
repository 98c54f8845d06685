package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/web/trail"
)

// LiveAccess decides, when live events are about to be delivered, which of
// them a viewer may see now: access is decided at delivery, never by the
// agency an observation was routed to when it was stored.
type LiveAccess interface {
	// Deliverable returns, for each event, whether p may see it now. An
	// event whose endpoint belongs to a target is deliverable when the
	// target is in p's scope now (routed, assigned or shared with p's
	// agency), whatever agency the observation was routed to at ingest;
	// an event whose endpoint belongs to no target yet when its routed
	// agency is in scope; an alert (no endpoint) to a national scope only.
	// It may set an event's Target to its endpoint's current target.
	Deliverable(ctx context.Context, p *access.Principal, evs []Event) ([]bool, error)
}

// LiveConfig is what the live feed is served from.
type LiveConfig struct {
	// Hub carries the events; the caller publishes into it (from
	// ingest's commit hook). nil: a private hub on which nothing arrives.
	Hub *Hub
	// Access decides at delivery which events a viewer may see now (nil:
	// by the agency each event was published for; national scopes alone
	// receive alerts).
	Access LiveAccess
	// Recheck returns who holds the request's credential now (the
	// session cookie or bearer token it was authenticated with:
	// access.Service.Recheck), or an error wrapping
	// access.ErrUnauthenticated when it no longer holds. A stream calls it
	// before every batch and every RecheckEvery, and ends when it fails
	// or the caller's rights changed. nil: streams are never re-checked
	// (tests only).
	Recheck func(r *http.Request) (*access.Principal, error)
	// RecheckEvery is how often an idle stream re-checks its credential
	// (default DefaultRecheckEvery).
	RecheckEvery time.Duration
	// Window is how long a stream gathers events into one batch (one
	// access decision, one audit record) before writing them (default
	// DefaultLiveWindow).
	Window time.Duration
	// Trail writes the subscription, each batch before it is written,
	// and the end (nil: every stream is refused).
	Trail *trail.Trail
	// MaxStreamsPerUser bounds the streams one user holds open at once
	// (default DefaultMaxStreamsPerUser): each holds a goroutine and
	// re-checks its credential every RecheckEvery. One more is refused
	// with 429, audited as denied.
	MaxStreamsPerUser int
	// Registry, if set, gets the feed's metrics.
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Live serves the live feed. Its handler runs behind the access layer's
// authentication; New makes one, Handler mounts it.
type Live struct {
	cfg LiveConfig
	hub *Hub

	withheld prometheus.Counter     // live events a viewer was not allowed at delivery
	ended    *prometheus.CounterVec // live streams ended, by reason

	mu   sync.Mutex
	open map[string]int // streams open, by user name
}

// NewLive returns the live feed for cfg.
func NewLive(cfg LiveConfig) *Live {
	if cfg.Hub == nil {
		cfg.Hub = NewHub(0)
	}
	if cfg.RecheckEvery <= 0 {
		cfg.RecheckEvery = DefaultRecheckEvery
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultLiveWindow
	}
	if cfg.MaxStreamsPerUser <= 0 {
		cfg.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	l := &Live{cfg: cfg, hub: cfg.Hub, open: map[string]int{},
		withheld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_web_live_withheld_events_total", Help: "Live events withheld at delivery: the viewer may not see their target now."}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_web_live_streams_ended_total", Help: "Live streams ended, by reason (session ended, rights changed, audit failed, ...)."}, []string{"reason"}),
	}
	if cfg.Registry != nil {
		for _, c := range append([]prometheus.Collector{l.withheld, l.ended}, l.hub.Collectors()...) {
			if err := cfg.Registry.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					cfg.Log.Warn("live feed metrics", "err", err)
				}
			}
		}
	}
	return l
}

// Hub is the hub the feed delivers from.
func (l *Live) Hub() *Hub { return l.hub }

// Defaults of the live stream.
const (
	DefaultRecheckEvery = 2 * time.Second
	DefaultLiveWindow   = 500 * time.Millisecond
	// DefaultMaxStreamsPerUser is enough for a user's tabs; a page
	// opens one stream.
	DefaultMaxStreamsPerUser = 16
	maxLiveBatch             = 500
)

// hold takes one of user's stream places, or reports that they are all
// taken; release gives it back.
func (l *Live) hold(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[user] >= l.cfg.MaxStreamsPerUser {
		return false
	}
	l.open[user]++
	return true
}

func (l *Live) release(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[user]--; l.open[user] <= 0 {
		delete(l.open, user)
	}
}

// deliverable filters evs to those p may see now (LiveConfig.Access;
// without one, the agency each event was offered for, and alerts to a
// national scope only).
func (l *Live) deliverable(ctx context.Context, p *access.Principal, evs []Event) ([]Event, error) {
	var ok []bool
	if l.cfg.Access != nil {
		var err error
		if ok, err = l.cfg.Access.Deliverable(ctx, p, evs); err != nil {
			return nil, err
		}
		if len(ok) != len(evs) {
			return nil, fmt.Errorf("live access: %d answers for %d events", len(ok), len(evs))
		}
	} else {
		ok = make([]bool, len(evs))
		for i := range evs {
			ok[i] = offered(p.Scope(), &evs[i]) && (evs[i].Alert == "" || evs[i].Agency == p.Agency)
		}
	}
	out := evs[:0]
	for i := range evs {
		if ok[i] {
			out = append(out, evs[i])
		}
	}
	l.withheld.Add(float64(len(evs) - len(out)))
	return out, nil
}

// stillAllowed re-checks the request's credential (LiveConfig.Recheck):
// "" while it holds for the same user with the same rights, else why the
// stream must end.
func (l *Live) stillAllowed(r *http.Request, p *access.Principal) string {
	if l.cfg.Recheck == nil {
		return ""
	}
	now, err := l.cfg.Recheck(r)
	switch {
	case err != nil && errors.Is(err, access.ErrUnauthenticated):
		return "session ended"
	case err != nil:
		// The account store did not answer: no delivery it cannot vouch for.
		l.cfg.Log.Warn("live: re-checking the session", "user", p.Name, "err", err)
		return "session could not be re-checked"
	case now == nil || now.Name != p.Name || now.Role != p.Role || now.Agency != p.Agency ||
		now.Scope().All != p.Scope().All || !slices.Equal(now.Scope().Agencies, p.Scope().Agencies):
		return "rights changed"
	}
	return ""
}

// liveDetail is what an audit record of a delivery names: every target and
// endpoint the batch shows.
func liveDetail(evs []Event) map[string]any {
	var targets, endpoints, alertIDs []string
	alerts := 0
	for i := range evs {
		if evs[i].Kind == EventAlert {
			alerts++
		}
		if evs[i].Alert != "" {
			alertIDs = append(alertIDs, evs[i].Alert)
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
	d := map[string]any{"events": len(evs), "alerts": alerts, "targets": targets, "endpoints": endpoints}
	if len(alertIDs) > 0 {
		d["alert_ids"] = alertIDs // an agency's alerts shown: audited as a read, each by id
	}
	return d
}

// serveEvents is GET /api/v1/events: server-sent events, one "data:" JSON
// line per Event (the Event's JSON fields; event type = Kind), with a
// comment line every 20 s to keep proxies from closing the stream.
//
// Every batch is decided at delivery: the credential is re-checked (a
// logged-out, expired or disabled session, or changed rights, end the
// stream before anything more is written), each event is filtered by who
// may see its target now (LiveConfig.Access), and the batch is audited,
// naming every target and endpoint in it, before it is written; an audit
// that fails ends the stream. The credential is also re-checked every
// LiveConfig.RecheckEvery while nothing arrives. The subscription and its end
// (with why, and how much was delivered) are audited too. When the client
// is dropped for being slow the stream ends; EventSource reconnects after
// the "retry" delay.
func (l *Live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := access.PrincipalFrom(r.Context())
	if p == nil {
		notAuthenticated(w)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming not supported", http.StatusInternalServerError)
		return
	}
	if !l.hold(p.Name) {
		l.ended.WithLabelValues("too many streams").Inc()
		_ = l.cfg.Trail.Record(r.Context(), r, audit.ActionDenied, "live", "",
			map[string]any{"reason": fmt.Sprintf("already %d live streams open", l.cfg.MaxStreamsPerUser)})
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many live streams open for this user", http.StatusTooManyRequests)
		return
	}
	defer l.release(p.Name)
	scope := p.Scope()
	if !l.cfg.Trail.Before(w, r, refuseStream, audit.ActionLiveSubscribe, "live", "", map[string]any{"scope_all": scope.All, "scope": scope.Agencies}) {
		return
	}
	sub := l.hub.Subscribe(scope)
	defer sub.Close()
	reason, delivered, batches := "client closed the stream", 0, 0
	defer func() {
		l.ended.WithLabelValues(reason).Inc()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		_ = l.cfg.Trail.Record(ctx, r, audit.ActionLiveEnd, "live", "", map[string]any{"reason": reason, "events": delivered, "batches": batches})
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n: vigil live\n\n")
	fl.Flush()
	recheck := time.NewTicker(l.cfg.RecheckEvery)
	defer recheck.Stop()
	keep := time.NewTicker(20 * time.Second)
	defer keep.Stop()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-recheck.C:
			if why := l.stillAllowed(r, p); why != "" {
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
			batch, open := l.gather(ctx, sub, ev)
			if ctx.Err() != nil {
				return
			}
			if why := l.stillAllowed(r, p); why != "" {
				reason = why
				return
			}
			batch, err := l.deliverable(ctx, p, batch)
			if err != nil {
				l.cfg.Log.Warn("live: deciding access", "user", p.Name, "err", err)
				reason = "access could not be decided"
				return
			}
			if len(batch) > 0 {
				if err := l.cfg.Trail.Record(r.Context(), r, audit.ActionLiveDeliver, "live", "", liveDetail(batch)); err != nil {
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
func (l *Live) gather(ctx context.Context, sub *Subscription, first Event) (batch []Event, open bool) {
	batch = append(batch, first)
	t := time.NewTimer(l.cfg.Window)
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
