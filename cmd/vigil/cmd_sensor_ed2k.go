package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"sync"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

func sensorED2KCommand() *command {
	return &command{
		name:    "ed2k",
		summary: "Ask eD2K servers and Kad for sources of watched ed2k hashes and probe them.",
		usage:   "vigil sensor ed2k [--kad-bootstrap ADDR,...] [--server ADDR,...] [--server-met FILE] [--listen IP] [--scope-allow CIDR,...] [--duration D]",
		help: `
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

Every observation goes to standard output as JSON Lines (the form of
'vigil observations export', with user_hash in hex), or with --bus to a NATS
JetStream stream for a 'vigil ingest --bus'. A summary by method goes to
standard error at the end.

Scope: lab scope by default. Only 127.0.0.0/8, ::1 and the prefixes given
with --scope-allow (network namespaces you created) are ever sent to;
anything else is refused before a socket is touched, and counted. The
sensor never contacts public servers or Kad nodes: --server or
--kad-bootstrap is required.

Examples:
  vigil sensor ed2k --server 127.80.0.1:4661 --duration 2m > ed2k.jsonl
  vigil sensor ed2k --kad-bootstrap 127.81.0.1:4672,127.81.0.2:4672 --lab
  vigil sensor ed2k --server-met lab-server.met --bus nats://127.0.0.1:4222
  vigil sensor ed2k --server 100.64.0.1:4661 --kad-bootstrap 100.64.1.1:4672 \
      --listen 100.64.9.1 --scope-allow 100.64.0.0/16 --duration 10m
`,
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
			lab := fs.Bool("lab", false, "lab timings: searches every 10s, short timeouts, no wire budget")
			busURL := fs.String("bus", "", "NATS JetStream `URL` to publish observations to, instead of standard output")
			return func(ctx context.Context, a *app, args []string) error {
				cfg := ed2k.DefaultConfig()
				if *lab {
					cfg = ed2k.LabConfig()
				}
				if *every > 0 {
					cfg.SearchEvery = *every
				}
				cfg.ID, cfg.Version, cfg.Probe, cfg.Verify = *id, version, *probe, *verify
				cfg.KadPort = uint16(*kadPort)
				var err error
				if cfg.Listen, err = netip.ParseAddr(*listen); err != nil {
					return usagef("--listen %q: want an IP address", *listen)
				}
				if cfg.KadBootstrap, err = parseAddrPorts(*kadBoot); err != nil {
					return usagef("--kad-bootstrap: %v", err)
				}
				if cfg.Servers, err = parseAddrPorts(*servers); err != nil {
					return usagef("--server: %v", err)
				}
				if *serverMet != "" {
					b, err := os.ReadFile(*serverMet)
					if err != nil {
						return err
					}
					met, err := wire.ParseServerMet(b)
					if err != nil {
						return fmt.Errorf("%s: %w", *serverMet, err)
					}
					for _, s := range met.Servers {
						cfg.Servers = append(cfg.Servers, s.Addr)
					}
				}
				if len(cfg.KadBootstrap) == 0 && len(cfg.Servers) == 0 {
					return usagef("--server, --server-met or --kad-bootstrap is required (the sensor never contacts public servers or nodes)")
				}
				sc := scope.DefaultConfig()
				if sc.Allow, err = parsePrefixes(*allow); err != nil {
					return usagef("--scope-allow: %v", err)
				}
				guard, err := scope.New(sc, nil)
				if err != nil {
					return err
				}
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				watched, err := watchedED2K(ctx, st)
				if err != nil {
					return err
				}
				if len(watched) == 0 {
					a.log.Warn("no ed2k entries on any enabled watch-list: the sensor will run but watch nothing")
				}
				if *duration > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, *duration)
					defer cancel()
				}
				out := &jsonlPublisher{enc: observe.NewEncoder(a.stdout)}
				var pub bus.Publisher = out
				if *busURL != "" {
					jb, err := jetstream.Open(ctx, jetstream.DefaultConfig(*busURL), a.log)
					if err != nil {
						return err
					}
					defer jb.Close()
					pub = jb
				}
				counted := &countingED2K{Publisher: pub, n: map[string]int{}}
				s, err := ed2k.New(cfg, guard, counted, a.log)
				if err != nil {
					return err
				}
				if err := s.Watch(watched...); err != nil {
					return err
				}
				err = s.Run(ctx)
				counted.summary(a.stderr, s.Stats())
				return err
			}
		},
	}
}

// watchedED2K is the sensor's watch set: every enabled ed2k entry, except
// hashes on a known-benign list, with the size a list gave.
func watchedED2K(ctx context.Context, st store.Store) ([]ed2k.Watched, error) {
	byHash := map[hashkind.Hash]*ed2k.Watched{}
	benign := map[hashkind.Hash]bool{}
	var order []hashkind.Hash
	err := st.ActiveEntries(ctx, func(l *watchlist.List, e *watchlist.Entry) error {
		if e.Hash.Kind() != hashkind.ED2K {
			return nil
		}
		if l.Negative {
			benign[e.Hash] = true
			return nil
		}
		w := byHash[e.Hash]
		if w == nil {
			w = &ed2k.Watched{Hash: e.Hash, Size: -1}
			byHash[e.Hash] = w
			order = append(order, e.Hash)
		}
		if w.Size < 0 && e.Size > 0 {
			w.Size = e.Size
		}
		w.Matched = append(w.Matched, observe.Match{List: l.Name, Category: e.Category})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]ed2k.Watched, 0, len(order))
	for _, h := range order {
		if !benign[h] {
			out = append(out, *byHash[h])
		}
	}
	return out, nil
}

// jsonlPublisher writes each observation as one JSON line, flushed at
// once so that a reader of the pipe sees it.
type jsonlPublisher struct {
	mu  sync.Mutex
	enc *observe.Encoder
}

func (p *jsonlPublisher) Publish(_ context.Context, o observe.Observation) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.enc.Encode(&o); err != nil {
		return err
	}
	return p.enc.Flush()
}

// countingED2K counts what was published, by method and level.
type countingED2K struct {
	bus.Publisher
	mu sync.Mutex
	n  map[string]int
}

func (c *countingED2K) Publish(ctx context.Context, o observe.Observation) error {
	if err := c.Publisher.Publish(ctx, o); err != nil {
		return err
	}
	c.mu.Lock()
	c.n[o.Network+" "+o.Method+" "+o.Possession.Level.String()]++
	c.mu.Unlock()
	return nil
}

func (c *countingED2K) summary(w io.Writer, st ed2k.Stats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.n))
	total := 0
	for k, v := range c.n {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "%6d  %s\n", c.n[k], k)
	}
	fmt.Fprintf(w, "%d observations; %d server requests, %d Kad searches, %d probes (%d failed)\n",
		total, st.ServerAsks, st.KadSearches, st.Probes, st.ProbeFailures)
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
	if st.Kad.Unsolicited+st.Kad.Obfuscated+st.Kad.Refused > 0 {
		fmt.Fprintf(w, "Kad datagrams dropped: %d unsolicited, %d obfuscated, %d out of scope\n", st.Kad.Unsolicited, st.Kad.Obfuscated, st.Kad.Refused)
	}
}
