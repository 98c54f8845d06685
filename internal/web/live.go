package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/observe"
)

// Event kinds sent to live pages.
const (
	EventObservation = "observation"
	EventAlert       = "alert"
)

// Event is one live update: a new observation (a summary, not the record)
// or an alert. Agency is the jurisdiction it was routed to; only viewers
// whose scope allows it receive it.
type Event struct {
	Kind     string        `json:"kind"`
	Time     time.Time     `json:"time"` // UTC
	Agency   string        `json:"-"`
	Level    observe.Level `json:"level,omitzero"`
	Network  string        `json:"network,omitempty"`
	Method   string        `json:"method,omitempty"`
	Item     string        `json:"item,omitempty"` // "kind:" and the first 16 hex digits
	Endpoint string        `json:"endpoint,omitempty"`
	Target   string        `json:"target,omitempty"`  // target id, if known
	Message  string        `json:"message,omitempty"` // for alerts
}

// EventFromObservation summarises o for live pages. target may be "".
func EventFromObservation(o *observe.Observation, target string) Event {
	item := o.Item.Hash.String()
	if len(item) > 16 {
		item = item[:16] + "…"
	}
	ep := ""
	if o.Endpoint.IP.IsValid() {
		ep = fmt.Sprintf("%s/%s", netipPort(o), o.Endpoint.Transport)
	}
	return Event{
		Kind: EventObservation, Time: o.Time.UTC(), Agency: o.Jurisdiction.Agency,
		Level: o.Possession.Level, Network: o.Network, Method: o.Method,
		Item: o.Item.Hash.Kind().String() + ":" + item, Endpoint: ep, Target: target,
	}
}

func netipPort(o *observe.Observation) string {
	if o.Endpoint.IP.Is4() {
		return fmt.Sprintf("%s:%d", o.Endpoint.IP, o.Endpoint.Port)
	}
	return fmt.Sprintf("[%s]:%d", o.Endpoint.IP, o.Endpoint.Port)
}

// Hub fans events out to live pages. Publish never blocks: each
// subscriber has a bounded buffer, and a subscriber whose buffer is full
// is dropped (its page reconnects and reloads), so that a slow browser can
// never hold up ingest.
type Hub struct {
	buffer int

	mu   sync.Mutex
	subs map[*Subscription]struct{}

	published prometheus.Counter
	dropped   prometheus.Counter
	clients   prometheus.Gauge
}

// DefaultHubBuffer is the per-subscriber buffer of NewHub(0).
const DefaultHubBuffer = 256

// NewHub returns a hub with a per-subscriber buffer of the given size
// (0: DefaultHubBuffer).
func NewHub(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultHubBuffer
	}
	return &Hub{
		buffer: buffer,
		subs:   map[*Subscription]struct{}{},
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_web_live_events_total", Help: "Events published to live pages."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_web_live_dropped_clients_total", Help: "Live clients dropped because their buffer was full."}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_web_live_clients", Help: "Live clients connected."}),
	}
}

// Collectors returns the hub's metrics for registration.
func (h *Hub) Collectors() []prometheus.Collector {
	return []prometheus.Collector{h.published, h.dropped, h.clients}
}

// Subscription is one live client. Read C until it is closed: it closes
// when the subscriber is dropped for being slow or calls Close.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	scope   Scope
	hub     *Hub
	dropped bool // set under hub.mu
}

// Subscribe registers a client that receives the events scope allows.
func (h *Hub) Subscribe(scope Scope) *Subscription {
	c := make(chan Event, h.buffer)
	s := &Subscription{C: c, c: c, scope: scope, hub: h}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	h.clients.Inc()
	return s
}

// Close unregisters s. It is safe to call more than once and after s was
// dropped.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
		h.clients.Dec()
	}
}

// Dropped reports whether s was dropped for being slow.
func (s *Subscription) Dropped() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.dropped
}

// Publish sends events to every subscriber whose scope allows them. It
// never blocks.
func (h *Hub) Publish(events ...Event) {
	if len(events) == 0 {
		return
	}
	h.published.Add(float64(len(events)))
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
	send:
		for i := range events {
			if !s.scope.Allows(events[i].Agency) {
				continue
			}
			select {
			case s.c <- events[i]:
			default:
				s.dropped = true
				delete(h.subs, s)
				close(s.c)
				h.dropped.Inc()
				h.clients.Dec()
				break send
			}
		}
	}
}

// Len returns how many subscribers there are.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// serveEvents is GET /api/v1/events: server-sent events, one "data:" JSON
// line per Event (the Event's JSON fields; event type = Kind), with a
// comment line every 20 s to keep proxies from closing the stream. When the
// client is dropped for being slow the stream ends; EventSource reconnects
// after the "retry" delay and the page carries on.
func (s *server) serveEvents(w http.ResponseWriter, r *http.Request, u *User) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming not supported", http.StatusInternalServerError)
		return
	}
	sub := s.hub.Subscribe(u.Scope)
	defer sub.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n: vigil live\n\n")
	fl.Flush()
	tick := time.NewTicker(20 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case ev, ok := <-sub.C:
			if !ok {
				return
			}
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, b); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
