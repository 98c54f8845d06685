package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
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
  4. adds the agencies of the French rules and four demo accounts (an
     analyst with the national view, an investigator of the Paris PJ, one
     of the southern zone's PJ, which receives the Marseille, Toulouse and
     Ajaccio peers, and an auditor), with random passwords printed once;
     the story each account can follow (--story, the default):
       - seeders in Paris (75), Marseille (13), Ajaccio (2A) and Toulouse
         (31), each sharing a watched torrent: both investigators have
         targets of their own;
       - one seeder leaves Paris 10 s after the start, stays offline
         --move-offline (2m30s) and comes back in Toulouse with the same
         peer id: its two addresses are linked into one device, which the
         demo hands off from the Paris PJ to the southern zone's (about 3
         minutes in), as 'vigil target share --assign' would;
       - the demo flags the Marseille seeder's target as a known offender,
         as an analyst would with 'vigil target flag';
       - a client in Toulouse only announces on the DHT and never accepts
         a connection: its target never gets past "announced";
  5. serves the web interface (log in at /login), the API, /metrics and
     /healthz; new observations appear live on the overview;
  6. prints what runs where, and a summary by method and possession level
     every few seconds. Ctrl-C stops everything cleanly.

The store is DIR/vigil.db unless --db is given. Nothing is sent beyond
127.0.0.0/8.

Examples:
  vigil demo
  vigil demo --addr 127.0.0.1:9090 --dht-nodes 100 --seeders 12 --duration 2m
`,
		setup: func(fs *flag.FlagSet) runFunc {
			var f demoFlags
			f.labConfig = labFlags(fs)
			fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "`address` the web interface listens on")
			fs.StringVar(&f.dir, "dir", "vigil-demo", "work `directory`: lab files, manifest, store")
			fs.DurationVar(&f.duration, "duration", 0, "stop after this long (default: until interrupted)")
			fs.IntVar(&f.identities, "identities", 4, "sensor DHT identities")
			fs.DurationVar(&f.every, "report-every", 10*time.Second, "how often to print the summary")
			return func(ctx context.Context, a *app, args []string) error { return f.run(ctx, a, args) }
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

// demoUsers are the demo's accounts. The southern zone's PJ receives the
// lab's Marseille (13), Toulouse (31) and Ajaccio (2A) peers under the
// French rules; Paris (75) goes to the Préfecture de police's PJ; the
// foreign lab places fall to the national office.
var demoUsers = []struct {
	name, agency string
	role         access.Role
	what         string
}{
	{"demo-analyst", "fr-ofmin", access.RoleAnalyst, "analyst, national view (OFMIN)"},
	{"demo-paris", "fr-pp-dpj", access.RoleInvestigator, "investigator, Paris PJ: targets routed to Paris (75)"},
	{"demo-sud", "fr-szpj-sud", access.RoleInvestigator, "investigator, PJ zone sud: Marseille (13), Toulouse (31), Ajaccio (2A)"},
	{"demo-auditor", "fr-ofmin", access.RoleAuditor, "auditor: the audit trail"},
}

// demoAccounts adds the agencies of rules and the demo accounts with
// fresh random passwords (an account kept from an earlier run gets a new
// one), and returns the lines of the banner that list them.
func demoAccounts(ctx context.Context, a *app, sq *sqlite.Store, rules *jurisdiction.Rules) (string, error) {
	svc, err := access.New(sq, &audit.Log{Store: sq}, access.DefaultConfig())
	if err != nil {
		return "", err
	}
	actor := access.CLIActor("vigil-demo")
	if _, _, err := importAgencies(ctx, svc, actor, rules, "example:france"); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, u := range demoUsers {
		raw := make([]byte, 12)
		if _, err := rand.Read(raw); err != nil {
			return "", err
		}
		pw := base64.RawURLEncoding.EncodeToString(raw)
		_, err := svc.AddUser(ctx, actor, access.User{Name: u.name, Agency: u.agency, Role: u.role, Lang: access.LangEN, TimeZone: "Europe/Paris"}, pw)
		if errors.Is(err, access.ErrExists) {
			err = svc.SetPassword(ctx, actor, u.name, pw)
		}
		if err != nil {
			return "", fmt.Errorf("demo account %s: %w", u.name, err)
		}
		fmt.Fprintf(&b, "    %-13s password %s   %s\n", u.name, pw, u.what)
	}
	return strings.TrimRight(b.String(), "\n"), nil
}

// demoStory plays the parts of the demo's story that the lab cannot play
// alone, once the sensor is up: the announce-only client (a target that
// never gets past "announced"); the analyst's known-offender flag on the
// Marseille seeder's target (lab.Story[1]), as 'vigil target flag' sets
// it; and, once the analysis has linked the mover's Paris and Toulouse
// addresses into one device, its hand-off from the Paris PJ to the
// southern zone's, as 'vigil target share --assign' records it. Old addresses
// stay in trackers and DHT nodes for a while, so the routing alone would
// keep the device in Paris: a hand-off is a person's decision.
type demoStory struct {
	lab    *lab.Lab
	log    interface{ Warn(string, ...any) }
	engine *analysis.Engine
	sq     *sqlite.Store
	by     string // who decides, as 'vigil target' records it
	moves  bool   // the lab moves peers: there is a hand-off to make
	audit  func(ctx context.Context, object string, detail map[string]any) error
	done   chan struct{}
	start  sync.Once
}

// decided audits a decision of the story as 'vigil target flag|share'
// audits it.
func (d *demoStory) decided(ctx context.Context, id, decision, why string) {
	if err := d.audit(ctx, "target:"+id, map[string]any{"decision": decision, "why": why}); err != nil {
		d.log.Warn("demo: audit", "target", id, "err", err)
	}
}

// The reasons recorded with the demo's decisions.
const (
	demoFlagWhy    = "vigil demo: synthetic lab peer flagged to show the known-offender flag"
	demoHandOffWhy = "vigil demo: the device moved from Paris (75) to Toulouse (31); handed off to the southern zone's PJ"
	demoHandOffTo  = "fr-szpj-sud"
)

func (d *demoStory) run(ctx context.Context, s *bittorrent.Sensor) {
	d.start.Do(func() { d.done = make(chan struct{}) })
	defer close(d.done)
	select {
	case <-s.Ready():
	case <-ctx.Done():
		return
	}
	if _, err := d.lab.StartAnnouncer(ctx, s.Addrs(), 15*time.Second); err != nil {
		d.log.Warn("demo: announce-only peer", "err", err)
	}
	ipOf := func(ap string) string {
		a, err := netip.ParseAddrPort(ap)
		if err != nil {
			return ""
		}
		return a.Addr().String()
	}
	m := d.lab.Manifest()
	flagIP, flagged := "", true
	if len(m.Peers) > 1 && m.Peers[1].Role == lab.RoleSeeder {
		flagIP, flagged = ipOf(m.Peers[1].Addr), false
	}
	handed := !d.moves || !(len(m.Peers) > lab.StoryMover && m.Peers[lab.StoryMover].Role == lab.RoleSeeder)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !flagged || !handed {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ts, _, err := d.sq.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 1000})
		if err != nil {
			continue
		}
		var mover lab.ManifestPeer
		if !handed {
			mover = d.lab.Manifest().Peers[lab.StoryMover]
		}
		for _, t := range ts {
			if !flagged && strings.HasPrefix(t.Label, flagIP+":") {
				if err := d.engine.SetFlag(ctx, t.ID, analysis.FlagKnownOffender, true, d.by, demoFlagWhy); err != nil {
					d.log.Warn("demo: flag", "target", t.ID, "err", err)
				} else {
					d.decided(ctx, t.ID, "flag", demoFlagWhy)
				}
				flagged = true
			}
			if handed || t.Endpoints < 2 || len(mover.PreviousAddrs) == 0 {
				continue
			}
			dt, err := d.sq.Target(ctx, t.ID, analysis.AllAgencies)
			if err != nil {
				continue
			}
			from, to := false, false
			for _, ep := range dt.Endpoints {
				from = from || ep.IP.String() == ipOf(mover.PreviousAddrs[0])
				to = to || ep.IP.String() == ipOf(mover.Addr)
			}
			if from && to {
				if err := d.engine.Assign(ctx, t.ID, demoHandOffTo, d.by, demoHandOffWhy); err != nil {
					d.log.Warn("demo: hand-off", "target", t.ID, "err", err)
				} else {
					d.decided(ctx, t.ID, "share", demoHandOffWhy)
				}
				handed = true
			}
		}
	}
}

// wait returns when run has returned (at once if it never started).
func (d *demoStory) wait() {
	d.start.Do(func() {})
	if d.done != nil {
		<-d.done
	}
}

// storyBanner lists the demo's story for the banner: who lives where, and
// what each account should expect to see.
func storyBanner(cfg lab.Config, m lab.Manifest) string {
	if !cfg.Story {
		return "  story: off (--story=false): peers placed at random"
	}
	var b strings.Builder
	b.WriteString("  story (what each account sees):\n")
	for i, r := range lab.Story {
		if i >= len(m.Peers) || m.Peers[i].Role != lab.RoleSeeder {
			break
		}
		what := r.What
		if r.MovesTo != "" && (cfg.MovePeers == 0 || i != lab.StoryMover) {
			what = "stays in Paris"
		}
		fmt.Fprintf(&b, "    %-21s  %s\n", m.Peers[i].Addr, what)
	}
	fmt.Fprintf(&b, "    %-21s  %s", lab.AnnouncerAddr().String()+":*", "only announces on the DHT (Toulouse): level \"announced\" and nothing more")
	return b.String()
}

// demoFlags are 'vigil demo”s settings.
type demoFlags struct {
	labConfig       func() lab.Config // the lab flags' values (labFlags)
	addr, dir       string
	duration, every time.Duration
	identities      int
}

// run starts the lab, the sensor, the store, the analysis and the web
// interface, tells the story, and reports until the duration ends.
func (f *demoFlags) run(ctx context.Context, a *app, args []string) error {
	if f.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.duration)
		defer cancel()
	}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return err
	}
	if a.dbPath == "vigil.db" && a.getenv("VIGIL_DB") == "" {
		a.dbPath = filepath.Join(f.dir, "vigil.db")
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("web interface: listen %s: %w (use --addr)", f.addr, err)
	}
	defer ln.Close()

	lcfg := f.labConfig()
	lcfg.Dir = filepath.Join(f.dir, "lab")
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
	manifest := filepath.Join(f.dir, "manifest.json")
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
	en := ingest.NewEnricher(loc, rules)
	sq, err := a.sqliteStore(ctx)
	if err != nil {
		return err
	}
	accounts, err := demoAccounts(ctx, a, sq, rules)
	if err != nil {
		return err
	}

	// The sensor runs into the store; the web interface reads it
	// and shows each committed batch live.
	var sensor atomic.Pointer[bittorrent.Sensor]
	health := map[string]web.HealthFunc{"sensor demo-bittorrent": func() (bool, string) {
		if s := sensor.Load(); s != nil {
			return s.Health()
		}
		return false, "starting"
	}}
	reg := newRegistry()
	wa, err := newWebApp(ctx, a, sq, ln.Addr().String(), health, reg, isp.DefaultRetention())
	if err != nil {
		return err
	}
	defer wa.Close()
	matcher, err := buildMatcher(ctx, sq)
	if err != nil {
		return err
	}
	engine, err := startAnalysisWatching(ctx, a.log, sq, wa.Alert, matcher.Contains)
	if err != nil {
		return err
	}
	reg.MustRegister(engine.Collector())
	defer engine.Flush(context.WithoutCancel(ctx))
	var analysisFailures atomic.Int64
	feed := analysisFeed(context.WithoutCancel(ctx), a.log, engine, &analysisFailures)

	scfg := bittorrent.LabConfig()
	scfg.ID, scfg.Version, scfg.Identities = "demo-bittorrent", version, f.identities
	scfg.Bootstrap = l.Bootstrap()

	fmt.Fprintf(a.stdout, `
Vigil demo — everything on loopback, synthetic files only
  lab:        %d DHT nodes, %d peers, %d torrents; manifest %s
  watch-list: %s, %d entries as list "lab-watchlist" (version %d)
  store:      %s (SQLite)
  sensor:     %d DHT identities on %s, bootstrap %v
  web:        http://%s/login   (API /api/v1 with a token from 'vigil token create', /metrics, /healthz)
  accounts (passwords shown once; 'vigil user passwd' sets new ones):
%s
%s
Ctrl-C stops it.

`, len(m.DHTNodes), len(m.Peers), len(m.Torrents), manifest, m.Watchlist, n, rep.Version,
		a.dbPath, scfg.Identities, scfg.Listen, scfg.Bootstrap, ln.Addr(), accounts, storyBanner(lcfg, m))

	webErr := make(chan error, 1)
	go func() {
		webErr <- serveHandler(ctx, a, ln, web.Edge(wa, web.EdgeConfig{Limit: web.BodyLimits(0), Registry: reg}))
	}()
	story := &demoStory{lab: l, log: a.log, engine: engine, sq: sq, by: a.cliActor().Name, moves: lcfg.MovePeers > 0,
		audit: func(ctx context.Context, object string, detail map[string]any) error {
			return a.auditCLIPurpose(ctx, sq, audit.ActionChange, object, "", detail)
		}}
	counts, err := runBitTorrentSensorWith(ctx, a, st, scfg, scope.DefaultConfig(), sensorRun{
		started: func(s *bittorrent.Sensor) {
			sensor.Store(s)
			if lcfg.Story {
				go story.run(ctx, s)
			}
		},
		report:   f.every,
		trackers: labTrackers(m),
		registry: reg,
		enrich:   en,
		onFiles:  associatedFeed(context.WithoutCancel(ctx), a.log, engine),
		onCommit: func(b []observe.Observation) {
			feed(b)
			wa.Publish(b)
		},
	})
	story.wait()
	printDemoEnd(context.WithoutCancel(ctx), a, counts, engine, sq)
	if werr := <-webErr; err == nil {
		err = werr
	}
	return err
}

// printDemoEnd prints the sensor's final summary and the top targets.
func printDemoEnd(ctx context.Context, a *app, counts sensorCounts, engine *analysis.Engine, sq *sqlite.Store) {
	fmt.Fprintln(a.stdout, "\nfinal summary:")
	printSensorSummary(a.stdout, counts)
	if err := engine.Flush(ctx); err != nil {
		return
	}
	if top, total, err := sq.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 5}); err == nil {
		fmt.Fprintln(a.stdout, "\ntop targets ('vigil targets' lists them all, 'vigil target show ID' explains one):")
		printTargets(a.stdout, top, total)
	}
}
