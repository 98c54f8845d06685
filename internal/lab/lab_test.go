package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/oschwald/maxminddb-golang/v2"
	"golang.org/x/time/rate"

	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

func smallConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.DHTNodes = 20
	cfg.Seeders = 5
	cfg.Leechers = 2
	cfg.Torrents = 10
	cfg.Watched = 4
	cfg.Seed = 42
	cfg.Dir = t.TempDir()
	cfg.FileSizes = SizeRange{Min: 4 << 10, Max: 256 << 10}
	cfg.MovePeers = 1
	cfg.MoveAfter = 0
	return cfg
}

// TestLab starts one small lab and checks it against its own manifest
// with independent clients: a plain anacrolix DHT node, raw BitTorrent
// handshakes, the MaxMind reader, the watch-list parser.
func TestLab(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	cfg := smallConfig(t)
	l, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.WaitMoves(ctx); err != nil {
		t.Fatal(err)
	}
	m := l.Manifest()

	t.Run("ManifestJSONHasTheAgreedKeys", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "manifest.json")
		if err := l.WriteManifest(path); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"bootstrap", "watchlist", "geo_db", "peers"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("manifest has no %q key", k)
			}
		}
		var peers []map[string]json.RawMessage
		if err := json.Unmarshal(raw["peers"], &peers); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"addr", "client", "infohashes"} {
			if _, ok := peers[0][k]; !ok {
				t.Fatalf("manifest peer has no %q key", k)
			}
		}
		if got, want := len(m.Bootstrap), cfg.BootstrapNodes; got != want {
			t.Fatalf("bootstrap nodes = %d, want %d", got, want)
		}
		if got, want := len(m.Peers), cfg.Seeders+cfg.Leechers; got != want {
			t.Fatalf("peers = %d, want %d", got, want)
		}
	})

	t.Run("GetPeersFindsSeedersOfWatchedTorrents", func(t *testing.T) {
		client := newTestDHTClient(t, m.Bootstrap)
		for _, tor := range m.Torrents {
			if !tor.Watched {
				continue
			}
			for _, ih := range tor.SwarmHashes() {
				want := seederAddrs(m, tor)
				got := getPeers(ctx, t, client, ih)
				for _, a := range want {
					if !slices.Contains(got, a) {
						t.Fatalf("torrent %s (%s) hash %s: get_peers found %v, missing seeder %s", tor.Name, tor.Version, ih, got, a)
					}
				}
			}
		}
	})

	t.Run("LeechersDownloadVerifiedFiles", func(t *testing.T) {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		if err := l.WaitLeechers(wctx); err != nil {
			t.Fatal(err)
		}
		byHash := map[string]Torrent{}
		for _, tor := range m.Torrents {
			byHash[tor.InfoHash+tor.InfoHashV2] = tor
		}
		n := 0
		for _, p := range m.Peers {
			if p.Role != RoleLeecher {
				continue
			}
			for _, tor := range m.Torrents {
				if !slices.Contains(p.Infohashes, firstHash(tor)) {
					continue
				}
				for _, f := range tor.Files {
					path := filepath.Join(p.DataDir, tor.Name)
					if len(tor.Files) > 1 || strings.Contains(tor.Name, "set") {
						path = filepath.Join(p.DataDir, tor.Name, filepath.FromSlash(f.Path))
					}
					b, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					sum := sha256.Sum256(b)
					if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
						t.Fatalf("leecher %s file %s sha256 %s, want %s", p.Addr, path, got, f.SHA256)
					}
					n++
				}
			}
		}
		if n == 0 {
			t.Fatal("no leecher file checked")
		}
	})

	t.Run("MovedPeerAnswersAtNewAddressWithSamePeerID", func(t *testing.T) {
		if got, want := len(m.Moves), cfg.MovePeers; got != want {
			t.Fatalf("moves = %d, want %d", got, want)
		}
		mv := m.Moves[0]
		var p ManifestPeer
		for _, q := range m.Peers {
			if q.PeerID == mv.PeerID {
				p = q
			}
		}
		if got, want := p.Addr, mv.To; got != want {
			t.Fatalf("moved peer addr = %s, want %s", got, want)
		}
		if got, want := p.PreviousAddrs, []string{mv.From}; !slices.Equal(got, want) {
			t.Fatalf("previous addrs = %v, want %v", got, want)
		}
		if !p.VPN {
			t.Fatalf("first move should land on the VPN range; peer is at %s", p.Addr)
		}
		ih, _ := hex.DecodeString(p.Infohashes[0])
		if len(ih) == 32 {
			ih = ih[:20]
		}
		pid, err := handshake(ctx, mv.To, ih)
		if err != nil {
			t.Fatalf("handshake with %s: %v", mv.To, err)
		}
		if got := hex.EncodeToString(pid); got != mv.PeerID {
			t.Fatalf("peer id at new address = %s, want %s", got, mv.PeerID)
		}
		if _, err := handshake(ctx, mv.From, ih); err == nil {
			t.Fatalf("old address %s still answers", mv.From)
		}
		// The DHT knows the new address.
		client := newTestDHTClient(t, m.Bootstrap)
		got := getPeers(ctx, t, client, hex.EncodeToString(ih))
		if !slices.Contains(got, mv.To) {
			t.Fatalf("get_peers for %x found %v, not the new address %s", ih, got, mv.To)
		}
	})

	t.Run("GeoDatabasePlacesEveryPeer", func(t *testing.T) {
		city, err := maxminddb.Open(m.GeoDB)
		if err != nil {
			t.Fatal(err)
		}
		defer city.Close()
		asn, err := maxminddb.Open(m.ASNDB)
		if err != nil {
			t.Fatal(err)
		}
		defer asn.Close()
		table, err := geo.LoadASNCSV(m.ASNCSV)
		if err != nil {
			t.Fatal(err)
		}
		addrs := []string{"127.0.0.1:1"}
		addrs = append(addrs, m.Bootstrap...)
		for _, p := range m.Peers {
			addrs = append(addrs, p.Addr)
			addrs = append(addrs, p.PreviousAddrs...)
		}
		sawVPN, sawFR := false, false
		for _, s := range addrs {
			ip := netip.MustParseAddrPort(s).Addr()
			var rec struct {
				Country string  `maxminddb:"country_code"`
				State2  string  `maxminddb:"state2"`
				City    string  `maxminddb:"city"`
				Lat     float64 `maxminddb:"latitude"`
			}
			res := city.Lookup(ip)
			if !res.Found() {
				t.Fatalf("%s not in the city database", ip)
			}
			if err := res.Decode(&rec); err != nil {
				t.Fatal(err)
			}
			want, _ := PlaceOf(ip)
			if rec.Country != want.Country || rec.State2 != want.Departement || rec.City != want.City {
				t.Fatalf("%s placed in %+v, want %s %s %s", ip, rec, want.Country, want.Departement, want.City)
			}
			var a struct {
				ASN uint32 `maxminddb:"autonomous_system_number"`
				VPN bool   `maxminddb:"is_anonymous_vpn"`
			}
			if err := asn.Lookup(ip).Decode(&a); err != nil {
				t.Fatal(err)
			}
			if a.ASN != want.ASN || a.VPN != want.VPN {
				t.Fatalf("%s ASN record %+v, want AS%d vpn=%v", ip, a, want.ASN, want.VPN)
			}
			if n, _, ok := table.LookupASN(ip); !ok || n != want.ASN {
				t.Fatalf("%s ASN CSV gives AS%d (found %v), want AS%d", ip, n, ok, want.ASN)
			}
			sawVPN = sawVPN || a.VPN
			sawFR = sawFR || rec.Country == "FR"
		}
		if !sawVPN || !sawFR {
			t.Fatalf("lab addresses cover VPN=%v France=%v, want both", sawVPN, sawFR)
		}
	})

	t.Run("ProvidersListMarksTheLabVPN", func(t *testing.T) {
		f, err := os.Open(m.Providers)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p, err := geo.ParseProviders(f, m.Providers, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := p.Kind(ASNLabVPN), geo.VPN; got != want {
			t.Fatalf("AS%d kind = %v, want %v", ASNLabVPN, got, want)
		}
	})

	t.Run("WatchlistParsesToTheWatchedHashes", func(t *testing.T) {
		f, err := os.Open(m.Watchlist)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		res, err := watchlist.Parse(f, watchlist.ParseOptions{File: m.Watchlist})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, tor := range m.Torrents {
			if tor.Watched {
				if tor.InfoHash != "" {
					want = append(want, "btih:"+tor.InfoHash)
				}
				if tor.InfoHashV2 != "" {
					want = append(want, "btih2:"+tor.InfoHashV2)
				}
			}
		}
		var got []string
		for _, e := range res.Entries {
			got = append(got, e.Hash.Kind().String()+":"+hex.EncodeToString(e.Hash.Bytes()))
			if e.Category == "" {
				t.Fatalf("entry %v has no category", e.Hash)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("watch-list entries %v, want %v", got, want)
		}
		kinds := map[string]bool{}
		for _, tor := range m.Torrents {
			if tor.Watched {
				kinds[tor.Version] = true
			}
		}
		if len(kinds) != 3 {
			t.Fatalf("watched torrents cover layouts %v, want v1, v2 and hybrid", kinds)
		}
	})

	t.Run("TrackerKnowsTheSeeders", func(t *testing.T) {
		for _, tor := range m.Torrents {
			if tor.Tracker == "" {
				continue
			}
			var ih [20]byte
			b, _ := hex.DecodeString(tor.SwarmHashes()[0])
			copy(ih[:], b)
			var got []string
			deadline := time.Now().Add(10 * time.Second)
			for {
				got = got[:0]
				for _, a := range l.tracker.peers(ih) {
					got = append(got, a.String())
				}
				missing := ""
				for _, a := range seederAddrs(m, tor) {
					if !slices.Contains(got, a) {
						missing = a
					}
				}
				if missing == "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("tracker swarm of %s = %v, missing seeder %s", tor.Name, got, missing)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	})
}

func firstHash(t Torrent) string {
	if t.InfoHash != "" {
		return t.InfoHash
	}
	return t.InfoHashV2
}

// seederAddrs are the current addresses of the seeders of tor.
func seederAddrs(m Manifest, tor Torrent) []string {
	var out []string
	for _, p := range m.Peers {
		if p.Role == RoleSeeder && slices.Contains(p.Infohashes, firstHash(tor)) {
			out = append(out, p.Addr)
		}
	}
	return out
}

func newTestDHTClient(t *testing.T, bootstrap []string) *dht.Server {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := dht.NewDefaultServerConfig()
	cfg.Conn = conn
	cfg.SendLimiter = rate.NewLimiter(rate.Inf, 0)
	cfg.DefaultWant = []krpc.Want{krpc.WantNodes}
	cfg.StartingNodes = func() ([]dht.Addr, error) {
		var out []dht.Addr
		for _, b := range bootstrap {
			out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(netip.MustParseAddrPort(b))))
		}
		return out, nil
	}
	s, err := dht.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// getPeers runs an iterative get_peers (no announce) and returns every
// peer address the traversal returned.
func getPeers(ctx context.Context, t *testing.T, s *dht.Server, ihHex string) []string {
	t.Helper()
	var ih [20]byte
	b, err := hex.DecodeString(ihHex)
	if err != nil || len(b) != 20 {
		t.Fatalf("info-hash %q", ihHex)
	}
	copy(ih[:], b)
	a, err := s.AnnounceTraversal(ih)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var out []string
	for {
		select {
		case pv, ok := <-a.Peers:
			if !ok {
				return out
			}
			for _, p := range pv.Peers {
				s := p.String()
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		case <-ctx.Done():
			t.Fatalf("get_peers %s: %v", ihHex, ctx.Err())
		}
	}
}

// handshake does a plain BitTorrent handshake and returns the remote
// peer id.
func handshake(ctx context.Context, addr string, ih []byte) ([]byte, error) {
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	c, err := d.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...)
	msg = append(msg, ih...)
	msg = append(msg, []byte("-XX0000-labtest00000")...)
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	reply := make([]byte, 68)
	if _, err := io.ReadFull(c, reply); err != nil {
		return nil, err
	}
	if string(reply[:20]) != "\x13BitTorrent protocol" {
		return nil, errors.New("not a BitTorrent handshake")
	}
	if string(reply[28:48]) != string(ih) {
		return nil, errors.New("handshake for another info-hash")
	}
	return reply[48:68], nil
}

var portRE = regexp.MustCompile(`(127\.\d+\.\d+\.\d+):\d+`)

// stableManifest is a manifest as JSON with ports, times and paths
// removed: what must not change between two labs of the same seed.
func stableManifest(t *testing.T, l *Lab) string {
	m := l.Manifest()
	for i := range m.Moves {
		m.Moves[i].At = time.Time{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s := portRE.ReplaceAllString(string(b), "$1")
	return strings.ReplaceAll(s, l.Dir(), "DIR")
}

func TestManifestIsDeterministicForASeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := func(seed uint64) (string, map[string]string) {
		cfg := DefaultConfig()
		cfg.DHTNodes, cfg.Seeders, cfg.Leechers, cfg.Torrents, cfg.Watched = 4, 2, 0, 6, 3
		cfg.MovePeers = 0
		cfg.Seed = seed
		cfg.Dir = t.TempDir()
		cfg.FileSizes = SizeRange{Min: 1 << 10, Max: 64 << 10}
		l, err := Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		files := map[string]string{}
		for _, name := range []string{"watchlist.csv", "geo/lab-city.mmdb", "geo/lab-asn.mmdb", "geo/lab-asn-ipv4.csv", "geo/lab-asn-ipv6.csv"} {
			b, err := os.ReadFile(filepath.Join(cfg.Dir, name))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			files[name] = hex.EncodeToString(sum[:])
		}
		return stableManifest(t, l), files
	}
	a, fa := start(7)
	b, fb := start(7)
	c, _ := start(8)
	if a != b {
		t.Fatalf("two labs of seed 7 differ:\n%s\n%s", a, b)
	}
	for k, v := range fa {
		if fb[k] != v {
			t.Fatalf("%s differs between two labs of seed 7", k)
		}
	}
	if a == c {
		t.Fatal("labs of seeds 7 and 8 have the same manifest")
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := runtime.NumGoroutine()
	cfg := DefaultConfig()
	cfg.DHTNodes, cfg.Seeders, cfg.Leechers, cfg.Torrents, cfg.Watched = 6, 2, 1, 3, 1
	cfg.MovePeers, cfg.MoveAfter = 1, 0
	cfg.FileSizes = SizeRange{Min: 1 << 10, Max: 64 << 10}
	l, err := Start(ctx, cfg) // Dir empty: a temporary directory
	if err != nil {
		t.Fatal(err)
	}
	dir := l.Dir()
	if err := l.WaitMoves(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary dir %s left behind (stat: %v)", dir, err)
	}
	// Some library goroutines end just after Close returns (sockets
	// closed asynchronously): allow them a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConfigValidateRejects(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
	}{
		{"one-dht-node", func(c *Config) { c.DHTNodes = 1 }},
		{"no-seeders", func(c *Config) { c.Seeders = 0 }},
		{"more-watched-than-torrents", func(c *Config) { c.Watched = c.Torrents + 1 }},
		{"inverted-sizes", func(c *Config) { c.FileSizes = SizeRange{Min: 10, Max: 5} }},
		{"more-movers-than-seeders", func(c *Config) { c.MovePeers = c.Seeders + 1 }},
		{"negative-delay", func(c *Config) { c.MoveAfter = -time.Second }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mod(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
		})
	}
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
}
