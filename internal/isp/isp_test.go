package isp

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Synthetic data only: documentation addresses (RFC 5737, RFC 3849) and
// documentation AS numbers (RFC 5398).
var (
	fixedNow = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	item     = "btih:" + strings.Repeat("ab", 20)
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func testRetention() Retention {
	r := DefaultRetention()
	r.ByCountry["ZZ"] = Period{Days: 30}
	return r
}

// sensorAt is the sensor's own address in the fixture's conversations.
var sensorAt = netip.MustParseAddrPort("198.51.100.200:6881")

// sum is a stand-in transcript digest, distinct per observation id.
func sum(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// fh makes a bare sighting a first-hand probe (the endpoint talked to the
// sensor, with both ends and a transcript), keeping what is set.
func fh(x Sighting) Sighting {
	if x.Method == "" {
		x.Method = observe.MethodPeerProbe
	}
	if x.Transport == "" {
		x.Transport = "tcp"
	}
	if !x.SensorAddress.IsValid() {
		x.SensorAddress = sensorAt
	}
	if x.TranscriptSHA256 == "" {
		x.TranscriptSHA256 = sum(x.ObservationID + x.Time.String() + x.IP.String())
	}
	return x
}

func fixture() (Target, []Sighting) {
	tg := Target{ID: "T-0001", Case: "2026/0042", Jurisdiction: "ocrvp", Agency: "Office central (lab)", Score: 7.5}
	fr := func(ip string, port uint16, tr, at string) Sighting {
		return fh(Sighting{IP: netip.MustParseAddr(ip), Port: port, Transport: tr, Time: ts(at),
			ClockKnown: true, ClockOffset: 512 * time.Microsecond, ClockUncertainty: 250 * time.Microsecond,
			ClockSource: "ntp:127.0.0.1:123", ObservationID: "obs-" + at,
			Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Level: observe.Acknowledged,
			Item: item, ASN: 64496, Org: `Example "Telecom", S.A.`, Country: "FR"})
	}
	zz := func(id, tr, at string, first bool) Sighting {
		x := Sighting{IP: netip.MustParseAddr("198.51.100.5"), Port: 40000, Transport: tr, Time: ts(at),
			ClockSource: "none", ObservationID: id, Network: observe.NetBitTorrent, Method: observe.MethodDHTAnnounce,
			Level: observe.Announced, Item: item, ASN: 64497, Org: "=Formula Net", Country: "ZZ"}
		if first {
			x = fh(x)
		}
		return x
	}
	v6 := func(id, at string) Sighting {
		return fh(Sighting{IP: netip.MustParseAddr("2001:db8::1"), Port: 6881, Transport: "tcp", Time: ts(at),
			ClockKnown: true, ClockOffset: -2500 * time.Microsecond, ClockUncertainty: 1_250_500 * time.Nanosecond,
			ClockSource: "ntp:127.0.0.1:123", ObservationID: id,
			Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Level: observe.Complete, Item: item, VPN: true})
	}
	host := func(id string, port uint16, m, at string) Sighting {
		x := Sighting{IP: netip.MustParseAddr("203.0.113.9"), Port: port, Transport: "tcp", Time: ts(at),
			ObservationID: id, Network: observe.NetBitTorrent, Method: m, Level: observe.Acknowledged,
			Item: item, ASN: 64498, Org: "Hosting Co", Country: "FR", Hosting: true}
		if m == observe.MethodPeerProbe {
			x = fh(x)
		}
		return x
	}
	tracker := fr("192.0.2.77", 6881, "tcp", "2026-01-06T10:00:00Z")
	tracker.Method, tracker.SensorAddress, tracker.TranscriptSHA256, tracker.ObservationID = observe.MethodTracker, netip.AddrPort{}, "", "obs-tracker"
	tracker.Level = observe.Announced
	s := []Sighting{
		fr("192.0.2.10", 51413, "tcp", "2026-02-10T08:00:00.123456789Z"),
		fr("192.0.2.10", 51413, "utp", "2026-02-11T07:30:00.5Z"),
		fr("192.0.2.77", 6881, "utp", "2026-01-05T23:59:59.999Z"),
		tracker, // a third party's claim: annex, but it is a second instant of 192.0.2.77
		fr("192.0.2.10", 51413, "tcp", "2025-01-01T00:00:00Z"), // older than a year: annex
		zz("obs-zz-1", "udp", "2026-02-25T12:00:00Z", true),
		zz("obs-zz-2", "udp", "2026-02-26T12:00:00Z", true),
		zz("obs-zz-tcp", "tcp", "2026-02-27T12:00:00Z", true), // an announce with its declared port: annex
		zz("obs-zz-0", "udp", "2026-01-01T12:00:00Z", true),   // older than 30 days: annex
		v6("obs-v6", "2026-02-20T01:02:03.004Z"),
		v6("obs-v6-2", "2026-02-20T02:00:00Z"),
		host("obs-host", 0, observe.MethodPEX, "2026-02-28T00:00:00Z"), // third party: annex
		host("obs-host-1", 6881, observe.MethodPeerProbe, "2026-02-27T00:00:00Z"),
		host("obs-host-2", 6881, observe.MethodPeerProbe, "2026-02-27T01:00:00Z"),
		{ObservationID: "obs-noaddr", Time: ts("2026-02-28T00:00:00Z")}, // no address
	}
	return tg, s
}

func group(t *testing.T, r *Request, asn uint32) *Group {
	t.Helper()
	for i := range r.Groups {
		if r.Groups[i].ASN == asn {
			return &r.Groups[i]
		}
	}
	t.Fatalf("no group for AS%d in %+v", asn, r.Groups)
	return nil
}

func TestBuildGroupsByISPAndCountry(t *testing.T) {
	tg, s := fixture()
	req := Build(tg, s, fixedNow, testRetention())
	var got []string
	for _, g := range req.Groups {
		got = append(got, g.ISP()+"/"+g.Country)
	}
	want := []string{`Example "Telecom", S.A./FR`, "=Formula Net/ZZ", "Hosting Co/FR", "unknown ISP/"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("groups = %q, want %q", got, want)
	}
	if req.Sightings != 15 || req.Kept != 9 || req.Dropped != 6 || len(req.Annex) != 6 {
		t.Fatalf("counts sightings/kept/dropped/annex = %d/%d/%d/%d, want 15/9/6/6", req.Sightings, req.Kept, req.Dropped, len(req.Annex))
	}
	if !req.Has(NoteNoAddress) {
		t.Errorf("no %q note for the sighting without address: %+v", NoteNoAddress, req.Notes)
	}
	for i, g := range req.Groups {
		if want := req.ID + "-0" + string(rune('1'+i)); g.ID != want {
			t.Errorf("group %d id %q, want %q", i, g.ID, want)
		}
	}
	// The same ASN in two countries makes two letters.
	var s2 []Sighting
	for _, at := range []time.Time{fixedNow.Add(-time.Hour), fixedNow.Add(-2 * time.Hour)} {
		s2 = append(s2,
			fh(Sighting{IP: netip.MustParseAddr("192.0.2.1"), Port: 1, Time: at, ASN: 64496, Org: "A", Country: "FR"}),
			fh(Sighting{IP: netip.MustParseAddr("192.0.2.2"), Port: 1, Time: at, ASN: 64496, Org: "A", Country: "be"}),
			fh(Sighting{IP: netip.MustParseAddr("192.0.2.3"), Port: 1, Time: at, ASN: 64496, Org: " A ", Country: "FR"}))
	}
	r2 := Build(tg, s2, fixedNow, DefaultRetention())
	if len(r2.Groups) != 2 || r2.Groups[0].Country != "BE" || r2.Groups[1].Country != "FR" || len(r2.Groups[1].Rows) != 4 {
		t.Fatalf("same ASN in BE and FR: groups %+v", r2.Groups)
	}
}

func TestBuildLeavesInputAlone(t *testing.T) {
	tg, s := fixture()
	before := append([]Sighting(nil), s...)
	Build(tg, s, fixedNow, testRetention())
	for i := range s {
		if !reflect.DeepEqual(s[i], before[i]) {
			t.Fatalf("sighting %d changed: %+v, was %+v", i, s[i], before[i])
		}
	}
}

func TestBuildOrdersRowsByTime(t *testing.T) {
	tg, s := fixture()
	req := Build(tg, s, fixedNow, testRetention())
	g := group(t, &req, 64496)
	var got []string
	for _, r := range g.Rows {
		got = append(got, r.Time.Format(TimeLayout)+" "+r.Transport)
	}
	want := []string{"2026-01-05T23:59:59.999Z utp", "2026-02-10T08:00:00.123Z tcp", "2026-02-11T07:30:00.500Z utp"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("rows = %q, want %q", got, want)
	}
	for i, r := range g.Rows {
		if r.Line != i+1 {
			t.Errorf("row %d has line %d", i, r.Line)
		}
	}
	// Same instant: address, then port, then observation id decide.
	at := fixedNow.Add(-time.Hour)
	s2 := []Sighting{
		fh(Sighting{IP: netip.MustParseAddr("192.0.2.9"), Port: 2, Time: at, ObservationID: "b", ASN: 1}),
		fh(Sighting{IP: netip.MustParseAddr("192.0.2.9"), Port: 2, Time: at, ObservationID: "a", ASN: 1}),
		fh(Sighting{IP: netip.MustParseAddr("192.0.2.9"), Port: 1, Time: at, ObservationID: "c", ASN: 1}),
		fh(Sighting{IP: netip.MustParseAddr("192.0.2.1"), Port: 9, Time: at, ObservationID: "d", ASN: 1}),
		// A second instant of each address, so that none is seen once.
		fh(Sighting{IP: netip.MustParseAddr("192.0.2.9"), Port: 2, Time: at.Add(time.Second), ObservationID: "e", ASN: 1}),
		fh(Sighting{IP: netip.MustParseAddr("192.0.2.1"), Port: 9, Time: at.Add(time.Second), ObservationID: "f", ASN: 1}),
	}
	r2 := Build(tg, s2, fixedNow, DefaultRetention())
	got = nil
	for _, r := range r2.Groups[0].Rows {
		got = append(got, r.ObservationID)
	}
	if strings.Join(got, "") != "dcabfe" {
		t.Fatalf("tie order = %q, want d c a b", got)
	}
}

func TestBuildRetentionCutoff(t *testing.T) {
	fr := DefaultRetention()
	cut := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		at       time.Time
		country  string
		r        Retention
		kept     bool
		wantNote bool
	}{
		{"exactly at the cut-off is kept", cut, "FR", fr, true, false},
		{"one millisecond before is dropped", cut.Add(-time.Millisecond), "FR", fr, false, true},
		{"one nanosecond before is dropped", cut.Add(-time.Nanosecond), "FR", fr, false, true},
		{"just after is kept", cut.Add(time.Millisecond), "FR", fr, true, false},
		{"unknown country uses the default", cut.Add(-time.Second), "", fr, false, true},
		{"a country's own period", fixedNow.AddDate(0, 0, -31), "ZZ", testRetention(), false, true},
		{"within a country's own period", fixedNow.AddDate(0, 0, -29), "ZZ", testRetention(), true, false},
		{"a zero period drops everything", fixedNow.Add(-time.Millisecond), "ZZ",
			Retention{Default: Period{Years: 1}, ByCountry: map[string]Period{"ZZ": {}}}, false, true},
		{"in the future is kept", fixedNow.Add(time.Hour), "FR", fr, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A tracker's claim of the same address at another instant
			// within retention and within the endpoint window of the
			// sighting, so that a kept sighting is not seen once.
			claim := Sighting{IP: netip.MustParseAddr("192.0.2.1"), Port: 1, Transport: "tcp", Time: tc.at.Add(time.Minute), ASN: 64496,
				Org: "A", Country: tc.country, Method: observe.MethodTracker, ObservationID: "claim"}
			if tc.r.For(tc.country).Cutoff(fixedNow).After(claim.Time) {
				claim.Time = fixedNow.Add(time.Hour)
			}
			s := []Sighting{
				fh(Sighting{IP: netip.MustParseAddr("192.0.2.1"), Port: 1, Transport: "tcp", Time: tc.at, ASN: 64496, Org: "A", Country: tc.country, ObservationID: "x"}),
				claim,
			}
			req := Build(Target{ID: "T"}, s, fixedNow, tc.r)
			g := group(t, &req, 64496)
			if got := len(g.Rows) == 1 && g.Rows[0].ObservationID == "x"; got != tc.kept {
				t.Fatalf("kept = %v, want %v (cut-off %s)", got, tc.kept, g.Cutoff.Format(TimeLayout))
			}
			if got := g.Has(NoteRetention); got != tc.wantNote {
				t.Fatalf("retention note = %v, want %v: %+v", got, tc.wantNote, g.Notes)
			}
			if tc.wantNote {
				n := g.Notes[0]
				if !strings.Contains(n.EN, "1 sighting(s) before "+g.Cutoff.Format(TimeLayout)) ||
					!strings.Contains(n.FR, g.Cutoff.Format(TimeLayout)) {
					t.Errorf("retention note does not give the count and the cut-off: %+v", n)
				}
				if !req.Has(NoteNothing) {
					t.Errorf("nothing left to ask, but no %q note: %+v", NoteNothing, req.Notes)
				}
			}
		})
	}
}

func TestPeriodCutoffIsCalendar(t *testing.T) {
	// A year back from 1 March 2025 is 1 March 2024, across 29 February.
	now := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	if got, want := (Period{Years: 1}).Cutoff(now), time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("cutoff = %v, want %v", got, want)
	}
	// The day is clamped to the end of a shorter month.
	for _, tc := range []struct {
		p         Period
		now, want string
	}{
		{Period{Years: 1}, "2024-02-29T12:00:00Z", "2023-02-28T12:00:00Z"},
		{Period{Months: 6}, "2025-08-31T08:00:00.5Z", "2025-02-28T08:00:00.5Z"},
		{Period{Months: 1}, "2025-03-31T00:00:00Z", "2025-02-28T00:00:00Z"},
		{Period{Months: 14}, "2025-01-15T00:00:00Z", "2023-11-15T00:00:00Z"},
		{Period{Months: 12, Days: 1}, "2025-01-01T00:00:00Z", "2023-12-31T00:00:00Z"},
		{Period{Days: 90}, "2025-03-01T00:00:00Z", "2024-12-01T00:00:00Z"},
		{Period{}, "2025-03-01T00:00:00Z", "2025-03-01T00:00:00Z"},
	} {
		if got := tc.p.Cutoff(ts(tc.now)); !got.Equal(ts(tc.want)) {
			t.Errorf("%v back from %s = %s, want %s", tc.p, tc.now, got.Format(time.RFC3339Nano), tc.want)
		}
	}
	// Local times are taken in UTC.
	paris := time.FixedZone("CET", 3600)
	if got, want := (Period{Months: 6}).Cutoff(time.Date(2025, 9, 1, 0, 30, 0, 0, paris)), time.Date(2025, 2, 28, 23, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("cutoff = %v, want %v", got, want)
	}
}

func TestBuildSeenOnce(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	at := fixedNow.Add(-time.Hour)
	sg := func(ip netip.Addr, tm time.Time, asn uint32) Sighting {
		return fh(Sighting{IP: ip, Port: 1000, Transport: "tcp", Time: tm, ASN: asn, Org: "A", Country: "FR"})
	}
	claim := func(tm time.Time) Sighting {
		return Sighting{IP: a, Port: 1000, Transport: "tcp", Time: tm, ASN: 1, Org: "A", Country: "FR", Method: observe.MethodPEX}
	}
	tests := []struct {
		name     string
		s        []Sighting
		wantOnce bool
		rows     int
		instants int
	}{
		{"one sighting", []Sighting{sg(a, at, 1)}, true, 0, 1},
		{"two at distinct instants", []Sighting{sg(a, at, 1), sg(a, at.Add(time.Minute), 1)}, false, 2, 2},
		{"two within the same millisecond are one instant",
			[]Sighting{sg(a, at, 1), sg(a, at.Add(300*time.Microsecond), 1)}, true, 0, 1},
		{"counted across ISPs", []Sighting{sg(a, at, 1), sg(a, at.Add(time.Minute), 2)}, false, 2, 2},
		{"a sighting left out for retention does not count",
			[]Sighting{sg(a, at, 1), sg(a, fixedNow.AddDate(-2, 0, 0), 1)}, true, 0, 1},
		{"an IPv4-mapped IPv6 address is the same address",
			[]Sighting{sg(a, at, 1), sg(netip.MustParseAddr("::ffff:192.0.2.1"), at.Add(time.Second), 1)}, false, 2, 2},
		{"a third party's claim at another instant counts, but is no row",
			[]Sighting{sg(a, at, 1), claim(at.Add(time.Minute))}, false, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := Build(Target{ID: "T"}, tc.s, fixedNow, DefaultRetention())
			if req.Kept != tc.rows {
				t.Fatalf("%d rows, want %d; annex %+v", req.Kept, tc.rows, req.Annex)
			}
			for _, g := range req.Groups {
				for _, r := range g.Rows {
					if r.SeenOnce || r.Instants != tc.instants {
						t.Fatalf("row %s %s: seen once %v instants %d, want false %d", r.IP, r.Time.Format(TimeLayout), r.SeenOnce, r.Instants, tc.instants)
					}
				}
			}
			once := 0
			for _, x := range req.Annex {
				if x.Reason == AnnexSeenOnce {
					once++
				}
			}
			if (once > 0) != tc.wantOnce {
				t.Fatalf("seen-once annex entries %d, want some: %v (%+v)", once, tc.wantOnce, req.Annex)
			}
			if req.Has(NoteSeenOnce) != tc.wantOnce {
				t.Fatalf("request seen-once note = %v, want %v: %+v", !tc.wantOnce, tc.wantOnce, req.Notes)
			}
			if tc.wantOnce && req.SeenOnce != 1 {
				t.Fatalf("SeenOnce = %d, want 1", req.SeenOnce)
			}
		})
	}
}

func TestBuildIPv6AndUnknownASN(t *testing.T) {
	tg, s := fixture()
	req := Build(tg, s, fixedNow, testRetention())
	g := &req.Groups[len(req.Groups)-1]
	if g.ASN != 0 || g.ISP() != "unknown ISP" || !g.Has(NoteUnknownASN) || !g.Has(NoteVPN) {
		t.Fatalf("unknown-ASN group = %+v", g)
	}
	r := g.Rows[0]
	if r.IP.String() != "2001:db8::1" || r.Port != 6881 || FormatOffset(r.ClockOffset) != "-2.500ms" {
		t.Fatalf("IPv6 row = %+v", r)
	}
	// An unknown ASN with an organisation name still goes to "unknown ISP".
	s2 := []Sighting{fh(Sighting{IP: netip.MustParseAddr("2001:db8::2%eth0"), Port: 1, Time: fixedNow, Org: "Stale Org"}),
		fh(Sighting{IP: netip.MustParseAddr("2001:db8::2"), Port: 1, Time: fixedNow.Add(-time.Second), Org: "Stale Org"})}
	r2 := Build(tg, s2, fixedNow, DefaultRetention())
	if r2.Groups[0].Org != "" || r2.Groups[0].Rows[0].IP.String() != "2001:db8::2" {
		t.Fatalf("unknown ASN group %+v", r2.Groups[0])
	}
	h := group(t, &req, 64498)
	if !h.Has(NoteHosting) || len(h.Rows) != 2 {
		t.Fatalf("hosting group notes %+v", h.Notes)
	}
}

func TestRequestIDFollowsContent(t *testing.T) {
	tg, s := fixture()
	a := Build(tg, s, fixedNow, testRetention())
	b := Build(tg, s, fixedNow, testRetention())
	if a.ID != b.ID || !strings.HasPrefix(a.ID, "ISP-") || len(a.ID) != 16 {
		t.Fatalf("ids %q %q", a.ID, b.ID)
	}
	s[0].Port++
	if c := Build(tg, s, fixedNow, testRetention()); c.ID == a.ID {
		t.Fatalf("a changed port kept the id %q", a.ID)
	}
	if c := Build(tg, s, fixedNow.Add(time.Second), testRetention()); c.ID == a.ID {
		t.Fatalf("a changed time kept the id %q", a.ID)
	}
	if a.Created != fixedNow {
		t.Fatalf("created %v", a.Created)
	}
}

func TestFormatOffset(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "+0.000ms"},
		{512 * time.Microsecond, "+0.512ms"},
		{-2500 * time.Microsecond, "-2.500ms"},
		{1999, "+0.001ms"},
		{-999, "-0.000ms"},
		{12 * time.Second, "+12000.000ms"},
		{time.Duration(-1 << 63), "-9223372036854.775ms"},
	}
	for _, tc := range tests {
		if got := FormatOffset(tc.d); got != tc.want {
			t.Errorf("FormatOffset(%d) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestFromObservation(t *testing.T) {
	o := &observe.Observation{
		ID: "0190-x", Network: observe.NetBitTorrent, Method: observe.MethodTracker,
		Time:       time.Date(2026, 2, 1, 12, 0, 0, 1_500_000, time.FixedZone("X", 7200)),
		ClockKnown: true, ClockOffset: time.Millisecond, ClockUncertainty: 3 * time.Millisecond, ClockSource: "ntp:127.0.0.1",
		Item:       observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, bytes.Repeat([]byte{0xab}, 20))},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("192.0.2.5"), Port: 6881, Transport: "tcp"},
		Possession: observe.Possession{Level: observe.Partial},
		Place:      observe.Place{Country: "FR", ASN: 64496, Org: "A", VPN: true, Hosting: true},
	}
	s := FromObservation(o)
	want := Sighting{IP: o.Endpoint.IP, Port: 6881, Transport: "tcp", Time: o.Time.UTC(), ClockKnown: true, ClockOffset: time.Millisecond,
		ClockUncertainty: 3 * time.Millisecond, ClockSource: "ntp:127.0.0.1", ObservationID: "0190-x", Network: observe.NetBitTorrent, Method: observe.MethodTracker,
		Level: observe.Partial, Item: item, ASN: 64496, Org: "A", Country: "FR", VPN: true, Hosting: true}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("FromObservation =\n%+v\nwant\n%+v", s, want)
	}
	if s.Time.Location() != time.UTC {
		t.Fatalf("time not in UTC: %v", s.Time)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the output (go test -update rewrites it):\n%s", path, got)
	}
}

func TestWriteCSV(t *testing.T) {
	tg, s := fixture()
	req := Build(tg, s, fixedNow, testRetention())
	var b bytes.Buffer
	if err := WriteCSV(&b, &req); err != nil {
		t.Fatal(err)
	}
	golden(t, "request.csv", b.Bytes())

	recs, err := csv.NewReader(bytes.NewReader(b.Bytes())).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not read back: %v", err)
	}
	if strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("header %q", recs[0])
	}
	if len(recs) != 1+req.Kept {
		t.Fatalf("%d records, want %d", len(recs), 1+req.Kept)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	// The organisation with a comma and quotes survives the round trip;
	// a leading "=" is neutralised.
	if got := recs[1][col["isp"]]; got != `Example "Telecom", S.A.` {
		t.Errorf("isp cell %q", got)
	}
	var sawFormula, sawV6 bool
	for _, r := range recs[1:] {
		if r[col["isp"]] == "'=Formula Net" {
			sawFormula = true
		}
		if r[col["ip"]] == "2001:db8::1" && r[col["clock_offset_ms"]] == "-2.500" && r[col["source_port"]] == "6881" {
			sawV6 = true
		}
		for _, c := range []string{"level", "source_port", "transport", "method", "observation_id", "transcript_sha256", "sensor_address"} {
			if r[col[c]] == "" || r[col[c]] == "0" || r[col[c]] == "invalid AddrPort" {
				t.Errorf("row without %s: %q", c, r)
			}
		}
	}
	if !sawFormula || !sawV6 {
		t.Errorf("formula cell neutralised %v, IPv6 row %v", sawFormula, sawV6)
	}
}

func TestWriteJSON(t *testing.T) {
	tg, s := fixture()
	req := Build(tg, s, fixedNow, testRetention())
	var b bytes.Buffer
	if err := WriteJSON(&b, &req); err != nil {
		t.Fatal(err)
	}
	golden(t, "request.json", b.Bytes())

	var v struct {
		ID, Created string
		Kept        int
		SeenOnce    int `json:"addresses_seen_once"`
		Notes       []Note
		Groups      []struct {
			ID, ISP, Country, Retention, Cutoff string
			ASN                                 uint32
			Dropped                             int
			Notes                               []Note
			Rows                                []map[string]any
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b.Bytes()))
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.ID != req.ID || v.Created != "2026-03-01T10:00:00.000Z" || v.Kept != 9 || len(v.Groups) != 4 {
		t.Fatalf("top level %+v", v)
	}
	g := v.Groups[0]
	if g.Retention != "1y" || g.Cutoff != "2025-03-01T10:00:00.000Z" || g.Dropped != 1 || len(g.Rows) != 3 {
		t.Fatalf("first group %+v", g)
	}
	wantKeys := []string{"line", "ip", "source_port", "transport", "direction", "sensor_address", "time", "clock_offset", "clock_offset_ns", "clock_offset_ms",
		"clock_uncertainty_ms", "clock_source", "instants_of_ip", "vpn", "hosting", "level", "network", "method", "item", "observation_id", "transcript_sha256", "marks"}
	row := g.Rows[1]
	if len(row) != len(wantKeys) {
		t.Errorf("row has %d fields, want %d: %v", len(row), len(wantKeys), row)
	}
	for _, k := range wantKeys {
		if _, ok := row[k]; !ok {
			t.Errorf("row lacks %q: %v", k, row)
		}
	}
	if row["time"] != "2026-02-10T08:00:00.123Z" || row["clock_offset"] != "+0.512ms" || row["clock_offset_ns"] != 512000.0 ||
		row["clock_offset_ms"] != 0.512 || row["clock_uncertainty_ms"] != 0.25 ||
		row["source_port"] != 51413.0 || row["level"] != "acknowledged" || row["sensor_address"] != "198.51.100.200:6881" {
		t.Errorf("row %v", row)
	}
	// Empty lists are [], not null.
	empty := Build(tg, nil, fixedNow, DefaultRetention())
	b.Reset()
	if err := WriteJSON(&b, &empty); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"groups": []`) || !strings.Contains(b.String(), `"annex": []`) || strings.Contains(b.String(), "null") {
		t.Errorf("empty request JSON:\n%s", b.String())
	}
}

// TestRequestIDCoversLevelItemAndMethod: two requests whose rows (or
// annex entries) differ only in what they claim (the level of
// possession, the item, the method that observed it, the network) are two
// requests: the id, which the audit trail records and the letter prints,
// must tell them apart.
func TestRequestIDCoversLevelItemAndMethod(t *testing.T) {
	tg, s := fixture()
	a := Build(tg, s, fixedNow, testRetention())
	if len(a.Groups) == 0 || len(a.Groups[0].Rows) == 0 || len(a.Annex) == 0 {
		t.Fatalf("fixture: %d groups, %d in the annex", len(a.Groups), len(a.Annex))
	}
	for _, c := range []struct {
		name   string
		change func(r *Row, e *AnnexEntry)
	}{
		{"row level", func(r *Row, _ *AnnexEntry) { r.Level = observe.Complete }},
		{"row item", func(r *Row, _ *AnnexEntry) { r.Item = "btih:" + strings.Repeat("cd", 20) }},
		{"row method", func(r *Row, _ *AnnexEntry) { r.Method = observe.MethodDHTAnnounce }},
		{"row network", func(r *Row, _ *AnnexEntry) { r.Network = observe.NetED2K }},
		{"annex level", func(_ *Row, e *AnnexEntry) { e.Level = observe.Complete }},
		{"annex method", func(_ *Row, e *AnnexEntry) { e.Method = observe.MethodPEX }},
	} {
		b := Build(tg, s, fixedNow, testRetention())
		c.change(&b.Groups[0].Rows[0], &b.Annex[0])
		if id := requestID(&b); id == a.ID {
			t.Errorf("requests that differ only in a %s share the id %s", c.name, a.ID)
		}
	}
	// Through Build too: the same sightings but for their level or item.
	for name, change := range map[string]func(x *Sighting){
		"level": func(x *Sighting) { x.Level = observe.Complete },
		"item":  func(x *Sighting) { x.Item = "btih:" + strings.Repeat("cd", 20) },
	} {
		_, s2 := fixture()
		for i := range s2 {
			change(&s2[i])
		}
		if b := Build(tg, s2, fixedNow, testRetention()); b.ID == a.ID || b.Kept != a.Kept {
			t.Errorf("sightings that differ only in their %s: id %s (was %s), %d rows (were %d)", name, b.ID, a.ID, b.Kept, a.Kept)
		}
	}
}
