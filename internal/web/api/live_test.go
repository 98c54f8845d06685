package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/trail"
)

const (
	agencyA = "dept-78" // Yvelines
	agencyB = "dept-13" // Bouches-du-Rhône
)

// memTrail keeps the records the feed writes, or fails them.
type memTrail struct {
	mu   sync.Mutex
	recs []audit.Record
	fail bool
}

func (m *memTrail) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return audit.Record{}, errors.New("audit store unavailable")
	}
	m.recs = append(m.recs, r)
	return r, nil
}

func (m *memTrail) setFail(b bool) {
	m.mu.Lock()
	m.fail = b
	m.mu.Unlock()
}

func (m *memTrail) count(actor, action string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.recs {
		if r.Actor == actor && r.Action == action {
			n++
		}
	}
	return n
}

// alice is an investigator of agency A.
var alice = &access.Principal{Name: "alice", Agency: agencyA, Role: access.RoleInvestigator, Via: "token", Remote: "127.0.0.1:1"}

// liveEnv serves a feed over hub to requests authenticated as alice (the
// access layer's part: the principal in the request's context).
func liveEnv(t *testing.T, cfg LiveConfig) (url string, m *memTrail) {
	t.Helper()
	m = &memTrail{}
	if cfg.Trail == nil {
		cfg.Trail = trail.New(m, nil)
	}
	l := NewLive(cfg)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), alice)))
	}))
	t.Cleanup(ts.Close)
	return ts.URL, m
}

// openEvents opens the feed at url; the stream ends with ctx.
func openEvents(t *testing.T, ctx context.Context, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestHubFansOutByScope(t *testing.T) {
	h := NewHub(4)
	a := h.Subscribe(access.Scope{Agencies: []string{agencyA}})
	b := h.Subscribe(access.Scope{Agencies: []string{agencyB}})
	all := h.Subscribe(access.Scope{All: true})
	defer a.Close()
	defer b.Close()
	defer all.Close()
	h.Publish(Event{Kind: EventObservation, Agency: agencyA, Item: "1"}, Event{Kind: EventAlert, Agency: agencyB, Item: "2"}, Event{Kind: EventObservation, Item: "3"})
	recv := func(s *Subscription) []string {
		var out []string
		for {
			select {
			case e := <-s.C:
				out = append(out, e.Item)
			default:
				return out
			}
		}
	}
	for _, tc := range []struct {
		name string
		s    *Subscription
		want []string
	}{{"agency A", a, []string{"1"}}, {"agency B", b, []string{"2"}}, {"national", all, []string{"1", "2", "3"}}} {
		got := recv(tc.s)
		if len(got) != len(tc.want) {
			t.Fatalf("%s got %v, want %v", tc.name, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("%s got %v, want %v", tc.name, got, tc.want)
			}
		}
	}
}

func TestHubDropsSlowClientWithoutBlocking(t *testing.T) {
	h := NewHub(2)
	slow := h.Subscribe(access.Scope{All: true})
	fast := h.Subscribe(access.Scope{All: true})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10; i++ {
			h.Publish(Event{Kind: EventObservation, Item: "x"})
			<-fast.C // the fast client keeps up
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a slow client")
	}
	if !slow.Dropped() || fast.Dropped() {
		t.Fatalf("slow dropped %v, fast dropped %v", slow.Dropped(), fast.Dropped())
	}
	n := 0
	for range slow.C { // closed after its buffer drains
		n++
	}
	if n != 2 {
		t.Fatalf("slow client got %d events before the drop, want its buffer of 2", n)
	}
	if h.Len() != 1 {
		t.Fatalf("%d subscribers left, want 1", h.Len())
	}
	slow.Close() // after a drop: no panic
	fast.Close()
	fast.Close()
	if h.Len() != 0 {
		t.Fatalf("%d subscribers after Close", h.Len())
	}
}

func TestEventFromObservationKeepsLevelAndAgency(t *testing.T) {
	var o observe.Observation
	o.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	o.Item.Hash = hashkind.MustNew(hashkind.BTIH, make([]byte, 20))
	o.Endpoint = observe.Endpoint{IP: netip.MustParseAddr("127.0.0.9"), Port: 6881, Transport: "tcp"}
	o.Possession.Level = observe.Partial
	o.Jurisdiction.Agency = agencyA
	o.Method = observe.MethodPeerProbe
	o.Mark(observe.MarkTranscriptCut)
	e := EventFromObservation(&o, "T-1")
	// The whole hash, as the rendered rows show it; the marks and the
	// source travel with the event.
	if e.Level != observe.Partial || e.Agency != agencyA || e.Endpoint != "127.0.0.9:6881/tcp" || e.Time.Location() != time.UTC ||
		e.Item != "btih:"+strings.Repeat("0", 40) || e.Target != "T-1" || !e.FirstHand ||
		!slices.Equal(e.Marks, []string{observe.MarkTranscriptCut}) {
		t.Fatalf("%+v", e)
	}
	o.Method = observe.MethodDHTGetPeers
	o.Mark(observe.MarkThirdParty)
	if e := EventFromObservation(&o, ""); e.FirstHand || !slices.Equal(e.Marks, []string{observe.MarkThirdParty, observe.MarkTranscriptCut}) {
		t.Fatalf("a third party's claim: %+v", e)
	}
}

// A batch whose audit record cannot be written is not delivered: the
// stream ends instead, with nothing of the batch on the wire.
func TestLiveBatchIsNotDeliveredWithoutItsRecord(t *testing.T) {
	hub := NewHub(8)
	url, m := liveEnv(t, LiveConfig{Hub: hub})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := openEvents(t, ctx, url)
	waitSubscribed(t, hub)
	m.setFail(true)
	hub.Publish(Event{Kind: EventObservation, Agency: agencyA, Item: "btih:aaaa", Endpoint: "127.0.1.10:6881/tcp", Target: "T-A1"})
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the stream did not end: %v", err)
	}
	if strings.Contains(string(body), "data:") || strings.Contains(string(body), "127.0.1.10") {
		t.Fatalf("delivered without its audit record:\n%s", body)
	}
}

// A stream whose credential no longer holds (LiveConfig.Recheck) ends
// before it delivers anything more.
func TestLiveStreamEndsWhenTheRecheckFails(t *testing.T) {
	var ended atomic.Bool
	hub := NewHub(8)
	url, m := liveEnv(t, LiveConfig{Hub: hub, RecheckEvery: time.Hour,
		Recheck: func(r *http.Request) (*access.Principal, error) {
			if ended.Load() {
				return nil, access.ErrUnauthenticated
			}
			return access.PrincipalFrom(r.Context()), nil
		}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := openEvents(t, ctx, url)
	waitSubscribed(t, hub)
	hub.Publish(Event{Kind: EventObservation, Agency: agencyA, Item: "btih:first", Target: "T-A1"})
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.Contains(sc.Text(), "btih:first") {
	}
	ended.Store(true)
	hub.Publish(Event{Kind: EventObservation, Agency: agencyA, Item: "btih:after", Target: "T-A1"})
	for sc.Scan() {
		if strings.Contains(sc.Text(), "btih:after") {
			t.Fatal("delivered after the session ended")
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the stream did not end")
	}
	for deadline := time.Now().Add(5 * time.Second); m.count("alice", audit.ActionLiveEnd) != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the end is not audited: %+v", m.recs)
		}
	}
}

// A stream is offered only what its scope may see; an event's level
// travels with it.
func TestEventsStreamIsScoped(t *testing.T) {
	hub := NewHub(8)
	url, _ := liveEnv(t, LiveConfig{Hub: hub})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := openEvents(t, ctx, url)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	waitSubscribed(t, hub)
	hub.Publish(
		Event{Kind: EventObservation, Agency: agencyB, Item: "btih:bbbb", Level: observe.Verified},
		Event{Kind: EventObservation, Agency: agencyA, Item: "btih:aaaa", Level: observe.Complete, Target: "T-A1"},
	)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "btih:bbbb") {
			t.Fatal("alice received agency B's event")
		}
		if strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, `"item":"btih:aaaa"`) || !strings.Contains(line, `"level":"complete"`) {
				t.Fatalf("event: %s", line)
			}
			return
		}
	}
	t.Fatalf("stream ended: %v", sc.Err())
}

// waitSubscribed waits until a stream has subscribed to h, for at most 10 s.
func waitSubscribed(t *testing.T, h *Hub) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); h.Len() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no stream subscribed to the hub within 10 s")
		}
	}
}
