package bittorrent

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	akrpc "github.com/anacrolix/dht/v2/krpc"
	g "github.com/anacrolix/generics"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab/torrentmake"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
)

// startSeeder runs a real anacrolix/torrent client on 127.0.0.1 seeding a
// synthetic v1 torrent, with TCP switched off if tcp is false (it then
// takes peers over uTP only, through go-libutp). It returns the client's
// listen address and the torrent's info-hash.
func startSeeder(t *testing.T, tcp bool) (netip.AddrPort, hashkind.Hash) {
	t.Helper()
	sd := startSeederOn(t, seederOpts{host: netip.MustParseAddr("127.0.0.1"), tcp: tcp})
	return sd.addr, sd.hash
}

// seederOpts says how startSeederOn runs its client.
type seederOpts struct {
	host netip.Addr // the one address it listens on, of one family
	tcp  bool       // listen over TCP too (uTP always)
	// dht, if set, turns the client's DHT on, joined through these lab
	// nodes (of host's family); the client then announces its torrent
	// to the DHT once, and startSeederOn returns when that ends.
	dht []netip.AddrPort
	// data is the torrent's content (nil: 200 KiB of random bytes); the
	// same data makes the same torrent.
	data []byte
}

// seeder is a running anacrolix/torrent client seeding one torrent.
type seeder struct {
	addr netip.AddrPort
	hash hashkind.Hash
	data []byte
	cl   *torrent.Client
	tt   *torrent.Torrent
}

// startSeederOn runs a real anacrolix/torrent client on one address of
// one family, seeding a synthetic v1 torrent of random bytes.
func startSeederOn(t *testing.T, o seederOpts) seeder {
	t.Helper()
	data := o.data
	if data == nil {
		data = make([]byte, 200<<10)
		_, _ = rand.Read(data)
	}
	const name = "synthetic-utp.bin"
	tor, err := torrentmake.Build(torrentmake.Options{Name: name, PieceLength: 32 << 10, Version: torrentmake.V1},
		[]torrentmake.File{{Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	libLog := slog.New(slog.DiscardHandler)
	alogger := alog.NewLogger("seeder")
	alogger.SetHandlers(alog.SlogHandlerAsHandler{SlogHandler: libLog.Handler()})
	cc := torrent.NewDefaultClientConfig()
	host := o.host.String()
	cc.ListenHost = func(string) string { return host }
	cc.ListenPort = 0
	cc.NoDHT = len(o.dht) == 0
	cc.DisableTCP = !o.tcp
	cc.DisableIPv6 = o.host.Is4()
	cc.DisableIPv4 = o.host.Is6()
	cc.NoDefaultPortForwarding = true
	cc.UpnpID = ""
	cc.Seed = true
	cc.DataDir = dir
	cc.DisableWebtorrent = true
	cc.DisableWebseeds = true
	cc.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{}
	cc.Logger = alogger
	cc.Slogger = libLog
	cc.PeriodicallyAnnounceTorrentsToDht = false
	if len(o.dht) > 0 {
		cc.DhtStartingNodes = func(string) dht.StartingNodesGetter {
			return func() ([]dht.Addr, error) {
				var out []dht.Addr
				for _, a := range o.dht {
					out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(a)))
				}
				return out, nil
			}
		}
		cc.ConfigureAnacrolixDhtServer = func(sc *dht.ServerConfig) {
			// As every lab node (NOTES.md): its own send limiter, lab
			// starting nodes only, a peer store that works.
			sc.NoSecurity = true
			sc.SendLimiter = rate.NewLimiter(rate.Inf, 0)
			sc.PeerStore = &sparseStore{m: map[metainfo.Hash][]akrpc.NodeAddr{}}
			sc.QueryResendDelay = func() time.Duration { return time.Second }
			sc.Logger = alogger
		}
	}
	st := storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir:   dir,
		PieceCompletion: storage.NewMapPieceCompletion(),
		UsePartFiles:    g.Some(false),
		Logger:          libLog,
	})
	cc.DefaultStorage = st
	cl, err := torrent.NewClient(cc)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cl.Close()
		<-cl.Closed()
		st.Close()
	})
	mi, err := metainfo.Load(bytes.NewReader(tor.MetaInfo))
	if err != nil {
		t.Fatal(err)
	}
	tt, err := cl.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tt.VerifyDataContext(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tt.Complete().On():
	case <-ctx.Done():
		t.Fatal("seeder's data not complete after hashing")
	}
	h, err := hashkind.New(hashkind.BTIH, tor.InfoHashV1[:])
	if err != nil {
		t.Fatal(err)
	}
	sd := seeder{addr: netip.AddrPortFrom(o.host, uint16(cl.LocalPort())), hash: h, data: data, cl: cl, tt: tt}
	if len(o.dht) > 0 {
		sd.announce(t, ctx)
	}
	return sd
}

// announce announces the seeder's torrent on each of its DHT servers and
// waits for the traversals to end.
func (sd seeder) announce(t *testing.T, ctx context.Context) {
	t.Helper()
	servers := sd.cl.DhtServers()
	if len(servers) == 0 {
		t.Fatal("the seeder runs no DHT server")
	}
	for _, ds := range servers {
		done, stop, err := sd.tt.AnnounceToDht(ds)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-ctx.Done():
			stop()
			t.Fatalf("the seeder's DHT announce did not end: %v", ctx.Err())
		}
		stop()
	}
}

// TestProbeChoosesTransport probes real anacrolix/torrent seeders: one that
// takes TCP and uTP, one that takes uTP only. A peer is tried over TCP
// first unless PEX said it takes uTP; a peer that refuses TCP is reached
// over uTP. The observation names the transport that carried it, and a
// uTP probe learns as much as a TCP one (complete, client decoded).
func TestProbeChoosesTransport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts BitTorrent clients; skipped in -short mode")
	}
	both, bothHash := startSeeder(t, true)
	utpOnly, utpHash := startSeeder(t, false)
	cases := []struct {
		name  string
		peer  netip.AddrPort
		h     hashkind.Hash
		first string // the job's transport hint
		want  string
	}{
		{"tcp first when the peer takes both", both, bothHash, transportTCP, transportTCP},
		{"utp first when PEX flagged utp", both, bothHash, transportUTP, transportUTP},
		{"utp when tcp is refused", utpOnly, utpHash, transportTCP, transportUTP},
		{"utp first and only", utpOnly, utpHash, transportUTP, transportUTP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := LabConfig()
			cfg.ProbeTimeout = 3 * time.Second                                       // loopback: the probe waits for the peer to go quiet
			cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")} // not run: probes only
			guard, err := scope.New(scope.DefaultConfig(), nil)
			if err != nil {
				t.Fatal(err)
			}
			pub := newCollector()
			s, err := New(cfg, guard, pub, nil)
			if err != nil {
				t.Fatal(err)
			}
			w := Watched{Hash: tc.h}
			if err := s.Watch(w); err != nil {
				t.Fatal(err)
			}
			s.probe(context.Background(), probeJob{peer: tc.peer, w: w, via: "test", transport: tc.first})
			obs := pub.byMethod(observe.MethodPeerProbe)
			if len(obs) != 1 {
				t.Fatalf("%d probe observations, want 1 (probes %d, failures %d)", len(obs), s.probes.Load(), s.probeFailures.Load())
			}
			o := obs[0]
			if got := o.Endpoint.Transport; got != tc.want {
				t.Errorf("transport %q, want %q", got, tc.want)
			}
			if o.Endpoint.IP != tc.peer.Addr() || o.Endpoint.Port != tc.peer.Port() {
				t.Errorf("endpoint %v:%d, want %v", o.Endpoint.IP, o.Endpoint.Port, tc.peer)
			}
			if o.Possession.Level != observe.Complete || o.Possession.PiecesTotal != 7 || o.Possession.PiecesHave != 7 {
				t.Errorf("possession %v %d/%d, want complete 7/7", o.Possession.Level, o.Possession.PiecesHave, o.Possession.PiecesTotal)
			}
			if o.Client.Name != "anacrolix/torrent" {
				t.Errorf("client %q, want anacrolix/torrent", o.Client.Name)
			}
			if len(o.Transcript.Bytes) == 0 || o.Transcript.Bytes[0] != '>' {
				t.Errorf("transcript does not start with the sensor's handshake")
			}
		})
	}
}
