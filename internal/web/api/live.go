package api

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/observe"
)

// The live feed, GET /api/v1/events: the hub that fans committed
// observations and alerts out to the open streams (stream.go), each
// subscriber offered only what its scope may want, and the delivery
// deciding for good.

// Event kinds sent to live pages.
const (
	EventObservation = "observation"
	EventAlert       = "alert"
)

// Event is one live update: a new observation (a summary, not the record)
// or an alert. Who receives it is decided when it is delivered, not when it
// was stored (LiveAccess): Agency, Access and Addr serve that decision and
// never leave the server.
type Event struct {
	Kind     string        `json:"kind"`
	Time     time.Time     `json:"time"` // UTC
	Agency   string        `json:"-"`    // the agency the observation was routed to at ingest
	Level    observe.Level `json:"level,omitzero"`
	Network  string        `json:"network,omitempty"`
	Method   string        `json:"method,omitempty"`
	Item     string        `json:"item,omitempty"` // "kind:hex", whole, as the rendered rows show it
	Endpoint string        `json:"endpoint,omitempty"`
	Target   string        `json:"target,omitempty"`  // target id, if known
	Message  string        `json:"message,omitempty"` // for alerts
	Alert    string        `json:"alert,omitempty"`   // an agency's alert: its id (internal/alerts); Agency owns it
	// Marks and FirstHand travel with the observation to the live rows as
	// to every other screen (observe.Observation.Marks, .FirstHand).
	Marks     []string `json:"marks,omitempty"`
	FirstHand bool     `json:"first_hand,omitempty"`
	// Access, when not nil, lists the agencies that could see Target when
	// the event was published (its routing or assigned agency and those
	// it is shared with): the hub offers the event to them rather than to
	// Agency. The delivery decides again (LiveAccess).
	Access []string `json:"-"`
	// Addr is the endpoint's address and port (zero for alerts): the
	// delivery finds the endpoint's target from it.
	Addr netip.AddrPort `json:"-"`
}

// EventFromObservation summarises o for live pages. target may be "".
func EventFromObservation(o *observe.Observation, target string) Event {
	ep := ""
	if o.Endpoint.IP.IsValid() {
		ep = fmt.Sprintf("%s/%s", netipPort(o), o.Endpoint.Transport)
	}
	ev := Event{
		Kind: EventObservation, Time: o.Time.UTC(), Agency: o.Jurisdiction.Agency,
		Level: o.Possession.Level, Network: o.Network, Method: o.Method,
		Item: o.Item.Hash.Kind().String() + ":" + o.Item.Hash.String(), Endpoint: ep, Target: target,
		Marks: o.Marks, FirstHand: o.FirstHand(),
	}
	if o.Endpoint.IP.IsValid() {
		ev.Addr = netip.AddrPortFrom(o.Endpoint.IP.Unmap(), o.Endpoint.Port)
	}
	return ev
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
	scope   access.Scope
	hub     *Hub
	dropped bool // set under hub.mu
}

// offered reports whether an event may interest a subscriber of scope:
// the agencies that could see its target when it was published (Access),
// else the agency it was routed to. Delivery decides for good.
func offered(scope access.Scope, ev *Event) bool {
	if scope.All {
		return true
	}
	if ev.Access != nil {
		for _, a := range ev.Access {
			if scope.Allows(a) {
				return true
			}
		}
		return false
	}
	return scope.Allows(ev.Agency)
}

// Subscribe registers a client that is offered the events scope may see.
func (h *Hub) Subscribe(scope access.Scope) *Subscription {
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

// Publish offers events to every subscriber whose scope may see them
// (offered). It never blocks.
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
			if !offered(s.scope, &events[i]) {
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
