package api

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
)

// Two more bounds of the platforms' check (docs/platforms.md):
//
//   - Instants: a platform may ask about one address at most
//     CheckConfig.InstantsPerAddress distinct instants in any 24 hours
//     (all its accounts together), an instant being a time and the port
//     given with it. Within its day's quota it could otherwise ask one
//     address at many times and map that address's activity over a day
//     from the seen / not seen answers, or at one time with port after
//     port and learn, from "address_and_port", the port a sensor met it
//     on: its client's listening port, which the platform never held.
//   - Refusal records: each refused request writes its record, up to
//     CheckConfig.RefusalRecords an account in each minute; past that
//     the refusals are counted, and one record a minute says how many
//     (by status), so that a platform sending request after request
//     cannot flood the append-only trail, and no refusal goes uncounted.

// Defaults of the bounds above.
const (
	DefaultCheckInstantsPerAddress = 3
	DefaultCheckRefusalRecords     = 6
)

// refusalWindow is the window refusal records are bounded in.
const refusalWindow = time.Minute

// askedInstant is one instant asked of an address (its time and the
// port given, 0 for none), and when.
type askedInstant struct {
	when, instant time.Time
	port          int
}

// instantKey is an instant as the bound counts it: its time and port.
type instantKey struct {
	at   time.Time
	port int
}

// refusalTally counts one account's refusals in its current window.
type refusalTally struct {
	start    time.Time
	written  int         // recorded one by one
	over     int         // past the bound: counted, recorded in the summary
	statuses map[int]int // of those over
	req      *http.Request
}

// refusalSummary is a window's count of refusals not recorded one by one.
type refusalSummary struct {
	start    time.Time
	over     int
	statuses map[int]int
	req      *http.Request // the last of them: whose they were
	// end, when set, is where a window cut short (the server stopped)
	// ended; else it ended refusalWindow after start.
	end time.Time
}

// admitInstants says whether the platform may ask checks: none of their
// addresses would then have been asked at more than perAddress distinct
// instants in the 24 hours before now. On true they are counted; on
// false nothing is, and addr is the first address past the bound.
func (l *checkLimiter) admitInstants(platform string, now time.Time, checks []asked, perAddress int) (ok bool, addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.usage(platform)
	if u.instants == nil {
		u.instants = map[netip.Addr][]askedInstant{}
	}
	distinct := map[netip.Addr][]instantKey{}
	for a, was := range u.instants {
		was = slices.DeleteFunc(was, func(x askedInstant) bool { return !x.when.After(now.Add(-24 * time.Hour)) })
		if len(was) == 0 {
			delete(u.instants, a)
			continue
		}
		u.instants[a] = was
	}
	for _, c := range checks {
		if _, done := distinct[c.addr]; !done {
			for _, x := range u.instants[c.addr] {
				distinct[c.addr] = addInstant(distinct[c.addr], instantKey{x.instant, x.port})
			}
		}
		distinct[c.addr] = addInstant(distinct[c.addr], instantKey{c.at, c.port})
		if len(distinct[c.addr]) > perAddress {
			return false, c.addr
		}
	}
	for _, c := range checks {
		u.instants[c.addr] = append(u.instants[c.addr], askedInstant{now, c.at, c.port})
	}
	return true, netip.Addr{}
}

func addInstant(ks []instantKey, k instantKey) []instantKey {
	if slices.ContainsFunc(ks, func(x instantKey) bool { return x.port == k.port && x.at.Equal(k.at) }) {
		return ks
	}
	return append(ks, k)
}

// seedInstants adds instants read from the trail to platform's, once
// (with seed).
func (l *checkLimiter) seedInstants(platform string, got map[netip.Addr][]askedInstant) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.usage(platform)
	if u.instants == nil {
		u.instants = map[netip.Addr][]askedInstant{}
	}
	for a, xs := range got {
		u.instants[a] = append(u.instants[a], xs...)
	}
}

// refuse counts a refusal of user at now: true when its own record is
// to be written (at most bound in the window), false when it is only
// counted for the window's summary.
func (l *checkLimiter) refuse(user string, now time.Time, bound, status int, r *http.Request) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return true // nothing would write a summary any more
	}
	if l.refusals == nil {
		l.refusals = map[string]*refusalTally{}
	}
	t := l.refusals[user]
	if t == nil || !now.Before(t.start.Add(refusalWindow)) {
		if t != nil && t.over > 0 {
			l.due = append(l.due, refusalSummary{start: t.start, over: t.over, statuses: t.statuses, req: t.req})
		}
		t = &refusalTally{start: now}
		l.refusals[user] = t
	}
	if t.written < bound {
		t.written++
		return true
	}
	if t.statuses == nil {
		t.statuses = map[int]int{}
	}
	t.over++
	t.statuses[status]++
	t.req = r
	return false
}

// dueSummaries takes the summaries of the windows ended by now, and with
// all, of every window (those still open end at now).
func (l *checkLimiter) dueSummaries(now time.Time, all bool) []refusalSummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	for user, t := range l.refusals {
		ended := !now.Before(t.start.Add(refusalWindow))
		if ended || all {
			if t.over > 0 {
				s := refusalSummary{start: t.start, over: t.over, statuses: t.statuses, req: t.req}
				if !ended {
					s.end = now
				}
				l.due = append(l.due, s)
			}
			delete(l.refusals, user)
		}
	}
	due := l.due
	l.due = nil
	return due
}

// requeue puts back summaries whose record could not be written.
func (l *checkLimiter) requeue(s []refusalSummary) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.due = append(l.due, s...)
}

// writeRefusalSummaries records, each under the account it counts, how
// many refusals of each ended window were not recorded one by one. One
// that cannot be written is kept for the next call.
func (h *handler) writeRefusalSummaries(ctx context.Context, now time.Time) {
	_ = h.writeSummaries(ctx, h.limits.dueSummaries(now, false))
}

// flushRefusals records the summaries of every window, those still open
// ending at now (the server stops).
func (h *handler) flushRefusals(ctx context.Context, now time.Time) error {
	h.limits.mu.Lock()
	h.limits.stopped = true
	h.limits.mu.Unlock()
	return h.writeSummaries(ctx, h.limits.dueSummaries(now, true))
}

// writeSummaries records due; from the first that cannot be written on,
// they are kept for the next call.
func (h *handler) writeSummaries(ctx context.Context, due []refusalSummary) error {
	for i, s := range due {
		statuses := map[string]int{}
		for st, n := range s.statuses {
			statuses[http.StatusText(st)] += n
		}
		end := s.start.Add(refusalWindow)
		if !s.end.IsZero() {
			end = s.end
		}
		detail := map[string]any{"summary": true, "refused": s.over, "statuses": statuses,
			"from": s.start.UTC().Format(time.RFC3339Nano), "to": end.UTC().Format(time.RFC3339Nano),
			"recorded_one_by_one": h.cfg.Check.withDefaults().RefusalRecords}
		if !s.end.IsZero() {
			detail["server_stopped"] = true
		}
		if err := h.cfg.Trail.Record(context.WithoutCancel(ctx), s.req, audit.ActionDenied, "check", "", detail); err != nil {
			h.limits.requeue(due[i:])
			return err
		}
	}
	return nil
}

// countRefusal says whether a refusal of r's account gets its own record
// (else it is counted; a timer then writes the window's summary, if no
// request of a platform does first).
func (h *handler) countRefusal(r *http.Request, user string, now time.Time, status int) bool {
	bound := h.cfg.Check.withDefaults().RefusalRecords
	kept := r.Clone(context.WithoutCancel(r.Context()))
	kept.Body = http.NoBody
	if h.limits.refuse(user, now, bound, status, kept) {
		return true
	}
	h.limits.armSummaryTimer(func() { h.writeRefusalSummaries(context.Background(), h.cfg.Now()) })
	return false
}

// armSummaryTimer runs flush once refusalWindow has passed (real time),
// unless a timer is armed already.
func (l *checkLimiter) armSummaryTimer(flush func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer || l.stopped {
		return
	}
	l.timer = true
	time.AfterFunc(refusalWindow+time.Second, func() {
		l.mu.Lock()
		l.timer = false
		stopped := l.stopped
		l.mu.Unlock()
		if stopped {
			return // FlushRefusals wrote them, or kept them for its caller
		}
		flush()
		if l.counting() {
			l.armSummaryTimer(flush) // a window still open holds refusals counted
		}
	})
}

// counting says whether a window not yet summarised holds refusals
// counted, or a summary is waiting to be written.
func (l *checkLimiter) counting() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.due) > 0 {
		return true
	}
	for _, t := range l.refusals {
		if t.over > 0 {
			return true
		}
	}
	return false
}
