package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/postgres"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
	"github.com/vigil-oss/vigil/internal/testenv"
)

var (
	ingestBenchObs      = flag.Int("ingest-bench-observations", 20_000, "observations each round of BenchmarkIngestNATSPostgres publishes and stores")
	ingestBenchBatch    = flag.Int("ingest-bench-batch", 1000, "ingest's --batch in BenchmarkIngestNATSPostgres (1,000 is its default)")
	ingestBenchAnalysis = flag.Bool("ingest-bench-analysis", true, "ingest's --analysis in BenchmarkIngestNATSPostgres (false: to see what the analysis costs)")
	ingestBenchRounds   = flag.Int("ingest-bench-rounds", 3, "rounds of BenchmarkIngestNATSPostgres, each running both variants (their order alternates)")
	ingestBenchEvidence = flag.Bool("ingest-bench-evidence-variants", false, "BenchmarkIngestNATSPostgres runs ingest with and without signing and the evidence log instead of ingest and the single-row baseline")
	ingestBenchVariants = flag.String("ingest-bench-variants", "ingest,nolog,plain", "the evidence variants a round runs (-ingest-bench-evidence-variants), comma-separated: ingest, nolog, plain")
)

// BenchmarkIngestNATSPostgres is issue 13's ingest row: observations that
// a sensor signed (batches of 256, as every sensor does) wait in a
// JetStream stream on a private nats-server on loopback, one message a
// signed batch as a sensor's bus publishes them; 'vigil ingest
// --bus ... --db postgres://...' (run() itself, the analysis on, rules
// example:france, the lab's geo database) stores them into a fresh schema
// and stops once the stream's consumer has nothing pending. The clock
// runs from the start of run() to its return (the analysis's final pass
// included); publishing is done before and not counted. The baseline, in
// the same round, writes the same observations into another fresh schema
// with one single-row INSERT each (postgres.InsertValues with a chunk of
// one: the store's items and transaction per 1,000, no evidence log, no
// NATS, no analysis). Each round runs both, alternating which goes first.
//
// With -ingest-bench-evidence-variants a round runs instead three
// variants of 'vigil ingest' (their order rotating): as above ("ingest":
// signed batches, the store's evidence log on, ingest's signature gate
// checking them); "nolog", the same with the store opened with
// NoEvidenceLog (benchNoEvidenceLog); and "plain", without signing and
// logging: the same observations published unsigned through the same
// bus's PublishBatch in runs of 256 (one message a run, as a signed batch
// is), the store without its log and ingest without its signature gate
// (benchNoGate). Through the gate, unsigned observations would be marked
// unsigned_import, which is never first-hand: the analysis would make no
// target of them. Without it the analysis does the same work on both
// (checkScored logs the targets, links and leaves of each).
//
// docs/benchmarks.md, "Ingest through NATS into PostgreSQL (issue 13)":
//
//	go test ./cmd/vigil -run '^$' -bench IngestNATSPostgres -benchtime 1x -timeout 30m \
//	    -ingest-bench-observations 100000 -ingest-bench-rounds 3
func BenchmarkIngestNATSPostgres(b *testing.B) {
	n := *ingestBenchObs
	obs := ingestBenchObservations(n)
	srv := startNATS(b)
	geo, keyDir := writeLabGeo(b), benchKeyDir(b)
	for i := 0; i < b.N; i++ {
		if *ingestBenchEvidence {
			with, without := evidenceRounds(b, srv, obs, geo, keyDir, "", i)
			b.ReportMetric(median(with), "ingest-obs/s")
			b.ReportMetric(median(without), "plain-obs/s")
			continue
		}
		var ingestRates, rowRates []float64
		for r := range *ingestBenchRounds {
			variants := []func() benchRound{
				func() benchRound { return ingestRound(b, srv, obs, geo, keyDir, fmt.Sprint(r), "ingest", "") },
				func() benchRound { return rowsRound(b, obs) },
			}
			if r%2 == 1 {
				slices.Reverse(variants)
			}
			for _, v := range variants {
				res := v()
				b.Logf("round %d %s", r+1, res)
				if res.name == "ingest" {
					ingestRates = append(ingestRates, res.rate())
				} else {
					rowRates = append(rowRates, res.rate())
				}
			}
		}
		b.ReportMetric(median(ingestRates), "ingest-obs/s")
		b.ReportMetric(median(rowRates), "rows-obs/s")
	}
}

// BenchmarkIngestNATSSQLite is BenchmarkIngestNATSPostgres's evidence
// variants (-ingest-bench-evidence-variants) into a SQLite file: 'vigil
// --db FILE ingest --bus ...' with signing and the evidence log, with
// signing alone, and with neither, each round all three, their order
// rotating. Its flags are BenchmarkIngestNATSPostgres's.
//
//	go test ./cmd/vigil -run '^$' -bench IngestNATSSQLite -benchtime 1x -timeout 30m \
//	    -ingest-bench-observations 100000 -ingest-bench-rounds 3
func BenchmarkIngestNATSSQLite(b *testing.B) {
	obs := ingestBenchObservations(*ingestBenchObs)
	srv := startNATS(b)
	geo, keyDir, dir := writeLabGeo(b), benchKeyDir(b), b.TempDir()
	for i := 0; i < b.N; i++ {
		with, without := evidenceRounds(b, srv, obs, geo, keyDir, dir, i)
		b.ReportMetric(median(with), "ingest-obs/s")
		b.ReportMetric(median(without), "plain-obs/s")
	}
}

// evidenceRounds runs the rounds of the evidence variants ("ingest",
// "nolog", "plain": ingestRound; -ingest-bench-variants may name fewer),
// the order rotating from round to round so that each variant runs at
// each place in turn, and returns the obs/s of "ingest" and of "plain".
func evidenceRounds(b *testing.B, srv *natsServer, obs []observe.Observation, geo, keyDir, sqliteDir string, iter int) (with, without []float64) {
	names := strings.Split(*ingestBenchVariants, ",")
	for _, n := range names {
		if n != "ingest" && n != "nolog" && n != "plain" {
			b.Fatalf("-ingest-bench-variants: %q is not ingest, nolog or plain", n)
		}
	}
	for r := range *ingestBenchRounds {
		var round []benchRound
		for k := range names {
			name := names[(k+r)%len(names)]
			res := ingestRound(b, srv, obs, geo, keyDir, fmt.Sprintf("%d_%d_%s", iter, r, name), name, sqliteDir)
			b.Logf("round %d %s", r+1, res)
			round = append(round, res)
			switch name {
			case "ingest":
				with = append(with, res.rate())
			case "plain":
				without = append(without, res.rate())
			}
		}
		b.Logf("round %d %s", r+1, evidenceCost(round))
	}
	return with, without
}

// benchSQLite makes a fresh SQLite store in dir (migrations are not
// timed) and returns its path.
func benchSQLite(b *testing.B, dir, tag string) string {
	path := filepath.Join(dir, "bench_"+tag+".db")
	st, err := sqlite.Open(context.Background(), path, sqlite.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	return path
}

// checkScoredSQLite is checkScored for a SQLite store.
func checkScoredSQLite(b *testing.B, path string) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var targets, links, leaves int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM targets), (SELECT count(*) FROM analysis_links),
		(SELECT coalesce(sum(length(leaves)/32), 0) FROM evidence_blocks)`).Scan(&targets, &links, &leaves); err != nil {
		b.Fatal(err)
	}
	if targets == 0 {
		b.Fatal("ingest's analysis made no target")
	}
	b.Logf("%s: %d targets, %d device links, %d evidence leaves", filepath.Base(path), targets, links, leaves)
}

// benchRound is one variant's figures.
type benchRound struct {
	name                string
	n                   int
	wall                time.Duration
	cpu, nats, pg       time.Duration // this process; nats-server; the PostgreSQL backends
	publish             time.Duration // ingest: the publishing before the clock starts
	msgs                uint64        // ingest: the NATS messages published
	load1, load1After   string
	stored, extraOutput string
}

func (r benchRound) rate() float64 { return float64(r.n) / r.wall.Seconds() }

// evidenceCost compares a round's "ingest" (signing and logging) and
// "nolog" (signing alone) variants with its "plain" one: how much more
// they take, in wall time and in CPU per observation (vigil, nats-server,
// PostgreSQL, and the three together).
func evidenceCost(round []benchRound) string {
	by := map[string]benchRound{}
	for _, r := range round {
		by[r.name] = r
	}
	without := by["plain"]
	var out []string
	for _, v := range []struct{ name, what string }{{"ingest", "signing and logging"}, {"nolog", "signing alone"}} {
		with, ok := by[v.name]
		if !ok {
			continue
		}
		more := func(a, b time.Duration) string {
			if b <= 0 {
				return "?"
			}
			return fmt.Sprintf("%+.1f %%", 100*(float64(a)/float64(with.n)/(float64(b)/float64(without.n))-1))
		}
		out = append(out, fmt.Sprintf("%s: wall %s; CPU an observation: vigil %s, nats %s, postgres %s, all three %s; obs/s %+.1f %%",
			v.what, more(with.wall, without.wall), more(with.cpu, without.cpu), more(with.nats, without.nats), more(with.pg, without.pg),
			more(with.cpu+with.nats+with.pg, without.cpu+without.nats+without.pg), 100*(with.rate()/without.rate()-1)))
	}
	return strings.Join(out, "; ")
}

func (r benchRound) String() string {
	total := r.cpu + r.nats + r.pg
	s := fmt.Sprintf("%-6s %d obs in %.2fs: %.0f obs/s; CPU vigil %.2fs nats %.2fs postgres %.2fs = %.0f obs/cpu-s (vigil alone %.0f); load %s -> %s",
		r.name, r.n, r.wall.Seconds(), r.rate(), r.cpu.Seconds(), r.nats.Seconds(), r.pg.Seconds(),
		float64(r.n)/total.Seconds(), float64(r.n)/r.cpu.Seconds(), r.load1, r.load1After)
	if r.publish > 0 {
		s += fmt.Sprintf("; published before in %.2fs (%.0f/s, %d messages, not counted)", r.publish.Seconds(), float64(r.n)/r.publish.Seconds(), r.msgs)
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// ingestBenchObservations are n synthetic observations as a sensor
// publishes them (no place, no agency, unmapped addresses): items from a
// pool of 4,096 as real traffic repeats items, n/20 peers (20 observations
// a peer on average, at least 100 peers), each with its own client, on
// loopback addresses (which the lab's geo database places in France, so that
// ingest routes them and the analysis scores targets), distinct ids and
// times.
func ingestBenchObservations(n int) []observe.Observation {
	r := rand.New(rand.NewPCG(13, 13))
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	pool := make([]observe.Observation, 4096)
	for i := range pool {
		pool[i] = storetest.Observation(r, at, i)
	}
	out := make([]observe.Observation, n)
	// Each peer is one device: its own client (peer id, node id, user
	// hash) and listening port, as real peers are. Identifiers shared by
	// many addresses would be a clash the analysis unlinks (a far slower
	// path that real traffic rarely takes).
	peers := max(100, n/20)
	clients := make([]observe.Client, peers)
	ports := make([]uint16, peers)
	for i := range clients {
		c := storetest.Observation(r, at, i)
		clients[i], ports[i] = c.Client, c.Endpoint.Port
	}
	for i := range out {
		o := pool[r.IntN(len(pool))]
		o.Place, o.Jurisdiction, o.Chain = observe.Place{}, observe.Jurisdiction{}, observe.Chain{}
		o.Time = at.Add(time.Duration(i) * 37 * time.Microsecond)
		o.ID = observe.NewID(o.Time)
		o.Sensor.ID = "bench"
		peer := r.IntN(peers)
		o.Endpoint.IP = netip.AddrFrom4([4]byte{127, byte(1 + peer>>16), byte(peer >> 8), byte(peer)})
		o.Endpoint.Port, o.Client = ports[peer], clients[peer]
		o.Endpoint.Local = netip.AddrPort{}
		out[i] = o
	}
	return out
}

// publishSigned signs obs as a sensor does and publishes them to a new
// stream through the sensor's bus (jetstream.Bus: one message a signed
// batch); it returns once JetStream holds them all, with the number of
// messages. Unless signed, obs go unsigned through the same bus's
// benchKeySeed is the seed of the key the benchmarks' sensor signs with.
func benchKeySeed() []byte {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 13
	return seed
}

// benchKeyDir is ingest's key folder, with the benchmarks' sensor key as
// its sensor.key: ingest trusts it by default, as it trusts the
// deployment's own sensor.
func benchKeyDir(b *testing.B) string {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, sensorKeyFile), []byte(hex.EncodeToString(benchKeySeed())+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return dir
}

// PublishBatch in runs of the signer's batch size (one message a run).
func publishSigned(b *testing.B, url, stream, subject string, obs []observe.Observation, signed bool) (time.Duration, uint64) {
	start := time.Now()
	ctx := context.Background()
	// The stream as ingest and sensors make it (work queue, file storage).
	cfg := jetstream.DefaultConfig(url)
	cfg.Stream, cfg.Subject = stream, subject
	jb, err := jetstream.Open(ctx, cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer jb.Close()
	signer := evidence.NewBatchSigner(jb, ed25519.NewKeyFromSeed(benchKeySeed()), evidence.DefaultSignerConfig())
	for i := 0; i < len(obs) && !signed; i += evidence.DefaultSignerConfig().BatchSize {
		if err := jb.PublishBatch(ctx, obs[i:min(len(obs), i+evidence.DefaultSignerConfig().BatchSize)]); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < len(obs) && signed; i++ {
		if err := signer.Publish(ctx, obs[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := signer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	j, err := js.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	st, err := j.Stream(ctx, stream)
	if err != nil {
		b.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return time.Since(start), info.State.Msgs
}

var storedLine = regexp.MustCompile(`(\d+) observations stored`)

// ingestRound publishes obs to a new stream (named for tag) and times
// 'vigil ingest' storing them into a fresh schema. Variant "ingest" is
// ingest as it runs (signed batches, the evidence log, the signature
// gate); "nolog" the same without the store's evidence log
// (benchNoEvidenceLog); "plain" neither signing nor the log: obs are
// published unsigned and ingest runs without its gate (benchNoGate).
// The store is a fresh PostgreSQL schema, or when sqliteDir is not empty
// a fresh SQLite file in it (no PostgreSQL CPU then: SQLite works in
// vigil's own process).
func ingestRound(b *testing.B, srv *natsServer, obs []observe.Observation, geo, keyDir, tag, variant, sqliteDir string) benchRound {
	stream, subject, consumer := "BENCH_"+tag, "bench"+tag+".obs", "bench"+tag
	res := benchRound{name: variant, n: len(obs)}
	signed := variant != "plain"
	benchNoEvidenceLog, benchNoGate = variant != "ingest", !signed
	defer func() { benchNoEvidenceLog, benchNoGate = false, false }()
	res.publish, res.msgs = publishSigned(b, srv.url(), stream, subject, obs, signed)
	msgs := res.msgs
	var db, schema, app string
	if sqliteDir == "" {
		db, schema = benchSchema(b)
		app = "vigil_bench_" + schema
		db += "&application_name=" + app
	} else {
		db = benchSQLite(b, sqliteDir, tag)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	res.load1 = loadAverage()
	nats0, cpu0, start := procCPU(srv.cmd.Process.Pid), rusageCPU(), time.Now()
	go func() {
		done <- run(ctx, []string{"--db", db, "ingest", "--bus", srv.url(), "--stream", stream, "--subject", subject, "--consumer", consumer,
			"--rules", "example:france", "--geo-db", geo, "--key-dir", keyDir, "--batch", strconv.Itoa(*ingestBenchBatch), "--analysis=" + strconv.FormatBool(*ingestBenchAnalysis)},
			strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	nc, err := nats.Connect(srv.url())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	j, _ := js.New(nc)
	for {
		select {
		case code := <-done:
			b.Fatalf("ingest ended early: exit %d\n%s\n%s", code, out.String(), errb.String())
		case <-time.After(20 * time.Millisecond):
		}
		c, err := j.Consumer(ctx, stream, consumer)
		if err != nil {
			continue // not created yet
		}
		ci, err := c.Info(ctx)
		if err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= msgs {
			break
		}
	}
	if app != "" {
		res.pg = backendCPU(b, app)
	}
	cancel()
	code := <-done
	res.wall, res.cpu, res.nats = time.Since(start), rusageCPU()-cpu0, procCPU(srv.cmd.Process.Pid)-nats0
	res.load1After = loadAverage()
	if code != exitOK {
		b.Fatalf("ingest: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if m := storedLine.FindStringSubmatch(out.String()); m == nil || m[1] != strconv.Itoa(len(obs)) {
		b.Fatalf("ingest stored %q, want %d observations\n%s", out.String(), len(obs), errb.String())
	}
	if *ingestBenchAnalysis && sqliteDir == "" {
		checkScored(b, schema)
	} else if *ingestBenchAnalysis {
		checkScoredSQLite(b, db)
	}
	if err := j.DeleteStream(context.Background(), stream); err != nil {
		b.Fatal(err)
	}
	return res
}

// rowsRound is the baseline: the same observations, one single-row INSERT
// each, in transactions of 1,000, into a fresh schema.
func rowsRound(b *testing.B, obs []observe.Observation) benchRound {
	_, schema := benchSchema(b)
	dsn := benchDSN()
	app := "vigil_bench_" + schema
	cfg := postgres.DefaultConfig()
	cfg.Schema, cfg.InsertMethod, cfg.ValuesChunk, cfg.NoEvidenceLog = schema, postgres.InsertValues, 1, true
	ctx := context.Background()
	st, err := postgres.Open(ctx, dsn+sep(dsn)+"application_name="+app, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// The same observations as ingest stores them: placed and routed.
	batch := make([]observe.Observation, 0, 1000)
	res := benchRound{name: "rows", n: len(obs), load1: loadAverage()}
	cpu0, start := rusageCPU(), time.Now()
	for i := range obs {
		o := obs[i]
		o.Jurisdiction = observe.Jurisdiction{Agency: "fr-bench", Rule: "bench"}
		batch = append(batch, o)
		if len(batch) == cap(batch) || i == len(obs)-1 {
			if err := st.InsertObservations(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	res.pg = backendCPU(b, app)
	res.wall, res.cpu, res.load1After = time.Since(start), rusageCPU()-cpu0, loadAverage()
	return res
}

func sep(dsn string) string {
	if strings.Contains(dsn, "?") {
		return "&"
	}
	return "?"
}

// benchSchema makes a fresh schema with Vigil's tables (migrations are
// not timed) and returns its URL (ending in schema=NAME) and name; the
// schema is dropped when b ends.
func benchSchema(b *testing.B) (string, string) {
	dsn := benchDSN()
	var rb [6]byte
	_, _ = crand.Read(rb[:])
	schema := "vigil_bench_" + hex.EncodeToString(rb[:])
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			b.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		b.Fatal(err)
	}
	cfg := postgres.DefaultConfig()
	cfg.Schema = schema
	st, err := postgres.Open(context.Background(), dsn, cfg)
	if err != nil {
		testenv.Missingf(b, "POSTGRES", "PostgreSQL at %s: %v", u.Host, err)
	}
	st.Close()
	return dsn + sep(dsn) + "schema=" + schema, schema
}

// checkScored fails b when the analysis left no target: the benchmark
// must time ingest with its analysis.
func checkScored(b *testing.B, schema string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, benchDSN())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var targets int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "targets"}.Sanitize()).Scan(&targets); err != nil {
		b.Fatal(err)
	}
	if targets == 0 {
		b.Fatal("ingest's analysis made no target")
	}
	var links, logged int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+pgx.Identifier{schema, "analysis_links"}.Sanitize()+`), (SELECT coalesce(sum(length(leaves)/32), 0) FROM `+pgx.Identifier{schema, "evidence_blocks"}.Sanitize()+`)
		+ (SELECT coalesce(sum(n), 0) FROM `+pgx.Identifier{schema, "evidence_tiles"}.Sanitize()+`)`).Scan(&links, &logged); err != nil {
		b.Fatal(err)
	}
	b.Logf("schema %s: %d targets, %d device links, %d evidence leaves", schema, targets, links, logged)
}

// benchDSN is the test server's URL.
func benchDSN() string {
	if dsn := os.Getenv("VIGIL_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// rusageCPU is this process's user+system time.
func rusageCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a process's user+system time from /proc (0 when unknown).
func procCPU(pid int) time.Duration {
	bs, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(bs[bytes.LastIndexByte(bs, ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / 100 // USER_HZ
}

// backendCPU is the CPU time of the PostgreSQL backends whose
// application_name is app (the server runs on this machine).
func backendCPU(b *testing.B, app string) time.Duration {
	dsn := benchDSN()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, pid := range pids {
		total += procCPU(int(pid))
	}
	return total
}

func loadAverage() string {
	bs, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(bs))[0]
}
