package accuracy

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestEvaluateScoresEachCase feeds Evaluate one observation, link and ISP
// row per case of docs/accuracy.md and checks every count and ratio.
func TestEvaluateScoresEachCase(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	hA := mustHash(t, "aa")
	hB := mustHash(t, "bb")
	ap := netip.MustParseAddrPort
	item := func(h hashkind.Hash, torrent int, shown observe.Level, shownPieces, held int) lab.TruthItem {
		return lab.TruthItem{Torrent: torrent, Hashes: []string{h.Hex()}, Watched: true, InDHT: true, Shown: shown, ShownPieces: shownPieces, HeldPieces: held, Pieces: 10}
	}
	truth := lab.Truth{Devices: []lab.TruthDevice{
		{Name: "seeder", Kind: lab.KindLabClient, Stints: []lab.Stint{
			{Addr: ap("127.1.0.1:1000"), From: t0, To: t0.Add(time.Hour)}, // then it moved
			{Addr: ap("127.2.0.1:2000"), From: t0.Add(time.Hour)},
		}, Items: []lab.TruthItem{item(hA, 0, observe.Complete, 10, 10)}},
		{Name: "liar", Kind: lab.KindLiarSpareBits, Stints: []lab.Stint{{Addr: ap("127.3.0.1:3000"), From: t0}},
			Items: []lab.TruthItem{item(hA, 0, observe.Partial, 1, 1)}},
		{Name: "haveall", Kind: lab.KindLiarHaveAllNothing, Stints: []lab.Stint{{Addr: ap("127.4.0.1:4000"), From: t0}},
			Items: []lab.TruthItem{item(hA, 0, observe.Complete, 10, 0)}},
		{Name: "first", Kind: lab.KindReassignedFirst, Stints: []lab.Stint{{Addr: ap("127.5.0.1:5000"), From: t0, To: t0.Add(time.Hour)}},
			Items: []lab.TruthItem{item(hA, 0, observe.Complete, 10, 10)}},
		{Name: "second", Kind: lab.KindReassignedSecond, Stints: []lab.Stint{{Addr: ap("127.5.0.1:5000"), From: t0.Add(30 * 24 * time.Hour)}},
			Items: []lab.TruthItem{item(hB, 1, observe.Acknowledged, 0, 0)}},
		{Name: "unwatched", Kind: lab.KindLabClient, Stints: []lab.Stint{{Addr: ap("127.6.0.1:6000"), From: t0}},
			Items: []lab.TruthItem{{Torrent: 2, Hashes: []string{"cc"}, InDHT: true, Shown: observe.Complete, Pieces: 10}}},
	}}
	n := 0
	obs := func(method, ep, transport string, at time.Duration, h hashkind.Hash, lv observe.Level, pieces int) observe.Observation {
		n++
		a := ap(ep)
		return observe.Observation{ID: string(rune('a' + n)), Method: method, Time: t0.Add(at),
			Item:       observe.Item{Hash: h},
			Endpoint:   observe.Endpoint{IP: a.Addr(), Port: a.Port(), Transport: transport},
			Possession: observe.Possession{Level: lv, PiecesHave: pieces, PiecesTotal: 10}}
	}
	dht, probe, pex := observe.MethodDHTGetPeers, observe.MethodPeerProbe, observe.MethodPEX
	os := []observe.Observation{
		/* b */ obs(dht, "127.1.0.1:1000", "tcp", time.Minute, hA, observe.Announced, -1), // true
		/* c */ obs(probe, "127.1.0.1:1000", "tcp", 2*time.Minute, hA, observe.Complete, 10), // true
		/* d */ obs(dht, "127.1.0.1:1000", "tcp", 90*time.Minute, hA, observe.Announced, -1), // true: stale by 30 min
		/* e */ obs(dht, "127.1.0.1:1000", "tcp", 4*time.Hour, hA, observe.Announced, -1), // false: stale by 3 h, no_device
		/* f */ obs(probe, "127.2.0.1:2000", "tcp", 2*time.Hour, hA, observe.Complete, 10), // true, the new address
		/* g */ obs(probe, "127.3.0.1:3000", "tcp", time.Minute, hA, observe.Complete, 10), // false: level_above_shown
		/* h */ obs(probe, "127.3.0.1:3000", "tcp", 2*time.Minute, hA, observe.Partial, 7), // false: pieces_above_shown
		/* i */ obs(probe, "127.3.0.1:3000", "tcp", 3*time.Minute, hA, observe.Partial, 1), // true
		/* j */ obs(probe, "127.4.0.1:4000", "tcp", time.Minute, hA, observe.Complete, 10), // true, above held
		/* k */ obs(pex, "127.0.0.1:40000", "tcp", time.Minute, hA, observe.Announced, -1), // false: sensor_itself
		/* l */ obs(dht, "127.9.0.1:6881", "tcp", time.Minute, hA, observe.Announced, -1), // false: no_device
		/* m */ obs(dht, "127.4.0.1:4000", "tcp", time.Minute, hB, observe.Announced, -1), // false: never_had_item
		/* n */ obs(probe, "127.5.0.1:5000", "tcp", time.Minute, hA, observe.Complete, 10), // true (first)
		/* o */ obs(probe, "127.5.0.1:5000", "tcp", 30*24*time.Hour+time.Minute, hB, observe.Acknowledged, -1), // true (second)
		/* p */ obs(probe, "127.5.0.1:5000", "tcp", 30*24*time.Hour+2*time.Minute, hA, observe.Complete, 10), // false: the second never had A
		/* q */ obs(dht, "127.1.0.1:1000", "udp", 3*time.Minute, hA, observe.Announced, -1), // true: it asked itself
	}
	id := func(i int) string { return os[i].ID }
	targets := []analysis.TargetDetail{
		{TargetSummary: analysis.TargetSummary{ID: "T1"}, Timeline: timeline(os, 0, 1, 2, 4, 15),
			Links: []analysis.Link{
				{ID: 1, Rule: analysis.RulePeerID, State: "active", Obs: []string{id(1), id(4)}},     // correct: the move
				{ID: 2, Rule: analysis.RuleNodeID, State: "withdrawn", Obs: []string{id(1), id(5)}},  // withdrawn
				{ID: 3, Rule: analysis.RuleNodeID, State: "active", Obs: []string{id(1), id(5)}},     // wrong: two devices
				{ID: 1, Rule: analysis.RulePeerID, State: "active", Obs: []string{id(1), id(4)}},     // seen twice: counted once
				{ID: 4, Rule: analysis.RuleListenPort, State: "active", Obs: []string{id(1), id(9)}}, // wrong: the sensor
			}},
		{TargetSummary: analysis.TargetSummary{ID: "T2"}, Timeline: timeline(os, 12, 13, 14)},
		{TargetSummary: analysis.TargetSummary{ID: "T3"}, Timeline: timeline(os, 9)},
	}
	row := func(i int, port uint16) isp.Row {
		o := os[i]
		return isp.Row{IP: o.Endpoint.IP, Port: port, Time: o.Time, ObservationID: o.ID, Method: o.Method}
	}
	rows := map[string][]isp.Row{
		"T1": {row(1, 1000), row(4, 2000), row(0, 1000), row(15, 1000), row(1, 1234)}, // right, right, third_party, right, wrong_port
		"T2": {row(12, 5000), row(13, 5000)},                                          // the target is the second's (2 of 3 first-hand): other_device, right
		"T3": {row(9, 40000)},                                                         // third_party (pex)
	}
	rep := Evaluate(Inputs{Truth: truth, Sensor: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Observations: os,
		Targets: targets, Rows: rows, StaleWindow: 2 * time.Hour})

	level := map[string]Row{}
	for _, r := range rep.Levels {
		level[r.Name] = r
	}
	method := map[string]Row{}
	for _, r := range rep.Methods {
		method[r.Name] = r
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %+v, want %+v", what, got, want)
		}
	}
	// announced: b d q true; e k l m false. Every pair was recorded
	// correctly at announced or above.
	check("announced", level["announced"], Row{Name: "announced", Observations: 7, TruePos: 3, FalsePos: 4, FPRate: 4.0 / 7,
		Detectable: 5, Detected: 5, Recall: 1})
	// acknowledged: o true. Detectable: every pair shown at acknowledged
	// or above (seeder, liar, haveall, first, second); detected: seeder,
	// liar, haveall, first (a higher true level counts), second.
	check("acknowledged", level["acknowledged"], Row{Name: "acknowledged", Observations: 1, TruePos: 1, FPRate: 0,
		Detectable: 5, Detected: 5, Recall: 1})
	// partial: h false (7 > 1 shown), i true.
	check("partial", level["partial"], Row{Name: "partial", Observations: 2, TruePos: 1, FalsePos: 1, FPRate: 0.5, AboveHeld: 1,
		Detectable: 4, Detected: 4, Recall: 1})
	// complete: c f j n true (j above held), g p false (g above held too).
	check("complete", level["complete"], Row{Name: "complete", Observations: 6, TruePos: 4, FalsePos: 2, FPRate: 2.0 / 6, AboveHeld: 2,
		Detectable: 3, Detected: 3, Recall: 1})
	check("verified recall", level["verified"].Recall, -1.0)
	check("probe", method["peer_probe"], Row{Name: "peer_probe", Observations: 9, TruePos: 6, FalsePos: 3, FPRate: 3.0 / 9, AboveHeld: 3,
		Detectable: 5, Detected: 5, Recall: 1})
	check("dht", method["dht_get_peers"], Row{Name: "dht_get_peers", Observations: 6, TruePos: 3, FalsePos: 3, FPRate: 0.5,
		Detectable: 5, Detected: 1, Recall: 1.0 / 5})
	check("pex recall", method["pex"].Recall, -1.0)
	for why, want := range map[string]int{WhySensorItself: 1, WhyNoDevice: 2, WhyNeverHadItem: 2, WhyLevelAbove: 1, WhyPiecesAbove: 1} {
		check("false by "+why, rep.FalseBy[why], want)
	}
	links := map[string]LinkRow{}
	for _, l := range rep.Links {
		links[l.Rule] = l
	}
	check("peer id links", links[analysis.RulePeerID], LinkRow{Rule: analysis.RulePeerID, Made: 1, Correct: 1})
	check("node id links", links[analysis.RuleNodeID], LinkRow{Rule: analysis.RuleNodeID, Made: 1, Wrong: 1, FPRate: 1, Withdrawn: 1})
	check("listen port links", links[analysis.RuleListenPort], LinkRow{Rule: analysis.RuleListenPort, Made: 1, Wrong: 1, FPRate: 1})
	check("isp rows", rep.ISP.Rows, 8)
	check("isp right", rep.ISP.Right, 4)
	check("isp wrong", rep.ISP.Wrong, 4)
	check("isp fp rate", rep.ISP.FPRate, 0.5)
	for why, want := range map[string]int{WhyThirdParty: 2, WhyWrongPort: 1, WhyOtherDevice: 1} {
		check("isp wrong by "+why, rep.ISP.WrongBy[why], want)
	}
	check("targets", rep.Targets, Targets{Targets: 3, OneDevice: 1, Mixed: 1, NoDevice: 1, SensorItself: 1, Movers: 1, Joined: 1,
		MixedDevices: []string{"first + second"}})
	if got, want := fmt.Sprint(rep.WrongLinks), "[dht_node_id: seeder + liar listen_port_client: seeder + (none)]"; got != want {
		t.Errorf("wrong links %s, want %s", got, want)
	}
	check("false detail", rep.FalseDetail["complete never_had_item "+lab.KindReassignedSecond], 1)
	check("false detail", rep.FalseDetail["announced sensor_itself (none)"], 1)
}

func timeline(os []observe.Observation, idx ...int) []analysis.TimelineEntry {
	var out []analysis.TimelineEntry
	for _, i := range idx {
		o := os[i]
		out = append(out, analysis.TimelineEntry{ID: o.ID, Time: o.Time, Method: o.Method, Level: o.Possession.Level,
			Endpoint: netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port).String(), Transport: o.Endpoint.Transport,
			Kind: o.Item.Hash.Kind().String(), Hash: o.Item.Hash.Hex()})
	}
	return out
}

func mustHash(t *testing.T, b string) hashkind.Hash {
	t.Helper()
	hx := ""
	for range 20 {
		hx += b
	}
	h, err := hashkind.Parse(hx, hashkind.BTIH)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEvaluateED2K: an eD2K report lists eD2K's methods and link rules;
// a server's or Kad's source entry is a third party's claim (true up to
// the stale window after the client left the address, as a tracker's),
// never an ISP row; each method's recall counts the pairs the lab made
// detectable by it.
func TestEvaluateED2K(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	h, err := hashkind.Parse("ed2ced2ced2ced2ced2ced2ced2ced2c", hashkind.ED2K)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort
	truth := lab.Truth{Devices: []lab.TruthDevice{
		{Name: "mover", Kind: KindED2KMover, Stints: []lab.Stint{
			{Addr: ap("127.7.0.1:4662"), From: t0, To: t0.Add(time.Hour)},
			{Addr: ap("127.8.0.1:4662"), From: t0.Add(time.Hour)},
		}, Items: []lab.TruthItem{{Torrent: 0, Hashes: []string{h.Hex()}, Watched: true, InDHT: true, OnTracker: true,
			Shown: observe.Complete, ShownPieces: 1, HeldPieces: 1, Pieces: 1}}},
		{Name: "unpublished", Kind: KindED2KHonestComplete, Stints: []lab.Stint{{Addr: ap("127.7.0.2:4662"), From: t0}},
			Items: []lab.TruthItem{{Torrent: 0, Hashes: []string{h.Hex()}, Watched: true, OnTracker: true,
				Shown: observe.Announced, HeldPieces: 1, Pieces: 1}}},
	}}
	n := 0
	obs := func(method, ep string, at time.Duration, lv observe.Level) observe.Observation {
		n++
		a := ap(ep)
		return observe.Observation{ID: fmt.Sprint("o", n), Method: method, Time: t0.Add(at), Item: observe.Item{Hash: h},
			Endpoint:   observe.Endpoint{IP: a.Addr(), Port: a.Port(), Transport: "tcp"},
			Possession: observe.Possession{Level: lv, PiecesHave: -1, PiecesTotal: -1}}
	}
	srv, kad, probe := observe.MethodED2KServerSources, observe.MethodKadSources, observe.MethodPeerProbe
	os := []observe.Observation{
		obs(srv, "127.7.0.1:4662", time.Minute, observe.Announced),         // true
		obs(kad, "127.7.0.1:4662", 90*time.Minute, observe.Announced),      // true: stale by 30 min
		obs(kad, "127.7.0.1:4662", 4*time.Hour, observe.Announced),         // false: stale by 3 h
		obs(probe, "127.8.0.1:4662", 2*time.Hour, observe.Complete),        // true, the new address
		obs(probe, "127.7.0.1:4662", 90*time.Minute, observe.Acknowledged), // false: a probe is no claim, nobody there
		obs(srv, "127.7.0.2:4662", time.Minute, observe.Announced),         // true
		obs(probe, "127.7.0.2:4662", 2*time.Minute, observe.Acknowledged),  // false: above what it showed
	}
	in := Inputs{Network: NetworkED2K, Truth: truth, Sensor: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, StaleWindow: 2 * time.Hour,
		Observations: os, Rows: map[string][]isp.Row{"T1": {
			{IP: os[1].Endpoint.IP, Port: 4662, Time: os[1].Time, ObservationID: os[1].ID}, // a Kad entry as a row: third_party
			{IP: os[3].Endpoint.IP, Port: 4662, Time: os[3].Time, ObservationID: os[3].ID}, // right
		}},
		Targets: []analysis.TargetDetail{{TargetSummary: analysis.TargetSummary{ID: "T1"}, Timeline: timeline(os, 0, 1, 3),
			Links: []analysis.Link{{ID: 1, Rule: analysis.RuleUserHash, State: "active", Obs: []string{os[0].ID, os[3].ID}}}}}}
	rep := Evaluate(in)
	if rep.Network != NetworkED2K {
		t.Errorf("network %q", rep.Network)
	}
	got := map[string][3]int{}
	var names []string
	for _, r := range rep.Methods {
		got[r.Name] = [3]int{r.FalsePos, r.Detectable, r.Detected}
		names = append(names, r.Name)
	}
	if !reflect.DeepEqual(names, []string{srv, kad, probe}) {
		t.Fatalf("methods %v, want eD2K's", names)
	}
	// Server: both offered, both named. Kad: only the mover published,
	// named (one stale claim false). Probe: only the mover answered.
	want := map[string][3]int{srv: {0, 2, 2}, kad: {1, 1, 1}, probe: {2, 1, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("methods (false, detectable, detected) %v, want %v", got, want)
	}
	if rep.FalseBy[WhyNoDevice] != 2 || rep.FalseBy[WhyLevelAbove] != 1 {
		t.Errorf("false by reason %v", rep.FalseBy)
	}
	var rules []string
	for _, l := range rep.Links {
		rules = append(rules, l.Rule)
		if l.Rule == analysis.RuleUserHash && (l.Made != 1 || l.Correct != 1) {
			t.Errorf("user hash links %+v, want the mover's one, correct", l)
		}
	}
	if !reflect.DeepEqual(rules, []string{analysis.RuleUserHash, analysis.RuleListenPort}) {
		t.Errorf("link rules %v", rules)
	}
	if rep.ISP.Right != 1 || rep.ISP.WrongBy[WhyThirdParty] != 1 {
		t.Errorf("ISP %+v, want the Kad entry wrong as third_party and the probe right", rep.ISP)
	}
}
