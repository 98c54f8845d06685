package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
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
	"github.com/vigil-oss/vigil/internal/store/postgres"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// natsServer is a real nats-server process with JetStream, on a loopback
// port, storing in a directory of the test's; it can be restarted.
type natsServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startNATS(t testing.TB) *natsServer {
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

func freePort(t testing.TB) int {
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

// kill stops the server as a crash would (SIGKILL: nothing flushed), and
// waits for it.
func (s *natsServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
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
// pipeline), emitting synthetic observations at a steady pace (one
// every every, or fewer when the machine is busy) until stopped; it keeps the ids of those the queue accepted.
type faultSensor struct {
	p    *pipeline.Pipeline
	jb   *jetstream.Bus
	stop chan struct{} // closed: the sensor stops observing
	done chan error
	mu   sync.Mutex
	ids  []string
}

// faultKeySeed is the seed of the signing key of the fault sensor seed.
func faultKeySeed(seed uint64) []byte {
	keySeed := make([]byte, ed25519.SeedSize)
	keySeed[0] = byte(seed)
	return keySeed
}

// faultKeyDir is the ingests' key folder: they trust the sensor keys in
// it by default, as a deployment's ingest trusts its own sensors' (sensor
// a's key is its sensor.key, sensor b's a key it keeps retired).
func faultKeyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, seed := range map[string]uint64{sensorKeyFile: 1, "sensor-20261101T000000.000000000Z.key.retired": 2} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(hex.EncodeToString(faultKeySeed(seed))+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startFaultSensor(t *testing.T, name, url string, seed uint64, every time.Duration) *faultSensor {
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
	p, err := pipeline.New(context.Background(), pipeline.Config{Store: st, Remote: jb, Queue: &qc, SensorKey: ed25519.NewKeyFromSeed(faultKeySeed(seed))})
	if err != nil {
		t.Fatal(err)
	}
	s := &faultSensor{p: p, jb: jb, stop: make(chan struct{}), done: make(chan error, 1)}
	r := rand.New(rand.NewPCG(seed, seed))
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	if err := p.AddSensor(name, func(ctx context.Context) error {
		tick := time.NewTicker(every)
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
	cmd     *exec.Cmd
	out     *strings.Builder
	mu      *sync.Mutex
	exited  chan struct{} // closed once the process has exited, with err
	err     error
	metrics string // --metrics address, if any
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

// startMeteredIngest is startIngest with --metrics on a loopback port,
// which metric reads.
func startMeteredIngest(t *testing.T, args ...string) *ingestProcess {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startIngest(t, append(args, "--metrics", addr)...)
	p.metrics = addr
	return p
}

// metric reads a counter off the process's /metrics (0 while it does not
// answer yet).
func (p *ingestProcess) metric(t *testing.T, name string) float64 {
	t.Helper()
	if p.metrics == "" {
		t.Fatal("metric of an ingest started without --metrics")
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", name, sc.Text())
			}
			return f
		}
	}
	return 0
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

// faultRun is one run of the fault scenario: the store the ingests write
// (a SQLite file, or a private PostgreSQL instance that the run crashes
// and starts again), and how long a sensor stays cut off from NATS.
type faultRun struct {
	pg     *privatePostgres // nil: a SQLite store
	cutOff time.Duration
	every  time.Duration // each sensor's pace
}

// faultCutOff is how long TestNATSPostgresFaults cuts a sensor off from
// NATS: a minute, or VIGIL_FAULT_CUTOFF (a Go duration, e.g. 10m, for the
// long variant).
func faultCutOff(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("VIGIL_FAULT_CUTOFF")
	if v == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute {
		t.Fatalf("VIGIL_FAULT_CUTOFF=%q: want a duration of at least 1m", v)
	}
	return d
}

// Sensors with queues publish through a real nats-server to ingest
// processes that share one durable consumer and write one SQLite store
// (both run the analysis when two run at once). Meanwhile: a sensor
// starts while NATS is unreachable, an ingest is killed (SIGKILL) while
// it holds a batch it has not acknowledged, two ingests run at once, one
// sensor is cut off from NATS for a while, and NATS is killed (SIGKILL) and started again.
// Afterwards the store holds every observation the sensors emitted
// exactly once, the sensors' own counts say the same, and the targets are
// those one ingest alone makes of the same observations.
// TestNATSPostgresFaults is the same with a PostgreSQL store that crashes.
func TestNATSFaults(t *testing.T) {
	runNATSFaults(t, faultRun{cutOff: 5 * time.Second, every: 10 * time.Millisecond})
}

// TestNATSPostgresFaults runs the fault scenario with the ingests writing
// a PostgreSQL store of the test's own, which is crashed ('pg_ctl stop -m
// immediate') and started again while both ingests run and the sensors
// publish (a third ingest, started while it is down, waits for it and
// then works beside the other two); and one sensor is cut off from NATS for a minute (or
// VIGIL_FAULT_CUTOFF), observing into its on-disk queue, during which
// the other faults happen.
func TestNATSPostgresFaults(t *testing.T) {
	cut := faultCutOff(t)
	pg := startPrivatePostgres(t)
	runNATSFaults(t, faultRun{pg: pg, cutOff: cut, every: 10 * time.Millisecond})
}

func runNATSFaults(t *testing.T, run faultRun) {
	began := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	srv := startNATS(t)
	db := filepath.Join(t.TempDir(), "v.db")
	if run.pg != nil {
		db = run.pg.dsn()
	}
	openFaultStore(t, db).Close() // the schema, before two ingests race to make it
	ingestArgs := []string{"--db", db, "--log-level", "warn", "ingest", "--bus", srv.url(),
		"--stream", "FAULT_OBS", "--subject", "fault.obs", "--consumer", "fault-ingest", "--batch", "50", "--ack-wait", "2s",
		// The sensors' keys, and the evidence log's checkpoint key, live
		// under --key-dir (else $HOME, which the ingest processes lack).
		"--key-dir", faultKeyDir(t)}
	proxy := newCutProxy(t, fmt.Sprintf("127.0.0.1:%d", srv.port))
	a := startFaultSensor(t, "sensor-a", srv.url(), 1, run.every)
	// Sensor b starts while NATS is unreachable, and keeps observing.
	proxy.setCut(true)
	b := startFaultSensor(t, "sensor-b", proxy.url(), 2, run.every)
	waitUntil(t, 30*time.Second, "sensor b to observe while NATS is unreachable", func() bool {
		ok, _ := b.p.QueueHealth()
		return !ok && b.emitted() > 300
	})
	proxy.setCut(false)
	waitUntil(t, 30*time.Second, "sensor b to reach NATS", func() bool {
		ok, _ := b.p.QueueHealth()
		return ok
	})

	// One ingest, killed while it holds a batch it has not acknowledged:
	// frozen (SIGSTOP) before NATS is asked, so that it cannot acknowledge
	// between the question and the kill (it did, under load, and the test
	// then found no batch handed over again), and let go on if it held
	// none. The pause lets acknowledgements already sent reach NATS.
	i1 := startIngest(t, ingestArgs...)
	waitUntil(t, 60*time.Second, "the first ingest at work, frozen holding a batch", func() bool {
		i1.alive(t)
		if _, ci, ok := faultState(srv.url()); !ok || ci.AckFloor.Stream <= 20 {
			return false
		}
		if err := i1.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		_, ci, ok := faultState(srv.url())
		// A message is a sensor's signed batch (a quarter of a second of
		// observations), not one observation.
		if ok && ci.AckFloor.Stream > 20 && ci.NumAckPending > 0 {
			return true
		}
		_ = i1.cmd.Process.Signal(syscall.SIGCONT)
		return false
	})
	_ = i1.stop(syscall.SIGKILL)
	phase("first ingest killed (SIGKILL)")

	// Sensor b cut off from NATS, observing into its queue, while the
	// other faults happen.
	proxy.setCut(true)
	cutAt := time.Now()
	waitUntil(t, time.Minute, "sensor b to see NATS gone", func() bool {
		ok, _ := b.p.QueueHealth()
		return !ok
	})
	cut0, cutEmitted := b.p.Delivery().Queue, b.emitted()

	// Two ingests at once from now on, both running the analysis.
	i2 := startMeteredIngest(t, ingestArgs...)
	i3 := startMeteredIngest(t, ingestArgs...)
	ingests := []*ingestProcess{i2, i3}
	if run.pg != nil {
		// A third ingest is started while PostgreSQL is down: it waits for
		// the store, and works with the other two once it is back.
		i4 := crashPostgres(t, run.pg, srv, ingests, ingestArgs)
		ingests = append(ingests, i4)
		phase("PostgreSQL crashed and restarted; an ingest started meanwhile")
	}

	// NATS killed (SIGKILL, as a crash) and started again on its
	// JetStream store.
	srv.kill()
	srv.start()
	committedAfter(t, srv, ingests, "NATS restarted")
	phase("NATS killed and restarted")

	// The cut-off lasts its time; everything b observed meanwhile waits in
	// its queue.
	waitUntil(t, run.cutOff+time.Minute, "the end of sensor b's cut-off", func() bool {
		alive(t, ingests)
		return time.Since(cutAt) >= run.cutOff
	})
	// (The queue takes an observation a moment after the sensor emitted
	// it: wait until it took what was emitted so far.)
	during := b.emitted() - cutEmitted
	var d *spool.Stats
	waitUntil(t, time.Minute, "sensor b's queue to take all it observed while cut off", func() bool {
		d = b.p.Delivery().Queue
		return d.Queued-cut0.Queued >= uint64(during) || d.Published != cut0.Published
	})
	if up, _ := b.p.QueueHealth(); up || d.Published != cut0.Published || d.Pending < during || during < 100 || d.Dropped != 0 {
		t.Fatalf("sensor b cut off for %s: bus up %v, %d observed meanwhile; its queue at the cut %+v, now %+v",
			time.Since(cutAt).Round(time.Second), up, during, cut0, d)
	}
	t.Logf("sensor b cut off for %s: %d observations queued meanwhile", time.Since(cutAt).Round(time.Second), during)
	proxy.setCut(false)
	// Its queue drains while it goes on observing.
	waitUntil(t, 3*time.Minute, "sensor b's queue to drain", func() bool {
		alive(t, ingests)
		return b.p.Delivery().Queue.Pending < 100
	})

	phase("sensor b's queue drained")
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
		case <-time.After(2 * time.Minute):
			t.Fatal("a sensor did not finish")
		}
	}
	last := time.Now()
	waitUntil(t, 3*time.Minute, "every message stored and acknowledged", func() bool {
		alive(t, ingests)
		msgs, ci, ok := faultState(srv.url())
		if ok && time.Since(last) > 20*time.Second {
			last = time.Now()
			t.Logf("NATS holds %d messages; consumer: %d pending, %d unacknowledged, %d redelivered, ack floor %d, delivered %d",
				msgs, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.AckFloor.Stream, ci.Delivered.Stream)
		}
		return ok && ci.NumAckPending == 0 && ci.NumPending == 0 && (msgs == 0 || time.Since(last) > 15*time.Second)
	})
	_, ci, _ := faultState(srv.url())
	// After a crash, nats-server (2.9) may keep messages whose
	// acknowledgement it had taken and whose removal it had not yet
	// written: the consumer is past them and never delivers them again.
	// Each must be one the ingests stored (checked below).
	linger := lingering(t, srv.url(), "FAULT_OBS")
	phase(fmt.Sprintf("everything stored and acknowledged (%d acknowledged messages left in the stream by the crash)", len(linger)))
	n := uint64(a.emitted() + b.emitted())
	if ci.Delivered.Consumer <= ci.Delivered.Stream {
		t.Errorf("NATS delivered %d messages for the stream's %d: the killed ingest's batch was never handed over again", ci.Delivered.Consumer, ci.Delivered.Stream)
	}
	// Each catches up with what the other stored and saves as it stops;
	// the one that stops last saves a view that lagged while the other
	// saved.
	for _, p := range ingests {
		if err := p.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("ingest: %v\n%s", err, p.output())
		}
		if out := "\n" + p.output(); strings.Contains(out, "\n0 observations stored") || !strings.Contains(out, "observations stored") {
			t.Errorf("an ingest of several stored nothing:\n%s", p.output())
		}
	}
	phase("ingests stopped")
	checkFaultStore(t, db, a, b)
	emitted := map[string]bool{}
	for _, s := range []*faultSensor{a, b} {
		for _, id := range s.ids {
			emitted[id] = true
		}
	}
	for _, id := range linger {
		if !emitted[id] {
			t.Errorf("message %s left in the stream is not an observation the sensors emitted", id)
		}
	}
	phase("store checked")
	checkAnalysisAsOneIngest(t, db, srv.url())
	phase("analysis compared")
	t.Logf("deliveries by NATS %d (stream sequence %d) for %d observations; ingests said:\n%s%s",
		ci.Delivered.Consumer, ci.Delivered.Stream, n, i2.output(), i3.output())
}

// crashPostgres crashes the store's server while both ingests commit
// and the sensors publish, lets the stream grow while it is down, starts
// it again and waits until both ingests commit again: they waited for
// the store instead of exiting.
func crashPostgres(t *testing.T, pg *privatePostgres, srv *natsServer, ingests []*ingestProcess, ingestArgs []string) *ingestProcess {
	t.Helper()
	before := make([]float64, len(ingests))
	waitUntil(t, 2*time.Minute, "both ingests committing", func() bool {
		alive(t, ingests)
		for i, p := range ingests {
			before[i] = p.metric(t, "vigil_ingest_committed_total")
			if before[i] == 0 {
				return false
			}
		}
		return true
	})
	pg.crash()
	var msgs uint64
	waitUntil(t, time.Minute, "NATS to answer while PostgreSQL is down", func() bool {
		m, _, ok := faultState(srv.url())
		msgs = m
		return ok
	})
	waitUntil(t, time.Minute, "observations to pile up in NATS while PostgreSQL is down", func() bool {
		alive(t, ingests)
		m, _, ok := faultState(srv.url())
		return ok && m > msgs+30
	})
	// An ingest started now finds no store: it must wait, not exit.
	late := startMeteredIngest(t, ingestArgs...)
	waitUntil(t, time.Minute, "the ingest started while PostgreSQL is down to say it waits", func() bool {
		late.alive(t)
		return strings.Contains(late.output(), "PostgreSQL unreachable; waiting for it")
	})
	time.Sleep(2 * time.Second)
	late.alive(t)
	pg.start()
	ingests, before = append(ingests, late), append(before, 0)
	if !pg.recoveredFromCrash() {
		t.Fatal("PostgreSQL's log does not say it recovered from a crash: was it stopped as a crash?")
	}
	waitUntil(t, 2*time.Minute, "both ingests committing again after PostgreSQL restarted", func() bool {
		alive(t, ingests)
		for i, p := range ingests {
			if p.metric(t, "vigil_ingest_committed_total") <= before[i] {
				return false
			}
		}
		return true
	})
	failed := 0.0
	for _, p := range ingests {
		failed += p.metric(t, "vigil_ingest_errors_total")
	}
	if failed == 0 {
		t.Fatal("no ingest saw a commit fail while PostgreSQL was down: the crash did not happen mid-ingest")
	}
	return late
}

// committedAfter waits until the ingests have acknowledged (so committed)
// messages beyond what the stream held when it was called.
func committedAfter(t *testing.T, srv *natsServer, ingests []*ingestProcess, what string) {
	t.Helper()
	waitUntil(t, time.Minute, "NATS to answer after "+what, func() bool {
		_, _, ok := faultState(srv.url())
		return ok
	})
	// The ingests' own count of committed observations, not the stream's
	// ack floor: an ingest holds a signed observation until the signature
	// that covers it arrives (sensor b's is in its queue while it is cut
	// off), and an ack sent while NATS was down waits for --ack-wait, so
	// the floor may stay put while every ingest commits.
	before := 0.0
	for _, p := range ingests {
		before += p.metric(t, "vigil_ingest_committed_total")
	}
	waitUntil(t, 2*time.Minute, "the ingests to commit again after "+what, func() bool {
		alive(t, ingests)
		now := 0.0
		for _, p := range ingests {
			now += p.metric(t, "vigil_ingest_committed_total")
		}
		return now > before
	})
}

func alive(t *testing.T, ps []*ingestProcess) {
	t.Helper()
	for _, p := range ps {
		p.alive(t)
	}
}

// openFaultStore opens the store the ingests write: a SQLite file or a
// postgres:// URL.
func openFaultStore(t *testing.T, db string) store.Store {
	t.Helper()
	if !isPostgresURL(db) {
		st, err := sqlite.Open(context.Background(), db, sqlite.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	dsn, cfg, err := postgresConfig(db)
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(context.Background(), dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
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
	st := openFaultStore(t, db)
	defer st.Close()
	got := map[string]int{}
	rows, failed := 0, 0
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		got[o.ID]++
		rows++
		// Every sensor here signs, and no one on the way tampers: a
		// genuine observation stored as failed (a batch cut in two by
		// the cut-off, its first part failed before its head came) or
		// unsigned understates the evidence and changes the analysis.
		if o.HasMark(observe.MarkSignatureFailed) || o.HasMark(observe.MarkUnsigned) || !o.Signed() {
			if failed++; failed <= 5 {
				t.Errorf("observation %s stored marked %v, signed %v: the sensor signed it", o.ID, o.Marks, o.Signed())
			}
		}
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
	if failed > 0 {
		t.Errorf("%d of %d observations stored as not the sensor's signed evidence", failed, rows)
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
	// The reference ingest reads as the observations are published, in
	// the order of the store.
	ref := filepath.Join(t.TempDir(), "ref.db")
	p := startIngest(t, "--db", ref, "--log-level", "warn", "ingest", "--bus", url,
		"--stream", cfg.Stream, "--subject", cfg.Subject, "--consumer", cfg.Consumer, "--key-dir", faultKeyDir(t))
	for _, o := range obs {
		o.Place, o.Jurisdiction = observe.Place{}, observe.Jurisdiction{}
		if err := jb.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	jb.Close()
	waitUntil(t, 3*time.Minute, "the reference ingest", func() bool {
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
	st := openFaultStore(t, db)
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

// lingering returns the observation ids of the messages a stream still
// holds.
func lingering(t *testing.T, url, stream string) []string {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	j, err := js.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := j.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	read := uint64(0)
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // removed
		}
		obs, bad, _ := jetstream.DecodeMessage(m.Data)
		if len(bad) > 0 {
			t.Fatalf("stream message %d: %v", seq, bad)
		}
		for i := range obs {
			ids = append(ids, obs[i].ID)
		}
		read++
	}
	if read != info.State.Msgs {
		t.Fatalf("the stream says it holds %d messages; %d read", info.State.Msgs, read)
	}
	return ids
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
