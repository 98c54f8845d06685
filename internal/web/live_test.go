package web

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

func TestHubFansOutByScope(t *testing.T) {
	h := NewHub(4)
	a := h.Subscribe(Scope{Agencies: []string{agencyA}})
	b := h.Subscribe(Scope{Agencies: []string{agencyB}})
	all := h.Subscribe(Scope{All: true})
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
	slow := h.Subscribe(Scope{All: true})
	fast := h.Subscribe(Scope{All: true})
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
	e := EventFromObservation(&o, "T-1")
	if e.Level != observe.Partial || e.Agency != agencyA || e.Endpoint != "127.0.0.9:6881/tcp" || e.Time.Location() != time.UTC ||
		e.Item != "btih:0000000000000000…" || e.Target != "T-1" {
		t.Fatalf("%+v", e)
	}
}
