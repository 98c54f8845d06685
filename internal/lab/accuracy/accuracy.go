// Package accuracy measures how often Vigil is right: it starts the lab
// with hostile devices (liars about pieces, DHT spoofers, a peer-id
// replayer, node-id forgers, an address reassigned to another device),
// runs the BitTorrent sensor against it into a temporary SQLite store,
// runs the analysis, and compares every observation, link and ISP request
// row with the lab's ground truth. docs/accuracy.md defines every figure.
//
// It must never overstate Vigil's accuracy: an observation the truth
// cannot back is counted false, never dropped. Everything stays on
// 127.0.0.0/8 (the lab's rule, and the sensor's scope guard).
package accuracy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// Config is one measurement's settings.
type Config struct {
	// Network is the network measured: NetworkBitTorrent (the default) or
	// NetworkED2K (RunED2K).
	Network string
	// Seed seeds the lab (files, addresses, identities) and the hostile
	// devices: the same seed gives the same devices and truth; what the
	// sensor sees in time still varies with scheduling.
	Seed uint64
	// Duration is how long the sensor runs (the lab's start comes
	// before). Default 60 s.
	Duration time.Duration
	// Shift is how much later than they happened the observations of the
	// reassigned address in the second half are stamped: its two users
	// are then Shift apart, as with a dynamic address reassigned by an
	// ISP. Default 30 days.
	Shift time.Duration
	// StaleWindow: see Inputs.StaleWindow. Default 2 h (the lab's DHT
	// nodes and tracker keep entries for the whole run: the bound is the
	// harness's).
	StaleWindow time.Duration
	// Dir is the work directory (lab files, store); "" a temporary one,
	// removed at the end.
	Dir string
	// Version is recorded in the observations as the sensor's.
	Version string
	// Logger receives the lab's and the sensor's logs; nil discards.
	Logger *slog.Logger
	// ISPRows builds the ISP request rows of a target as 'vigil
	// isp-request' does; nil uses DefaultISPRows (BitTorrent) or
	// TimelineISPRows (eD2K).
	ISPRows func(ctx context.Context, sq *sqlite.Store, targetID string, now time.Time) ([]isp.Row, error)
	// ED2KBase is the first address of the eD2K lab's blocks
	// (labed2k.NetConfig.Base); default 127.5.0.0, which puts its
	// clients in the lab geo database's French places.
	ED2KBase netip.Addr
}

// DefaultConfig is the measurement docs/accuracy.md reports.
func DefaultConfig() Config {
	return Config{Network: NetworkBitTorrent, Seed: 1, Duration: 60 * time.Second, Shift: 30 * 24 * time.Hour, StaleWindow: 2 * time.Hour, Version: "dev",
		ED2KBase: netip.MustParseAddr("127.5.0.0")}
}

// LabConfig is the lab the measurement runs: 16 DHT nodes, 4 seeders and
// a leecher, 6 torrents all watched (so that every client counts), files
// of 256 KiB to 1 MiB (several pieces each, so that partial and complete
// differ), a tracker, one seeder that moves a quarter of the way through.
func LabConfig(c Config) lab.Config {
	lc := lab.DefaultConfig()
	lc.DHTNodes, lc.Seeders, lc.Leechers, lc.Torrents, lc.Watched = 16, 4, 1, 6, 6
	lc.Seed = c.Seed
	lc.FileSizes = lab.SizeRange{Min: 256 << 10, Max: 1 << 20}
	lc.MovePeers, lc.MoveAfter = 1, c.Duration/4
	lc.BootstrapNodes = 4
	lc.Logger = c.Logger
	return lc
}

// SensorConfig is the sensor as measured: DefaultConfig with the lab's
// timings (bittorrent.LabConfig: lookups every 10 s, 1 s query timeout,
// 5 s probe timeout, re-probe after 1 min, no wire budget), on 127.0.0.1.
func SensorConfig(c Config, bootstrap []netip.AddrPort) bittorrent.Config {
	sc := bittorrent.LabConfig()
	sc.ID, sc.Version, sc.Bootstrap = "accuracy", c.Version, bootstrap
	return sc
}

// Run measures c.Network. It returns the report, or an error if the
// lab, the sensor or the store failed.
func Run(ctx context.Context, c Config) (_ *Report, err error) {
	switch c.Network {
	case NetworkED2K:
		return RunED2K(ctx, c)
	case "", NetworkBitTorrent:
	default:
		return nil, fmt.Errorf("accuracy: network %q: want %s or %s", c.Network, NetworkBitTorrent, NetworkED2K)
	}
	def := DefaultConfig()
	if c.Duration <= 0 {
		c.Duration = def.Duration
	}
	if c.Shift < 0 {
		return nil, fmt.Errorf("accuracy: shift %v is negative", c.Shift)
	}
	if c.StaleWindow <= 0 {
		c.StaleWindow = def.StaleWindow
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir := c.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "vigil-accuracy-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	lc := LabConfig(c)
	lc.Dir = filepath.Join(dir, "lab")
	l, err := lab.Start(ctx, lc)
	if err != nil {
		return nil, fmt.Errorf("accuracy: lab: %w", err)
	}
	defer l.Close()
	sc := SensorConfig(c, l.Bootstrap())
	h, err := lab.StartHostile(ctx, l, lab.HostileConfig{Seed: c.Seed, SensorAddr: sc.Listen, Predict: 8, SpoofEvery: 2})
	if err != nil {
		return nil, fmt.Errorf("accuracy: hostile devices: %w", err)
	}
	defer h.Close()
	m := l.Manifest()

	sq, err := sqlite.Open(ctx, filepath.Join(dir, "accuracy.db"), sqlite.DefaultConfig())
	if err != nil {
		return nil, err
	}
	defer sq.Close()
	watched, err := importWatchlist(ctx, sq, m)
	if err != nil {
		return nil, err
	}
	gc := geo.DefaultConfig()
	gc.PlaceFiles, gc.ASNFiles, gc.ProviderFile = []string{m.GeoDB}, []string{m.ASNDB}, m.Providers
	loc, err := geo.Open(gc)
	if err != nil {
		return nil, fmt.Errorf("accuracy: lab geo database: %w", err)
	}
	defer loc.Close()
	en := ingest.NewEnricher(loc, nil)

	guard, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		return nil, err
	}
	b := inproc.New(4096)
	sh := &shifter{next: b, shift: c.Shift, ip: h.ReassignedAddr().Addr()}
	s, err := bittorrent.New(sc, guard, sh, log)
	if err != nil {
		return nil, err
	}
	if err := s.Watch(watched...); err != nil {
		return nil, err
	}
	icfg := ingest.DefaultConfig()
	icfg.Enrich, icfg.Log = en.Enrich, log
	// The lab's clock runs to the end of the month it simulates: the
	// reassigned address's later observations, stamped Shift later, are
	// not ahead of it, and ingest stores them (it refuses a time more
	// than ingest.DefaultTimeAhead ahead of its clock as one that cannot
	// be true).
	icfg.Now = func() time.Time { return time.Now().Add(c.Shift) }
	var ingErr error
	ingDone := make(chan struct{})
	go func() {
		defer close(ingDone)
		_, ingErr = ingest.Run(context.WithoutCancel(ctx), b, sq, icfg)
	}()

	runCtx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	var reErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-runCtx.Done():
			return
		case <-time.After(c.Duration / 2):
		}
		at := sh.start()
		reErr = h.Reassign(runCtx, at)
	}()
	runErr := s.Run(runCtx)
	wg.Wait()
	b.Close()
	<-ingDone
	if runErr != nil && !errors.Is(runErr, context.DeadlineExceeded) && !errors.Is(runErr, context.Canceled) {
		return nil, fmt.Errorf("accuracy: sensor: %w", runErr)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if ingErr != nil {
		return nil, fmt.Errorf("accuracy: ingest: %w", ingErr)
	}
	if reErr != nil {
		return nil, reErr
	}
	truth := h.Truth()
	shiftTruth(&truth, sh.ip, sh.at(), c.Shift)

	e, err := analysis.New(ctx, sq, analysis.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("accuracy: analysis: %w", err)
	}
	if err := e.CatchUp(ctx); err != nil {
		return nil, fmt.Errorf("accuracy: analysis: %w", err)
	}
	if err := e.Flush(ctx); err != nil {
		return nil, fmt.Errorf("accuracy: analysis: %w", err)
	}
	in := Inputs{Network: NetworkBitTorrent, Truth: truth, Sensor: []netip.Addr{sc.Listen}, StaleWindow: c.StaleWindow, Rows: map[string][]isp.Row{}}
	rows := c.ISPRows
	if rows == nil {
		rows = DefaultISPRows
	}
	if err := gather(ctx, sq, rows, time.Now().Add(c.Shift+time.Hour), &in); err != nil {
		return nil, err
	}
	rep := Evaluate(in)
	rep.Seed, rep.Duration, rep.Shift = c.Seed, c.Duration, c.Shift
	return rep, nil
}

// importWatchlist puts the lab's watch-list in the store and returns what
// the sensor watches. Each torrent that names the lab's tracker is
// watched with it, as a magnet link's tr= would give it (watch-lists
// carry no trackers: 'vigil sensor bittorrent' asks the --tracker ones
// about every watched info-hash instead).
func importWatchlist(ctx context.Context, sq *sqlite.Store, m lab.Manifest) ([]bittorrent.Watched, error) {
	data, err := os.ReadFile(m.Watchlist)
	if err != nil {
		return nil, err
	}
	res, err := watchlist.Parse(bytes.NewReader(data), watchlist.ParseOptions{File: m.Watchlist})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	if _, err := sq.ImportList(ctx, store.ListImport{Name: "lab-watchlist", Source: "vigil lab", Format: res.Format,
		SHA256: hex.EncodeToString(sum[:]), By: "vigil lab accuracy", Entries: res.Entries}); err != nil {
		return nil, err
	}
	trackers := map[string]string{}
	for _, t := range m.Torrents {
		for _, hx := range []string{t.InfoHash, t.InfoHashV2} {
			if hx != "" && t.Tracker != "" {
				trackers[hx] = t.Tracker
			}
		}
	}
	var out []bittorrent.Watched
	seen := map[hashkind.Hash]bool{}
	for _, e := range res.Entries {
		k := e.Hash.Kind()
		if (k != hashkind.BTIH && k != hashkind.BTIH2) || seen[e.Hash] {
			continue
		}
		seen[e.Hash] = true
		w := bittorrent.Watched{Hash: e.Hash, Reason: "list", Matched: []observe.Match{{List: "lab-watchlist", Category: e.Category}}}
		if tr := trackers[e.Hash.Hex()]; tr != "" {
			w.Trackers = []string{tr}
		}
		out = append(out, w)
	}
	return out, nil
}

// DefaultISPRows builds a target's ISP request rows as 'vigil
// isp-request' did at commit 8846f19: from every observation of the
// target's timeline. The command passes its own builder, so that what is
// measured is what it prints.
func DefaultISPRows(ctx context.Context, sq *sqlite.Store, id string, now time.Time) ([]isp.Row, error) {
	d, err := sq.TargetWithTimeline(ctx, id, analysis.AllAgencies, 1<<20)
	if err != nil {
		return nil, err
	}
	s := make([]isp.Sighting, 0, len(d.Timeline))
	for _, t := range d.Timeline {
		ap, err := netip.ParseAddrPort(t.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("target %s: endpoint %q: %w", id, t.Endpoint, err)
		}
		o := observe.Observation{ID: t.ID, Network: t.Network, Method: t.Method, Time: t.Time,
			ClockKnown: t.ClockKnown, ClockOffset: t.ClockOffset, ClockUncertainty: t.ClockUncertainty, ClockSource: t.ClockSource,
			Endpoint:   observe.Endpoint{IP: ap.Addr(), Port: ap.Port(), Transport: t.Transport},
			Possession: observe.Possession{Level: t.Level}, Place: t.Place}
		sg := isp.FromObservation(&o)
		sg.Item = t.Kind + ":" + t.Hash
		s = append(s, sg)
	}
	req := isp.Build(isp.Target{ID: d.ID, Jurisdiction: d.Jurisdiction, Agency: d.Jurisdiction, Score: d.Score}, s, now, isp.DefaultRetention())
	var out []isp.Row
	for _, g := range req.Groups {
		out = append(out, g.Rows...)
	}
	return out, nil
}

// shifter stamps the observations of the reassigned address made after
// the switch Shift later, so that its two users are Shift apart in the
// store, and passes every observation on.
type shifter struct {
	next  bus.Publisher
	shift time.Duration
	ip    netip.Addr
	mu    sync.Mutex
	from  time.Time // zero until the switch
}

func (s *shifter) start() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from = time.Now()
	return s.from
}

func (s *shifter) at() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.from
}

func (s *shifter) Publish(ctx context.Context, o observe.Observation) error {
	if from := s.at(); !from.IsZero() && o.Endpoint.IP.Unmap() == s.ip && !o.Time.Before(from) {
		o.Time = o.Time.Add(s.shift)
	}
	return s.next.Publish(ctx, o)
}

// shiftTruth moves the truth's times at ip after the switch by shift, as
// the observations were.
func shiftTruth(t *lab.Truth, ip netip.Addr, from time.Time, shift time.Duration) {
	if from.IsZero() || shift == 0 {
		return
	}
	mv := func(x time.Time) time.Time {
		if x.After(from) {
			return x.Add(shift)
		}
		return x
	}
	for i := range t.Devices {
		for k := range t.Devices[i].Stints {
			s := &t.Devices[i].Stints[k]
			if s.Addr.Addr() != ip {
				continue
			}
			s.From, s.To = mv(s.From), mv(s.To)
		}
	}
}
