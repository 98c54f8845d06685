package timesync

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigil-oss/vigil/internal/lab/ntpserver"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
)

func labGuard(t *testing.T) *scope.Guard {
	t.Helper()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func start(t *testing.T, cfg ntpserver.Config) *ntpserver.Server {
	t.Helper()
	if !cfg.Addr.IsValid() {
		cfg.Addr = netip.MustParseAddrPort("127.0.0.1:0")
	}
	s, err := ntpserver.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func monitor(t *testing.T, cfg Config, servers ...*ntpserver.Server) *Monitor {
	t.Helper()
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, s.Addr())
	}
	m, err := New(cfg, labGuard(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func quick() Config {
	c := DefaultConfig()
	c.Timeout = 300 * time.Millisecond
	return c
}

// Loopback shares the machine's clock: an honest server finds an offset
// within its own uncertainty of zero, well under the round trip.
func TestMeasuresAnHonestServer(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		srv := start(t, ntpserver.Config{Addr: netip.MustParseAddrPort(addr)})
		m := monitor(t, quick(), srv)
		r := m.Measure(context.Background())
		if !r.Known || !strings.HasPrefix(r.Source, "ntp:"+srv.Addr().String()+" (single source") {
			t.Fatalf("%s: reading %+v, want a known offset from ntp:%s", addr, r, srv.Addr())
		}
		if r.Uncertainty < 900*time.Microsecond || r.Offset < -50*time.Millisecond || r.Offset > 50*time.Millisecond {
			t.Fatalf("%s: offset %v ± %v: want near zero, at least the server's dispersion (1ms, to 1/65536 s)", addr, r.Offset, r.Uncertainty)
		}
		if srv.Queries() != 1 {
			t.Fatalf("%s: server saw %d queries, want 1", addr, srv.Queries())
		}
	}
}

// The offset is the sensor's clock minus the reference: a server five
// seconds ahead puts the sensor five seconds behind.
func TestOffsetIsSensorMinusReference(t *testing.T) {
	srv := start(t, ntpserver.Config{Shift: 5 * time.Second})
	r := monitor(t, quick(), srv).Measure(context.Background())
	if !r.Known || r.Offset > -4900*time.Millisecond || r.Offset < -5100*time.Millisecond {
		t.Fatalf("reading %+v, want about -5s", r)
	}
}

// No hostile server is believed: each reading is unknown (offset and
// uncertainty zero, never a made-up value) and names what went wrong.
func TestHostileServersAreNeverTrusted(t *testing.T) {
	tests := []struct {
		name string
		cfg  ntpserver.Config
		want string
	}{
		{"wildly-wrong-time", ntpserver.Config{Shift: 3 * time.Hour}, "offset -10"}, // -10800000 ms, or a hair under it
		{"malformed", ntpserver.Config{Lie: ntpserver.Malformed}, "invalid time reported"},
		{"reply-from-another-address", ntpserver.Config{Lie: ntpserver.OtherAddress}, "no reply within 300ms"},
		{"reply-to-another-query", ntpserver.Config{Lie: ntpserver.WrongOrigin}, "does not answer the query sent"},
		{"kiss-of-death", ntpserver.Config{Lie: ntpserver.KissOfDeath}, "kiss of death"},
		{"unsynchronised", ntpserver.Config{Lie: ntpserver.Unsynchronised}, "leap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, tt.cfg)
			m := monitor(t, quick(), srv)
			r := m.Measure(context.Background())
			if r.Known || r.Offset != 0 || r.Uncertainty != 0 {
				t.Fatalf("reading %+v: a hostile server was trusted", r)
			}
			prefix := "ntp:" + srv.Addr().String() + " failed: "
			if !strings.HasPrefix(r.Source, prefix) || !strings.Contains(r.Source, tt.want) {
				t.Fatalf("source %q, want %q and %q", r.Source, prefix, tt.want)
			}
			if known, refused := value(t, m.known), value(t, m.answers.WithLabelValues("refused")); known != 0 || refused != 1 {
				t.Fatalf("metrics: known %v, refused %v", known, refused)
			}
			var o observe.Observation
			m.Stamp(&o)
			if o.ClockKnown || o.ClockOffset != 0 || o.ClockSource != r.Source {
				t.Fatalf("stamped %v %v %q", o.ClockKnown, o.ClockOffset, o.ClockSource)
			}
		})
	}
}

// A server wildly off is still measured when the operator raises the
// bound: the refusal is a judgement, not a failure to measure.
func TestMaxOffsetIsTheOperatorsBound(t *testing.T) {
	srv := start(t, ntpserver.Config{Shift: 3 * time.Hour})
	c := quick()
	c.MaxOffset = 4 * time.Hour
	r := monitor(t, c, srv).Measure(context.Background())
	if !r.Known || (r.Offset+3*time.Hour).Abs() > 100*time.Millisecond {
		t.Fatalf("reading %+v, want about -3h", r)
	}
}

func TestServersThatDisagreeLeaveTheOffsetUnknown(t *testing.T) {
	c := quick()
	c.MaxOffset = 4 * time.Hour
	honest, wrong := start(t, ntpserver.Config{}), start(t, ntpserver.Config{Shift: time.Hour})
	r := monitor(t, c, honest, wrong).Measure(context.Background())
	if r.Known || !strings.HasPrefix(r.Source, "ntp: servers disagree: ") {
		t.Fatalf("reading %+v, want unknown: two servers an hour apart", r)
	}
	// A third honest server makes a majority.
	r = monitor(t, c, honest, wrong, start(t, ntpserver.Config{})).Measure(context.Background())
	if !r.Known || r.Offset.Abs() > 50*time.Millisecond || !strings.HasSuffix(r.Source, "(2 of 3 servers agree)") {
		t.Fatalf("reading %+v, want the honest pair's offset", r)
	}
}

func TestOneFailedServerOfTwoStillMeasures(t *testing.T) {
	honest, broken := start(t, ntpserver.Config{}), start(t, ntpserver.Config{Lie: ntpserver.Malformed})
	r := monitor(t, quick(), broken, honest).Measure(context.Background())
	if !r.Known || r.Source != "ntp:"+honest.Addr().String()+" (single source: 1 of 2 servers answered; not cross-checked: uncertainty doubled)" {
		t.Fatalf("reading %+v", r)
	}
}

func TestOutOfScopeServerIsRefusedBeforeAnySocket(t *testing.T) {
	c := quick()
	c.Servers = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:123")}
	g := labGuard(t)
	m, err := New(c, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := m.Measure(context.Background())
	if r.Known || r.Source != "ntp:192.0.2.1:123 failed: refused by the scope guard" {
		t.Fatalf("reading %+v", r)
	}
	n := 0
	for _, c := range g.RefusedCounts() {
		n += int(c)
	}
	if n != 1 {
		t.Fatalf("guard counted %v", g.RefusedCounts())
	}
}

func TestNoServerStampsUnknownNone(t *testing.T) {
	m, err := New(DefaultConfig(), labGuard(t), nil)
	if err != nil || m != nil {
		t.Fatalf("New with no server = %v, %v; want nil, nil", m, err)
	}
	o := observe.Observation{ClockKnown: true, ClockOffset: time.Second}
	m.Stamp(&o)
	if o.ClockKnown || o.ClockOffset != 0 || o.ClockUncertainty != 0 || o.ClockSource != SourceNone {
		t.Fatalf("stamped %+v", o)
	}
}

func TestBeforeTheFirstMeasurementTheOffsetIsUnknown(t *testing.T) {
	srv := start(t, ntpserver.Config{})
	m := monitor(t, quick(), srv)
	r := m.Current()
	if r.Known || r.Source != "ntp:"+srv.Addr().String()+" not yet measured" {
		t.Fatalf("reading %+v", r)
	}
}

// The uncertainty grows by PHI (15 ppm) for the age of the measurement.
func TestUncertaintyGrowsWithAge(t *testing.T) {
	srv := start(t, ntpserver.Config{})
	m := monitor(t, quick(), srv)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	r := m.Measure(context.Background())
	now = now.Add(1000 * time.Second)
	if got, want := m.Current().Uncertainty, r.Uncertainty+15*time.Millisecond; got != want {
		t.Fatalf("uncertainty after 1000s = %v, want %v", got, want)
	}
}

// Run measures again every interval; a server that turns hostile makes
// the offset unknown at the next round, never keeps the old one.
func TestRunMeasuresAgainAndForgetsAnOffsetNoLongerTrusted(t *testing.T) {
	honest := start(t, ntpserver.Config{})
	c := quick()
	c.Every = 20 * time.Millisecond
	m := monitor(t, c, honest)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, func() bool { return honest.Queries() >= 3 && m.Current().Known })
	honest.Close()
	waitFor(t, func() bool { return !m.Current().Known })
	if r := m.Current(); r.Offset != 0 || !strings.Contains(r.Source, "failed") {
		t.Fatalf("after the server went away: %+v", r)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestParseServers(t *testing.T) {
	got, err := ParseServers("127.0.0.1:123, [::1]:1123")
	if err != nil || len(got) != 2 || got[1] != netip.MustParseAddrPort("[::1]:1123") {
		t.Fatalf("ParseServers = %v, %v", got, err)
	}
	for _, bad := range []string{"pool.ntp.org:123", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:123,127.0.0.1:123"} {
		if _, err := ParseServers(bad); err == nil {
			t.Fatalf("ParseServers(%q) accepted", bad)
		}
	}
}

// value reads a gauge's or a counter's value.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetGauge().GetValue() + d.GetCounter().GetValue()
}

// TestAClockStepMakesTheOffsetUnknown: the offset measured describes the
// system clock as it was; when that clock is stepped afterwards (by an
// administrator, another time daemon, a leap second), the wall clock has
// moved by more than the time that passed, and the offset measured before
// is wrong by the step. Until it is measured again it is unknown, never
// kept with an uncertainty that grows by 15 ppm.
func TestAClockStepMakesTheOffsetUnknown(t *testing.T) {
	srv := start(t, ntpserver.Config{})
	m := monitor(t, quick(), srv)
	wall := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var elapsed time.Duration
	m.now = func() time.Time { return wall }
	m.mono = func(time.Time) time.Duration { return elapsed }
	if r := m.Measure(context.Background()); !r.Known {
		t.Fatalf("measure: %+v", r)
	}
	elapsed, wall = 60*time.Second, wall.Add(60*time.Second)
	if r := m.Current(); !r.Known {
		t.Fatalf("a minute later, no step: %+v", r)
	}
	wall = wall.Add(-5 * time.Second) // the system clock is set back 5 s
	r := m.Current()
	if r.Known || r.Offset != 0 || !strings.Contains(r.Source, "stepped") {
		t.Fatalf("after the clock was stepped back 5 s: %+v", r)
	}
	if r := m.Measure(context.Background()); !r.Known {
		t.Fatalf("measured again: %+v", r)
	}
}

// TestALiarByMinutesIsOutvoted: of three servers on loopback, one lies by
// three minutes (within the operator's bound, so its answer is trusted as
// an answer): its interval overlaps neither honest one, so it is dropped
// as a falseticker and the honest pair's offset is taken. Of two, the
// liar and an honest one, neither is a majority: unknown, never 0.
func TestALiarByMinutesIsOutvoted(t *testing.T) {
	c := quick()
	c.MaxOffset = time.Hour
	liar := start(t, ntpserver.Config{Shift: 3 * time.Minute})
	h1, h2 := start(t, ntpserver.Config{}), start(t, ntpserver.Config{})
	r := monitor(t, c, h1, liar, h2).Measure(context.Background())
	if !r.Known || r.Offset.Abs() > 50*time.Millisecond || !strings.Contains(r.Source, "(2 of 3 servers agree)") {
		t.Fatalf("reading %+v, want the honest pair's offset, 2 of 3", r)
	}
	if strings.Contains(r.Source, "single source") {
		t.Fatalf("source %q: two servers agreed", r.Source)
	}
	r = monitor(t, c, liar, h1).Measure(context.Background())
	if r.Known || r.Offset != 0 || r.Uncertainty != 0 || !strings.Contains(r.Source, "servers disagree") {
		t.Fatalf("reading %+v, want unknown: a liar and an honest server, no majority", r)
	}
	// With the default bound the lie is refused outright; the two honest
	// servers still agree.
	r = monitor(t, quick(), h1, liar, h2).Measure(context.Background())
	if !r.Known || r.Offset.Abs() > 50*time.Millisecond {
		t.Fatalf("reading %+v, want the honest pair's offset", r)
	}
}

// TestASingleSourceSaysSo: one server answering (one configured, or the
// only one of several that answered) cannot be cross-checked: the reading
// names it as a single source and doubles its uncertainty; a lone liar
// within the bound is believed, and the reading says that nothing checked it.
func TestASingleSourceSaysSo(t *testing.T) {
	honest := start(t, ntpserver.Config{})
	one := monitor(t, quick(), honest)
	r := one.Measure(context.Background())
	want := "ntp:" + honest.Addr().String() + " (single source, not cross-checked: uncertainty doubled)"
	if !r.Known || r.Source != want {
		t.Fatalf("reading %+v, want source %q", r, want)
	}
	// Twice the root distance: at least twice the server's 1 ms dispersion
	// as sent, truncated to 1/65536 s (65 units, 991.8 µs): 1,983.6 µs.
	// (It read 1,988.9 µs once, under a threshold of 1,990 µs that
	// forgot the truncation.)
	if min := 2 * time.Duration(65*int64(time.Second)/65536); r.Uncertainty < min {
		t.Fatalf("uncertainty %v, want at least twice the server's dispersion", r.Uncertainty)
	}
	if got := combine([]sample{{server: honest.Addr(), offset: time.Millisecond, unc: 3 * time.Millisecond}}, 1); got.Uncertainty != 6*time.Millisecond || got.Offset != time.Millisecond {
		t.Fatalf("single source reading %+v, want 1ms ± 6ms", got)
	}
	broken := start(t, ntpserver.Config{Lie: ntpserver.Malformed})
	r = monitor(t, quick(), broken, honest).Measure(context.Background())
	if want := "ntp:" + honest.Addr().String() + " (single source: 1 of 2 servers answered; not cross-checked: uncertainty doubled)"; !r.Known || r.Source != want {
		t.Fatalf("reading %+v, want source %q", r, want)
	}
}
