package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/lab/accuracy"
	"github.com/vigil-oss/vigil/internal/lab/ntpserver"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

func labCommand() *command {
	return &command{
		name:    "lab",
		summary: "Run a BitTorrent network on loopback for trials, tests and benchmarks.",
		usage:   "vigil lab COMMAND",
		subs:    []*command{labUpCommand(), labAccuracyCommand()},
	}
}

// labFlags defines the lab's size flags on fs and returns a function that
// builds the lab config from them.
func labFlags(fs *flag.FlagSet) func() lab.Config {
	def := lab.DefaultConfig()
	nodes := fs.Int("dht-nodes", def.DHTNodes, "DHT nodes: up to 256 of a real third-party DHT implementation, the rest lighter simulated nodes of our own (10,000 is fine)")
	seeders := fs.Int("seeders", def.Seeders, "seeding clients (a real third-party BitTorrent library)")
	leechers := fs.Int("leechers", def.Leechers, "downloading clients")
	torrents := fs.Int("torrents", def.Torrents, "synthetic torrents (random bytes; v1, v2 and hybrid)")
	watched := fs.Int("watched", def.Watched, "torrents put on the lab's watch-list")
	seed := fs.Uint64("seed", def.Seed, "PRNG seed: the same seed gives the same files and hashes")
	move := fs.Int("move-peers", def.MovePeers, "seeders that move to a new address (the first from Paris to Toulouse with --story, else to the VPN range)")
	story := fs.Bool("story", true, "place the first seeders in Paris (75), Marseille (13), Ajaccio (2A) and Toulouse (31), each sharing a watched torrent, as the demo's services expect")
	offline := fs.Duration("move-offline", 150*time.Second, "how long a moving peer stays offline before it comes back at its new address (over 2m, or the analysis takes the move for a replay and links nothing)")
	return func() lab.Config {
		c := def
		c.Story, c.MoveOffline = *story, *offline
		c.DHTNodes, c.Seeders, c.Leechers, c.Torrents, c.Watched, c.Seed, c.MovePeers =
			*nodes, *seeders, *leechers, *torrents, *watched, *seed, *move
		if c.MovePeers > c.Seeders {
			c.MovePeers = c.Seeders
		}
		return c
	}
}

func labUpCommand() *command {
	return &command{
		name:    "up",
		summary: "Start a lab and write its manifest (ground truth), until interrupted.",
		usage:   "vigil lab up [--dht-nodes N] [--seeders N] [--torrents N] [--watched N] [--seed S] [--family 4|6|both] [--ipv6 loopback|ula] --manifest FILE",
		help: `
Starts DHT nodes, seeders and leechers on 127.0.0.0/8 by default (nothing
leaves the machine), with synthetic files of random bytes, a loopback tracker and a
loopback geo database that places lab addresses in French départements and
other countries and marks one range as a VPN provider. The manifest is JSON:

  {"family":"4","bootstrap":["127.0.0.1:P",...],"watchlist":"PATH","geo_db":"PATH",
   "peers":[{"addr":"IP:PORT","client":"...","infohashes":["hex",...]}], ...}

It is rewritten when a peer moves. Stop with Ctrl-C.

An NTP responder runs on 127.0.0.1 beside the lab (its address is printed)
for a sensor's --ntp; --ntp-shift sets its clock off the machine's by that
much, to see a sensor record an offset, or refuse one beyond its
--ntp-max-offset.

IPv6: --family 6 runs the whole lab on IPv6, --family both runs every DHT
node, the tracker and every peer on IPv4 and IPv6 at once (one DHT per
family, BEP 32; a peer's "addr6" beside its "addr", on the same port).
Where the IPv6 parts live is --ipv6:

  loopback  all on ::1, told apart by port. Runs anywhere, no root needed;
            but every part shares one address (a sensor's per-address
            budget then applies to the whole lab) and nothing is placed.
  ula       each part on its own address in fd00::/32, in the IPv6 range
            of its place (the geo database places it where it places the
            IPv4 address): 127.B.C.D is in fd00:0:B::/48 (B's digits),
            /64 number C*254+D (in hexadecimal), address ::1; 127.0.0.1 is fd00:0:0:1::1,
            127.0.1.1 (the first DHT node) fd00:0:0:ff::1, 127.1.0.1 (the
            first peer in Paris) fd00:0:1:1::1. Only inside a network
            namespace with loopback only, which the lab then prepares
            itself (lo up, the prefix local): run it as root under
            unshare -n, and the sensor in the same namespace (nsenter, as
            below), with --scope-allow for the prefix.

The simulated DHT nodes (over 256 --dht-nodes) are IPv4 only.

Examples:
  vigil lab up --manifest lab.json
  vigil lab up --dht-nodes 200 --seeders 20 --torrents 50 --watched 10 --manifest lab.json
  vigil sensor bittorrent --lab --bootstrap "$(jq -r '.bootstrap|join(",")' lab.json)"
  vigil lab up --ntp-shift 2s --manifest lab.json   # then: vigil sensor ... --ntp 127.0.0.1:PORT

  vigil lab up --family 6 --manifest lab6.json
  vigil sensor bittorrent --lab --listen ::1 --bootstrap "$(jq -r '.bootstrap|join(",")' lab6.json)"

  # as root:
  unshare -n vigil lab up --family both --ipv6 ula --manifest /tmp/lab.json &
  nsenter --net=/proc/$!/ns/net vigil sensor bittorrent --lab --listen fd00:0:0:1::1 \
      --scope-allow fd00::/32 --bootstrap "$(jq -r '[.bootstrap[]|select(startswith("["))]|join(",")' /tmp/lab.json)"
`,
		setup: func(fs *flag.FlagSet) runFunc {
			cfgOf := labFlags(fs)
			manifest := fs.String("manifest", "", "write the manifest to this `file` (required)")
			dir := fs.String("dir", "", "work `directory` for files and databases (default: a temporary one)")
			family := fs.String("family", "4", "address `family`: 4, 6 or both")
			ntpShift := fs.Duration("ntp-shift", 0, "how far the lab NTP responder's clock is off the machine's (e.g. 2s or -1h)")
			ipv6 := fs.String("ipv6", "loopback", "`where` the IPv6 parts live: loopback (all on ::1) or ula (each its own address in fd00::/32; as root under unshare -n only)")
			return func(ctx context.Context, a *app, args []string) error {
				if *manifest == "" {
					return usagef("--manifest is required")
				}
				cfg := cfgOf()
				cfg.Dir = *dir
				cfg.Logger = a.log
				var err error
				if cfg.Family, err = lab.ParseFamily(*family); err != nil {
					return usagef("--family: %v", err)
				}
				if cfg.IPv6, err = lab.ParseIPv6Net(*ipv6); err != nil {
					return usagef("--ipv6: %v", err)
				}
				if err := cfg.Validate(); err != nil {
					return usagef("%v", err)
				}
				if cfg.Family.Has6() && cfg.IPv6 == lab.IPv6ULA {
					// Only in a namespace with loopback only: PrepareULA
					// refuses anywhere else and touches nothing.
					if err := lab.PrepareULA(); err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "network namespace: this process's (nsenter --net=/proc/%d/ns/net ...)\n", os.Getpid())
				}
				l, err := lab.Start(ctx, cfg)
				if err != nil {
					return err
				}
				defer l.Close()
				if err := l.WriteManifest(*manifest); err != nil {
					return err
				}
				m := l.Manifest()
				fmt.Fprintf(a.stdout, "lab up: %d DHT nodes, %d peers, %d torrents (%d watched), family %s\n", len(m.DHTNodes), len(m.Peers), len(m.Torrents), cfg.Watched, m.Family)
				ntp, err := ntpserver.Start(ntpserver.Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Shift: *ntpShift})
				if err != nil {
					return err
				}
				defer ntp.Close()
				fmt.Fprintf(a.stdout, "  bootstrap: %v\n  watch-list: %s\n  geo database: %s\n  manifest: %s\n", m.Bootstrap, m.Watchlist, m.GeoDB, *manifest)
				fmt.Fprintf(a.stdout, "  NTP: %s (clock off by %v; for a sensor's --ntp)\n", ntp.Addr(), *ntpShift)
				fmt.Fprintln(a.stdout, "Ctrl-C stops it.")
				moves := make(chan struct{})
				go func() {
					// Rewrite the manifest once the planned moves are done.
					if l.WaitMoves(ctx) == nil {
						_ = l.WriteManifest(*manifest)
					}
					close(moves)
				}()
				<-ctx.Done()
				<-moves
				fmt.Fprintln(a.stdout, "lab stopped")
				return nil
			}
		},
	}
}

func labAccuracyCommand() *command {
	return &command{
		name:    "accuracy",
		summary: "Measure how often Vigil is right, against a lab of honest and hostile peers.",
		usage:   "vigil lab accuracy [--network bittorrent|ed2k] [--seed N] [--duration D] [--format text|json]",
		help: `
Starts a lab on 127.0.0.0/8 (nothing leaves the machine) with honest peers
of every possession level, real third-party BitTorrent seeders and a
leecher, and hostile peers whose truth the lab knows: liars about pieces
(spare bits, an extra byte, have past the end, have_all while holding
nothing or after a partial bitfield, another torrent's info-hash), a DHT
spoofer that forges get_peers replies naming innocent addresses, a peer
that replays a real peer's peer id, peers whose DHT port answers with
another's node id, and an address used by two devices a month apart.

It runs the BitTorrent sensor against it with its default settings and the
lab's timings (lookups every 10 s, probes re-run after a minute), stores
what it sees in a temporary SQLite store, runs the analysis, and compares
every observation, device link and ISP request row with the truth:

  per possession level and per method: observations, true, false, the
    false-positive rate (false / observations), and the recall (the share
    of the (device, torrent) pairs the lab made detectable that were
    recorded correctly at that level or above);
  per link rule: links made, correct (both ends one device), wrong;
  ISP rows: rows, right (a first-hand contact of the target's device at
    that IP, port and time), wrong, and why.

With --network ed2k it measures the eD2K and Kad sensor instead, on the
eD2K lab (internal/lab/ed2k): the lab's eD2K server and 24 Kad nodes, 3
watched files, honest clients of whole files and of one part, two that move
to a new address half-way keeping their user hash, hostile clients (part
maps with spare bits or twice the part count, answers naming another file,
a compressed-packet bomb, an oversized packet, a client that queues, one
that serves corrupt data), and a client presenting another's user hash at
the same time. The sensor (lab timings: searches every 10 s) runs through
the pipeline as 'vigil sensor ed2k' does, and the same tables are made,
with eD2K's methods (ed2k_server_sources, kad_sources, peer_probe) and
link rules (emule_user_hash).

docs/accuracy.md defines every term and records the published figures.
The same --seed gives the same files, peers and lies; what the sensor sees
in time still varies a little from run to run. Exit 0 when the measurement
ran, whatever the figures.

Examples:
  vigil lab accuracy
  vigil lab accuracy --seed 2 --duration 2m
  vigil lab accuracy --format json > accuracy.json
  vigil lab accuracy --network ed2k --seed 2 --duration 30s
`,
		setup: func(fs *flag.FlagSet) runFunc {
			def := accuracy.DefaultConfig()
			seed := fs.Uint64("seed", def.Seed, "PRNG seed of the lab and the hostile peers")
			duration := fs.Duration("duration", def.Duration, "how long the sensor runs (the lab's start comes first)")
			format := fs.String("format", "text", "output `format`: text or json")
			dir := fs.String("dir", "", "work `directory` (lab files, store); default a temporary one, removed")
			network := fs.String("network", accuracy.NetworkBitTorrent, "the `network` measured: bittorrent or ed2k")
			return func(ctx context.Context, a *app, args []string) error {
				if *format != "text" && *format != "json" {
					return usagef("--format %q: want text or json", *format)
				}
				if *network != accuracy.NetworkBitTorrent && *network != accuracy.NetworkED2K {
					return usagef("--network %q: want bittorrent or ed2k", *network)
				}
				if *duration < 10*time.Second {
					return usagef("--duration %v: want at least 10s (one lookup round)", *duration)
				}
				c := def
				c.Network, c.Seed, c.Duration, c.Dir, c.Version, c.Logger = *network, *seed, *duration, *dir, version, a.log
				c.ISPRows = func(ctx context.Context, sq *sqlite.Store, id string, now time.Time) ([]isp.Row, error) {
					req, err := buildISPRequest(ctx, sq, id, analysis.AllAgencies, "", isp.DefaultRetention(), now, nil)
					if err != nil {
						return nil, err
					}
					var rows []isp.Row
					for _, g := range req.Groups {
						rows = append(rows, g.Rows...)
					}
					return rows, nil
				}
				if *format == "text" {
					fmt.Fprintf(a.stderr, "measuring: lab start, then the sensor for %v...\n", c.Duration)
				}
				rep, err := accuracy.Run(ctx, c)
				if err != nil {
					return err
				}
				if *format == "json" {
					return accuracy.WriteJSON(a.stdout, rep)
				}
				return accuracy.WriteText(a.stdout, rep)
			}
		},
	}
}
