package lab

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"github.com/oschwald/maxminddb-golang/v2"
	"golang.org/x/time/rate"

	"github.com/vigil-oss/vigil/internal/lab/netns"
)

func TestIPv6TwinIsInTheSamePlace(t *testing.T) {
	for _, c := range []struct{ v4, v6 string }{
		{"127.0.0.1", "fd00:0:0:1::1"},
		{"127.0.0.2", "fd00:0:0:2::1"},
		{"127.0.1.1", "fd00:0:0:ff::1"},
		{"127.1.0.1", "fd00:0:1:1::1"},
		{"127.11.0.5", "fd00:0:11:5::1"},
		{"127.20.0.2", "fd00:0:20:2::1"},
		{"127.30.1.7", "fd00:0:30:105::1"},
		{"127.255.255.254", "fd00:0:255:fe00::1"},
	} {
		v4, v6 := netip.MustParseAddr(c.v4), netip.MustParseAddr(c.v6)
		if got, ok := IPv6Twin(v4); !ok || got != v6 {
			t.Errorf("IPv6Twin(%s) = %s, %v; want %s", v4, got, ok, v6)
		}
	}
	for _, s := range []string{"10.0.0.1", "::1", "fd00::1", "127.1.0.0", "127.1.0.255"} {
		if got, ok := IPv6Twin(netip.MustParseAddr(s)); ok {
			t.Errorf("IPv6Twin(%s) = %s, want none", s, got)
		}
	}
	// Every host of every place has a twin of its own, in LabULA, never in
	// fd00::/64, placed where the IPv4 address is.
	seen := map[netip.Addr]netip.Addr{}
	for _, pl := range append([]Place{Infra}, Places...) {
		pfx := pl.Prefix
		if pl.Prefix.Bits() != 16 {
			pfx = netip.MustParsePrefix("127.0.0.0/16")
		}
		for _, n := range []int{0, 1, 253, 254, 1000, 255*254 + 253} {
			a4, err := hostIn(pfx, n)
			if err != nil {
				t.Fatal(err)
			}
			a6, ok := IPv6Twin(a4)
			if !ok || !LabULA.Contains(a6) || netip.MustParsePrefix("fd00::/64").Contains(a6) {
				t.Fatalf("IPv6Twin(%s) = %s, %v: want an address of %s outside fd00::/64", a4, a6, ok, LabULA)
			}
			if o, dup := seen[a6]; dup {
				t.Fatalf("%s and %s have the same twin %s", o, a4, a6)
			}
			seen[a6] = a4
			p4, _ := PlaceOf(a4)
			p6, _ := PlaceOf(a6)
			if p4.Prefix != p6.Prefix || p4.City != p6.City {
				t.Fatalf("%s is placed in %s, its twin %s in %s", a4, p4.City, a6, p6.City)
			}
		}
	}
}

func TestConfigValidateRejectsBadFamilies(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"unknown-family":       func(c *Config) { c.Family = "5" },
		"unknown-ipv6-net":     func(c *Config) { c.Family, c.IPv6 = Family6, "global" },
		"simulated-nodes-on-6": func(c *Config) { c.Family, c.SimDHTNodes = FamilyBoth, 10 },
		"too-many-nodes-on-6":  func(c *Config) { c.Family, c.DHTNodes = Family6, MaxRealDHTNodes+1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			mod(&cfg)
			if err := cfg.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
		})
	}
}

// TestLabOnIPv6 starts small labs on IPv6 only and on both families, on
// ::1 and (in a namespace of its own) on LabULA, and checks each family of
// each against the manifest with independent clients: a plain anacrolix
// DHT node of that family asking get_peers, raw BitTorrent handshakes
// over that family, and announces to the lab tracker's URL of that
// family (BEP 7 peers6 for IPv6).
func TestLabOnIPv6(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	for _, c := range []struct {
		name   string
		family Family
		net    IPv6Net
	}{
		{"6-on-loopback", Family6, IPv6Loopback},
		{"both-on-loopback", FamilyBoth, IPv6Loopback},
		{"both-on-ula-in-a-namespace", FamilyBoth, IPv6ULA},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.net == IPv6ULA {
				if !netns.Isolated(t) {
					return
				}
				if err := PrepareULA(); err != nil {
					t.Fatal(err)
				}
			}
			checkFamilies(t, c.family, c.net)
		})
	}
}

func TestStartRefusesULAOutsideAnIsolatedNamespace(t *testing.T) {
	if loopbackOnly() == nil {
		t.Skip("this process is in a namespace with loopback only")
	}
	cfg := smallConfig(t)
	cfg.Family, cfg.IPv6 = Family6, IPv6ULA
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Start(ctx, cfg)
	if err == nil {
		l.Close()
		t.Fatal("Start on LabULA outside an isolated namespace succeeded")
	}
	if !errors.Is(err, ErrNoULA) {
		t.Fatalf("Start = %v, want ErrNoULA", err)
	}
	if err := PrepareULA(); !errors.Is(err, ErrNoULA) {
		t.Fatalf("PrepareULA in a namespace with a way out = %v, want ErrNoULA (and nothing touched)", err)
	}
}

func checkFamilies(t *testing.T, family Family, v6net IPv6Net) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := smallConfig(t)
	cfg.DHTNodes, cfg.Seeders, cfg.Leechers, cfg.Torrents, cfg.Watched = 12, 4, 0, 6, 3
	cfg.Family, cfg.IPv6 = family, v6net
	l, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.WaitMoves(ctx); err != nil {
		t.Fatal(err)
	}
	m := l.Manifest()
	if m.Family != family {
		t.Fatalf("manifest family %q, want %q", m.Family, family)
	}
	if len(m.Moves) != 1 {
		t.Fatalf("%d moves, want 1", len(m.Moves))
	}

	// Where each family's parts must be.
	host6 := func(a netip.Addr) bool {
		if v6net == IPv6ULA {
			return LabULA.Contains(a)
		}
		return a == netip.IPv6Loopback()
	}
	type fam struct {
		v6    bool
		local netip.Addr                // the test clients' address
		addr  func(ManifestPeer) string // a peer's address in this family
		boot  []netip.AddrPort
	}
	var fams []fam
	if family.Has4() {
		fams = append(fams, fam{false, netip.MustParseAddr("127.0.0.1"), func(p ManifestPeer) string { return p.Addr }, l.BootstrapOf(false)})
	}
	if family.Has6() {
		local := ipv6Of(netip.MustParseAddr("127.0.0.1"), v6net)
		addr := func(p ManifestPeer) string { return p.Addr }
		if family == FamilyBoth {
			addr = func(p ManifestPeer) string { return p.Addr6 }
		}
		fams = append(fams, fam{true, local, addr, l.BootstrapOf(true)})
	}
	city, err := maxminddb.Open(m.GeoDB)
	if err != nil {
		t.Fatal(err)
	}
	defer city.Close()
	cityOf := func(p ManifestPeer) string {
		pl, _ := PlaceOf(netip.MustParseAddrPort(p.Addr).Addr())
		return pl.City
	}
	for _, f := range fams {
		t.Run(fmt.Sprintf("ipv6=%v", f.v6), func(t *testing.T) {
			if len(f.boot) == 0 {
				t.Fatal("no bootstrap node of this family")
			}
			for _, b := range f.boot {
				if is6(b.Addr()) != f.v6 || (f.v6 && !host6(b.Addr())) {
					t.Fatalf("bootstrap node %s in the wrong family or place", b)
				}
			}
			for _, p := range m.Peers {
				ap, err := netip.ParseAddrPort(f.addr(p))
				if err != nil {
					t.Fatalf("peer %s: address %q: %v", p.PeerID, f.addr(p), err)
				}
				if is6(ap.Addr()) != f.v6 || (f.v6 && !host6(ap.Addr())) {
					t.Fatalf("peer address %s in the wrong family or place", ap)
				}
				if f.v6 && family == FamilyBoth {
					a4 := netip.MustParseAddrPort(p.Addr)
					if ap.Port() != a4.Port() {
						t.Fatalf("peer %s listens on port %d over IPv4 and %d over IPv6, want one port", p.PeerID, a4.Port(), ap.Port())
					}
					if v6net == IPv6ULA {
						if tw, _ := IPv6Twin(a4.Addr()); tw != ap.Addr() {
							t.Fatalf("peer at %s and %s: want its IPv6 twin %s", a4, ap, tw)
						}
					}
				}
				if f.v6 && v6net == IPv6ULA {
					// The lab's geo database places the IPv6 address where
					// the manifest says the peer is.
					var rec struct {
						Country string `maxminddb:"country_code"`
						City    string `maxminddb:"city"`
					}
					if err := city.Lookup(ap.Addr()).Decode(&rec); err != nil || rec.Country == "" {
						t.Fatalf("peer %s not placed by the lab geo database: %+v %v", ap, rec, err)
					}
					if rec.Country != p.Country || rec.City != cityOf(p) {
						t.Fatalf("peer %s placed in %s %s, manifest says %s", ap, rec.Country, rec.City, p.Country)
					}
				}
			}

			client := newFamilyDHTClient(t, f.local, f.boot)
			// The lab's nodes name nodes of this family: bootstrapping
			// from the bootstrap nodes finds the others (a node asked for
			// n4 only over IPv6 would name none).
			if _, err := client.BootstrapContext(ctx); err != nil {
				t.Fatal(err)
			}
			if n := client.NumNodes(); n <= len(f.boot) {
				t.Fatalf("a DHT client of this family knows %d nodes after bootstrapping from %d of the lab's %d: the lab's nodes name none",
					n, len(f.boot), cfg.DHTNodes)
			}
			for _, tor := range m.Torrents {
				if !tor.Watched {
					continue
				}
				var want []string
				for _, p := range m.Peers {
					if p.Role == RoleSeeder && slices.Contains(p.Infohashes, firstHash(tor)) {
						want = append(want, f.addr(p))
					}
				}
				for _, ih := range tor.SwarmHashes() {
					got := getPeers(ctx, t, client, ih)
					for _, a := range want {
						if !slices.Contains(got, a) {
							t.Fatalf("torrent %s hash %s: get_peers over this family found %v, missing seeder %s", tor.Name, ih, got, a)
						}
					}
				}
				ih, _ := hex.DecodeString(tor.SwarmHashes()[0])
				for _, a := range want {
					pid, err := handshakeFrom(ctx, f.local, a, ih)
					if err != nil {
						t.Fatalf("handshake with seeder %s of %s: %v", a, tor.Name, err)
					}
					var p ManifestPeer
					for _, q := range m.Peers {
						if f.addr(q) == a {
							p = q
						}
					}
					if got := hex.EncodeToString(pid); got != p.PeerID {
						t.Fatalf("seeder %s answers with peer id %s, manifest says %s", a, got, p.PeerID)
					}
				}
			}

			// The tracker over this family lists the seeders of a tracked
			// torrent at their address in this family (peers6 for IPv6).
			trackerURL := m.Tracker
			if f.v6 && family == FamilyBoth {
				trackerURL = m.Tracker6
			}
			u, err := url.Parse(trackerURL)
			if err != nil || u.Hostname() == "" {
				t.Fatalf("tracker URL %q for this family", trackerURL)
			}
			if h := netip.MustParseAddr(u.Hostname()); is6(h) != f.v6 {
				t.Fatalf("tracker URL %s in the wrong family", trackerURL)
			}
			checked := 0
			for _, tor := range m.Torrents {
				if tor.Tracker == "" {
					continue
				}
				var want []string
				for _, p := range m.Peers {
					if p.Role == RoleSeeder && slices.Contains(p.Infohashes, firstHash(tor)) {
						want = append(want, f.addr(p))
					}
				}
				ih, _ := hex.DecodeString(tor.SwarmHashes()[0])
				var got []string
				deadline := time.Now().Add(15 * time.Second)
				for {
					if got, err = trackerPeers(ctx, f.local, trackerURL, ih, f.v6); err != nil {
						t.Fatal(err)
					}
					missing := ""
					for _, a := range want {
						if !slices.Contains(got, a) {
							missing = a
						}
					}
					if missing == "" {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("tracker %s for %s lists %v, missing seeder %s", trackerURL, tor.Name, got, missing)
					}
					time.Sleep(200 * time.Millisecond)
				}
				checked++
			}
			if checked == 0 {
				t.Fatal("no tracked torrent")
			}
		})
	}

	if family == FamilyBoth {
		mv := m.Moves[0]
		from4, to4 := netip.MustParseAddrPort(mv.From), netip.MustParseAddrPort(mv.To)
		from6, to6 := netip.MustParseAddrPort(mv.From6), netip.MustParseAddrPort(mv.To6)
		if from6.Port() != from4.Port() || to6.Port() != to4.Port() || !host6(to6.Addr()) || !host6(from6.Addr()) {
			t.Fatalf("move %+v: the IPv6 side does not follow the IPv4 one", mv)
		}
		for _, p := range m.Peers {
			if p.PeerID == mv.PeerID && (p.Addr6 != mv.To6 || !slices.Equal(p.PreviousAddrs6, []string{mv.From6})) {
				t.Fatalf("moved peer in the manifest: addr6 %s previous %v; move %+v", p.Addr6, p.PreviousAddrs6, mv)
			}
		}
	}
}

// newFamilyDHTClient is an anacrolix DHT node on local (port 0) that
// bootstraps from boot, asking for nodes of local's family.
func newFamilyDHTClient(t *testing.T, local netip.Addr, boot []netip.AddrPort) *dht.Server {
	t.Helper()
	network, want := "udp4", krpc.WantNodes
	if is6(local) {
		network, want = "udp6", krpc.WantNodes6
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := dht.NewDefaultServerConfig()
	cfg.Conn = conn
	cfg.NoSecurity = true
	cfg.SendLimiter = rate.NewLimiter(rate.Inf, 0)
	cfg.DefaultWant = []krpc.Want{want}
	cfg.StartingNodes = func() ([]dht.Addr, error) {
		var out []dht.Addr
		for _, b := range boot {
			out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(b)))
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

// handshakeFrom is handshake from a local address of either family.
func handshakeFrom(ctx context.Context, local netip.Addr, addr string, ih []byte) ([]byte, error) {
	network := "tcp4"
	if is6(local) {
		network = "tcp6"
	}
	d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: local.AsSlice()}}
	c, err := d.DialContext(ctx, network, addr)
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
	if string(reply[:20]) != "\x13BitTorrent protocol" || string(reply[28:48]) != string(ih) {
		return nil, errors.New("not a BitTorrent handshake for the info-hash")
	}
	return reply[48:68], nil
}

// trackerPeers announces (port 1, then stopped) to trackerURL from local
// and returns the compact peers of the family asked for: "peers" for
// IPv4, "peers6" for IPv6.
func trackerPeers(ctx context.Context, local netip.Addr, trackerURL string, ih []byte, v6 bool) ([]string, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local.AsSlice()}, Timeout: 3 * time.Second}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext, DisableKeepAlives: true}}
	get := func(event string) ([]byte, error) {
		q := url.Values{"info_hash": {string(ih)}, "peer_id": {"-XX0000-labtest00000"}, "port": {"1"}, "compact": {"1"}, "event": {event}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, trackerURL+"?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	}
	b, err := get("started")
	if err != nil {
		return nil, fmt.Errorf("announce to %s: %w", trackerURL, err)
	}
	if _, err := get("stopped"); err != nil {
		return nil, fmt.Errorf("stopped to %s: %w", trackerURL, err)
	}
	var resp struct {
		Failure string `bencode:"failure reason"`
		Peers   string `bencode:"peers"`
		Peers6  string `bencode:"peers6"`
	}
	if err := bencode.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("tracker %s answered %q: %w", trackerURL, b, err)
	}
	if resp.Failure != "" {
		return nil, fmt.Errorf("tracker %s: %s", trackerURL, resp.Failure)
	}
	raw, size := resp.Peers, 6
	if v6 {
		raw, size = resp.Peers6, 18
	}
	if len(raw)%size != 0 {
		return nil, fmt.Errorf("tracker %s: %d bytes of peers, not a multiple of %d", trackerURL, len(raw), size)
	}
	var out []string
	for i := 0; i < len(raw); i += size {
		ip, _ := netip.AddrFromSlice([]byte(raw[i : i+size-2]))
		port := uint16(raw[i+size-2])<<8 | uint16(raw[i+size-1])
		out = append(out, netip.AddrPortFrom(ip, port).String())
	}
	if strings.Contains(trackerURL, "[") != v6 {
		return nil, fmt.Errorf("tracker URL %s is not of the family asked", trackerURL)
	}
	return out, nil
}
