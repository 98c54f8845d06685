package lab

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2"
	g "github.com/anacrolix/generics"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/dialer"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	infohash_v2 "github.com/anacrolix/torrent/types/infohash-v2"
)

// Roles of lab peers.
const (
	RoleSeeder  = "seeder"
	RoleLeecher = "leecher"
)

// ClientName is what the manifest records as every lab peer's client: the
// third-party library the peers are built on, with its BEP 20 prefix.
const ClientName = "anacrolix/torrent v1.59.1 (-GT0003-)"

// peer is one lab BitTorrent client. Its identity (peer id, DHT node id)
// survives a move; its address does not.
type peer struct {
	index int
	// family and ipv6 are the lab's: the peer listens at addr, at its
	// IPv6 address (ipv6Of), or both, on one port.
	family   Family
	ipv6     IPv6Net
	role     string
	peerID   [20]byte
	nodeID   [20]byte
	torrents []*Torrent
	dataDir  string
	logger   *slog.Logger
	alogger  alog.Logger
	starting func() []netip.AddrPort
	// stored reports whether a lab DHT node of at's family stores at
	// under key (nil: announces are not checked).
	stored func(key [20]byte, at netip.AddrPort) bool

	mu sync.Mutex
	// addr is the peer's planned IPv4 address (127.P.x.y, which places
	// it) and port the port it listens on in every family; prev the
	// planned addresses it left. on and primary give the real ones.
	addr    netip.Addr
	port    uint16
	prev    []netip.AddrPort
	left    []time.Time // when it left each of prev (the manifest's Move.At is when it was up again)
	cl      *torrent.Client
	store   storage.ClientImplCloser
	running []*torrent.Torrent
}

// addrPort is the peer's planned address and port (see on).
func (p *peer) addrPort() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return netip.AddrPortFrom(p.addr, p.port)
}

// on returns where a peer planned at plan listens in one family (IPv6 if
// v6): plan itself, or its IPv6 address and the same port.
func (p *peer) on(plan netip.AddrPort, v6 bool) netip.AddrPort {
	if v6 {
		return netip.AddrPortFrom(ipv6Of(plan.Addr(), p.ipv6), plan.Port())
	}
	return plan
}

// primary is on in the lab's first family: IPv4 unless the lab is IPv6
// only. The manifest's Addr.
func (p *peer) primary(plan netip.AddrPort) netip.AddrPort {
	return p.on(plan, !p.family.Has4())
}

// localDialer dials from the peer's own address in the family of the
// address it dials, so that trackers, DHT nodes and peers see the lab
// address, never 127.0.0.1 or ::1 (unless that is the peer's).
func (p *peer) localDialer(addr6 netip.Addr) func(ctx context.Context, network, addr string) (net.Conn, error) {
	addr4 := p.addr
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, fmt.Errorf("lab: dialing %q: not an IP address and port (the lab never resolves a name)", addr)
		}
		local := addr4
		if is6(ap.Addr()) {
			local = addr6
		}
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: local.AsSlice()}}
		if strings.HasPrefix(network, "udp") {
			d.LocalAddr = &net.UDPAddr{IP: local.AsSlice()}
		}
		return d.DialContext(ctx, network, addr)
	}
}

// labHost reports whether ip may be a lab part: loopback (127.0.0.0/8,
// ::1) or LabULA.
func labHost(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || LabULA.Contains(ip)
}

// start runs the client on p.addr, adds its torrents (a seeder hashes its
// data first), and announces each torrent once to the lab DHT. It returns
// when every announce traversal has ended or ctx is done.
func (p *peer) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cc := torrent.NewDefaultClientConfig()
	addr6 := ipv6Of(p.addr, p.ipv6)
	host4, host6 := p.addr.String(), addr6.String()
	// Networks are "tcp4", "udp6", ...: each family on its own address,
	// on one port (the library takes the first socket's for the rest).
	cc.ListenHost = func(network string) string {
		if strings.HasSuffix(network, "6") {
			return host6
		}
		return host4
	}
	cc.ListenPort = 0
	cc.DisableIPv4 = !p.family.Has4()
	cc.DisableIPv6 = !p.family.Has6()
	cc.NoDefaultPortForwarding = true
	cc.UpnpID = ""
	cc.PeerID = string(p.peerID[:])
	cc.Seed = true
	cc.DataDir = p.dataDir
	cc.DisableWebtorrent = true
	cc.DisableWebseeds = true
	// Plain handshakes first: the sensor's probe speaks them, as most
	// clients still accept them.
	cc.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{}
	cc.PeriodicallyAnnounceTorrentsToDht = false
	cc.Logger = p.alogger
	cc.Slogger = p.logger
	cc.DhtStartingNodes = func(string) dht.StartingNodesGetter {
		return func() ([]dht.Addr, error) {
			var out []dht.Addr
			for _, a := range p.starting() {
				out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(a)))
			}
			return out, nil
		}
	}
	cc.ConfigureAnacrolixDhtServer = func(sc *dht.ServerConfig) {
		// The client's own node receives announces too: give it a store.
		dhtServerConfig(sc, p.nodeID, p.starting, p.alogger)
	}
	// Every connection the client opens leaves from its own address, so
	// that trackers, DHT nodes and PEX see the lab address, not 127.0.0.1.
	cc.TrackerDialContext = p.localDialer(addr6)
	cc.HTTPDialContext = p.localDialer(addr6)
	cc.LookupTrackerIp = func(u *url.URL) ([]net.IP, error) {
		// The lab never resolves a name: tracker URLs hold lab IPs.
		ip, err := netip.ParseAddr(u.Hostname())
		if err != nil || !labHost(ip) {
			return nil, fmt.Errorf("lab: tracker host %q is not a lab address (loopback or %s)", u.Hostname(), LabULA)
		}
		return []net.IP{ip.AsSlice()}, nil
	}
	// Loopback dials succeed or fail at once. Short timeouts also bound
	// how long go-libutp's dials outlive Client.Close: it does not cancel
	// them, they end when their context times out.
	cc.NominalDialTimeout = 2 * time.Second
	cc.MinDialTimeout = time.Second
	cc.DialForPeerConns = false // dialers are added below, bound to p.addr
	p.store = storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir:   p.dataDir,
		FilePathMaker:   filePath,
		PieceCompletion: storage.NewMapPieceCompletion(),
		UsePartFiles:    g.Some(false),
		Logger:          p.logger,
	})
	cc.DefaultStorage = p.store
	cl, err := torrent.NewClient(cc)
	if err != nil {
		p.store.Close()
		return fmt.Errorf("lab peer %d on %s: %w", p.index, p.addr, err)
	}
	p.cl = cl
	p.port = uint16(cl.LocalPort())
	if p.family.Has4() {
		cl.AddDialer(dialer.WithNetwork{Network: "tcp4", Dialer: &net.Dialer{
			LocalAddr: &net.TCPAddr{IP: p.addr.AsSlice()}, Timeout: 5 * time.Second,
		}})
	}
	if p.family.Has6() {
		cl.AddDialer(dialer.WithNetwork{Network: "tcp6", Dialer: &net.Dialer{
			LocalAddr: &net.TCPAddr{IP: addr6.AsSlice()}, Timeout: 5 * time.Second,
		}})
	}
	for _, l := range cl.Listeners() {
		if d, ok := l.(torrent.Dialer); ok && l.Addr().Network() != "tcp" {
			cl.AddDialer(d) // uTP dials from its own (bound) socket
		}
	}
	p.running = p.running[:0]
	for _, t := range p.torrents {
		mi, err := metainfo.Load(bytes.NewReader(t.built.MetaInfo))
		if err != nil {
			return fmt.Errorf("lab peer %d torrent %s: %w", p.index, t.Name, err)
		}
		spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
		if err != nil {
			return fmt.Errorf("lab peer %d torrent %s: %w", p.index, t.Name, err)
		}
		if t.Tracker6 != "" && t.Tracker6 != t.Tracker {
			// A lab of both families: announce over IPv6 too, so that the
			// tracker knows the peer's IPv6 address.
			spec.Trackers = append(spec.Trackers, []string{t.Tracker6})
		}
		if spec.InfoHash.IsZero() && spec.InfoHashV2.Ok {
			// anacrolix/torrent v1.59.1 files a v2-only torrent added with
			// its v2 hash under the zero v1 hash: incoming handshakes for
			// the short v2 hash find nothing and Client.Close panics. Given
			// the short v2 hash as "the" hash, it finds out from the info
			// bytes that the torrent is v2 and files it correctly.
			spec.InfoHash = *spec.InfoHashV2.Value.ToShort()
			spec.InfoHashV2 = g.None[infohash_v2.T]()
		}
		tt, _, err := cl.AddTorrentSpec(spec)
		if err != nil {
			return fmt.Errorf("lab peer %d torrent %s: %w", p.index, t.Name, err)
		}
		select {
		case <-tt.GotInfo():
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.role == RoleSeeder {
			if err := tt.VerifyDataContext(ctx); err != nil {
				return fmt.Errorf("lab peer %d torrent %s: %w", p.index, t.Name, err)
			}
			// VerifyDataContext returns when every piece is hashed; the
			// completion flag follows once the last piece is marked.
			select {
			case <-tt.Complete().On():
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return fmt.Errorf("lab peer %d torrent %s: seeder data incomplete after hashing", p.index, t.Name)
			}
		} else {
			tt.DownloadAll()
		}
		p.running = append(p.running, tt)
	}
	return p.announceLocked(ctx)
}

// announceRounds bounds how many times a torrent is announced on one DHT
// server when no lab node stores the announce.
const announceRounds = 3

// announceLocked announces every torrent (both info-hashes of a hybrid)
// on every DHT server of the client and waits for the traversals. On a
// slow machine (the race detector, a loaded CI) a traversal can end with
// no lab node storing the announce, its queries having timed out: then
// the torrent is announced again on that server, up to announceRounds
// times in all, so that the manifest's seeders can be found, which is
// what Start promises. 20 s bound all rounds.
func (p *peer) announceLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	type job struct {
		i  int // index in p.running and p.torrents
		ds torrent.DhtServer
	}
	var todo []job
	for i := range p.running {
		for _, ds := range p.cl.DhtServers() {
			todo = append(todo, job{i, ds})
		}
	}
	for round := 1; len(todo) > 0; round++ {
		var dones []<-chan struct{}
		var stops []func()
		stopAll := func() {
			for _, s := range stops {
				s()
			}
		}
		for _, j := range todo {
			done, stop, err := p.running[j.i].AnnounceToDht(j.ds)
			if err != nil {
				stopAll()
				return fmt.Errorf("lab peer %d announcing %s: %w", p.index, p.running[j.i].Name(), err)
			}
			dones = append(dones, done)
			stops = append(stops, stop)
		}
		for _, d := range dones {
			select {
			case <-d:
			case <-ctx.Done():
				stopAll()
				if errors.Is(ctx.Err(), context.DeadlineExceeded) {
					p.logger.Warn("lab DHT announce did not finish in time", "peer", p.index, "round", round)
					return nil
				}
				return ctx.Err()
			}
		}
		stopAll()
		if p.stored == nil {
			return nil
		}
		var left []job
		for _, j := range todo {
			if !p.storedOn(j.ds, p.torrents[j.i]) {
				left = append(left, j)
			}
		}
		todo = left
		if len(todo) > 0 && round == announceRounds {
			p.logger.Warn("lab DHT announce stored on no lab node", "peer", p.index, "announces", len(todo), "rounds", round)
			return nil
		}
	}
	return nil
}

// storedOn reports whether some lab DHT node stores the peer, at the
// address of ds, under every DHT key of t.
func (p *peer) storedOn(ds torrent.DhtServer, t *Torrent) bool {
	at, err := netip.ParseAddrPort(ds.Addr().String())
	if err != nil {
		return true // not an address the lab knows: nothing to check
	}
	at = netip.AddrPortFrom(at.Addr().Unmap(), at.Port())
	for _, h := range t.SwarmHashes() {
		var key [20]byte
		if b, err := hex.DecodeString(h); err != nil || len(b) != 20 {
			return true
		} else {
			copy(key[:], b)
		}
		if !p.stored(key, at) {
			return false
		}
	}
	return true
}

// stop closes the client and its storage. The data stays on disk.
func (p *peer) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *peer) stopLocked() {
	if p.cl == nil {
		return
	}
	p.cl.Close()
	<-p.cl.Closed()
	p.store.Close()
	p.cl, p.store, p.running = nil, nil, nil
}

// move stops the client and starts it again on to, with the same peer id
// and DHT node id.
func (p *peer) move(ctx context.Context, to netip.Addr, offline time.Duration) (from netip.AddrPort, err error) {
	p.mu.Lock()
	from = netip.AddrPortFrom(p.addr, p.port)
	p.stopLocked()
	p.prev = append(p.prev, from)
	p.left = append(p.left, time.Now())
	p.addr, p.port = to, 0
	p.mu.Unlock()
	if offline > 0 {
		select {
		case <-ctx.Done():
			return from, ctx.Err()
		case <-time.After(offline):
		}
	}
	return from, p.start(ctx)
}

// complete reports whether every torrent of the peer is complete.
func (p *peer) complete() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl == nil || len(p.running) < len(p.torrents) {
		return false
	}
	for _, tt := range p.running {
		if !tt.Complete().Bool() {
			return false
		}
	}
	return true
}

// filePath places a torrent's files as the lab wrote them: base/name for
// a single file, base/name/path for a multi-file torrent. anacrolix's
// default puts a v2 single file at base/name/name (the file tree names it).
func filePath(o storage.FilePathMakerOpts) string {
	name := o.Info.BestName()
	path := o.File.BestPath()
	if len(path) == 0 || (len(o.Info.Files) == 0 && len(path) == 1 && path[0] == name) {
		return name
	}
	return filepath.Join(append([]string{name}, path...)...)
}

func removeAllQuiet(dir string) { _ = os.RemoveAll(dir) }
