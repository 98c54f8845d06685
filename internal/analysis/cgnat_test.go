package analysis_test

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Behind one carrier-grade NAT address, subscriber V is probed at
// X:51413; a neighbour M announces another watched file from X:40001 with
// a valid token, declaring the listen port 51413 (its client's local
// default; the NAT gave it another external port).
func TestAttackCGNATNeighbourDeclaresAnotherSubscribersPort(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	v := ob("198.51.100.7:51413", 1, observe.Complete, t0)
	m := ob("198.51.100.7:40001", 2, observe.Announced, t0.Add(time.Hour))
	m.Endpoint.Transport = "udp"
	m.Client.ListenPort = 51413
	f.ingest(e, v, m)
	for _, x := range targets(t, e, analysis.TargetQuery{}) {
		if x.Files > 1 {
			t.Fatalf("V's target holds M's announced file: %+v", x)
		}
	}
}

// announceFrom is a first-hand DHT announce received over UDP from src,
// declaring the listen port listen.
func announceFrom(src string, file int, listen uint16, at time.Time) observe.Observation {
	o := ob(src, file, observe.Announced, at)
	o.Endpoint.Transport = "udp"
	o.Client.ListenPort = listen
	return o
}

// A genuine peer whose NAT rewrote its DHT source port: the announce stays
// its own endpoint (the UDP source, for the ISP row) and joins the probed
// declared port only by a link that says what it rests on, below 1.
func TestAnnounceJoinsDeclaredPortOnlyByAWeakLink(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	v := ob("198.51.100.7:51413", 1, observe.Complete, t0.Add(2*time.Minute))
	a := announceFrom("198.51.100.7:40001", 2, 51413, t0)
	f.ingest(e, a, v)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 || ts[0].Endpoints != 2 {
		t.Fatalf("targets %+v: want one target of two endpoints (the announce's own source, the probed port)", ts)
	}
	d := detail(t, e, ts[0].ID)
	if got := endpointsOf(d); !slices.Contains(got, "198.51.100.7:40001") || !slices.Contains(got, "198.51.100.7:51413") {
		t.Fatalf("endpoints %v: want the announce's UDP source and the probed port", got)
	}
	if len(d.Links) != 1 {
		t.Fatalf("links %+v, want one", d.Links)
	}
	l := d.Links[0]
	if l.Rule != "announce_listen_port" || l.State != "active" || l.Confidence <= 0 || l.Confidence >= 1 || l.Evidence != "198.51.100.7:51413" {
		t.Fatalf("link %+v: want an active announce_listen_port link on 198.51.100.7:51413, confidence below 1", l)
	}
	if !strings.Contains(l.Reason, "carrier-grade NAT") || len(l.Obs) != 2 {
		t.Errorf("link reason %q, observations %v: want both observations and the CGNAT caveat", l.Reason, l.Obs)
	}
	for _, fi := range d.Files {
		for _, at := range fi.At {
			if at.Endpoint == "198.51.100.7:51413" && fi.Hex == hashN(2).Hex() {
				t.Fatalf("the announced file is listed at the probed endpoint: %+v", fi.At)
			}
		}
	}
	for _, te := range d.Timeline {
		if te.Method == observe.MethodDHTAnnounce && te.Endpoint != "198.51.100.7:40001" {
			t.Fatalf("the announce's timeline entry (its ISP row) is on %s, want its UDP source 198.51.100.7:40001", te.Endpoint)
		}
	}
	// The linked announce counts at the link's confidence: 10 × 1.0 for
	// the anchor's complete file, 10 × 0.1 × 0.3 for the announced one.
	if got, want := ts[0].Parts[analysis.PartFiles], 10.3; math.Abs(got-want) > 0.001 {
		t.Errorf("files part %v, want %v", got, want)
	}
}

// Two neighbours behind one CGNAT address both declare the client's
// default port within minutes: the declared IP:port is shared, and joins
// nothing to the subscriber probed there.
func TestAttackCGNATTwoNeighboursDeclareOnePort(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	v := ob("198.51.100.7:51413", 1, observe.Complete, t0)
	m1 := announceFrom("198.51.100.7:40001", 2, 51413, t0.Add(time.Minute))
	m2 := announceFrom("198.51.100.7:40002", 3, 51413, t0.Add(3*time.Minute))
	f.ingest(e, v, m1)
	f.ingest(e, m2)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 3 {
		t.Fatalf("%d targets, want 3 (three subscribers behind one address): %+v", len(ts), ts)
	}
	for _, x := range ts {
		if x.Files != 1 {
			t.Fatalf("target %s holds %d files: neighbours merged on a declared port", x.ID, x.Files)
		}
	}
}

// Behind a port-preserving CGNAT, the DHT port a peer declares in a PORT
// message may be held by another subscriber, who answers the ping with a
// BEP 42 id valid for the shared address: such ids link nothing.
func TestAttackPingedNodeIDLinksNothing(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	a := withSecureNode(ob("198.51.100.7:51413", 1, observe.Complete, t0), 5, "198.51.100.7")
	b := withSecureNode(ob("198.51.100.7:40001", 2, observe.Complete, t0.Add(time.Hour)), 5, "198.51.100.7")
	a.Mark("node_id_via_ping")
	b.Mark("node_id_via_ping")
	f.ingest(e, a, b)
	if ts := targets(t, e, analysis.TargetQuery{}); len(ts) != 2 {
		t.Fatalf("%d targets, want 2: a node id learnt by pinging a declared port made a link", len(ts))
	}
}

// One forged get_peers datagram names any public address: it is listed,
// at level announced, and scores only the capped second_hand part.
func TestAttackSpoofedGetPeersScoresOnlySecondHand(t *testing.T) {
	f := newFixture(t)
	f.now = t0
	e := f.engine()
	o := thirdParty(ob("203.0.113.9:6881", 1, observe.Announced, t0), observe.MethodDHTGetPeers)
	o.Marks = nil
	o.Endpoint.Transport = "udp"
	o.Mark(observe.MarkSpoofableSource)
	f.ingest(e, o)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 || ts[0].MaxLevel != observe.Announced {
		t.Fatalf("targets %+v: want the address listed at level announced", ts)
	}
	p := ts[0].Parts
	if len(p) != 1 || p["second_hand"] <= 0 || p["second_hand"] > 1 {
		t.Fatalf("parts %v: want only second_hand, at most 1", p)
	}
}

// A peer probed once; trackers list it for the rest of the day and past
// midnight. Their claims add neither days nor repetition.
func TestAttackThirdPartySightingsAddNoDaysNorRepetition(t *testing.T) {
	f := newFixture(t)
	f.now = t0.Add(24 * time.Hour)
	e := f.engine()
	obs := []observe.Observation{ob("192.0.2.60:7000", 1, observe.Complete, t0)}
	for h := 3; h <= 21; h += 3 {
		obs = append(obs, thirdParty(ob("192.0.2.60:7000", 1, observe.Announced, t0.Add(time.Duration(h)*time.Hour)), observe.MethodTracker))
	}
	f.ingest(e, obs...)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 || ts[0].Observations != len(obs) {
		t.Fatalf("targets %+v: want one target of %d observations", ts, len(obs))
	}
	p := ts[0].Parts
	if p[analysis.PartDays] != 0 || p[analysis.PartRepetition] != 0 {
		t.Fatalf("parts %v: third-party claims counted as days active or repetition", p)
	}
	if p[analysis.PartFiles] != 10 {
		t.Fatalf("parts %v: want files 10 (one complete file of the gravest category)", p)
	}
}

// A file of imported observations proves no conversation: a peer id
// shared by two imported probes links nothing, and they score as second
// hand.
func TestAttackImportedObservationsLinkNothing(t *testing.T) {
	f := newFixture(t)
	f.now = t0
	e := f.engine()
	a := withPeerID(ob("192.0.2.50:7000", 1, observe.Complete, t0), "-TR3000-abcdefghijkl")
	b := withPeerID(ob("198.51.100.50:7001", 2, observe.Complete, t0.Add(10*time.Minute)), "-TR3000-abcdefghijkl")
	a.Mark(observe.MarkUnsigned)
	b.Mark(observe.MarkUnsigned)
	f.ingest(e, a, b)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 2 {
		t.Fatalf("%d targets, want 2: imported observations made a link", len(ts))
	}
	for _, x := range ts {
		if x.Parts[analysis.PartFiles] != 0 || x.Parts["second_hand"] == 0 {
			t.Fatalf("parts %v: an imported observation scored as first-hand", x.Parts)
		}
	}
}

// An observation a hub forged (ingest marked it signature_failed: no
// sensor's signature covers it) raises no possession level: a target seen
// complete only in forged records is listed at announced, links nothing
// and scores only as second hand.
func TestAttackForgedObservationsRaiseNoLevel(t *testing.T) {
	f := newFixture(t)
	f.now = t0
	e := f.engine()
	a := withPeerID(ob("192.0.2.51:7000", 1, observe.Complete, t0), "-TR3000-abcdefghijkm")
	b := withPeerID(ob("198.51.100.51:7001", 2, observe.Complete, t0.Add(10*time.Minute)), "-TR3000-abcdefghijkm")
	a.Mark(observe.MarkSignatureFailed)
	b.Mark(observe.MarkSignatureFailed)
	f.ingest(e, a, b)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 2 {
		t.Fatalf("%d targets, want 2: forged observations made a link", len(ts))
	}
	for _, x := range ts {
		if x.MaxLevel > observe.Announced {
			t.Errorf("target %s: level %v from forged records, want at most announced", x.ID, x.MaxLevel)
		}
		if x.Parts[analysis.PartFiles] != 0 {
			t.Errorf("parts %v: a forged observation scored as first-hand", x.Parts)
		}
	}
}

// An observation that no sensor signed (ingest marked it unsigned_import:
// read from a file, or from the bus with its signature stripped) raises no
// possession level either: a hub that wants a target shown complete need
// not forge a signature when it can drop it. Before the fix the target
// was listed complete from such records (only signature_failed was
// capped).
func TestAttackUnsignedObservationsRaiseNoLevel(t *testing.T) {
	f := newFixture(t)
	f.now = t0
	e := f.engine()
	a := ob("192.0.2.52:7000", 1, observe.Verified, t0)
	a.Mark(observe.MarkUnsigned)
	f.ingest(e, a)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 {
		t.Fatalf("%d targets, want 1", len(ts))
	}
	if x := ts[0]; x.MaxLevel > observe.Announced {
		t.Errorf("target %s: level %v from an unsigned record, want at most announced", x.ID, x.MaxLevel)
	}
}

// A probe in which the peer answered for another info-hash
// (infohash_mismatch: stored by sensors older than the one that records
// no such observation) proves nothing about the item: the endpoint talked
// to the sensor, but the file scores only as second hand and is listed at
// announced at most. Before the fix it scored in files at the level the
// record carried.
func TestAttackInfohashMismatchProvesNothingOfTheItem(t *testing.T) {
	f := newFixture(t)
	f.now = t0
	e := f.engine()
	a := ob("192.0.2.53:7000", 1, observe.Complete, t0)
	a.Mark(observe.MarkInfohashMismatch)
	f.ingest(e, a)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 {
		t.Fatalf("%d targets, want 1", len(ts))
	}
	x := ts[0]
	if x.MaxLevel > observe.Announced {
		t.Errorf("target %s: level %v from an exchange about another item, want at most announced", x.ID, x.MaxLevel)
	}
	if x.Parts[analysis.PartFiles] != 0 {
		t.Errorf("parts %v: an exchange about another item scored in files", x.Parts)
	}
}

// The announce_listen_port link does not depend on arrival order, and
// survives a restart (the state is replayed from the store).
func TestAnnounceListenLinkOrderAndRestart(t *testing.T) {
	for _, probeFirst := range []bool{false, true} {
		f := newFixture(t)
		e := f.engine()
		v := ob("198.51.100.8:51413", 1, observe.Complete, t0.Add(2*time.Minute))
		a := announceFrom("198.51.100.8:40001", 2, 51413, t0)
		if probeFirst {
			f.ingest(e, v)
			f.ingest(e, a)
		} else {
			f.ingest(e, a)
			f.ingest(e, v)
		}
		for round := range 2 {
			ts := targets(t, e, analysis.TargetQuery{})
			if len(ts) != 1 || ts[0].Endpoints != 2 {
				t.Fatalf("probe first %v, round %d: targets %+v, want one of two endpoints", probeFirst, round, ts)
			}
			d := detail(t, e, ts[0].ID)
			if len(d.Links) != 1 || d.Links[0].Rule != analysis.RuleAnnounceListen || d.Links[0].State != "active" {
				t.Fatalf("probe first %v, round %d: links %+v", probeFirst, round, d.Links)
			}
			e = f.engine() // restart on the same store
		}
	}
}

// A probe that sensors before e97915c recorded complete although the
// peer's bitfield broke the format (malformed_bitfield: spare bits set, a
// byte too many; the sensor now records partial, or acknowledged with the
// piece count unknown) is still in stores, and comes from sensors not yet
// upgraded: a hostile peer sending FF FF for 10 pieces to one of them is
// not a complete target either. Before the fix the target was complete.
func TestAttackMalformedBitfieldOfAnOlderSensorIsNeverComplete(t *testing.T) {
	for _, c := range []struct {
		name        string
		have, total int
		want        observe.Level
	}{
		{"pieces known", 10, 10, observe.Partial},
		{"pieces unknown", -1, -1, observe.Acknowledged},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			f.now = t0
			e := f.engine()
			a := ob("192.0.2.54:7000", 1, observe.Complete, t0)
			a.Possession.PiecesHave, a.Possession.PiecesTotal = c.have, c.total
			a.Mark(observe.MarkMalformedBitfield)
			f.ingest(e, a)
			ts := targets(t, e, analysis.TargetQuery{})
			if len(ts) != 1 {
				t.Fatalf("%d targets, want 1", len(ts))
			}
			if x := ts[0]; x.MaxLevel != c.want {
				t.Errorf("target %s: level %v from a malformed bitfield, want %v", x.ID, x.MaxLevel, c.want)
			}
		})
	}
}
