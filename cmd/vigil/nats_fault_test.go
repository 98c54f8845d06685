package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/bus/spool"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/pipeline"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// natsServer is a real nats-server process with JetStream, on a loopback
// port, storing in a directory of the test's; it can be restarted.
type natsServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nats-server"); serr != nil {
			testenv.Missingf(t, "NATS", "nats-server not found")
		}
		bin = "/usr/sbin/nats-server"
	}
	s := &natsServer{t: t, bin: bin, port: freePort(t), dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

func (s *natsServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	waitUntil(s.t, 10*time.Second, "nats-server answering", func() bool {
		nc, err := nats.Connect(s.url(), nats.Timeout(200*time.Millisecond))
		if err != nil {
			return false
		}
		defer nc.Close()
		j, err := js.New(nc)
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = j.AccountInfo(ctx)
		return err == nil
	})
}

// stop stops the server as an operator would (SIGTERM: it flushes its
// store), and waits for it.
func (s *natsServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	s.cmd = nil
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cutProxy forwards TCP to NATS until it is cut: then it closes every
// connection and refuses new ones, as a network that went away.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	return p
}

func (p *cutProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		go func() { _, _ = io.Copy(c, u); c.Close() }()
	}
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// faultSensor is a sensor's publishing side as 'vigil sensor ... --bus
// URL --queue-dir DIR' builds it (jetstream.OpenLazy, a queue, the
// pipeline), emitting synthetic observations at a steady pace until
// stopped; it keeps the ids of those the queue accepted.
type faultSensor struct {
	p    *pipeline.Pipeline
	jb   *jetstream.Bus
	stop chan struct{} // closed: the sensor stops observing
	done chan error
	mu   sync.Mutex
	ids  []string
}

func startFaultSensor(t *testing.T, name, url string, seed uint64) *faultSensor {
	t.Helper()
	cfg := jetstream.DefaultConfig(url)
	cfg.Stream, cfg.Subject = "FAULT_OBS", "fault.obs"
	jb, err := jetstream.OpenLazy(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	qc := spool.DefaultConfig(filepath.Join(t.TempDir(), "queue"))
	qc.RetryEvery, qc.CloseDrain, qc.PublishTimeout = 100*time.Millisecond, 20*time.Second, 2*time.Second
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lists.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Sensors sign what they publish, as every sensor does (ingest stores
	// an unsigned observation as unsigned_import: no target of it).
	keySeed := make([]byte, ed25519.SeedSize)
	keySeed[0] = byte(seed)
	p, err := pipeline.New(context.Background(), pipeline.Config{Store: st, Remote: jb, Queue: &qc, SensorKey: ed25519.NewKeyFromSeed(keySeed)})
	if err != nil {
		t.Fatal(err)
	}
	s := &faultSensor{p: p, jb: jb, stop: make(chan struct{}), done: make(chan error, 1)}
	r := rand.New(rand.NewPCG(seed, seed))
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	if err := p.AddSensor(name, func(ctx context.Context) error {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return nil
			case <-tick.C:
			}
			o := storetest.Observation(r, at.Add(time.Duration(i)*time.Millisecond), i)
			o.Place, o.Jurisdiction = observe.Place{}, observe.Jurisdiction{} // as a sensor sends them
			o.Endpoint.IP = o.Endpoint.IP.Unmap()
			o.Sensor.ID, o.ID = name, observe.NewID(o.Time)
			// A few hundred peers seen again and again: targets with many
			// observations each, for the analysis to get wrong.
			o.Endpoint.IP = netip.AddrFrom4([4]byte{127, 0, 3, byte(r.IntN(200))})
			o.Endpoint.Port = uint16(6881 + r.IntN(2))
			if err := p.Publisher().Publish(ctx, o); err != nil {
				return err
			}
			s.mu.Lock()
			s.ids = append(s.ids, o.ID)
			s.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- p.Run(context.Background()); jb.Close() }()
	return s
}

func (s *faultSensor) emitted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// ingestProcess is 'vigil ingest' in a process of its own: this test
// binary, run again as TestNATSFaultIngestHelper.
type ingestProcess struct {
	cmd    *exec.Cmd
	out    *strings.Builder
	mu     *sync.Mutex
	exited chan struct{} // closed once the process has exited, with err
	err    error
}

func startIngest(t *testing.T, args ...string) *ingestProcess {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestNATSFaultIngestHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "VIGIL_FAULT_INGEST="+string(b))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	p := &ingestProcess{cmd: cmd, out: &strings.Builder{}, mu: &sync.Mutex{}, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	return p
}

// stop signals the process and waits for it to exit.
func (p *ingestProcess) stop(sig syscall.Signal) error {
	_ = p.cmd.Process.Signal(sig)
	<-p.exited
	return p.err
}

// alive fails t if the process has exited.
func (p *ingestProcess) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("an ingest exited (%v):\n%s", p.err, p.output())
	default:
	}
}

func (p *ingestProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// TestNATSFaultIngestHelper is 'vigil ingest' for TestNATSFaults: it runs
// only as a process that test starts.
func TestNATSFaultIngestHelper(t *testing.T) {
	env := os.Getenv("VIGIL_FAULT_INGEST")
	if env == "" {
		t.Skip("run by TestNATSFaults as an ingest process")
	}
	var args []string
	if err := json.Unmarshal([]byte(env), &args); err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, args, strings.NewReader(""), os.Stdout, os.Stdout, func(string) string { return "" }))
}

// faultState is what NATS says of the test's stream and consumer; ok is
// false when it could not say (the server is restarting).
func faultState(url string) (msgs uint64, ci *js.ConsumerInfo, ok bool) {
	nc, err := nats.Connect(url, nats.Timeout(500*time.Millisecond))
	if err != nil {
		return 0, nil, false
	}
	defer nc.Close()
	j, err := js.New(nc)
	if err != nil {
		return 0, nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := j.Stream(ctx, "FAULT_OBS")
	if err != nil {
		return 0, nil, false
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, nil, false
	}
	c, err := s.Consumer(ctx, "fault-ingest")
	if err != nil {
		return 0, nil, false
	}
	ci, err = c.Info(ctx)
	if err != nil {
		return 0, nil, false
	}
	return info.State.Msgs, ci, true
}

// Sensors with queues publish through a real nats-server to ingest
// processes that share one durable consumer and write one SQLite store
// (both run the analysis when two run at once).
// Meanwhile: a sensor starts while NATS is unreachable, an ingest is killed (SIGKILL) while it holds a batch it has
// not acknowledged, two ingests run at once, one sensor is cut off from
// NATS for a while, and NATS is restarted. Afterwards the store holds
// every observation the sensors emitted exactly once, the sensors' own
// counts say the same, and the targets are those one ingest alone makes
// of the same observations.
func TestNATSFaults(t *testing.T) {
	srv := startNATS(t)
	db := filepath.Join(t.TempDir(), "v.db")
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig()) // the schema, before two ingests race to make it
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	ingestArgs := []string{"--db", db, "--log-level", "warn", "ingest", "--bus", srv.url(),
		"--stream", "FAULT_OBS", "--subject", "fault.obs", "--consumer", "fault-ingest", "--batch", "50", "--ack-wait", "2s"}
	proxy := newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", srv.port))
	a := startFaultSensor(t, "sensor-a", srv.url(), 1)
	// Sensor b starts while NATS is unreachable, and keeps observing.
	proxy.setCut(true)
	b := startFaultSensor(t, "sensor-b", proxy.url(), 2)
	waitUntil(t, 20*time.Second, "sensor b to observe while NATS is unreachable", func() bool {
		ok, _ := b.p.QueueHealth()
		return !ok && b.emitted() > 300
	})
	proxy.setCut(false)

	// One ingest, killed while it holds a batch it has not acknowledged.
	i1 := startIngest(t, ingestArgs...)
	waitUntil(t, 30*time.Second, "the first ingest at work", func() bool {
		_, ci, ok := faultState(srv.url())
		return ok && ci.AckFloor.Stream > 200 && ci.NumAckPending > 0
	})
	_ = i1.stop(syscall.SIGKILL)

	// Two ingests at once from now on, both running the analysis.
	i2 := startIngest(t, ingestArgs...)
	i3 := startIngest(t, ingestArgs...)

	// Sensor b cut off from NATS while it emits a few hundred.
	proxy.setCut(true)
	cutAt := b.emitted()
	waitUntil(t, 20*time.Second, "sensor b to queue while cut off", func() bool {
		ok, _ := b.p.QueueHealth()
		return !ok && b.emitted() > cutAt+500
	})
	if d := b.p.Delivery(); d.Queue.Pending == 0 {
		t.Fatalf("sensor b cut off, yet nothing waits in its queue: %+v", d.Queue)
	}
	proxy.setCut(false)

	// NATS restarted.
	srv.stop()
	srv.start()

	// The sensors stop; their queues drain.
	for _, s := range []*faultSensor{a, b} {
		close(s.stop)
	}
	for _, s := range []*faultSensor{a, b} {
		select {
		case err := <-s.done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("a sensor did not finish")
		}
	}
	waitUntil(t, 60*time.Second, "every message stored and acknowledged", func() bool {
		i2.alive(t)
		i3.alive(t)
		msgs, ci, ok := faultState(srv.url())
		return ok && msgs == 0 && ci.NumAckPending == 0 && ci.NumPending == 0
	})
	_, ci, _ := faultState(srv.url())
	n := uint64(a.emitted() + b.emitted())
	if ci.Delivered.Consumer <= n {
		t.Errorf("NATS delivered %d messages for %d observations: the killed ingest's batch was never handed over again", ci.Delivered.Consumer, n)
	}
	// Each catches up with what the other stored and saves as it stops;
	// the one that stops last saves a view that lagged while the other
	// saved.
	for _, p := range []*ingestProcess{i2, i3} {
		if err := p.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("ingest: %v\n%s", err, p.output())
		}
		if strings.HasPrefix(p.output(), "0 observations stored") || !strings.Contains(p.output(), "observations stored") {
			t.Errorf("an ingest of two stored nothing:\n%s", p.output())
		}
	}
	checkFaultStore(t, db, a, b)
	checkAnalysisAsOneIngest(t, db, srv.url())
	t.Logf("deliveries by NATS %d (stream sequence %d) for %d observations; ingests said:\n%s%s",
		ci.Delivered.Consumer, ci.Delivered.Stream, n, i2.output(), i3.output())
}

// checkFaultStore checks that the store holds every observation the
// sensors emitted, once, and nothing else, and that the sensors' counts
// agree.
func checkFaultStore(t *testing.T, db string, sensors ...*faultSensor) {
	t.Helper()
	want := map[string]bool{}
	for _, s := range sensors {
		d := s.p.Delivery()
		if d.Accepted != s.emitted() || d.Queue.Queued != uint64(s.emitted()) || d.Queue.Published != uint64(s.emitted()) ||
			d.Queue.Pending != 0 || d.Queue.Dropped != 0 || d.Queue.Torn != 0 {
			t.Errorf("a sensor's own counts: emitted %d, delivery %+v, queue %+v", s.emitted(), d, d.Queue)
		}
		for _, id := range s.ids {
			want[id] = true
		}
	}
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := map[string]int{}
	rows := 0
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		got[o.ID]++
		rows++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id, c := range got {
		if c != 1 || !want[id] {
			t.Errorf("observation %s stored %d times (emitted: %v)", id, c, want[id])
		}
	}
	for id := range want {
		if got[id] == 0 {
			t.Errorf("observation %s emitted, never stored", id)
		}
	}
	if rows != len(want) {
		t.Fatalf("the store holds %d rows, the sensors emitted %d", rows, len(want))
	}
}

// checkAnalysisAsOneIngest stores the same observations with one ingest
// into a fresh store (through a stream of its own) and checks that both
// stores list the same targets with the same parts (but recency, which
// follows the clock), matched by their endpoints: the analyses of two
// ingests, one of them killed, stayed exact.
func checkAnalysisAsOneIngest(t *testing.T, db, url string) {
	t.Helper()
	obs := storedObservations(t, db)
	cfg := jetstream.DefaultConfig(url)
	cfg.Stream, cfg.Subject, cfg.Consumer = "FAULT_REF", "fault.ref", "ref"
	jb, err := jetstream.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		o.Place, o.Jurisdiction = observe.Place{}, observe.Jurisdiction{}
		if err := jb.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	jb.Close()
	ref := filepath.Join(t.TempDir(), "ref.db")
	p := startIngest(t, "--db", ref, "--log-level", "warn", "ingest", "--bus", url,
		"--stream", cfg.Stream, "--subject", cfg.Subject, "--consumer", cfg.Consumer)
	waitUntil(t, 60*time.Second, "the reference ingest", func() bool {
		p.alive(t)
		return streamEmpty(url, cfg.Stream)
	})
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("reference ingest: %v\n%s", err, p.output())
	}
	got, want := targetParts(t, db), targetParts(t, ref)
	if len(want) < 100 {
		t.Fatalf("the reference has %d targets: too few to test anything", len(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("target of %s: two ingests give %q, one ingest %q", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d targets with two ingests, %d with one", len(got), len(want))
	}
}

func storedObservations(t *testing.T, db string) []observe.Observation {
	t.Helper()
	st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var obs []observe.Observation
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		obs = append(obs, *o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return obs
}

func streamEmpty(url, stream string) bool {
	nc, err := nats.Connect(url, nats.Timeout(500*time.Millisecond))
	if err != nil {
		return false
	}
	defer nc.Close()
	j, err := js.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := j.Stream(ctx, stream)
	if err != nil {
		return false
	}
	info, err := s.Info(ctx)
	return err == nil && info.State.Msgs == 0
}

// targetParts lists a store's targets (at most 1000, the CLI's cap) as
// their endpoints -> their score's parts but recency.
func targetParts(t *testing.T, db string) map[string]string {
	t.Helper()
	code, out, errOut := vigilRun(t, nil, "", "--db", db, "targets", "--json", "--limit", "1000")
	if code != exitOK {
		t.Fatalf("targets: %s", errOut)
	}
	var ts []struct {
		Parts     map[string]float64 `json:"parts"`
		Endpoints []struct {
			IP   string `json:"ip"`
			Port int    `json:"port"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal([]byte(out), &ts); err != nil {
		t.Fatal(err)
	}
	if len(ts) >= 1000 {
		t.Fatalf("%d targets: more than the CLI lists", len(ts))
	}
	m := map[string]string{}
	for _, x := range ts {
		var eps, parts []string
		for _, e := range x.Endpoints {
			eps = append(eps, e.IP+":"+strconv.Itoa(e.Port))
		}
		for k, v := range x.Parts {
			if k != "recency" {
				parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			}
		}
		sort.Strings(eps)
		sort.Strings(parts)
		m[strings.Join(eps, ",")] = strings.Join(parts, " ")
	}
	return m
}
