package accuracy

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestAccuracyRunsOnTheHostileLab runs the whole measurement briefly and
// checks that the report adds up and that the truth was read as the lab
// built it. It does not check the figures themselves: they are what the
// measurement is for.
func TestAccuracyRunsOnTheHostileLab(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lab and the sensor for 25 s")
	}
	c := DefaultConfig()
	c.Duration = 25 * time.Second
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	in := rep.in
	// The truth: every hostile kind once, the lab's clients, and the two
	// users of one address one after the other.
	kinds := []string{lab.KindAnnouncedOnly, lab.KindAckNothing, lab.KindPartial, lab.KindComplete,
		lab.KindLiarSpareBits, lab.KindLiarExtraBytes, lab.KindLiarHavePastEnd, lab.KindLiarHaveAllAfterBitfield,
		lab.KindLiarHaveAllNothing, lab.KindLiarWrongHash, lab.KindReplayer, lab.KindNodeIDForger, lab.KindNodeIDSpoofer,
		lab.KindReassignedFirst, lab.KindReassignedSecond, lab.KindInnocent}
	for _, k := range kinds {
		if rep.Devices[k] != 1 {
			t.Errorf("%d devices of kind %s, want 1", rep.Devices[k], k)
		}
	}
	lc := LabConfig(c)
	if got, want := rep.Devices[lab.KindLabClient], lc.Seeders+lc.Leechers; got != want {
		t.Errorf("%d lab clients in the truth, want %d", got, want)
	}
	var first, second *lab.TruthDevice
	for i := range in.Truth.Devices {
		d := &in.Truth.Devices[i]
		switch d.Kind {
		case lab.KindReassignedFirst:
			first = d
		case lab.KindReassignedSecond:
			second = d
		case lab.KindReplayer:
			if d.Presents == "" || d.Presents == d.PeerID || d.Victim == "" {
				t.Errorf("replayer %s presents %q (own %s) of %q", d.Name, d.Presents, d.PeerID, d.Victim)
			}
		}
		for _, it := range d.Items {
			if d.Kind != lab.KindLabClient && !it.Watched {
				t.Errorf("hostile device %s holds unwatched torrent %d", d.Name, it.Torrent)
			}
			if it.Shown < observe.Announced || it.Shown > observe.Complete || it.Pieces < 4 || it.ShownPieces > it.Pieces || it.HeldPieces > it.Pieces {
				t.Errorf("device %s torrent %d: truth %+v", d.Name, it.Torrent, it)
			}
		}
	}
	if first == nil || second == nil || first.Stints[0].Addr != second.Stints[0].Addr ||
		first.Stints[0].To.IsZero() || second.Stints[0].From.Sub(first.Stints[0].To) < c.Shift {
		t.Fatalf("reassigned address: first %+v, second %+v: want one address, %v apart", first, second, c.Shift)
	}
	if rep.Forged == 0 {
		t.Error("the spoofer forged no reply: the sensor's get_peers never reached the lab's nodes")
	}
	if len(in.Observations) == 0 || len(in.Targets) == 0 {
		t.Fatalf("%d observations, %d targets: the sensor saw nothing", len(in.Observations), len(in.Targets))
	}
	// The reassigned address's second user is in the store, stamped Shift
	// later than it happened (docs/accuracy.md, "Time"): its observations
	// are not refused as ahead of ingest's clock (before, ingest refused
	// every one as a time that cannot be true, and the second user, the
	// point of the case, was never a target).
	shifted := 0
	for i := range in.Observations {
		o := &in.Observations[i]
		if o.Endpoint.IP.Unmap() == second.Stints[0].Addr.Addr() && !o.Time.Before(second.Stints[0].From) {
			shifted++
		}
	}
	if shifted == 0 {
		t.Errorf("no observation of the reassigned address's second user (stamped %v later) stored", c.Shift)
	}
	checkArithmetic(t, rep)
	devObs := 0
	for _, d := range rep.DeviceRows {
		devObs += d.Observations
		// Honest devices that say exactly what they hold are never
		// recorded above it: the truth of them is read right.
		switch d.Kind {
		case lab.KindAckNothing, lab.KindPartial, lab.KindComplete:
			if d.Torrent >= 0 && d.False != 0 {
				t.Errorf("honest device %s: %d of %d observations judged false", d.Device, d.False, d.Observations)
			}
		}
	}
	if devObs+rep.FalseBy[WhySensorItself]+rep.FalseBy[WhyNoDevice] != len(in.Observations) {
		t.Errorf("device rows hold %d observations, + %d of the sensor + %d of no device != %d", devObs,
			rep.FalseBy[WhySensorItself], rep.FalseBy[WhyNoDevice], len(in.Observations))
	}
	// Both outputs carry the figures.
	var js, txt bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Levels) != len(rep.Levels) || back.ISP.Rows != rep.ISP.Rows {
		t.Fatalf("JSON report does not read back: %v", err)
	}
	if err := WriteText(&txt, rep); err != nil || !bytes.Contains(txt.Bytes(), []byte("peer_id_session")) {
		t.Fatalf("text report: %v\n%s", err, txt.String())
	}
	t.Logf("\n%s", txt.String())
}

// checkArithmetic checks that a report adds up: every table's rows, the
// false observations by reason, kind and detail, the links, the ISP rows
// and the targets.
func checkArithmetic(t *testing.T, rep *Report) {
	t.Helper()
	in := rep.in
	sum := func(rows []Row) (obs, tp, fp int) {
		for _, r := range rows {
			if r.TruePos+r.FalsePos != r.Observations {
				t.Errorf("%s: %d true + %d false != %d observations", r.Name, r.TruePos, r.FalsePos, r.Observations)
			}
			if want := ratio(r.FalsePos, r.Observations); math.Abs(r.FPRate-want) > 1e-9 {
				t.Errorf("%s: false-positive rate %v, want %v", r.Name, r.FPRate, want)
			}
			if r.Detectable >= 0 && (r.Detected > r.Detectable || math.Abs(r.Recall-ratio(r.Detected, r.Detectable)) > 1e-9) {
				t.Errorf("%s: recall %v of %d/%d", r.Name, r.Recall, r.Detected, r.Detectable)
			}
			obs, tp, fp = obs+r.Observations, tp+r.TruePos, fp+r.FalsePos
		}
		return
	}
	lo, ltp, lfp := sum(rep.Levels)
	mo, mtp, mfp := sum(rep.Methods)
	if lo != len(in.Observations) || mo != lo || ltp != mtp || lfp != mfp {
		t.Errorf("levels %d/%d/%d, methods %d/%d/%d, %d observations stored", lo, ltp, lfp, mo, mtp, mfp, len(in.Observations))
	}
	nFalse := 0
	for _, n := range rep.FalseBy {
		nFalse += n
	}
	nKind := 0
	for _, n := range rep.FalseByKind {
		nKind += n
	}
	nDetail := 0
	for _, n := range rep.FalseDetail {
		nDetail += n
	}
	if nFalse != lfp || nKind != lfp || nDetail != lfp {
		t.Errorf("false by reason %d, by kind %d, in detail %d, want %d", nFalse, nKind, nDetail, lfp)
	}
	nWrong := 0
	for _, l := range rep.Links {
		nWrong += l.Wrong
		if l.Correct+l.Wrong != l.Made {
			t.Errorf("links %s: %d correct + %d wrong != %d", l.Rule, l.Correct, l.Wrong, l.Made)
		}
	}
	if nWrong != len(rep.WrongLinks) {
		t.Errorf("%d wrong links, %d named", nWrong, len(rep.WrongLinks))
	}
	wrong := 0
	for _, n := range rep.ISP.WrongBy {
		wrong += n
	}
	if rep.ISP.Right+rep.ISP.Wrong != rep.ISP.Rows || wrong != rep.ISP.Wrong {
		t.Errorf("ISP rows %+v", rep.ISP)
	}
	if tg := rep.Targets; tg.OneDevice+tg.Mixed+tg.NoDevice != tg.Targets || tg.SensorItself > tg.NoDevice || len(tg.MixedDevices) != tg.Mixed || tg.Targets != len(in.Targets) || tg.Joined > tg.Movers {
		t.Errorf("targets %+v (%d read)", tg, len(in.Targets))
	}
}

// TestAccuracyRunsOnTheED2KLab runs the eD2K measurement briefly: the
// truth holds every kind of client the lab starts (the movers with two
// stints, the clone presenting its victim's user hash), the report lists
// the eD2K methods and link rules and adds up, and honest clients are
// never judged false. The figures themselves are what the measurement is
// for.
func TestAccuracyRunsOnTheED2KLab(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the eD2K lab and the sensor for 20 s")
	}
	c := DefaultConfig()
	c.Network, c.Duration, c.ED2KBase = NetworkED2K, 20*time.Second, netip.MustParseAddr("127.60.0.0")
	rep, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	in := rep.in
	if rep.Network != NetworkED2K || in.Network != NetworkED2K {
		t.Fatalf("report of network %q", rep.Network)
	}
	want := map[string]int{KindED2KHonestComplete: 2, KindED2KHonestPartial: 2, KindED2KMover: 2, KindED2KUserHashClone: 1, KindED2KInnocent: 1}
	for _, b := range ed2kHostile {
		want[string(b)] = 1
	}
	for k, n := range want {
		if rep.Devices[k] != n {
			t.Errorf("%d devices of kind %s, want %d (devices %v)", rep.Devices[k], k, n, rep.Devices)
		}
	}
	for _, d := range in.Truth.Devices {
		switch d.Kind {
		case KindED2KMover:
			if len(d.Stints) != 2 || d.Stints[0].To.IsZero() || d.Stints[1].From != d.Stints[0].To || d.Stints[0].Addr == d.Stints[1].Addr {
				t.Errorf("mover %s: stints %+v", d.Name, d.Stints)
			}
		case KindED2KUserHashClone:
			if d.Presents == "" || d.Victim == "" || !strings.HasPrefix(d.Victim, KindED2KHonestComplete) && !strings.HasPrefix(d.Victim, KindED2KHonestPartial) {
				t.Errorf("clone presents %q of %q", d.Presents, d.Victim)
			}
		}
		for _, it := range d.Items {
			if !it.Watched || it.Pieces < 1 || it.ShownPieces > it.Pieces || it.HeldPieces > it.Pieces || len(it.Hashes) != 1 {
				t.Errorf("device %s file %d: truth %+v", d.Name, it.Torrent, it)
			}
		}
	}
	var methods []string
	for _, m := range rep.Methods {
		methods = append(methods, m.Name)
	}
	if !slices.Equal(methods, []string{observe.MethodED2KServerSources, observe.MethodKadSources, observe.MethodPeerProbe}) {
		t.Errorf("methods %v, want eD2K's", methods)
	}
	if len(in.Observations) == 0 || len(in.Targets) == 0 {
		t.Fatalf("%d observations, %d targets: the sensor saw nothing", len(in.Observations), len(in.Targets))
	}
	checkArithmetic(t, rep)
	for _, d := range rep.DeviceRows {
		switch d.Kind {
		case KindED2KHonestComplete, KindED2KHonestPartial, KindED2KMover:
			if d.False != 0 {
				t.Errorf("honest client %s file %d: %d of %d observations judged false", d.Device, d.Torrent, d.False, d.Observations)
			}
		}
	}
	var txt bytes.Buffer
	if err := WriteText(&txt, rep); err != nil || !bytes.Contains(txt.Bytes(), []byte("emule_user_hash")) || !bytes.Contains(txt.Bytes(), []byte("eD2K")) {
		t.Fatalf("text report: %v\n%s", err, txt.String())
	}
	t.Logf("\n%s", txt.String())
}
