package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
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
	index    int
	role     string
	peerID   [20]byte
	nodeID   [20]byte
	torrents []*Torrent
	dataDir  string
	logger   *slog.Logger
	alogger  alog.Logger
	starting func() []netip.AddrPort

	mu      sync.Mutex
	addr    netip.Addr
	port    uint16
	prev    []netip.AddrPort
	left    []time.Time // when it left each of prev (the manifest's Move.At is when it was up again)
	cl      *torrent.Client
	store   storage.ClientImplCloser
	running []*torrent.Torrent
}

func (p *peer) addrPort() netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	return netip.AddrPortFrom(p.addr, p.port)
}

// start runs the client on p.addr, adds its torrents (a seeder hashes its
// data first), and announces each torrent once to the lab DHT. It returns
// when every announce traversal has ended or ctx is done.
func (p *peer) start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cc := torrent.NewDefaultClientConfig()
	host := p.addr.String()
	cc.ListenHost = func(string) string { return host }
	cc.ListenPort = 0
	cc.DisableIPv6 = true
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
	local := &net.Dialer{LocalAddr: &net.TCPAddr{IP: p.addr.AsSlice()}, Timeout: 5 * time.Second}
	cc.TrackerDialContext = local.DialContext
	cc.HTTPDialContext = local.DialContext
	cc.LookupTrackerIp = func(u *url.URL) ([]net.IP, error) {
		// The lab never resolves a name: tracker URLs hold loopback IPs.
		ip := net.ParseIP(u.Hostname())
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("lab: tracker host %q is not a loopback address", u.Hostname())
		}
		return []net.IP{ip}, nil
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
	cl.AddDialer(dialer.WithNetwork{Network: "tcp", Dialer: &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: p.addr.AsSlice()}, Timeout: 5 * time.Second,
	}})
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

// announceLocked announces every torrent (both info-hashes of a hybrid)
// on every DHT server of the client and waits for the traversals.
func (p *peer) announceLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var dones []<-chan struct{}
	var stops []func()
	for _, tt := range p.running {
		for _, ds := range p.cl.DhtServers() {
			done, stop, err := tt.AnnounceToDht(ds)
			if err != nil {
				return fmt.Errorf("lab peer %d announcing %s: %w", p.index, tt.Name(), err)
			}
			dones = append(dones, done)
			stops = append(stops, stop)
		}
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	for _, d := range dones {
		select {
		case <-d:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				p.logger.Warn("lab DHT announce did not finish in time", "peer", p.index)
				return nil
			}
			return ctx.Err()
		}
	}
	return nil
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
