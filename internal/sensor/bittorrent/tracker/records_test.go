package tracker

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// stepClock returns a clock that moves on by one millisecond at each call,
// so that every record's time is its own and their order shows.
func stepClock() func() time.Time {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Millisecond)
		return now
	}
}

// checkRecords checks that records hold exactly Sent and Raw, in the given
// directions, each later than the one before.
func checkRecords(t *testing.T, r Response, dirs ...bool) {
	t.Helper()
	var sent, raw []byte
	for i, rec := range r.Records {
		if i > 0 && !rec.At.After(r.Records[i-1].At) {
			t.Fatalf("record %d at %v, not after record %d at %v", i, rec.At, i-1, r.Records[i-1].At)
		}
		if rec.Sent {
			sent = append(sent, rec.Bytes...)
		} else {
			raw = append(raw, rec.Bytes...)
		}
	}
	if !bytes.Equal(sent, r.Sent) || !bytes.Equal(raw, r.Raw) {
		t.Fatalf("records hold %d bytes sent and %d received; Sent is %d, Raw %d", len(sent), len(raw), len(r.Sent), len(r.Raw))
	}
	if dirs == nil {
		return
	}
	if len(r.Records) != len(dirs) {
		t.Fatalf("%d records, want %d", len(r.Records), len(dirs))
	}
	for i, d := range dirs {
		if r.Records[i].Sent != d {
			t.Fatalf("record %d sent=%v, want %v", i, r.Records[i].Sent, d)
		}
	}
}

// Each datagram of a UDP announce is its own record with its own time:
// connect, its answer, announce, its answer (at 8846f19 the exchange was
// two concatenated blobs and the sensor gave both one time).
func TestAnnounceUDPRecordsEachDatagramWithItsTime(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	f.configure(func() { f.peers = aps("127.0.0.2:6881") })
	c, _ := newTestClient(t, func(c *Config) { c.Clock = stepClock() })
	r, err := c.Announce(context.Background(), f.url(), syntheticRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, r, true, false, true, false)
	if len(r.Records[0].Bytes) != 16 || len(r.Records[2].Bytes) != 98 {
		t.Fatalf("records of %d and %d bytes, want the 16-byte connect and 98-byte announce", len(r.Records[0].Bytes), len(r.Records[2].Bytes))
	}
}

// Lost datagrams: every retransmission is a record of its own.
func TestAnnounceUDPRecordsRetransmissions(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	f.configure(func() { f.drop = 2 })
	c, _ := newTestClient(t, func(c *Config) { c.UDPRetryBase = 20 * time.Millisecond; c.UDPMaxRetries = 3; c.Clock = stepClock() })
	r, err := c.Announce(context.Background(), f.url(), syntheticRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, r, true, true, true, false, true, false)
}

// An HTTP announce: the request, then the response as read, each read
// with its time, after the request's.
func TestAnnounceHTTPRecordsRequestThenResponse(t *testing.T) {
	body := []byte("d8:intervali1800e5:peers6:" + string(compact4("127.0.0.2:6881")) + "e")
	f := newFakeHTTPTracker(t, false, func(*http.Request) []byte { return body })
	c, _ := newTestClient(t, func(c *Config) { c.Clock = stepClock() })
	r, err := c.Announce(context.Background(), f.srv.URL+"/announce", syntheticRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, r)
	if len(r.Records) < 2 || !r.Records[0].Sent || r.Records[1].Sent {
		t.Fatalf("records %+v: want the request, then the response", r.Records)
	}
	for _, rec := range r.Records[1:] {
		if rec.Sent {
			t.Fatal("a sent record after the response began")
		}
	}
}

// A tracker failure keeps the records too.
func TestAnnounceUDPFailureKeepsRecords(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	f.configure(func() { f.errorMsg = "not registered" })
	c, _ := newTestClient(t, func(c *Config) { c.Clock = stepClock() })
	r, err := c.Announce(context.Background(), f.url(), syntheticRequest(t))
	if err == nil {
		t.Fatal("no error")
	}
	checkRecords(t, r, true, false, true, false)
}
