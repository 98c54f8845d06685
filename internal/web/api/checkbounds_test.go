package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
)

// TestCheckBoundsTheInstantsOfOneAddress: a platform may not map one
// address's activity over a day by asking it at many instants within its
// quota: past InstantsPerAddress distinct times in 24 hours (all its
// accounts together, across a restart), a check of that address is
// refused, and the refusal is in the trail. The same instant again, and
// other addresses, still pass.
func TestCheckBoundsTheInstantsOfOneAddress(t *testing.T) {
	cc := CheckConfig{PerMinute: 100, PerDay: 100, MaxChecks: 5, InstantsPerAddress: 3}
	f := newCheckFixture(t, cc)
	f.svc.AuditLog().Now = f.now // the trail's times are the fixture's, as a restart reads them
	at := func(h int) string { return one("127.20.0.1", 0, checkT.Add(time.Duration(h)*time.Hour)) }
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(at(0), at(2))); code != http.StatusOK {
		t.Fatalf("2 instants: %d %s", code, body)
	}
	if code, body, _ := f.post(t, "plat-fr", "application/json", checkBody(at(4), at(0))); code != http.StatusOK {
		t.Fatalf("a third instant, and the first again, by another account: %d %s", code, body)
	}
	code, body, _ := f.post(t, "plat", "application/json", checkBody(at(6)))
	if code != http.StatusTooManyRequests || !strings.Contains(body, "at most at 3 distinct times") {
		t.Fatalf("a fourth instant of one address: %d %s, want 429", code, body)
	}
	if !f.audited(t, "plat", audit.ActionDenied, "check") {
		t.Error("the refusal is not in the trail")
	}
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(at(2), one("127.20.0.3", 0, checkT))); code != http.StatusOK {
		t.Fatalf("an instant asked before, and another address: %d %s", code, body)
	}
	// A restart: the trail's checks are counted again.
	f.serve(t, cc)
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(at(8))); code != http.StatusTooManyRequests {
		t.Fatalf("a fourth instant after a restart: %d %s, want 429", code, body)
	}
	f.advance(24*time.Hour + time.Minute)
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(at(8))); code != http.StatusOK {
		t.Fatalf("a day later: %d %s", code, body)
	}
}

// TestCheckBoundsThePortsOfOneAddress: a platform may not learn the port
// a sensor met an address on (its client's listening port, which the
// platform never held) by asking one address at one time with port after
// port and reading "address_and_port" from "address_only": each distinct
// time and port asked of an address counts against InstantsPerAddress,
// across a restart too. The same time and port again still pass.
func TestCheckBoundsThePortsOfOneAddress(t *testing.T) {
	cc := CheckConfig{PerMinute: 100, PerDay: 100, MaxChecks: 5, InstantsPerAddress: 3}
	f := newCheckFixture(t, cc)
	f.svc.AuditLog().Now = f.now
	port := func(p int) string { return one("127.20.0.1", p, checkT) }
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(port(6881), port(6882))); code != http.StatusOK {
		t.Fatalf("2 ports: %d %s", code, body)
	}
	if code, body, _ := f.post(t, "plat-fr", "application/json", checkBody(port(6883), port(6881))); code != http.StatusOK {
		t.Fatalf("a third port, and the first again, by another account: %d %s", code, body)
	}
	code, body, _ := f.post(t, "plat", "application/json", checkBody(port(51413)))
	if code != http.StatusTooManyRequests {
		t.Fatalf("a fourth port of one address at one time: %d %s, want 429", code, body)
	}
	f.serve(t, cc)
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(port(51413))); code != http.StatusTooManyRequests {
		t.Fatalf("a fourth port after a restart: %d %s, want 429", code, body)
	}
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(port(6882))); code != http.StatusOK {
		t.Fatalf("a port asked before: %d %s", code, body)
	}
}

// TestCheckRefusalsDoNotFloodTheTrail: a platform that sends request
// after request past its bounds gets each refused, but only
// RefusalRecords of them a minute are recorded one by one; the others
// are counted, and one record says how many once the minute ends.
func TestCheckRefusalsDoNotFloodTheTrail(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{PerMinute: 2, PerDay: 100, MaxChecks: 3, RefusalRecords: 3})
	req := checkBody(one("127.99.0.1", 0, checkT))
	refusals := func() (one, summaries, summed int) {
		err := f.st.AuditRecords(context.Background(), audit.Filter{Actor: "plat", Action: audit.ActionDenied}, func(r audit.Record) error {
			var d struct {
				Summary bool `json:"summary"`
				Refused int  `json:"refused"`
			}
			if err := json.Unmarshal(r.Detail, &d); err != nil {
				return err
			}
			if d.Summary {
				summaries++
				summed += d.Refused
			} else {
				one++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	const sent = 50
	for i := range sent {
		code, _, _ := f.post(t, "plat", "application/json", req)
		if want := http.StatusTooManyRequests; i >= 2 && code != want {
			t.Fatalf("request %d: %d, want %d", i, code, want)
		}
	}
	if n, s, _ := refusals(); n != 3 || s != 0 {
		t.Fatalf("within the minute: %d refusals recorded one by one and %d summaries, want 3 and none yet", n, s)
	}
	// The minute ends; the next request (an unrefused one) writes the
	// summary first.
	f.advance(time.Minute + time.Second)
	if code, body, _ := f.post(t, "plat", "application/json", req); code != http.StatusOK {
		t.Fatalf("a minute later: %d %s", code, body)
	}
	n, s, summed := refusals()
	if n != 3 || s != 1 || n+summed != sent-2 {
		t.Fatalf("after the minute: %d recorded one by one, %d summaries counting %d; want 3, 1 and %d in all", n, s, summed, sent-2)
	}
}
