package analysis_test

import (
	"context"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Attacks on the grouping of addresses into endpoints and devices. Each
// fed the analysis of commit 8846f19 a lie it believed.

func thirdParty(o observe.Observation, method string) observe.Observation {
	o.Method = method
	o.Possession.Level = observe.Announced
	o.Endpoint.Local = netip.AddrPort{}
	o.Mark(observe.MarkThirdParty)
	return o
}

// PEX names 192.168.1.20:51413 in two homes (a private address every home
// router hands out). Neither sighting makes an endpoint or a target, and
// the two are never one endpoint.
func TestAttackPEXPrivateAddressOfTwoHomes(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	home1 := thirdParty(ob("192.168.1.20:51413", 1, observe.Announced, t0), observe.MethodPEX)
	home2 := thirdParty(ob("192.168.1.20:51413", 2, observe.Announced, t0.Add(30*time.Hour)), observe.MethodPEX)
	home2.Place = observe.Place{Country: "BE", ASN: 64513, Org: "Other Telecom"}
	f.ingest(e, home1, home2)
	if ts := targets(t, e, analysis.TargetQuery{}); len(ts) != 0 {
		t.Fatalf("%d targets from a private address named by PEX, want none: %+v", len(ts), ts)
	}
	dropped, held := e.Dropped()
	if held != 2 || dropped[analysis.DropNonPublicUnconfirmed] != 0 {
		t.Fatalf("held %d, dropped %v: want both held for a first-hand confirmation", held, dropped)
	}
	// Old records carry no marks: the address alone decides.
	old := ob("10.20.30.40:6881", 3, observe.Announced, t0)
	old.Method = observe.MethodTracker
	f.ingest(e, old)
	if ts := targets(t, e, analysis.TargetQuery{}); len(ts) != 0 {
		t.Fatalf("an unmarked tracker claim of a private address made %d targets", len(ts))
	}
	// In lab scope, the sensor probes home 1's device at that address: the
	// PEX claim within the window joins it; home 2's, a day later, does not.
	f.ingest(e, ob("192.168.1.20:51413", 1, observe.Complete, t0.Add(2*time.Hour)))
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 || ts[0].Observations != 2 || ts[0].Files != 1 {
		t.Fatalf("after the probe: %+v; want one target with the probe and home 1's claim only", ts)
	}
}

// The same public IP:port a year apart is two subscribers: two endpoints,
// two targets, and the year-old complete copy is never the new one's.
func TestAttackIPPortReusedAYearLater(t *testing.T) {
	f := newFixture(t)
	f.now = t0.AddDate(1, 0, 1)
	e := f.engine()
	f.ingest(e,
		ob("192.0.2.20:51413", 1, observe.Complete, t0),
		ob("192.0.2.20:51413", 2, observe.Announced, t0.AddDate(1, 0, 0)), // another device's announce
	)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 2 {
		t.Fatalf("%d targets, want two endpoints a year apart: %+v", len(ts), ts)
	}
	for _, x := range ts {
		if x.LastSeen.After(t0.AddDate(0, 6, 0)) && (x.MaxLevel != observe.Announced || x.Files != 1) {
			t.Fatalf("the later device: %+v; want one file, announced (the old copy is not its)", x)
		}
	}
	// Within the window it stays one endpoint.
	f2 := newFixture(t)
	e2 := f2.engine()
	f2.ingest(e2, ob("192.0.2.20:51413", 1, observe.Complete, t0), ob("192.0.2.20:51413", 2, observe.Complete, t0.Add(20*time.Hour)))
	if ts := targets(t, e2, analysis.TargetQuery{}); len(ts) != 1 {
		t.Fatalf("%d targets for one IP:port seen 20 h apart, want 1", len(ts))
	}
}

// A peer id seen at another address at the same moment is a replay (or two
// machines), never one device that moved: it links nothing.
func TestAttackPeerIDReplayedFromAnotherAddress(t *testing.T) {
	const pid = "-TR3000-k3j4h5g6f7d8"
	for name, obs := range map[string][]observe.Observation{
		"thirty seconds apart": {
			withPeerID(ob("192.0.2.30:6881", 1, observe.Complete, t0), pid),
			withPeerID(ob("198.51.100.7:6881", 2, observe.Complete, t0.Add(30*time.Second)), pid),
		},
		"inside the victim's session": {
			withPeerID(ob("192.0.2.30:6881", 1, observe.Complete, t0), pid),
			withPeerID(ob("198.51.100.7:6881", 2, observe.Complete, t0.Add(10*time.Minute)), pid),
			withPeerID(ob("192.0.2.30:6881", 1, observe.Complete, t0.Add(20*time.Minute)), pid),
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			e := f.engine()
			f.ingest(e, obs...)
			ts := targets(t, e, analysis.TargetQuery{})
			if len(ts) != 2 {
				t.Fatalf("%d targets, want the victim and the replayer apart: %+v", len(ts), ts)
			}
			for _, x := range ts {
				for _, l := range detail(t, e, x.ID).Links {
					if l.State == "active" {
						t.Fatalf("active link %+v from a replayed peer id", l)
					}
				}
			}
		})
	}
}

// A DHT node id is chosen by the node: copied from another address (not
// BEP 42-valid for the address it came from), or marked unchecked by the
// sensor, it links nothing.
func TestAttackForgedNodeID(t *testing.T) {
	t.Run("copied from the victim's address", func(t *testing.T) {
		f := newFixture(t)
		e := f.engine()
		f.ingest(e,
			withSecureNode(ob("192.0.2.40:6881", 1, observe.Complete, t0), 5, "192.0.2.40"),
			withSecureNode(ob("198.51.100.9:6881", 2, observe.Complete, t0.Add(time.Hour)), 5, "192.0.2.40"),
		)
		if ts := targets(t, e, analysis.TargetQuery{}); len(ts) != 2 {
			t.Fatalf("%d targets, want 2: a copied node id joined two addresses", len(ts))
		}
	})
	t.Run("marked unchecked by the sensor", func(t *testing.T) {
		f := newFixture(t)
		e := f.engine()
		a := withSecureNode(ob("192.0.2.41:6881", 1, observe.Complete, t0), 5, "192.0.2.41")
		b := withSecureNode(ob("192.0.2.41:7000", 2, observe.Complete, t0.Add(time.Hour)), 5, "192.0.2.41")
		b.Mark(observe.MarkNodeIDUnchecked)
		f.ingest(e, a, b)
		if ts := targets(t, e, analysis.TargetQuery{}); len(ts) != 2 {
			t.Fatalf("%d targets, want 2: a node id the sensor could not check made a link", len(ts))
		}
	})
	t.Run("self-declared on a private address", func(t *testing.T) {
		f := newFixture(t)
		e := f.engine()
		f.ingest(e, withNode(ob("10.1.2.3:51000", 1, observe.Complete, t0), 7), withNode(ob("10.1.2.3:52000", 2, observe.Complete, t0.Add(time.Hour)), 7))
		if ts := targets(t, e, analysis.TargetQuery{}); len(ts) != 2 {
			t.Fatalf("%d targets, want 2: BEP 42 exempts private addresses, so their ids prove nothing", len(ts))
		}
	})
	t.Run("a valid id outside its window", func(t *testing.T) {
		f := newFixture(t)
		e := f.engine()
		f.ingest(e,
			withSecureNode(ob("192.0.2.42:6881", 1, observe.Complete, t0), 5, "192.0.2.42"),
			withSecureNode(ob("192.0.2.42:7000", 2, observe.Complete, t0.Add(30*24*time.Hour)), 5, "192.0.2.42"),
		)
		if ts := targets(t, e, analysis.TargetQuery{}); len(ts) != 2 {
			t.Fatalf("%d targets, want 2: a node id a month apart linked", len(ts))
		}
	})
}

// Peer ids in a tracker's list are what the tracker was told: they link
// nothing.
func TestAttackPeerIDFromTrackerList(t *testing.T) {
	const pid = "-TR3000-k3j4h5g6f7d8"
	f := newFixture(t)
	e := f.engine()
	a := withPeerID(thirdParty(ob("192.0.2.50:6881", 1, observe.Announced, t0), observe.MethodTracker), pid)
	b := withPeerID(thirdParty(ob("198.51.100.50:6881", 1, observe.Announced, t0.Add(30*time.Minute)), observe.MethodTracker), pid)
	a.Marks, b.Marks = nil, nil // old records: the method decides
	f.ingest(e, a, b)
	if ts := targets(t, e, analysis.TargetQuery{}); len(ts) != 2 {
		t.Fatalf("%d targets, want 2: peer ids from a tracker list linked two addresses", len(ts))
	}
}

// A link never lends a level: the target's files show the level each
// endpoint itself reached, and a linked endpoint's points count at the
// link's confidence (docs/scoring.md, "Links").
func TestLinksNeverRaiseALevel(t *testing.T) {
	const pid = "-TR3000-k3j4h5g6f7d8"
	f := newFixture(t)
	e := f.engine()
	f.ingest(e,
		// B, the anchor: two complete files.
		withPeerID(ob("192.0.2.60:6881", 2, observe.Complete, t0), pid),
		withPeerID(ob("192.0.2.60:6881", 3, observe.Complete, t0.Add(time.Minute)), pid),
		// A, an hour later at another address, same session: file 1
		// complete, and file 2 only acknowledged.
		withPeerID(ob("198.51.100.60:6881", 1, observe.Complete, t0.Add(time.Hour)), pid),
		withPeerID(ob("198.51.100.60:6881", 2, observe.Acknowledged, t0.Add(time.Hour+time.Minute)), pid),
	)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 || ts[0].Endpoints != 2 {
		t.Fatalf("targets %+v, want one device of two endpoints", ts)
	}
	d := detail(t, e, ts[0].ID)
	conf := analysis.DefaultConfig().Links.Confidence[analysis.RulePeerID]
	for _, fi := range d.Files {
		for _, at := range fi.At {
			if at.Endpoint == "198.51.100.60:6881" && at.Confidence != conf {
				t.Errorf("linked endpoint shown with confidence %v, want %v", at.Confidence, conf)
			}
		}
		if fi.Hex == hashN(2).Hex() {
			if len(fi.At) != 2 || fi.At[0].Level != observe.Complete || fi.At[0].Endpoint != "192.0.2.60:6881" ||
				fi.At[1].Level != observe.Acknowledged || fi.At[1].Endpoint != "198.51.100.60:6881" {
				t.Errorf("file 2 at %+v: want complete at the anchor, acknowledged at the linked endpoint", fi.At)
			}
		}
	}
	w := analysis.DefaultWeights()
	sev := analysis.DefaultSeverity("national", "1")
	per := w.Severity[sev] * w.Level[observe.Complete]
	want := per*2 + per*conf // file 1 reached only at the linked endpoint
	if got := ts[0].Parts[analysis.PartFiles]; math.Abs(got-want) > 0.011 {
		t.Fatalf("files part %.2f, want %.2f: the linked endpoint's complete copy counts at the link's confidence", got, want)
	}
	_ = context.Background
}
