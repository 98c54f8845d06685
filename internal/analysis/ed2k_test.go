package analysis_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
)

// eD2K: an eMule or aMule client keeps its 128-bit user hash for years,
// whatever its address. It links a device's addresses only when the
// client said it itself, in its own hello to the sensor's probe; the user
// hash a source list carries (a Kad node's entry, a server's) is a third
// party's word and links nothing. Addresses are documentation ones (RFC
// 5737).

var sensorED2K = netip.MustParseAddrPort("198.51.100.200:40123")

func ed2kFile(n int) hashkind.Hash {
	b := make([]byte, 16)
	b[0], b[1], b[2] = 0xED, byte(n>>8), byte(n)
	return hashkind.MustNew(hashkind.ED2K, b)
}

func userHash(b byte) []byte {
	h := bytes.Repeat([]byte{b}, 16)
	h[5], h[14] = 14, 111 // eMule's marks of its own user hashes
	return h
}

// ed2kProbe is the sensor's probe of a client at ep: first-hand, with the
// user hash of the client's own hello, the sensor's own address and a
// transcript digest, as internal/sensor/ed2k records it.
func ed2kProbe(ep string, file int, uh []byte, at time.Time) observe.Observation {
	ap := netip.MustParseAddrPort(ep)
	return observe.Observation{
		ID: observe.NewID(at), Sensor: observe.Sensor{ID: "ed2k-lab-1"}, Network: observe.NetED2K, Method: observe.MethodPeerProbe, Time: at,
		Item:         observe.Item{Hash: ed2kFile(file), Matched: []observe.Match{{List: "national", Category: "1"}}},
		Endpoint:     observe.Endpoint{IP: ap.Addr(), Port: ap.Port(), Transport: "tcp", Local: sensorED2K},
		Client:       observe.Client{Name: "aMule", Version: "2.3.3", ListenPort: ap.Port(), UserHash: uh},
		Possession:   observe.Possession{Level: observe.Complete, PiecesHave: 1, PiecesTotal: 1},
		Transcript:   observe.Transcript{SHA256: bytes.Repeat([]byte{byte(file), byte(at.Unix())}, 16)},
		Place:        observe.Place{Country: "FR", Subdivisions: []string{"Île-de-France", "78"}, ASN: 64512, Org: "Lab Telecom"},
		Jurisdiction: observe.Jurisdiction{Agency: "fr-versailles", Rule: "test"},
	}
}

// ed2kSource is a server's or a Kad node's source entry naming ep, marked
// as internal/sensor/ed2k marks it (unless bare: as an old record or
// another tool might carry it), with a user hash in the record as if a
// careless tool had copied the list's.
func ed2kSource(method, ep string, file int, uh []byte, at time.Time, bare bool) observe.Observation {
	o := ed2kProbe(ep, file, uh, at)
	o.Method, o.Endpoint.Local, o.Transcript = method, netip.AddrPort{}, observe.Transcript{SHA256: bytes.Repeat([]byte{9}, 32)}
	o.Client = observe.Client{UserHash: uh}
	o.Possession = observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1}
	if method == observe.MethodKadSources {
		o.Network = observe.NetKad
	}
	if !bare {
		o.Mark(observe.MarkThirdParty)
		if method == observe.MethodKadSources {
			o.Mark(observe.MarkSpoofableSource)
		}
	}
	return o
}

// Two source lists that name two addresses with one user hash never join
// them, marked or not (the method decides), nor does a source list and a
// probe: a user hash links only from the client's own hello, at both ends.
func TestUserHashFromSourceListsNeverLinks(t *testing.T) {
	uh := userHash(0x42)
	for _, tc := range []struct {
		name string
		obs  func() []observe.Observation
	}{
		{"server and Kad sources", func() []observe.Observation {
			return []observe.Observation{
				ed2kSource(observe.MethodED2KServerSources, "192.0.2.10:4662", 1, uh, t0, false),
				ed2kSource(observe.MethodKadSources, "203.0.113.20:4662", 1, uh, t0.Add(2*time.Hour), false),
			}
		}},
		{"two Kad sources, unmarked", func() []observe.Observation {
			return []observe.Observation{
				ed2kSource(observe.MethodKadSources, "192.0.2.10:4662", 1, uh, t0, true),
				ed2kSource(observe.MethodKadSources, "203.0.113.20:4662", 1, uh, t0.Add(2*time.Hour), true),
			}
		}},
		{"two server sources, unmarked", func() []observe.Observation {
			return []observe.Observation{
				ed2kSource(observe.MethodED2KServerSources, "192.0.2.10:4662", 1, uh, t0, true),
				ed2kSource(observe.MethodED2KServerSources, "203.0.113.20:4662", 1, uh, t0.Add(2*time.Hour), true),
			}
		}},
		{"a probe and a Kad source", func() []observe.Observation {
			return []observe.Observation{
				ed2kProbe("192.0.2.10:4662", 1, uh, t0),
				ed2kSource(observe.MethodKadSources, "203.0.113.20:4662", 1, uh, t0.Add(2*time.Hour), false),
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			e := f.engine()
			f.ingest(e, tc.obs()...)
			ts := targets(t, e, analysis.TargetQuery{})
			if len(ts) != 2 {
				t.Fatalf("%d targets, want 2 (nothing links them): %+v", len(ts), ts)
			}
			for _, x := range ts {
				if d := detail(t, e, x.ID); len(d.Links) != 0 {
					t.Fatalf("target %s has links %+v: a source list's user hash linked", x.ID, d.Links)
				}
			}
		})
	}
}

// Two probes whose hellos carry one user hash, at two addresses hours
// apart (a client that got a new address), are one device: the link says
// the rule, the hash, both endpoints and when each was seen.
func TestUserHashLinksTwoFirstHandProbes(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	uh := userHash(0x42)
	f.ingest(e,
		ed2kProbe("192.0.2.10:4662", 1, uh, t0),
		ed2kProbe("203.0.113.20:4662", 2, uh, t0.Add(3*time.Hour)),
		ed2kProbe("198.51.100.7:4662", 1, userHash(0x43), t0.Add(time.Hour)), // another client
	)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 2 || ts[0].Endpoints != 2 || ts[0].Files != 2 {
		t.Fatalf("targets %+v, want the two probes of one user hash as one device of 2 files", ts)
	}
	d := detail(t, e, ts[0].ID)
	if len(d.Links) != 1 {
		t.Fatalf("links %+v, want one", d.Links)
	}
	l := d.Links[0]
	if l.Rule != analysis.RuleUserHash || l.State != "active" || l.Confidence != analysis.DefaultConfig().Links.Confidence[analysis.RuleUserHash] {
		t.Fatalf("link %+v, want an active %s link at its confidence", l, analysis.RuleUserHash)
	}
	for _, want := range []string{"same eMule user hash 42424242", "192.0.2.10:4662", "203.0.113.20:4662", t0.Format(time.RFC3339), t0.Add(3 * time.Hour).Format(time.RFC3339)} {
		if !strings.Contains(l.Reason, want) {
			t.Errorf("reason %q does not say %q", l.Reason, want)
		}
	}
	if len(l.Obs) != 2 {
		t.Errorf("link names %d observations, want the two probes", len(l.Obs))
	}
}

// End to end, as internal/api builds an ISP request (the target's whole
// timeline, its active links): the eD2K probes of a device are the rows,
// each with the port and time of that connection, the sensor's own
// address, the method and the transcript digest; the server's and Kad's
// source entries of the same addresses are in the annex as third parties'
// claims.
func TestED2KProbesAreISPRowsAndSourceListsTheAnnex(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	uh := userHash(0x42)
	a, b := "192.0.2.10:4662", "203.0.113.20:4671"
	probes := []observe.Observation{
		ed2kProbe(a, 1, uh, t0), ed2kProbe(a, 1, uh, t0.Add(10*time.Minute)),
		ed2kProbe(b, 2, uh, t0.Add(3*time.Hour)), ed2kProbe(b, 2, uh, t0.Add(3*time.Hour+10*time.Minute)),
	}
	sources := []observe.Observation{
		ed2kSource(observe.MethodED2KServerSources, a, 1, nil, t0.Add(time.Minute), false),
		ed2kSource(observe.MethodKadSources, b, 2, nil, t0.Add(3*time.Hour+time.Minute), false),
	}
	f.ingest(e, append(append([]observe.Observation(nil), probes...), sources...)...)
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
		sg := isp.FromObservation(&o)
		sg.Item = d.Timeline[i].Kind + ":" + d.Timeline[i].Hash
		s = append(s, sg)
	}
	req := isp.Build(tg, s, f.now, isp.DefaultRetention())
	if req.Kept != len(probes) || len(req.Groups) != 1 || len(tg.Links) != 1 || tg.Links[0].Rule != analysis.RuleUserHash {
		t.Fatalf("request: %d rows in %d groups, links %+v; annex %+v", req.Kept, len(req.Groups), tg.Links, req.Annex)
	}
	want := map[string]observe.Observation{}
	for _, p := range probes {
		want[p.ID] = p
	}
	for _, r := range req.Groups[0].Rows {
		p, ok := want[r.ObservationID]
		if !ok {
			t.Fatalf("row %+v is not a probe", r)
		}
		if r.IP != p.Endpoint.IP || r.Port != p.Endpoint.Port || r.Transport != "tcp" || !r.Time.Equal(p.Time) ||
			r.SensorAddress != sensorED2K || r.Method != observe.MethodPeerProbe || r.Network != observe.NetED2K ||
			r.Direction != "sensor_to_peer" || r.TranscriptSHA256 == "" || r.Level != observe.Complete {
			t.Errorf("row %+v, want the probe's own address, port, time, transport, sensor address and digest", r)
		}
	}
	if len(req.Annex) != len(sources) {
		t.Fatalf("annex %+v, want the two source entries", req.Annex)
	}
	for _, x := range req.Annex {
		if x.Reason != isp.AnnexThirdParty || (x.Method != observe.MethodED2KServerSources && x.Method != observe.MethodKadSources) {
			t.Errorf("annex entry %+v, want a source list entry as a third party's claim", x)
		}
	}
}

// One user hash at two addresses at the same time is two machines (a
// copied or cloned hash, as the eD2K accuracy lab's copier does), never
// one device that moved: no link, and the hash links nothing any more
// (measured in docs/accuracy.md: the copier's address was an ISP row of
// its victim's request before this rule).
func TestUserHashAtTwoAddressesAtOnceLinksNothing(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	uh := userHash(0x42)
	f.ingest(e,
		ed2kProbe("192.0.2.10:4662", 1, uh, t0),
		ed2kProbe("203.0.113.20:4662", 1, uh, t0.Add(30*time.Second)), // the copier
		ed2kProbe("192.0.2.10:4662", 2, uh, t0.Add(time.Minute)),
		ed2kProbe("198.51.100.9:4662", 2, uh, t0.Add(4*time.Hour)), // later: still nothing
	)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 3 {
		t.Fatalf("targets %+v: want three devices, none joined by a user hash seen at two addresses at once", ts)
	}
	for _, tg := range ts {
		if d := detail(t, e, tg.ID); len(d.Links) != 0 && d.Links[0].State == "active" {
			t.Fatalf("target %s has an active link %+v", tg.ID, d.Links[0])
		}
	}
}
