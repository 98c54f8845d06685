// Package timesync measures a sensor's clock against NTP servers, so that
// every observation records how far the sensor's clock was from the
// reference when it was made, how surely, and from which server
// (docs/evidence.md, "Clock").
//
// It must never fabricate an offset: with no server, before the first
// answer, or when no answer can be trusted, the offset is unknown (never
// 0), and the reading's source says why. It never resolves a name and
// sends only where the sensor's scope guard allows.
package timesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/beevik/ntp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
)

// PHI is the frequency tolerance RFC 5905 assumes of a clock (15 ppm): a
// reading's uncertainty grows by PHI times the time since it was measured.
const PHI = 15e-6

// SourceNone is the source of every reading when no server is configured.
const SourceNone = "none"

// Config says which servers to ask and when.
type Config struct {
	// Servers are the NTP servers, IP:port (names are never resolved).
	// None: every offset is unknown, source "none".
	Servers []netip.AddrPort
	// Every is how often the offset is measured again (default 10 min).
	Every time.Duration
	// Timeout bounds one server's answer (default 2 s).
	Timeout time.Duration
	// MaxOffset is the largest offset trusted (default 10 s). A server
	// that puts the sensor's clock further off is not believed: one of
	// the two clocks is wildly wrong and the sensor cannot tell which, so
	// the offset is unknown and the source names the value refused.
	MaxOffset time.Duration
}

// DefaultConfig is no server, measured every 10 minutes, 2 s per answer,
// offsets beyond ±10 s refused.
func DefaultConfig() Config {
	return Config{Every: 10 * time.Minute, Timeout: 2 * time.Second, MaxOffset: 10 * time.Second}
}

// Validate says what is wrong with c, or nil.
func (c Config) Validate() error {
	switch {
	case c.Every <= 0:
		return fmt.Errorf("timesync: interval %v: must be positive", c.Every)
	case c.Timeout <= 0:
		return fmt.Errorf("timesync: timeout %v: must be positive", c.Timeout)
	case c.MaxOffset <= 0:
		return fmt.Errorf("timesync: largest offset %v: must be positive", c.MaxOffset)
	}
	for _, s := range c.Servers {
		if !s.IsValid() || s.Port() == 0 {
			return fmt.Errorf("timesync: server %s: want IP:port", s)
		}
	}
	return nil
}

// ParseServers parses `HOST:PORT[,...]` where HOST is an IP address
// (IPv6 in brackets); names are refused, never resolved.
func ParseServers(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(part)
		if err != nil || ap.Port() == 0 {
			return nil, fmt.Errorf("%q is not IP:port or [IPv6]:port (names are never resolved; NTP's port is 123)", part)
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if slices.Contains(out, ap) {
			return nil, fmt.Errorf("%q is given twice", part)
		}
		out = append(out, ap)
	}
	return out, nil
}

// Reading is the clock's offset as last measured.
type Reading struct {
	// Known says an offset was measured and trusted; when false Offset
	// and Uncertainty are zero and mean nothing.
	Known bool
	// Offset is the sensor clock minus the reference clock.
	Offset time.Duration
	// Uncertainty bounds the error at the time of measurement: the true
	// offset was within Offset ± Uncertainty (the server's root distance:
	// half the round trip and the server's root delay, plus its root
	// dispersion).
	Uncertainty time.Duration
	// Source is "ntp:IP:PORT" of the server whose answer was taken (with
	// "(N of M servers agree)" when several agreed, "(single source ...)"
	// when one answer alone was taken), or why the offset is unknown.
	Source string
	// At is when it was measured (sensor clock); zero if never.
	At time.Time
}

// sample is one server's answer, or why there is none.
type sample struct {
	server      netip.AddrPort
	offset, unc time.Duration
	err         string // "" for a good answer
}

// Monitor measures the offset every Config.Every and hands out the latest
// reading. A nil *Monitor is a sensor with no server: every Stamp is
// unknown, source "none".
type Monitor struct {
	cfg   Config
	guard *scope.Guard
	log   *slog.Logger
	now   func() time.Time
	mono  func(now time.Time) time.Duration // now's place on a clock no step moves
	query func(ctx context.Context, server netip.AddrPort) (*ntp.Response, error)

	mu       sync.Mutex
	last     Reading
	lastMono time.Duration // mono(last.At)
	measured bool          // Measure has run

	answers *prometheus.CounterVec // by result: trusted, refused
	known   prometheus.Gauge       // 1 while the offset is known
	offset  prometheus.Gauge       // the last known offset, seconds
}

// New returns a Monitor of cfg's servers, sending only where guard
// allows. With no server it returns nil, a valid Monitor that stamps
// "none".
func New(cfg Config, guard *scope.Guard, log *slog.Logger) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Servers) == 0 {
		return nil, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Monitor{cfg: cfg, guard: guard, log: log, now: time.Now, mono: monotonic,
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_ntp_answers_total",
			Help: "NTP servers asked, by result: trusted, or refused (no reply, malformed, unsynchronised, offset too large, ...)."},
			[]string{"result"}),
		known: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_ntp_offset_known",
			Help: "1 while the sensor clock's offset is known, 0 while it is unknown (observations record it as unknown)."}),
		offset: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_ntp_offset_seconds",
			Help: "The sensor clock minus the reference clock, as last measured and trusted."}),
	}
	m.query = m.ask
	m.last = Reading{Source: "ntp:" + joinServers(cfg.Servers) + " not yet measured"}
	return m, nil
}

// monoStart anchors monotonic.
var monoStart = time.Now()

// monotonic is now's reading of the monotonic clock (which a step of the
// system clock does not move), taken by time.Now in the same call as its
// wall reading; a time with no monotonic reading gives its wall reading.
func monotonic(now time.Time) time.Duration { return now.Sub(monoStart) }

// MaxStep is how far the system clock may move apart from the monotonic
// clock between a measurement and a reading of it before the offset
// measured is no longer the clock's: it was stepped (by an administrator,
// another time daemon, a leap second) or the machine slept.
const MaxStep = time.Millisecond

func joinServers(ss []netip.AddrPort) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return strings.Join(parts, ",")
}

// Collector returns the monitor's metrics: vigil_ntp_answers_total by
// result (trusted, refused), vigil_ntp_offset_known (1 or 0) and
// vigil_ntp_offset_seconds (the last trusted offset). A nil Monitor has
// none.
func (m *Monitor) Collector() prometheus.Collector {
	if m == nil {
		return collectors{}
	}
	return collectors{m.answers, m.known, m.offset}
}

// collectors is several collectors as one.
type collectors []prometheus.Collector

func (cs collectors) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range cs {
		c.Describe(ch)
	}
}

func (cs collectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range cs {
		c.Collect(ch)
	}
}

// ask sends one NTP query to server through the scope guard.
func (m *Monitor) ask(ctx context.Context, server netip.AddrPort) (*ntp.Response, error) {
	d := m.guard.Dialer(&net.Dialer{Timeout: m.cfg.Timeout})
	return ntp.QueryWithOptions(server.String(), ntp.QueryOptions{
		Timeout: m.cfg.Timeout,
		Dialer: func(_, remote string) (net.Conn, error) {
			return d.DialContext(ctx, "udp", remote)
		},
	})
}

// Run measures every Config.Every until ctx ends, at once too unless
// Measure has already been called. A nil Monitor returns at once.
func (m *Monitor) Run(ctx context.Context) error {
	if m == nil {
		return nil
	}
	t := time.NewTicker(m.cfg.Every)
	defer t.Stop()
	m.mu.Lock()
	measured := m.measured
	m.mu.Unlock()
	for {
		if !measured {
			m.Measure(ctx)
		}
		measured = false
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Measure asks every server once (in turn, each bounded by the timeout)
// and makes the result the current reading, which it returns.
func (m *Monitor) Measure(ctx context.Context) Reading {
	var samples []sample
	for _, s := range m.cfg.Servers {
		if ctx.Err() != nil {
			break
		}
		samples = append(samples, m.sampleOf(ctx, s))
	}
	r := combine(samples, len(m.cfg.Servers))
	r.At = m.now()
	mono := m.mono(r.At)
	for _, sm := range samples {
		if sm.err == "" {
			m.answers.WithLabelValues("trusted").Inc()
		} else {
			m.answers.WithLabelValues("refused").Inc()
		}
	}
	if r.Known {
		m.known.Set(1)
		m.offset.Set(r.Offset.Seconds())
	} else {
		m.known.Set(0)
	}
	if !r.Known {
		m.log.Warn("clock offset unknown: no NTP answer could be trusted", "source", r.Source)
	} else {
		m.log.Debug("clock offset measured", "offset", r.Offset, "uncertainty", r.Uncertainty, "source", r.Source)
	}
	m.mu.Lock()
	m.last, m.lastMono, m.measured = r, mono, true
	m.mu.Unlock()
	return r
}

// sampleOf asks server and judges its answer.
func (m *Monitor) sampleOf(ctx context.Context, server netip.AddrPort) sample {
	s := sample{server: server}
	resp, err := m.query(ctx, server)
	if err == nil {
		err = resp.Validate()
	}
	switch {
	case err != nil:
		s.err = m.reason(err)
	case resp.ClockOffset > m.cfg.MaxOffset || resp.ClockOffset < -m.cfg.MaxOffset:
		// The server's offset is the reference minus the sensor's
		// clock; ours is the sensor's minus the reference.
		s.err = fmt.Sprintf("offset %s beyond ±%s, not trusted", formatMS(-resp.ClockOffset), m.cfg.MaxOffset)
	default:
		s.offset, s.unc = -resp.ClockOffset, resp.RootDistance
	}
	return s
}

// reason is a short, stable account of why a query failed: no address or
// port of the sensor's own, so that readings repeat.
func (m *Monitor) reason(err error) string {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, scope.ErrOutOfScope):
		return "refused by the scope guard"
	case errors.Is(err, ntp.ErrServerResponseMismatch):
		return "reply does not answer the query sent (origin timestamp)"
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no reply within %s", m.cfg.Timeout)
	case errors.As(err, &oe) && oe.Err != nil:
		return oe.Err.Error()
	}
	return err.Error()
}

// SingleSourceFactor multiplies the uncertainty of a reading that rests on
// one server's answer (one configured, or the only one that answered):
// no other server checked it. A convention, not a measurement: it does
// not bound what a lying server can do (up to Config.MaxOffset).
const SingleSourceFactor = 2

// combine makes one reading of the servers' samples (asked: how many
// servers were asked). One trusted answer is a single source: taken,
// named so, its uncertainty times SingleSourceFactor. Of several, it
// takes the largest group of answers whose intervals (offset ±
// uncertainty) share a point (Marzullo's algorithm): the others are
// falsetickers, dropped; if that group is more than half of the answers,
// the reading is its answer of least uncertainty; otherwise the servers
// disagree and the offset is unknown.
func combine(samples []sample, asked int) Reading {
	var good []sample
	var failed []string
	for _, s := range samples {
		if s.err == "" {
			good = append(good, s)
		} else {
			failed = append(failed, fmt.Sprintf("ntp:%s failed: %s", s.server, s.err))
		}
	}
	if len(good) == 0 {
		if len(failed) == 0 {
			return Reading{Source: "ntp: no server asked"}
		}
		return Reading{Source: strings.Join(failed, "; ")}
	}
	if len(good) == 1 {
		// Nothing to compare it with: a server that lies within the bound
		// is believed. Say so, and widen the bound by convention.
		s := good[0]
		src := "ntp:" + s.server.String() + " (single source, not cross-checked: uncertainty doubled)"
		if asked > 1 {
			src = fmt.Sprintf("ntp:%s (single source: 1 of %d servers answered; not cross-checked: uncertainty doubled)", s.server, asked)
		}
		return Reading{Known: true, Offset: s.offset, Uncertainty: SingleSourceFactor * s.unc, Source: src}
	}
	agree := largestAgreement(good)
	if 2*len(agree) <= len(good) {
		parts := make([]string, len(good))
		for i, s := range good {
			parts[i] = fmt.Sprintf("%s says %s ± %s", s.server, formatMS(s.offset), formatMS(s.unc))
		}
		return Reading{Source: "ntp: servers disagree: " + strings.Join(parts, ", ")}
	}
	best := agree[0]
	for _, s := range agree[1:] {
		if s.unc < best.unc {
			best = s
		}
	}
	src := "ntp:" + best.server.String()
	if asked > 1 {
		src += fmt.Sprintf(" (%d of %d servers agree)", len(agree), asked)
	}
	return Reading{Known: true, Offset: best.offset, Uncertainty: best.unc, Source: src}
}

// largestAgreement returns the largest set of samples whose intervals
// share a point (on a line, intervals that meet pairwise share one).
func largestAgreement(ss []sample) []sample {
	type edge struct {
		at    time.Duration
		start bool
	}
	var edges []edge
	for _, s := range ss {
		edges = append(edges, edge{s.offset - s.unc, true}, edge{s.offset + s.unc, false})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].start && !edges[j].start // closed intervals: touching ones agree
	})
	n, bestN := 0, 0
	var bestAt time.Duration
	for _, e := range edges {
		if e.start {
			n++
			if n > bestN {
				bestN, bestAt = n, e.at
			}
		} else {
			n--
		}
	}
	var out []sample
	for _, s := range ss {
		if s.offset-s.unc <= bestAt && bestAt <= s.offset+s.unc {
			out = append(out, s)
		}
	}
	return out
}

// formatMS writes d in milliseconds with three decimals and a sign.
func formatMS(d time.Duration) string {
	return fmt.Sprintf("%+.3fms", float64(d)/float64(time.Millisecond))
}

// Current is the latest reading, its uncertainty grown by PHI for the time
// since it was measured.
func (m *Monitor) Current() Reading {
	if m == nil {
		return Reading{Source: SourceNone}
	}
	m.mu.Lock()
	r, at := m.last, m.lastMono
	m.mu.Unlock()
	if !r.Known {
		return r
	}
	now := m.now()
	age := m.mono(now) - at
	if step := now.Round(0).Sub(r.At.Round(0)) - age; step > MaxStep || step < -MaxStep {
		return Reading{At: r.At, Source: fmt.Sprintf("%s measured at %s, but the system clock moved %s apart from the time that passed since (stepped, or the machine slept): unknown until measured again",
			r.Source, r.At.UTC().Format(time.RFC3339), formatMS(step))}
	}
	if age > 0 {
		r.Uncertainty += time.Duration(PHI * float64(age))
	}
	return r
}

// Stamp records the current reading in o. A nil Monitor stamps an unknown
// offset with source "none".
func (m *Monitor) Stamp(o *observe.Observation) {
	r := m.Current()
	o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource = r.Known, r.Offset, r.Uncertainty, r.Source
}
