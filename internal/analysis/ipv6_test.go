package analysis_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
)

// IPv6: the addresses a subscriber's machines draw in the prefix its ISP
// delegated (RFC 8981 temporary addresses change every day) group into one
// device by the subscriber_prefix rule, within the endpoint window; two
// subscribers never do. Addresses are documentation ones (RFC 3849).

// v6 is a first-hand probe at [ip]:41234 (not a client default port).
func v6(ip string, file int, at time.Time) observe.Observation {
	return ob("["+ip+"]:41234", file, observe.Complete, at)
}

func withClient(o observe.Observation, name, version string) observe.Observation {
	o.Client.Name, o.Client.Version = name, version
	return o
}

func activeLinks(t *testing.T, e *analysis.Engine) []analysis.Link {
	t.Helper()
	var out []analysis.Link
	for _, x := range targets(t, e, analysis.TargetQuery{}) {
		for _, l := range detail(t, e, x.ID).Links {
			if l.State == "active" {
				out = append(out, l)
			}
		}
	}
	return out
}

// A machine that moves from one temporary address to the next in its /64
// within the endpoint window is one device: the link names the prefix,
// the AS, where the length comes from, both addresses and the window.
func TestSubscriberPrefixJoinsTemporaryAddresses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table map[uint32]int
		basis string
	}{
		{"default length", nil, "default: AS64512 is not in the allocation table"},
		{"allocation table", map[uint32]int{64512: 64}, "from the allocation table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.IPv6.Prefixes = tc.table
			e := f.engine()
			f.ingest(e,
				v6("2001:db8:1:2:a8f3:11ff:fe42:9a01", 1, t0),
				v6("2001:db8:1:2:3c1a:92ff:fe00:4d21", 2, t0.Add(20*time.Hour)),
			)
			ts := targets(t, e, analysis.TargetQuery{})
			if len(ts) != 1 || ts[0].Endpoints != 2 || ts[0].Files != 2 {
				t.Fatalf("targets %+v: want one device of two endpoints and two files", ts)
			}
			d := detail(t, e, ts[0].ID)
			if len(d.Links) != 1 {
				t.Fatalf("links %+v, want one", d.Links)
			}
			l := d.Links[0]
			ev := "AS64512|2001:db8:1:2::/64|41234|default|Transmission|3.00"
			if tc.table != nil {
				ev = "AS64512|2001:db8:1:2::/64|41234|table|Transmission|3.00"
			}
			if l.Rule != analysis.RuleSubscriberPrefix || l.State != "active" || l.Evidence != ev || l.Confidence != 0.6 || len(l.Obs) != 2 {
				t.Fatalf("link %+v: want an active subscriber_prefix link on %s at 0.6 with both observations", l, ev)
			}
			for _, want := range []string{"2001:db8:1:2::/64 port 41234 in AS64512", "a /64 per subscriber", tc.basis, "client Transmission 3.00",
				"[2001:db8:1:2:a8f3:11ff:fe42:9a01]:41234 last seen 2026-03-01T10:00:00Z",
				"[2001:db8:1:2:3c1a:92ff:fe00:4d21]:41234 first seen 2026-03-02T06:00:00Z", "endpoint window (24h0m0s)"} {
				if !strings.Contains(l.Reason, want) {
					t.Errorf("reason %q lacks %q", l.Reason, want)
				}
			}
			// A link never raises a level, and the linked endpoint counts at
			// the rule's confidence.
			for _, ep := range d.Endpoints {
				if ep.Confidence != 1 && ep.Confidence != 0.6 {
					t.Errorf("endpoint %s at confidence %v, want 1 or 0.6", ep.IP, ep.Confidence)
				}
			}
		})
	}
}

// Everything that must not join two IPv6 endpoints, each against the same
// pair of sightings that the rule would otherwise join.
func TestSubscriberPrefixRefuses(t *testing.T) {
	a := func(ip string) observe.Observation { return v6(ip, 1, t0) }
	b := func(ip string) observe.Observation { return v6(ip, 2, t0.Add(3*time.Hour)) }
	withAS := func(o observe.Observation, asn uint32, org string) observe.Observation {
		o.Place.ASN, o.Place.Org = asn, org
		return o
	}
	cases := []struct {
		name  string
		table map[uint32]int
		obs   []observe.Observation
	}{
		{"the same /64 past the endpoint window (the prefix was reassigned)", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), v6("2001:db8:1:2::b", 2, t0.Add(25*time.Hour))}},
		{"two /64s of one /56 where the ISP gives each subscriber a /64", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), b("2001:db8:1:3::a")}},
		{"one /64 where the ISP hands single addresses out of a shared /64", map[uint32]int{64512: 128},
			[]observe.Observation{a("2001:db8:1:2::a"), b("2001:db8:1:2::b")}},
		{"one /56 where the ISP gives each subscriber a /60", map[uint32]int{64512: 60},
			[]observe.Observation{a("2001:db8:1:2::a"), b("2001:db8:1:12::a")}},
		{"one /64 placed in two ASes (a neighbour at another ISP)", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), withAS(b("2001:db8:1:2::b"), 64513, "Other Telecom")}},
		{"one /64 of a hosting provider (customers share it)", nil,
			[]observe.Observation{func() observe.Observation { o := a("2001:db8:1:2::a"); o.Place.Hosting = true; return o }(), b("2001:db8:1:2::b")}},
		{"one /64 of a VPN provider (exits share it)", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), func() observe.Observation { o := b("2001:db8:1:2::b"); o.Place.VPN = true; return o }()}},
		{"an unknown AS", nil,
			[]observe.Observation{withAS(a("2001:db8:1:2::a"), 0, ""), withAS(b("2001:db8:1:2::b"), 0, "")}},
		{"a client default port (two machines of one network may both use it)", nil,
			[]observe.Observation{ob("[2001:db8:1:2::a]:51413", 1, observe.Complete, t0), ob("[2001:db8:1:2::b]:51413", 2, observe.Complete, t0.Add(3*time.Hour))}},
		// Two machines of one shared /64 (a campus, an office, a hotspot)
		// on one port that is no default, told apart by their clients.
		{"two clients on one port", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), withClient(b("2001:db8:1:2::b"), "qBittorrent", "4.6.2")}},
		{"two versions of one client on one port", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), withClient(b("2001:db8:1:2::b"), "Transmission", "4.0.5")}},
		{"no client named (nothing tells two machines apart)", nil,
			[]observe.Observation{withClient(a("2001:db8:1:2::a"), "", ""), withClient(b("2001:db8:1:2::b"), "", "")}},
		{"qBittorrent's old default port 8999", nil,
			[]observe.Observation{ob("[2001:db8:1:2::a]:8999", 1, observe.Complete, t0), ob("[2001:db8:1:2::b]:8999", 2, observe.Complete, t0.Add(3*time.Hour))}},
		{"aria2's default range (6881-6999)", nil,
			[]observe.Observation{ob("[2001:db8:1:2::a]:6999", 1, observe.Complete, t0), ob("[2001:db8:1:2::b]:6999", 2, observe.Complete, t0.Add(3*time.Hour))}},
		{"aria2's default range, low end", nil,
			[]observe.Observation{ob("[2001:db8:1:2::a]:6890", 1, observe.Complete, t0), ob("[2001:db8:1:2::b]:6890", 2, observe.Complete, t0.Add(3*time.Hour))}},
		{"two ports", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), ob("[2001:db8:1:2::b]:41235", 2, observe.Complete, t0.Add(3*time.Hour))}},
		{"Teredo (one /64 per relay, shared by its clients)", nil,
			[]observe.Observation{a("2001:0:4136:e378:8000:63bf:3fff:fdd2"), b("2001:0:4136:e378:8000:63bf:3fff:fdd3")}},
		{"6to4 (derived from an IPv4 address)", nil,
			[]observe.Observation{a("2002:c000:204::1"), b("2002:c000:204::2")}},
		{"NAT64 (the IPv4 internet in one /96)", nil,
			[]observe.Observation{a("64:ff9b::c000:201"), b("64:ff9b::c000:202")}},
		{"link-local (every link's fe80::/64)", nil,
			[]observe.Observation{a("fe80::1"), b("fe80::2")}},
		{"IPv4 addresses of one /24", nil,
			[]observe.Observation{ob("192.0.2.1:41234", 1, observe.Complete, t0), ob("192.0.2.2:41234", 2, observe.Complete, t0.Add(3*time.Hour))}},
		// Third parties' claims link nothing: a tracker, a PEX peer or a
		// DHT node may name any address of a victim's /64.
		{"a tracker names another address of the victim's /64", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), thirdParty(b("2001:db8:1:2::b"), observe.MethodTracker)}},
		{"PEX names another address of the victim's /64", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), thirdParty(b("2001:db8:1:2::b"), observe.MethodPEX)}},
		{"a get_peers reply names another address of the victim's /64", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), thirdParty(b("2001:db8:1:2::b"), observe.MethodDHTGetPeers)}},
		// Two machines in one /64 at once (a shared network, a hostile
		// neighbour who chose the victim's port): withdrawn for good.
		{"a neighbour active in the victim's /64 at the same time", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), v6("2001:db8:1:2::b", 2, t0.Add(time.Hour)), v6("2001:db8:1:2::a", 1, t0.Add(2*time.Hour))}},
		{"a neighbour within two minutes of the victim", nil,
			[]observe.Observation{a("2001:db8:1:2::a"), v6("2001:db8:1:2::b", 2, t0.Add(90*time.Second))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.IPv6.Prefixes = c.table
			e := f.engine()
			f.ingest(e, c.obs...)
			if ls := activeLinks(t, e); len(ls) != 0 {
				t.Fatalf("active links %+v, want none", ls)
			}
			for _, x := range targets(t, e, analysis.TargetQuery{}) {
				if x.Endpoints != 1 {
					t.Fatalf("target %+v joins %d endpoints, want each apart", x, x.Endpoints)
				}
			}
		})
	}
}

// The allocation table may say that an ISP gives each subscriber a /56:
// two /64s of one subscriber's /56 then join; a /56 next to it does not.
func TestSubscriberPrefixFollowsTheAllocationTable(t *testing.T) {
	f := newFixture(t)
	f.cfg.IPv6.Prefixes = map[uint32]int{64512: 56}
	e := f.engine()
	f.ingest(e,
		v6("2001:db8:1:200::a", 1, t0),
		v6("2001:db8:1:2ff::b", 2, t0.Add(3*time.Hour)),
		v6("2001:db8:1:300::c", 3, t0.Add(6*time.Hour)), // the next subscriber's /56
	)
	ls := activeLinks(t, e)
	if len(ls) != 1 || ls[0].Evidence != "AS64512|2001:db8:1:200::/56|41234|table|Transmission|3.00" || !strings.Contains(ls[0].Reason, "a /56 per subscriber, from the allocation table") {
		t.Fatalf("links %+v: want one, on 2001:db8:1:200::/56 from the table", ls)
	}
	if n := len(targets(t, e, analysis.TargetQuery{})); n != 2 {
		t.Fatalf("%d targets, want the /56's device and the next subscriber", n)
	}
}

// A neighbour on a shared /64 who takes the victim's port is linked while
// the two are seen one after the other (the known limit of the default
// length), and the link is withdrawn, with why, as soon as the two are seen
// at once: the victim's target then holds only its own file.
func TestSubscriberPrefixWithdrawnWhenTwoMachinesShowUp(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	f.ingest(e, v6("2001:db8:7:7::a", 1, t0), v6("2001:db8:7:7::b", 2, t0.Add(time.Hour)))
	if ls := activeLinks(t, e); len(ls) != 1 {
		t.Fatalf("links %+v before the two are seen at once, want one", ls)
	}
	f.ingest(e, v6("2001:db8:7:7::a", 1, t0.Add(90*time.Minute)), v6("2001:db8:7:7::b", 2, t0.Add(91*time.Minute)))
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 2 {
		t.Fatalf("targets %+v, want the victim and the neighbour apart", ts)
	}
	for _, x := range ts {
		if x.Files != 1 {
			t.Errorf("target %+v holds %d files, want its own only", x, x.Files)
		}
		for _, l := range detail(t, e, x.ID).Links {
			if l.State != "withdrawn" || !strings.Contains(l.Note, "two machines in one prefix") {
				t.Errorf("link %+v: want withdrawn, saying two machines were seen in one prefix", l)
			}
		}
	}
}

// A household seen at a new temporary address every day for ten weeks
// stays one device: the cap on endpoints per identifier (64) does not apply
// to a prefix, each link stays within the window.
func TestSubscriberPrefixOverManyDays(t *testing.T) {
	f := newFixture(t)
	f.now = t0.Add(80 * 24 * time.Hour)
	e := f.engine()
	var obs []observe.Observation
	for d := range 70 {
		obs = append(obs, v6(fmt.Sprintf("2001:db8:2:2::%x", d+1), 1, t0.Add(time.Duration(d)*24*time.Hour)))
	}
	f.ingest(e, obs...)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 || ts[0].Endpoints != 70 {
		t.Fatalf("%d targets (first %+v), want one device of 70 endpoints", len(ts), ts[0])
	}
	// But four addresses of one /64 and port within one clock hour is a
	// shared network: withdrawn.
	f2 := newFixture(t)
	e2 := f2.engine()
	for i := range 4 {
		f2.ingest(e2, v6(fmt.Sprintf("2001:db8:3:3::%x", i+1), i, t0.Add(time.Duration(i)*15*time.Minute)))
	}
	if ls := activeLinks(t, e2); len(ls) != 0 {
		t.Fatalf("links %+v from four addresses in one hour, want none", ls)
	}
}

// The grouping lasts only the endpoint window: a longer --endpoint-window
// joins what the default one keeps apart.
func TestSubscriberPrefixFollowsTheEndpointWindow(t *testing.T) {
	for _, tc := range []struct {
		window time.Duration
		want   int
	}{{24 * time.Hour, 2}, {48 * time.Hour, 1}} {
		f := newFixture(t)
		f.cfg.EndpointWindow = tc.window
		e := f.engine()
		f.ingest(e, v6("2001:db8:1:2::a", 1, t0), v6("2001:db8:1:2::b", 2, t0.Add(30*time.Hour)))
		if n := len(targets(t, e, analysis.TargetQuery{})); n != tc.want {
			t.Errorf("window %v: %d targets, want %d", tc.window, n, tc.want)
		}
	}
}

// One peer id at an IPv4 and an IPv6 address (a dual-stack client): a
// third party's claims of either never link; first-hand sightings link by
// the peer_id_session rule like any two addresses, with the reason shown,
// and never when seen at once (two addresses at once is a replay or two
// machines, whatever their families).
func TestPeerIDAcrossFamilies(t *testing.T) {
	const pid = "-TR3000-d2u4l5s6t7k8"
	v4 := func(at time.Time) observe.Observation {
		return withPeerID(ob("192.0.2.50:41234", 1, observe.Complete, at), pid)
	}
	six := func(at time.Time) observe.Observation {
		return withPeerID(ob("[2001:db8:5:6::7]:41234", 2, observe.Complete, at), pid)
	}
	for _, tc := range []struct {
		name string
		obs  []observe.Observation
		link bool
	}{
		{"tracker and PEX", []observe.Observation{thirdParty(v4(t0), observe.MethodTracker), thirdParty(six(t0.Add(10*time.Minute)), observe.MethodPEX)}, false},
		{"get_peers replies", []observe.Observation{thirdParty(v4(t0), observe.MethodDHTGetPeers), thirdParty(six(t0.Add(10*time.Minute)), observe.MethodDHTGetPeers)}, false},
		{"a probe and a PEX claim", []observe.Observation{v4(t0), thirdParty(six(t0.Add(10*time.Minute)), observe.MethodPEX)}, false},
		{"a tracker claim and a probe", []observe.Observation{thirdParty(v4(t0), observe.MethodTracker), six(t0.Add(10 * time.Minute))}, false},
		{"two probes at once", []observe.Observation{v4(t0), six(t0.Add(30 * time.Second))}, false},
		{"two probes ten minutes apart", []observe.Observation{v4(t0), six(t0.Add(10 * time.Minute))}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			e := f.engine()
			f.ingest(e, tc.obs...)
			ls := activeLinks(t, e)
			if !tc.link {
				if len(ls) != 0 {
					t.Fatalf("links %+v, want none", ls)
				}
				return
			}
			if len(ls) != 1 || ls[0].Rule != analysis.RulePeerID {
				t.Fatalf("links %+v, want one peer_id_session link", ls)
			}
			for _, want := range []string{"same peer id", "192.0.2.50:41234", "[2001:db8:5:6::7]:41234"} {
				if !strings.Contains(ls[0].Reason, want) {
					t.Errorf("reason %q lacks %q", ls[0].Reason, want)
				}
			}
		})
	}
}

func TestParseIPv6Config(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "64"},
		{"64", "64"},
		{"default=128", "128"},
		{"64,AS3215=56,as64500=128, 12322=/60", "64,AS3215=56,AS12322=60,AS64500=128"},
	} {
		c, err := analysis.ParseIPv6Config(tc.in)
		if err != nil || c.String() != tc.want {
			t.Errorf("ParseIPv6Config(%q) = %s, %v; want %s", tc.in, c, err, tc.want)
		}
	}
	c, _ := analysis.ParseIPv6Config("60,AS3215=56")
	if b, known := c.Prefix(3215); b != 56 || !known {
		t.Errorf("AS3215: /%d known=%v", b, known)
	}
	if b, known := c.Prefix(1); b != 60 || known {
		t.Errorf("AS1: /%d known=%v, want the default /60", b, known)
	}
	for _, bad := range []string{"32", "129", "AS3215=40", "ASx=64", "AS0=64", "AS1=64,AS1=56", "64,default=56", "64,AS1", "sixty-four"} {
		if _, err := analysis.ParseIPv6Config(bad); err == nil {
			t.Errorf("ParseIPv6Config(%q): no error", bad)
		}
	}
	f := newFixture(t)
	f.cfg.IPv6.Prefixes = map[uint32]int{64512: 32}
	if _, err := analysis.New(t.Context(), f.st, f.cfg); err == nil || !strings.Contains(err.Error(), "AS64512") {
		t.Errorf("New with a /32 subscriber prefix: %v, want an error naming the AS", err)
	}
}

// The subscriber_prefix rule gives the same devices whatever the order and
// the batches observations arrive in: households moving from one temporary
// address to the next, and /64s where two machines are seen at once.
func TestSubscriberPrefixIgnoresArrivalOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var obs []observe.Observation
	for hh := range 16 {
		port := 30000 + hh
		addrs := 1 + hh%3
		for k := range 9 {
			a := k * addrs / 9 // moves from one address to the next, never back
			at := t0.Add(time.Duration(hh*30)*time.Hour + time.Duration(a)*6*time.Hour + time.Duration(k%3)*20*time.Minute)
			ep := fmt.Sprintf("[2001:db8:%x:1::%x]:%d", hh, a+1, port)
			obs = append(obs, ob(ep, r.IntN(25), observe.Level(1+r.IntN(5)), at))
		}
		if hh%4 == 3 { // a second machine in the /64, at once
			obs = append(obs, ob(fmt.Sprintf("[2001:db8:%x:1::99]:%d", hh, port), 30, observe.Complete, t0.Add(time.Duration(hh*30)*time.Hour)))
		}
	}
	summary := func(e *analysis.Engine) []string {
		var out []string
		for _, x := range targets(t, e, analysis.TargetQuery{}) {
			d := detail(t, e, x.ID)
			// Active links only: whether a withdrawn one is on record
			// depends on whether the two machines were seen at once
			// before or after the link was made.
			var links []string
			for _, l := range d.Links {
				if l.State == "active" {
					links = append(links, l.Evidence)
				}
			}
			sort.Strings(links)
			out = append(out, fmt.Sprintf("%v files=%d levels=%v score=%.2f links=%v", endpointsOf(d), x.Files, x.Levels, x.Score, links))
		}
		sort.Strings(out)
		return out
	}
	f1 := newFixture(t)
	f1.ingest(nil, obs...)
	e1 := f1.engine()
	if err := e1.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := summary(e1)
	for trial := range 3 {
		sh := slices.Clone(obs)
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		f2 := newFixture(t)
		e2 := f2.engine()
		for len(sh) > 0 {
			n := min(len(sh), 1+r.IntN(10))
			f2.ingest(e2, sh[:n]...)
			sh = sh[n:]
		}
		if got := summary(e2); !slices.Equal(got, want) {
			t.Fatalf("trial %d: shuffled batches\n%s\nwant\n%s", trial, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// 16 households of 1 to 3 addresses, four of them (3, 7, 11, 15) with
	// a second machine: the twelve others are one target each, and the four
	// with two machines keep every address apart (1, 2, 3 and 1 addresses,
	// plus the machine's own).
	if got, wantN := len(want), 12+(1+1)+(2+1)+(3+1)+(1+1); got != wantN {
		t.Fatalf("%d targets, want %d:\n%s", got, wantN, strings.Join(want, "\n"))
	}
}

// FuzzParseIPv6Config: whatever --ipv6-prefixes says, it is refused or
// read into lengths of 48 to 128 that print back to the same setting.
func FuzzParseIPv6Config(f *testing.F) {
	for _, s := range []string{"", "64", "default=56", "64,AS3215=56,AS64500=128", "as1=48, 2=/128", "AS0=64", "64,AS1=64,AS1=56", "AS=", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := analysis.ParseIPv6Config(s)
		if err != nil {
			return
		}
		check := func(b int) {
			if b < 48 || b > 128 {
				t.Fatalf("%q: length %d", s, b)
			}
		}
		check(c.DefaultPrefix)
		for _, b := range c.Prefixes {
			check(b)
		}
		back, err := analysis.ParseIPv6Config(c.String())
		if err != nil || back.String() != c.String() {
			t.Fatalf("%q: %s reads back as %s, %v", s, c, back, err)
		}
	})
}

// The link's evidence is what the ISP request reads its prefix note from
// (internal/isp parses "AS<asn>|<prefix>|<port>|<basis>"): end to end, the
// rows of a device joined by subscriber_prefix say the prefix and the
// allocation, as internal/api builds the request (active links, every
// timeline entry).
func TestSubscriberPrefixReachesTheISPRequest(t *testing.T) {
	f := newFixture(t)
	f.cfg.IPv6.Prefixes = map[uint32]int{64512: 64}
	e := f.engine()
	probe := func(ip string, file int, at time.Time) observe.Observation {
		o := v6(ip, file, at)
		o.Endpoint.Local = netip.MustParseAddrPort("[2001:db8:ffff::1]:6881")
		o.Transcript.SHA256 = bytes.Repeat([]byte{byte(file)}, 32)
		return o
	}
	f.ingest(e,
		probe("2001:db8:1:2::a", 1, t0), probe("2001:db8:1:2::a", 1, t0.Add(time.Hour)),
		probe("2001:db8:1:2::b", 2, t0.Add(20*time.Hour)), probe("2001:db8:1:2::b", 2, t0.Add(21*time.Hour)),
	)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 {
		t.Fatalf("targets %+v, want one device", ts)
	}
	d, err := f.st.TargetWithTimeline(t.Context(), ts[0].ID, analysis.AllAgencies, 100)
	if err != nil {
		t.Fatal(err)
	}
	tg := isp.Target{ID: d.ID}
	for _, l := range d.Links {
		if l.State == "active" {
			tg.Links = append(tg.Links, isp.Link{A: l.A, B: l.B, Rule: l.Rule, Evidence: l.Evidence, Reason: l.Reason, Confidence: l.Confidence, State: l.State})
		}
	}
	var s []isp.Sighting
	for i := range d.Timeline {
		o := d.Timeline[i].Observation()
		s = append(s, isp.FromObservation(&o))
	}
	req := isp.Build(tg, s, f.now, isp.DefaultRetention())
	if req.Kept != 4 || len(req.Groups) != 1 {
		t.Fatalf("request: %d rows in %d groups, annex %+v", req.Kept, len(req.Groups), req.Annex)
	}
	for _, r := range req.Groups[0].Rows {
		if r.SubscriberPrefix.String() != "2001:db8:1:2::/64" || r.PrefixNote.EN != "subscriber prefix 2001:db8:1:2::/64 (/64 per Lab Telecom allocation)" {
			t.Errorf("row %s:%d: prefix %v, note %q", r.IP, r.Port, r.SubscriberPrefix, r.PrefixNote.EN)
		}
	}
}

// An analyst's rejection of a subscriber_prefix link stored before the
// client was part of the evidence still rejects that prefix and port.
func TestSubscriberPrefixOldRejectionStillHolds(t *testing.T) {
	f := newFixture(t)
	if err := f.st.AnalysisSave(t.Context(), &analysis.Changes{Decisions: []analysis.Decision{{
		At: t0, By: "analyst", Why: "a campus network", Kind: analysis.DecideUnlink,
		Subject: analysis.RuleSubscriberPrefix + "|AS64512|2001:db8:1:2::/64|41234|default"}}}); err != nil {
		t.Fatal(err)
	}
	e := f.engine()
	f.ingest(e, v6("2001:db8:1:2::a", 1, t0), v6("2001:db8:1:2::b", 2, t0.Add(3*time.Hour)))
	if ls := activeLinks(t, e); len(ls) != 0 {
		t.Fatalf("active links %+v, want none: the prefix and port were rejected", ls)
	}
}
