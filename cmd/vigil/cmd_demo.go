package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/enrich"
	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
	"github.com/vigil-oss/vigil/internal/web"
)

func demoCommand() *command {
	return &command{
		name:    "demo",
		summary: "Start the loopback lab, watch it with the BitTorrent sensor, and serve the results.",
		usage:   "vigil demo [--addr 127.0.0.1:8080] [--dir DIR] [--duration D] [lab flags]",
		help: `
The whole job, on loopback, with synthetic files of random bytes:

  1. starts the lab: DHT nodes, seeders and leechers of real third-party
     BitTorrent libraries, a tracker, a geo database (see 'vigil lab up');
  2. imports the lab's watch-list (some of its torrents) into the store;
  3. runs the BitTorrent sensor into the store (see 'vigil sensor bittorrent');
  4. serves the web interface, the API, /metrics and /healthz;
  5. prints what runs where, and a summary by method and possession level
     every few seconds. Ctrl-C stops everything cleanly.

The store is DIR/vigil.db unless --db is given. Nothing is sent beyond
127.0.0.0/8.

Examples:
  vigil demo
  vigil demo --addr 127.0.0.1:9090 --dht-nodes 100 --seeders 12 --duration 2m
`,
		setup: func(fs *flag.FlagSet) runFunc {
			cfgOf := labFlags(fs)
			addr := fs.String("addr", "127.0.0.1:8080", "`address` the web interface listens on")
			dir := fs.String("dir", "vigil-demo", "work `directory`: lab files, manifest, store")
			duration := fs.Duration("duration", 0, "stop after this long (default: until interrupted)")
			identities := fs.Int("identities", 4, "sensor DHT identities")
			every := fs.Duration("report-every", 10*time.Second, "how often to print the summary")
			return func(ctx context.Context, a *app, args []string) error {
				if *duration > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, *duration)
					defer cancel()
				}
				if err := os.MkdirAll(*dir, 0o755); err != nil {
					return err
				}
				if a.dbPath == "vigil.db" && a.getenv("VIGIL_DB") == "" {
					a.dbPath = filepath.Join(*dir, "vigil.db")
				}
				ln, err := net.Listen("tcp", *addr)
				if err != nil {
					return fmt.Errorf("web interface: listen %s: %w (use --addr)", *addr, err)
				}
				defer ln.Close()

				lcfg := cfgOf()
				lcfg.Dir = filepath.Join(*dir, "lab")
				lcfg.Logger = a.log
				if err := lcfg.Validate(); err != nil {
					return usagef("%v", err)
				}
				fmt.Fprintf(a.stdout, "starting the lab (%d DHT nodes, %d seeders, %d torrents)...\n", lcfg.DHTNodes, lcfg.Seeders, lcfg.Torrents)
				l, err := lab.Start(ctx, lcfg)
				if err != nil {
					return fmt.Errorf("lab: %w", err)
				}
				defer l.Close()
				manifest := filepath.Join(*dir, "manifest.json")
				if err := l.WriteManifest(manifest); err != nil {
					return err
				}
				m := l.Manifest()

				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				rep, n, err := importListFile(ctx, st, "lab-watchlist", m.Watchlist)
				if err != nil {
					return err
				}

				// Observations are placed with the lab's geo database and
				// routed with the shipped French rules, as a deployment would
				// with its own files.
				geoCfg := geo.DefaultConfig()
				geoCfg.PlaceFiles, geoCfg.ASNFiles, geoCfg.ProviderFile = []string{m.GeoDB}, []string{m.ASNDB}, m.Providers
				loc, err := geo.Open(geoCfg)
				if err != nil {
					return fmt.Errorf("lab geo database: %w", err)
				}
				defer loc.Close()
				rules, err := loadRules("example:france")
				if err != nil {
					return err
				}
				en := enrich.New(loc, rules)
				sq, err := a.sqliteStore(ctx)
				if err != nil {
					return err
				}
				engine, err := startAnalysis(ctx, a.log, sq, nil)
				if err != nil {
					return err
				}
				defer engine.Flush(context.WithoutCancel(ctx))
				var analysisFailures atomic.Int64

				scfg := bittorrent.LabConfig()
				scfg.ID, scfg.Version, scfg.Identities = "demo-bittorrent", version, *identities
				scfg.Bootstrap = l.Bootstrap()

				fmt.Fprintf(a.stdout, `
Vigil demo — everything on loopback, synthetic files only
  lab:        %d DHT nodes, %d peers, %d torrents; manifest %s
  watch-list: %s, %d entries as list "lab-watchlist" (version %d)
  store:      %s (SQLite)
  sensor:     %d DHT identities on %s, bootstrap %v
  web:        http://%s/   (API /api/v1/observations, /metrics, /healthz)
Ctrl-C stops it.

`, len(m.DHTNodes), len(m.Peers), len(m.Torrents), manifest, m.Watchlist, n, rep.Version,
					a.dbPath, scfg.Identities, scfg.Listen, scfg.Bootstrap, ln.Addr())

				// The sensor runs into the store; the web server reads it.
				var sensor atomic.Pointer[bittorrent.Sensor]
				health := map[string]web.HealthFunc{"sensor demo-bittorrent": func() (bool, string) {
					if s := sensor.Load(); s != nil {
						return s.Health()
					}
					return false, "starting"
				}}
				reg := newRegistry()
				webErr := make(chan error, 1)
				go func() {
					webErr <- serveListener(ctx, a, ln, web.Config{Store: st, Registry: reg, Log: a.log, Health: health})
				}()
				counts, err := runBitTorrentSensorWith(ctx, a, st, scfg, scope.DefaultConfig(), sensorRun{
					started:  func(s *bittorrent.Sensor) { sensor.Store(s) },
					report:   *every,
					trackers: labTrackers(m),
					registry: reg,
					enrich:   en,
					onCommit: analysisFeed(context.WithoutCancel(ctx), a.log, engine, &analysisFailures),
				})
				fmt.Fprintln(a.stdout, "\nfinal summary:")
				printSensorSummary(a.stdout, counts)
				if err := engine.Flush(context.WithoutCancel(ctx)); err == nil {
					if top, total, err := sq.Targets(context.WithoutCancel(ctx), analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 5}); err == nil {
						fmt.Fprintln(a.stdout, "\ntop targets ('vigil targets' lists them all, 'vigil target show ID' explains one):")
						printTargets(a.stdout, top, total)
					}
				}
				if werr := <-webErr; err == nil {
					err = werr
				}
				return err
			}
		},
	}
}

// importListFile imports one watch-list file into st as list name.
func importListFile(ctx context.Context, st store.Store, name, path string) (store.ImportReport, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return store.ImportReport{}, 0, err
	}
	res, err := watchlist.Parse(bytes.NewReader(data), watchlist.ParseOptions{File: path})
	if err != nil {
		return store.ImportReport{}, 0, err
	}
	sum := sha256.Sum256(data)
	rep, err := st.ImportList(ctx, store.ListImport{Name: name, Source: "vigil lab", Format: res.Format,
		SHA256: hex.EncodeToString(sum[:]), By: "vigil demo", Entries: res.Entries})
	return rep, len(res.Entries), err
}

// labTrackers maps the lab's watched info-hashes to the tracker their
// torrent names, as a magnet link's tr= would.
func labTrackers(m lab.Manifest) map[hashkind.Hash][]string {
	out := map[hashkind.Hash][]string{}
	for _, t := range m.Torrents {
		if t.Tracker == "" {
			continue
		}
		for _, v := range []struct {
			hex  string
			kind hashkind.Kind
		}{{t.InfoHash, hashkind.BTIH}, {t.InfoHashV2, hashkind.BTIH2}} {
			if v.hex == "" {
				continue
			}
			if h, err := hashkind.Parse(v.hex, v.kind); err == nil {
				out[h] = append(out[h], t.Tracker)
			}
		}
	}
	return out
}
