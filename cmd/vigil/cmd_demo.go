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
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/pipeline"
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
		usage:   "vigil demo [--addr 127.0.0.1:8080] [--dir DIR] [--duration D] [--ipv6-seeders N] [lab flags]",
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
       - --ipv6-seeders (1) seeders run on IPv6 alone, on ::1, each sharing
         a watched torrent: the lab's DHT nodes and tracker run on IPv4
         and ::1, and so does the sensor (127.0.0.1 and ::1). The lab's geo
         database places ::1 in Lyon (69), a synthetic place as the
         127.x ones are, which the French rules route to the south-east
         zone's PJ (the analyst's national view shows it). The other
         peers stay on IPv4 alone: the story above is the same without
         them (--ipv6-seeders 0);
  5. serves the web interface (log in at /login), the API, /metrics and
     /healthz; new observations appear live on the overview;
  6. prints what runs where, and a summary by method and possession level
     every few seconds. Ctrl-C stops everything cleanly.

The store is DIR/vigil.db unless --db is given. Nothing is sent beyond
127.0.0.0/8 and ::1.

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
			fs.IntVar(&f.seeders6, "ipv6-seeders", 1, "IPv6-only seeders in Lyon (69), on ::1, beside the IPv4 lab (0: none; needs --family 4 or both)")
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
func demoAccounts(ctx context.Context, a *app, sq backend, rules *jurisdiction.Rules) (string, error) {
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

// storyBanner lists the demo's story for the banner: who lives where, and
// what each account should expect to see.
func storyBanner(cfg lab.Config, m lab.Manifest) string {
	if !cfg.Story {
		return "  story: off (--story=false): peers placed at random"
	}
	var b strings.Builder
	b.WriteString("  story (what each account sees):\n")
	for i, r := range lab.Story {
		if i >= cfg.Seeders || i >= len(m.Peers) || m.Peers[i].Role != lab.RoleSeeder {
			break
		}
		what := r.What
		if r.MovesTo != "" && (cfg.MovePeers == 0 || i != lab.StoryMover) {
			what = "stays in Paris"
		}
		fmt.Fprintf(&b, "    %-21s  %s\n", m.Peers[i].Addr, what)
	}
	fmt.Fprintf(&b, "    %-21s  %s", lab.AnnouncerAddr().String()+":*", "only announces on the DHT (Toulouse): level \"announced\" and nothing more")
	for _, p := range m.Peers[len(m.Peers)-cfg.Seeders6:] {
		where := "IPv6 only, in Lyon (69): the south-east zone's PJ"
		if cfg.IPv6 != lab.IPv6ULA {
			where = "IPv6 only, on ::1, which the lab's geo database places in Lyon (69, a synthetic place): the south-east zone's PJ"
		}
		fmt.Fprintf(&b, "\n    %-21s  %s", p.Addr, where)
	}
	return b.String()
}

// demoListen returns the sensor's addresses: 127.0.0.1, and the lab's
// IPv6 address of it (::1, or its twin in the lab's ULA prefix) when the
// lab runs on IPv6.
func demoListen(cfg lab.Config) []netip.Addr {
	lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	var out []netip.Addr
	if cfg.Family.Has4() {
		out = append(out, lo)
	}
	if cfg.Family.Has6() {
		lo6 := netip.IPv6Loopback()
		if cfg.IPv6 == lab.IPv6ULA {
			lo6, _ = lab.IPv6Twin(lo)
		}
		out = append(out, lo6)
	}
	return out
}

// demoFlags are 'vigil demo”s settings.
type demoFlags struct {
	labConfig       func() lab.Config // the lab flags' values (labFlags)
	addr, dir       string
	duration, every time.Duration
	identities      int
	seeders6        int // lab.Config.Seeders6
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
	if f.seeders6 > 0 {
		// The IPv6 seeders need a DHT and a tracker on IPv6 too; the
		// other peers stay on IPv4 alone (lab.Config.Seeders6).
		if lcfg.Family == lab.Family6 {
			return usagef("--ipv6-seeders %d needs --family 4 or both (or --ipv6-seeders 0)", f.seeders6)
		}
		lcfg.Family, lcfg.Seeders6 = lab.FamilyBoth, f.seeders6
	}
	if err := lcfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	fmt.Fprintf(a.stdout, "starting the lab (%d DHT nodes, %d seeders, %d IPv6 seeders, %d torrents)...\n", lcfg.DHTNodes, lcfg.Seeders, lcfg.Seeders6, lcfg.Torrents)
	l, err := lab.Start(ctx, lcfg)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer l.Close()
	d := demoRun{lab: l, labConfig: lcfg, ln: ln, manifest: filepath.Join(f.dir, "manifest.json")}
	if err := l.WriteManifest(d.manifest); err != nil {
		return err
	}
	if d.sq, err = a.backendStore(ctx); err != nil {
		return err
	}
	m := l.Manifest()
	if d.list, d.entries, err = importListFile(ctx, d.sq, "lab-watchlist", m.Watchlist); err != nil {
		return err
	}
	// Observations are placed with the lab's geo database and
	// routed with the shipped French rules, as a deployment would
	// with its own files.
	geoCfg := geo.DefaultConfig()
	geoCfg.PlaceFiles, geoCfg.ASNFiles, geoCfg.ProviderFile = []string{m.GeoDB}, []string{m.ASNDB}, m.Providers
	if d.geo, err = geo.Open(geoCfg); err != nil {
		return fmt.Errorf("lab geo database: %w", err)
	}
	defer d.geo.Close()
	if d.rules, err = loadRules("example:france"); err != nil {
		return err
	}
	if d.accounts, err = demoAccounts(ctx, a, d.sq, d.rules); err != nil {
		return err
	}
	return f.runPipeline(ctx, a, &d)
}

// demoRun is what the demo set up before its pipeline runs.
type demoRun struct {
	lab       *lab.Lab
	labConfig lab.Config
	ln        net.Listener
	manifest  string // path of the lab's manifest
	sq        backend
	list      store.ImportReport // the lab's watch-list import
	entries   int
	geo       *geo.Locator        // places observations at ingest
	rules     *jurisdiction.Rules // routes them
	accounts  string              // the banner's lines about the accounts
}

// runPipeline runs the sensor into the store, the analysis, the web
// interface (which shows each committed batch live), the story and the
// report, until ctx ends; then prints the end summary.
func (f *demoFlags) runPipeline(ctx context.Context, a *app, d *demoRun) error {
	var sensor atomic.Pointer[bittorrent.Sensor]
	health := map[string]web.HealthFunc{"sensor demo-bittorrent": func() (bool, string) {
		if s := sensor.Load(); s != nil {
			return s.Health()
		}
		return false, "starting"
	}}
	reg := newRegistry()
	wa, err := newWebApp(ctx, a, d.sq, d.ln.Addr().String(), health, reg, isp.DefaultRetention())
	if err != nil {
		return err
	}
	defer wa.Close()
	keyDir := a.getenv("VIGIL_KEY_DIR")
	if keyDir == "" {
		keyDir = filepath.Join(f.dir, "keys") // the demo's keys stay in its folder
	}
	sensorKey, err := a.sensorKey(keyDir, "demo-bittorrent")
	if err != nil {
		return err
	}
	p, err := pipeline.New(ctx, pipeline.Config{Store: d.sq, Analysis: d.sq, EndpointWindow: a.endpointWindow, IPv6: analysisIPv6.Load(),
		OnAlert: wa.Alert, Geo: d.geo, Rules: d.rules, OnCommit: wa.Publish, Registry: reg, Log: a.log, SensorKey: sensorKey})
	if err != nil {
		return err
	}
	cpSvc, cpFinal, err := a.logCheckpointer(d.sq, keyDir, time.Minute)
	if err != nil {
		return err
	}
	p.Go("evidence log checkpoints", cpSvc)
	m := d.lab.Manifest()
	scfg := bittorrent.LabConfig()
	scfg.ID, scfg.Identities = "demo-bittorrent", f.identities
	scfg.Version, scfg.Commit, scfg.Modified = build()
	scfg.Bootstrap = d.lab.Bootstrap()
	scfg.ListenAddrs = demoListen(d.labConfig)
	s, err := p.AddBitTorrent(ctx, pipeline.BitTorrent{Sensor: scfg, Scope: scope.DefaultConfig(), Trackers: labTrackers(m)})
	if err != nil {
		return err
	}
	sensor.Store(s)

	fmt.Fprintf(a.stdout, `
Vigil demo — everything on loopback, synthetic files only
  lab:        %d DHT nodes, %d peers, %d torrents; manifest %s
  watch-list: %s, %d entries as list "lab-watchlist" (version %d)
  store:      %s (%s)
  sensor:     %d DHT identities on each of %v, bootstrap %v
  web:        http://%s/login   (API /api/v1 with a token from 'vigil token create', /metrics, /healthz)
  accounts (passwords shown once; 'vigil user passwd' sets new ones):
%s
%s
Ctrl-C stops it.

`, len(m.DHTNodes), len(m.Peers), len(m.Torrents), d.manifest, m.Watchlist, d.entries, d.list.Version,
		redactDSN(a.dbPath), storeKind(a.dbPath), scfg.Identities, scfg.ListenAddrs, scfg.Bootstrap, d.ln.Addr(), d.accounts, storyBanner(d.labConfig, m))

	p.Go("web", func(ctx context.Context) error {
		return serveHandler(ctx, a, d.ln, web.Edge(wa, web.EdgeConfig{Limit: web.BodyLimits(0), Registry: reg}))
	})
	if d.labConfig.Story {
		story := &demoStory{lab: d.lab, log: a.log, engine: p.Engine(), sq: d.sq, by: a.cliActor().Name, moves: d.labConfig.MovePeers > 0,
			audit: func(ctx context.Context, object string, detail map[string]any) error {
				return a.auditCLIPurpose(ctx, d.sq, audit.ActionChange, object, "", detail)
			}}
		p.Go("story", func(ctx context.Context) error { story.run(ctx, s); return nil })
	}
	if f.every > 0 {
		p.Go("report", reportEvery(a, p, s, f.every))
	}
	err = p.Run(ctx)
	cpFinal(context.WithoutCancel(ctx))
	printDemoEnd(context.WithoutCancel(ctx), a, p.Tally(), p.Engine(), d.sq)
	return err
}

// printDemoEnd prints the sensor's final summary and the top targets.
func printDemoEnd(ctx context.Context, a *app, counts pipeline.Tally, engine *analysis.Engine, sq backend) {
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
