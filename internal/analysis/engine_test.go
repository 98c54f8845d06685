package analysis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type fixture struct {
	t    *testing.T
	path string
	st   *sqlite.Store
	cfg  analysis.Config
	now  time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "vigil.db"), now: t0.Add(30 * 24 * time.Hour)}
	f.cfg = analysis.DefaultConfig()
	f.cfg.Now = func() time.Time { return f.now }
	f.cfg.SaveInterval = 0
	f.open()
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	st, err := sqlite.Open(context.Background(), f.path, sqlite.DefaultConfig())
	if err != nil {
		f.t.Fatal(err)
	}
	f.st = st
	f.t.Cleanup(func() { st.Close() })
}

func (f *fixture) engine() *analysis.Engine {
	f.t.Helper()
	e, err := analysis.New(context.Background(), f.st, f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// ingest stores obs and feeds them to e, as ingest's OnCommit does.
func (f *fixture) ingest(e *analysis.Engine, obs ...observe.Observation) {
	f.t.Helper()
	if err := f.st.InsertObservations(context.Background(), obs); err != nil {
		f.t.Fatal(err)
	}
	if e != nil {
		if err := e.Add(context.Background(), obs); err != nil {
			f.t.Fatal(err)
		}
	}
}

func hashN(n int) hashkind.Hash {
	b := make([]byte, 20)
	b[0], b[1], b[2] = 0xAB, byte(n>>8), byte(n)
	return hashkind.MustNew(hashkind.BTIH, b)
}

// ob is one observation: endpoint "ip:port", file number, level, time.
func ob(ep string, file int, level observe.Level, at time.Time) observe.Observation {
	ap := netip.MustParseAddrPort(ep)
	method := observe.MethodPeerProbe
	if level == observe.Announced {
		method = observe.MethodDHTAnnounce
	}
	return observe.Observation{
		ID: observe.NewID(at), Sensor: observe.Sensor{ID: "bt-lab-1"}, Network: observe.NetBitTorrent, Method: method, Time: at,
		Item:         observe.Item{Hash: hashN(file), Matched: []observe.Match{{List: "national", Category: "1"}}},
		Endpoint:     observe.Endpoint{IP: ap.Addr(), Port: ap.Port(), Transport: "tcp"},
		Client:       observe.Client{Name: "Transmission", Version: "3.00"},
		Possession:   observe.Possession{Level: level, PiecesHave: -1, PiecesTotal: -1},
		Place:        observe.Place{Country: "FR", Subdivisions: []string{"Île-de-France", "78"}, ASN: 64512, Org: "Lab Telecom"},
		Jurisdiction: observe.Jurisdiction{Agency: "fr-versailles", Rule: "test"},
	}
}

func withNode(o observe.Observation, node byte) observe.Observation {
	o.Client.NodeID = make([]byte, 20)
	for i := range o.Client.NodeID {
		o.Client.NodeID[i] = node + byte(i)
	}
	return o
}

// withSecureNode gives o a BEP 42 node id for the address ip (which may
// be another address than o's: a copied id).
func withSecureNode(o observe.Observation, node byte, ip string) observe.Observation {
	var seed krpc.ID
	for i := range seed {
		seed[i] = node + byte(i)
	}
	id := krpc.SecureNodeID(netip.MustParseAddr(ip), seed)
	o.Client.NodeID = id[:]
	return o
}

func withPeerID(o observe.Observation, id string) observe.Observation {
	o.Client.PeerID = []byte(id)
	return o
}

func targets(t *testing.T, e *analysis.Engine, q analysis.TargetQuery) []analysis.TargetSummary {
	t.Helper()
	if q.Scope.Empty() {
		q.Scope = analysis.AllAgencies
	}
	q.Limit = 1000
	out, n, err := e.Targets(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(out) {
		t.Fatalf("total %d, page %d", n, len(out))
	}
	return out
}

func detail(t *testing.T, e *analysis.Engine, id string) *analysis.TargetDetail {
	t.Helper()
	d, err := e.Target(context.Background(), id, analysis.AllAgencies)
	if err != nil {
		t.Fatalf("Target(%s): %v", id, err)
	}
	return d
}

func endpointsOf(d *analysis.TargetDetail) []string {
	var s []string
	for _, e := range d.Endpoints {
		s = append(s, netip.AddrPortFrom(e.IP, e.Port).String())
	}
	sort.Strings(s)
	return s
}

// A BEP 42 node id ties a node to its address: it can only join two ports
// of one address (a client restarted on another port), never two
// addresses (a compliant client draws a new id when its address changes).
func TestNodeIDLinksAddressesIntoOneDevice(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	f.ingest(e,
		withSecureNode(ob("192.0.2.3:51000", 1, observe.Complete, t0), 7, "192.0.2.3"),
		withSecureNode(ob("192.0.2.3:52000", 2, observe.Complete, t0.Add(48*time.Hour)), 7, "192.0.2.3"),
		ob("198.51.100.5:53000", 1, observe.Complete, t0), // another machine, same file
	)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 2 {
		t.Fatalf("%d targets, want 2: %+v", len(ts), ts)
	}
	top := ts[0]
	if top.Endpoints != 2 || top.Files != 2 {
		t.Fatalf("device: %d endpoints, %d files; want 2 and 2", top.Endpoints, top.Files)
	}
	d := detail(t, e, top.ID)
	if len(d.Links) != 1 || d.Links[0].Rule != analysis.RuleNodeID || d.Links[0].State != "active" {
		t.Fatalf("links %+v", d.Links)
	}
	if r := d.Links[0].Reason; !strings.Contains(r, "same DHT node id") || !strings.Contains(r, "192.0.2.3:51000") || !strings.Contains(r, "192.0.2.3:52000") {
		t.Errorf("reason %q does not say what was seen where", r)
	}
	if len(d.Links[0].Obs) != 2 {
		t.Errorf("link names %d observations, want 2", len(d.Links[0].Obs))
	}
	if len(d.Timeline) != 2 {
		t.Errorf("timeline %d entries, want 2", len(d.Timeline))
	}
}

func TestLinkRulesRefuse(t *testing.T) {
	cases := []struct {
		name string
		obs  func() []observe.Observation
		want int // targets
	}{
		{"node id from too many addresses in one hour", func() []observe.Observation {
			var out []observe.Observation
			for i := range 5 {
				out = append(out, withNode(ob(fmt.Sprintf("10.0.%d.1:40000", i), i, observe.Complete, t0.Add(time.Duration(i)*time.Minute)), 9))
			}
			return out
		}, 5},
		{"peer id outside its session window", func() []observe.Observation {
			a := ob("10.0.0.1:40001", 1, observe.Complete, t0)
			b := ob("10.0.0.2:40002", 2, observe.Complete, t0.Add(5*time.Hour))
			a.Client.PeerID = []byte("-TR3000-k3j4h5g6f7d8")
			b.Client.PeerID = a.Client.PeerID
			return []observe.Observation{a, b}
		}, 2},
		{"one shared file", func() []observe.Observation {
			return []observe.Observation{ob("10.0.0.1:40001", 1, observe.Complete, t0), ob("10.0.0.2:40002", 1, observe.Complete, t0.Add(72*time.Hour))}
		}, 2},
		{"zero node id", func() []observe.Observation {
			a, b := ob("10.0.0.1:40001", 1, observe.Complete, t0), ob("10.0.0.2:40002", 2, observe.Complete, t0.Add(time.Hour))
			a.Client.NodeID, b.Client.NodeID = make([]byte, 20), make([]byte, 20)
			return []observe.Observation{a, b}
		}, 2},
		{"listen port rule, two machines active together", func() []observe.Observation {
			a, b := ob("10.0.0.1:41234", 1, observe.Complete, t0), ob("10.0.0.2:41234", 2, observe.Complete, t0.Add(time.Hour))
			a2 := ob("10.0.0.1:41234", 3, observe.Complete, t0.Add(2*time.Hour))
			for _, o := range []*observe.Observation{&a, &b, &a2} {
				o.Client.ListenPort = 41234
			}
			return []observe.Observation{a, b, a2}
		}, 2},
		// and the same rules accepting:
		{"peer id within its session", func() []observe.Observation {
			a := ob("10.0.0.1:40001", 1, observe.Complete, t0)
			b := ob("10.0.0.2:40002", 2, observe.Complete, t0.Add(30*time.Minute))
			a.Client.PeerID = []byte("-TR3000-k3j4h5g6f7d8")
			b.Client.PeerID = a.Client.PeerID
			return []observe.Observation{a, b}
		}, 1},
		{"listen port rule, an address change", func() []observe.Observation {
			a, b := ob("10.0.0.1:41234", 1, observe.Complete, t0), ob("10.0.0.2:41234", 2, observe.Complete, t0.Add(20*time.Hour))
			a.Client.ListenPort, b.Client.ListenPort = 41234, 41234
			return []observe.Observation{a, b}
		}, 1},
		{"file overlap, five files, sequential", func() []observe.Observation {
			var out []observe.Observation
			for i := range 5 {
				out = append(out, ob("10.0.0.1:40001", i, observe.Complete, t0.Add(time.Duration(i)*time.Minute)))
				out = append(out, ob("10.0.0.2:40002", i, observe.Complete, t0.Add(30*time.Hour+time.Duration(i)*time.Minute)))
			}
			return out
		}, 1},
		{"file overlap, five files, too far apart", func() []observe.Observation {
			var out []observe.Observation
			for i := range 5 {
				out = append(out, ob("10.0.0.1:40001", i, observe.Complete, t0.Add(time.Duration(i)*time.Minute)))
				out = append(out, ob("10.0.0.2:40002", i, observe.Complete, t0.Add(96*time.Hour+time.Duration(i)*time.Minute)))
			}
			return out
		}, 2},
		// A tracker naming two addresses with the same five files, hours
		// apart: the endpoints said nothing themselves, so nothing links
		// (the review found a file_overlap link made of tracker claims).
		{"file overlap, five files, third-party claims only", func() []observe.Observation {
			var out []observe.Observation
			for i := range 5 {
				out = append(out, thirdParty(ob("198.51.100.1:40001", i, observe.Complete, t0.Add(time.Duration(i)*time.Minute)), observe.MethodTracker))
				out = append(out, thirdParty(ob("198.51.100.2:40002", i, observe.Complete, t0.Add(3*time.Hour+time.Duration(i)*time.Minute)), observe.MethodTracker))
			}
			return out
		}, 2},
		{"file overlap, five files, at the same time", func() []observe.Observation {
			var out []observe.Observation
			for i := range 5 {
				out = append(out, ob("10.0.0.1:40001", i, observe.Complete, t0.Add(time.Duration(i)*time.Minute)))
				out = append(out, ob("10.0.0.2:40002", i, observe.Complete, t0.Add(time.Duration(i)*time.Minute)))
			}
			return out
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			e := f.engine()
			f.ingest(e, c.obs()...)
			if got := targets(t, e, analysis.TargetQuery{}); len(got) != c.want {
				t.Fatalf("%d targets, want %d", len(got), c.want)
			}
		})
	}
}

func TestUnlinkPersistsAndBlocksTheSameEvidence(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	const pid = "-TR3000-k3j4h5g6f7d8"
	f.ingest(e, withPeerID(ob("10.1.2.3:51000", 1, observe.Complete, t0), pid), withPeerID(ob("10.9.8.7:52000", 2, observe.Complete, t0.Add(time.Hour)), pid))
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 {
		t.Fatalf("%d targets before unlink, want 1", len(ts))
	}
	d := detail(t, e, ts[0].ID)
	if err := e.Unlink(context.Background(), d.Links[0].ID, "", "no reason"); err == nil {
		t.Fatal("unlink without who was accepted")
	}
	if err := e.Unlink(context.Background(), d.Links[0].ID, "analyst-1", "shared seedbox, two subscribers"); err != nil {
		t.Fatal(err)
	}
	if got := targets(t, e, analysis.TargetQuery{}); len(got) != 2 {
		t.Fatalf("%d targets after unlink, want 2", len(got))
	}
	// A new instance (restart) keeps the decision, and the same peer id
	// from a third address does not join them again.
	e2 := f.engine()
	f.ingest(e2, withPeerID(ob("10.7.7.7:53000", 3, observe.Complete, t0.Add(2*time.Hour)), pid))
	got := targets(t, e2, analysis.TargetQuery{})
	if len(got) != 3 {
		t.Fatalf("%d targets after restart and new sighting, want 3", len(got))
	}
	d2 := detail(t, e2, ts[0].ID)
	var rejected int
	for _, l := range d2.Links {
		if l.State == "rejected" && strings.Contains(l.Note, "analyst-1") {
			rejected++
		}
	}
	if rejected != 1 {
		t.Errorf("links %+v: want the rejected one with who decided", d2.Links)
	}
}

func TestMergedTargetRedirectsToTheOlder(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	f.ingest(e, ob("10.1.2.3:51000", 1, observe.Complete, t0))
	f.ingest(e, ob("10.9.8.7:52000", 2, observe.Complete, t0.Add(time.Hour)))
	before := targets(t, e, analysis.TargetQuery{})
	if len(before) != 2 {
		t.Fatalf("%d targets", len(before))
	}
	ids := []string{before[0].ID, before[1].ID}
	sort.Strings(ids)
	const pid = "-TR3000-k3j4h5g6f7d8"
	f.ingest(e, withPeerID(ob("10.1.2.3:51000", 1, observe.Complete, t0.Add(2*time.Hour)), pid), withPeerID(ob("10.9.8.7:52000", 2, observe.Complete, t0.Add(3*time.Hour)), pid))
	after := targets(t, e, analysis.TargetQuery{})
	if len(after) != 1 || after[0].ID != analysis.TargetID(1) {
		t.Fatalf("after merge %+v, want the single target T-1", after)
	}
	d := detail(t, e, "T-2")
	if d.ID != analysis.TargetID(1) || !slices.Contains(d.MergedFrom, analysis.TargetID(2)) {
		t.Fatalf("T-2 resolves to %s merged from %v", d.ID, d.MergedFrom)
	}
}

func TestQuarantineHoldsABurstNotASteadyHash(t *testing.T) {
	f := newFixture(t)
	f.cfg.Quarantine.MinPeers = 20
	var alerts []analysis.Alert
	f.cfg.OnAlert = func(a analysis.Alert) { alerts = append(alerts, a) }
	e := f.engine()
	// Both hashes: one peer an hour for three days.
	var obs []observe.Observation
	for h := range 72 {
		at := t0.Add(time.Duration(h) * time.Hour)
		obs = append(obs, ob(fmt.Sprintf("10.2.%d.%d:6000", h/200, h%200+1), 100, observe.Complete, at))
		obs = append(obs, ob(fmt.Sprintf("10.3.%d.%d:6000", h/200, h%200+1), 200, observe.Complete, at))
	}
	// A collector holding the steady file 200 and the burst file 100,
	// seen with file 100 alone on two more days.
	obs = append(obs, ob("10.9.9.9:7000", 100, observe.Complete, t0.Add(73*time.Hour)), ob("10.9.9.9:7000", 200, observe.Complete, t0.Add(73*time.Hour)))
	obs = append(obs, ob("10.9.9.9:7000", 100, observe.Complete, t0.Add(25*time.Hour)), ob("10.9.9.9:7000", 100, observe.Complete, t0.Add(49*time.Hour)))
	f.ingest(e, obs...)
	before := targets(t, e, analysis.TargetQuery{Jurisdiction: "fr-versailles"})
	scoreOf := func(ts []analysis.TargetSummary, label string) analysis.TargetSummary {
		for _, x := range ts {
			if x.Label == label {
				return x
			}
		}
		t.Fatalf("no target %s", label)
		return analysis.TargetSummary{}
	}
	b := scoreOf(before, "10.9.9.9:7000")
	// Hash 100 suddenly at 40 peers in one hour.
	obs = obs[:0]
	for i := range 40 {
		obs = append(obs, ob(fmt.Sprintf("10.4.0.%d:6000", i+1), 100, observe.Complete, t0.Add(80*time.Hour+time.Duration(i)*time.Minute)))
	}
	obs = append(obs, ob("10.5.0.1:6000", 200, observe.Complete, t0.Add(80*time.Hour)))
	f.ingest(e, obs...)
	qs, err := e.Quarantined(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 || qs[0].Hash != hashN(100) || qs[0].State != analysis.QuarantineHeld {
		t.Fatalf("quarantine %+v, want hash 100 held", qs)
	}
	if len(alerts) != 1 || alerts[0].ID == 0 || alerts[0].Subject != analysis.HashKey(hashN(100)) {
		t.Fatalf("alerts %+v", alerts)
	}
	stored, _ := e.Alerts(context.Background(), time.Time{})
	if len(stored) != 1 {
		t.Fatalf("%d stored alerts", len(stored))
	}
	a := scoreOf(targets(t, e, analysis.TargetQuery{}), "10.9.9.9:7000")
	if a.Files != 1 || a.Score >= b.Score {
		t.Fatalf("collector after hold: %d files, score %v (before %v): the held hash must stop scoring", a.Files, a.Score, b.Score)
	}
	// Its days count no more either: the two days of file 100 alone left
	// days_active with the hold (every part rests on non-held files).
	if a.Parts[analysis.PartDays] >= b.Parts[analysis.PartDays] {
		t.Fatalf("days_active %v after the hold, %v before: the held file's days still count", a.Parts[analysis.PartDays], b.Parts[analysis.PartDays])
	}
	// Released: it scores again, and survives a restart.
	if err := e.Release(context.Background(), hashN(100), "analyst-1", "checked: it is listed correctly"); err != nil {
		t.Fatal(err)
	}
	e2 := f.engine()
	c := scoreOf(targets(t, e2, analysis.TargetQuery{}), "10.9.9.9:7000")
	if c.Files != 2 {
		t.Fatalf("after release %d files, want 2", c.Files)
	}
	qs, _ = e2.Quarantined(context.Background())
	if qs[0].State != analysis.QuarantineReleased || qs[0].By != "analyst-1" {
		t.Fatalf("record after release %+v", qs[0])
	}
}

func TestDisableCallsTheHook(t *testing.T) {
	f := newFixture(t)
	f.cfg.Quarantine.MinPeers = 5
	var disabled []hashkind.Hash
	f.cfg.OnDisable = func(_ context.Context, h hashkind.Hash, by, why string) error {
		disabled = append(disabled, h)
		return nil
	}
	e := f.engine()
	var obs []observe.Observation
	// A hash with no history needs Factor (10) peers in its first hour.
	for i := range 12 {
		obs = append(obs, ob(fmt.Sprintf("10.4.0.%d:6000", i+1), 1, observe.Complete, t0.Add(time.Duration(i)*time.Minute)))
	}
	f.ingest(e, obs...)
	if err := e.Disable(context.Background(), hashN(1), "analyst-2", "a common installer"); err != nil {
		t.Fatal(err)
	}
	if len(disabled) != 1 || disabled[0] != hashN(1) {
		t.Fatalf("hook got %v", disabled)
	}
	if err := e.Release(context.Background(), hashN(1), "a", "b"); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("release of a disabled hash: %v", err)
	}
	for _, x := range targets(t, e, analysis.TargetQuery{}) {
		if x.Files != 0 || x.Score != 0 {
			t.Fatalf("target %s still scores a disabled hash: %+v", x.ID, x)
		}
	}
}

func TestFlagsAddTheirDocumentedPoints(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	f.ingest(e, ob("10.1.2.3:51000", 1, observe.Complete, t0))
	id := targets(t, e, analysis.TargetQuery{})[0].ID
	before := targets(t, e, analysis.TargetQuery{})[0].Score
	if err := e.SetFlag(context.Background(), id, analysis.FlagChildAccess, true, "inv-1", "works at a school"); err != nil {
		t.Fatal(err)
	}
	x := targets(t, e, analysis.TargetQuery{})[0]
	if x.Parts[analysis.PartChildAccess] != 100 || x.Score != before+100 {
		t.Fatalf("after flag: %v %v (before %v)", x.Score, x.Parts, before)
	}
	e2 := f.engine()
	if err := e2.SetFlag(context.Background(), id, analysis.FlagChildAccess, false, "inv-1", "mistaken identity"); err != nil {
		t.Fatal(err)
	}
	if x := targets(t, e2, analysis.TargetQuery{})[0]; x.Score != before {
		t.Fatalf("after clearing: %v, want %v", x.Score, before)
	}
	if err := e2.SetFlag(context.Background(), "T-ZZZ", analysis.FlagChildAccess, true, "a", "b"); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("flag on unknown target: %v", err)
	}
}

func TestCategoryAndFilters(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	a := ob("10.1.2.3:51000", 1, observe.Complete, t0)
	b := ob("10.1.2.4:51000", 2, observe.Announced, t0)
	b.Item.Matched = []observe.Match{{List: "national", Category: "3"}}
	b.Place.VPN = true
	f.ingest(e, a, b)
	if got := targets(t, e, analysis.TargetQuery{Category: "1"}); len(got) != 1 || got[0].Label != "10.1.2.3:51000" {
		t.Fatalf("category 1: %+v", got)
	}
	if got := targets(t, e, analysis.TargetQuery{MinSeverity: 5}); len(got) != 1 || got[0].Label != "10.1.2.3:51000" {
		t.Fatalf("gravest: %+v", got)
	}
	yes := true
	if got := targets(t, e, analysis.TargetQuery{VPN: &yes}); len(got) != 1 || got[0].Label != "10.1.2.4:51000" {
		t.Fatalf("vpn: %+v", got)
	}
	if got := targets(t, e, analysis.TargetQuery{MinLevel: observe.Complete}); len(got) != 1 {
		t.Fatalf("min level: %+v", got)
	}
	got := targets(t, e, analysis.TargetQuery{})
	if got[0].Levels[0].Level != observe.Complete || got[0].Levels[0].Files != 1 {
		t.Fatalf("levels %+v", got[0].Levels)
	}
}

func TestScopeHidesOtherAgencies(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	a := ob("10.1.2.3:51000", 1, observe.Complete, t0)
	b := ob("10.1.2.4:51000", 2, observe.Complete, t0)
	b.Jurisdiction.Agency = "fr-lyon"
	f.ingest(e, a, b)
	lyon := analysis.Scope{Agencies: []string{"fr-lyon"}}
	got := targets(t, e, analysis.TargetQuery{Scope: lyon})
	if len(got) != 1 || got[0].Jurisdiction != "fr-lyon" {
		t.Fatalf("lyon sees %+v", got)
	}
	var versailles string
	for _, x := range targets(t, e, analysis.TargetQuery{}) {
		if x.Jurisdiction == "fr-versailles" {
			versailles = x.ID
		}
	}
	if _, err := e.Target(context.Background(), versailles, lyon); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("lyon reads versailles' target: %v", err)
	}
	if _, err := e.Target(context.Background(), "T-99", lyon); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("nonexistent: %v", err)
	}
	if _, err := e.Target(context.Background(), versailles, analysis.Scope{}); !errors.Is(err, analysis.ErrNotFound) {
		t.Fatalf("empty scope: %v", err)
	}
	st, err := e.Stats(context.Background(), lyon, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Targets != 1 || st.ByAgency["fr-versailles"] != 0 || len(st.Daily) != 1 || st.Daily[0].Observations != 1 {
		t.Fatalf("lyon stats %+v", st)
	}
	// Shared: now lyon sees it too.
	if err := e.Share(context.Background(), versailles, "fr-lyon", true, "inv-v", "suspect moved to Lyon"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Target(context.Background(), versailles, lyon); err != nil {
		t.Fatalf("after share: %v", err)
	}
	if got := targets(t, e, analysis.TargetQuery{Scope: lyon}); len(got) != 2 {
		t.Fatalf("lyon after share sees %d", len(got))
	}
}

func TestLeadsConfirmAndDismissPersist(t *testing.T) {
	f := newFixture(t)
	var confirmed []analysis.Lead
	f.cfg.OnLeadConfirmed = func(_ context.Context, l analysis.Lead, by, why string) error {
		confirmed = append(confirmed, l)
		return nil
	}
	e := f.engine()
	f.ingest(e, ob("10.1.2.3:51000", 1, observe.Complete, t0))
	ep := observe.Endpoint{IP: netip.MustParseAddr("10.1.2.3"), Port: 51000, Transport: "tcp"}
	other := hashkind.MustNew(hashkind.SHA1, make([]byte, 20))
	as := []analysis.Associated{{Torrent: hashN(1), Endpoint: ep, Time: t0, Files: []analysis.AssocFile{
		{Path: "dir/a.bin", Size: 100, Hash: other}, {Path: "dir/b.bin", Size: 200}, {Path: "self", Hash: hashN(1)}}}}
	if err := e.AddAssociated(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	before := targets(t, e, analysis.TargetQuery{})[0]
	leads, n, err := e.Leads(context.Background(), analysis.LeadQuery{State: analysis.LeadOpen})
	if err != nil || n != 2 {
		t.Fatalf("%d open leads (%v), want 2", n, err)
	}
	if leads[0].Watched[0] != analysis.HashKey(hashN(1)) || leads[0].Count != 1 {
		t.Fatalf("lead %+v", leads[0])
	}
	if err := e.ConfirmLead(context.Background(), analysis.HashKey(other), "analyst-1", "reviewed: known series"); err != nil {
		t.Fatal(err)
	}
	if err := e.DismissLead(context.Background(), analysis.HashKey(hashN(1))+"/dir/b.bin", "analyst-1", "a readme"); err != nil {
		t.Fatal(err)
	}
	if len(confirmed) != 1 || confirmed[0].Hash != other {
		t.Fatalf("hook got %+v", confirmed)
	}
	e2 := f.engine()
	after := targets(t, e2, analysis.TargetQuery{})[0]
	if after.Parts[analysis.PartNewMaterial] != 5 || after.Files != before.Files {
		t.Fatalf("after confirm: parts %v files %d (before %d): want new_material 5 and no new file", after.Parts, after.Files, before.Files)
	}
	for state, want := range map[string]int{analysis.LeadConfirmed: 1, analysis.LeadDismissed: 1, analysis.LeadOpen: 0} {
		if _, n, _ := e2.Leads(context.Background(), analysis.LeadQuery{State: state}); n != want {
			t.Errorf("%s leads: %d, want %d", state, n, want)
		}
	}
	d := detail(t, e2, after.ID)
	if len(d.Leads) != 2 {
		t.Errorf("detail leads %+v", d.Leads)
	}
}

func TestAddToListKeepsExistingEntries(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 2 {
		_, err := f.st.AddToList(ctx, "local-confirmed", "OCRVP", watchEntry(i), "analyst-1", "lead confirmed")
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	if err := f.st.ListEntries(ctx, "local-confirmed", func(*watchEntryT) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}

func TestCatchUpFromWatermarkInASecondEngine(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	f.ingest(e, ob("10.1.2.3:51000", 1, observe.Complete, t0))
	// Another process stores observations the engine never saw.
	f.ingest(nil, ob("10.1.2.3:51000", 2, observe.Complete, t0.Add(time.Hour)), ob("10.8.8.8:6000", 3, observe.Announced, t0))
	e2 := f.engine()
	if err := e2.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := targets(t, e2, analysis.TargetQuery{})
	if len(got) != 2 || e2.Watermark() != 3 {
		t.Fatalf("after catch-up %d targets, watermark %d", len(got), e2.Watermark())
	}
	// The first engine, fed a later batch, reads the gap first.
	f.ingest(e, ob("10.1.2.3:51000", 4, observe.Complete, t0.Add(2*time.Hour)))
	if e.Watermark() != 4 {
		t.Fatalf("watermark %d after the gap, want 4", e.Watermark())
	}
	for _, x := range targets(t, e, analysis.TargetQuery{}) {
		if x.Label == "10.1.2.3:51000" && x.Files != 3 {
			t.Fatalf("the first engine missed the gap: %+v", x)
		}
	}
}

// Incremental Add over shuffled batches ends with the same targets as one
// rebuild over the same observations.
func TestShuffledBatchesMatchOneRebuild(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var obs []observe.Observation
	for dev := range 30 {
		node := byte(dev * 7)
		addrs := 1 + dev%3
		for k := range 8 {
			// An address's sightings lie within the endpoint window of
			// each other (whatever the arrival order, one endpoint), and
			// a device moves from one address to the next, never back.
			at := t0.Add(time.Duration(dev*13+k*2) * time.Hour)
			ep := fmt.Sprintf("10.%d.%d.1:%d", dev, k*addrs/8, 20000+dev)
			o := ob(ep, r.IntN(25), observe.Level(1+r.IntN(5)), at)
			if dev%2 == 0 {
				o = withNode(o, node)
			}
			if dev%5 == 1 {
				o.Client.PeerID = []byte(fmt.Sprintf("-TR3000-%012d", dev))
				o.Time = t0.Add(time.Duration(dev*13)*time.Hour + time.Duration(k)*10*time.Minute)
				o.ID = observe.NewID(o.Time)
			}
			obs = append(obs, o)
		}
	}
	summary := func(e *analysis.Engine) []string {
		var out []string
		for _, x := range targets(t, e, analysis.TargetQuery{}) {
			d := detail(t, e, x.ID)
			out = append(out, fmt.Sprintf("%v files=%d levels=%v score=%.2f", endpointsOf(d), x.Files, x.Levels, x.Score))
		}
		sort.Strings(out)
		return out
	}
	// One rebuild: every observation stored, then one catch-up.
	f1 := newFixture(t)
	f1.ingest(nil, obs...)
	e1 := f1.engine()
	if err := e1.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := summary(e1)
	t.Logf("rebuild: %d targets, watermark %d", len(want), e1.Watermark())
	for trial := range 3 {
		sh := slices.Clone(obs)
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		f2 := newFixture(t)
		e2 := f2.engine()
		for len(sh) > 0 {
			n := min(len(sh), 1+r.IntN(20))
			f2.ingest(e2, sh[:n]...)
			sh = sh[n:]
		}
		if got := summary(e2); !slices.Equal(got, want) {
			t.Fatalf("trial %d: shuffled batches\n%s\nwant\n%s", trial, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if len(want) >= len(obs)/8*3 {
		t.Fatalf("%d targets from 30 devices: the test links nothing", len(want))
	}
}

type watchEntryT = watchlist.Entry

func watchEntry(i int) watchlist.Entry {
	b := make([]byte, 20)
	b[0], b[19] = 0xCD, byte(i)
	return watchlist.Entry{Hash: hashkind.MustNew(hashkind.SHA1, b), Category: "1", Size: -1}
}

// Repetition is counted in independent sightings (distinct clock hours),
// not in observations: a sensor that asks every minute must not make a
// peer seen for half an hour look like a regular.
func TestRepetitionCountsHoursNotObservations(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	var burst, spread []observe.Observation
	for i := range 30 {
		burst = append(burst, ob("10.0.0.1:6881", 1, observe.Complete, t0.Add(time.Duration(i)*time.Minute)))
	}
	for i := range 8 {
		spread = append(spread, ob("10.0.0.2:6881", 1, observe.Complete, t0.Add(time.Duration(i)*3*time.Hour)))
	}
	f.ingest(e, burst...)
	f.ingest(e, spread...)
	parts := map[string]analysis.Parts{}
	for _, tg := range targets(t, e, analysis.TargetQuery{Scope: analysis.AllAgencies}) {
		parts[tg.Label] = tg.Parts
	}
	if p := parts["10.0.0.1:6881"][analysis.PartRepetition]; p != 0 {
		t.Errorf("30 observations within half an hour score repetition %.2f, want 0", p)
	}
	// 8 distinct hours for one file: 2 × log2(8) = 6.
	if p := parts["10.0.0.2:6881"][analysis.PartRepetition]; p != 6 {
		t.Errorf("8 sightings in 8 different hours score repetition %.2f, want 6", p)
	}
}
