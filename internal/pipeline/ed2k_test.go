package pipeline

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/lab/ntpserver"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/timesync"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

func ed2kHash(b byte) hashkind.Hash {
	h := make([]byte, 16)
	for i := range h {
		h[i] = b + byte(i)
	}
	return hashkind.MustNew(hashkind.ED2K, h)
}

func importList(t *testing.T, st store.Store, name string, negative bool, es ...watchlist.Entry) {
	t.Helper()
	if _, err := st.ImportList(context.Background(), store.ListImport{Name: name, Source: "test", Negative: negative,
		Format: watchlist.FormatText, By: "test", Entries: es}); err != nil {
		t.Fatal(err)
	}
}

// The ed2k watch set is match.WatchSet's (a hash a known-benign list holds
// is not watched, whatever the order of the lists), each hash with the
// size of the first list entry that gives one, and the lists it is on.
func TestED2KWatchesListedHashesWithTheirSizes(t *testing.T) {
	st := openStore(t)
	sized, unsized, benign, other := ed2kHash(1), ed2kHash(2), ed2kHash(3), hashkind.MustNew(hashkind.SHA1, make([]byte, 20))
	importList(t, st, "a", false,
		watchlist.Entry{Hash: unsized, Size: -1, Category: "1"},
		watchlist.Entry{Hash: sized, Size: 300_000, Category: "1"},
		watchlist.Entry{Hash: benign, Size: 10, Category: "1"},
		watchlist.Entry{Hash: other, Size: 5, Category: "1"})
	importList(t, st, "b", false, watchlist.Entry{Hash: unsized, Size: 9_728_001, Category: "2"})
	importList(t, st, "known-benign", true, watchlist.Entry{Hash: benign, Size: -1})
	ws, err := watchedED2K(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	got := map[hashkind.Hash]ed2k.Watched{}
	for _, w := range ws {
		got[w.Hash] = w
	}
	if len(got) != 2 {
		t.Fatalf("watched %+v, want the two ed2k hashes no benign list holds", ws)
	}
	if w := got[sized]; w.Size != 300_000 || len(w.Matched) != 1 || w.Matched[0].List != "a" {
		t.Errorf("sized hash watched as %+v, want size 300000 from list a", w)
	}
	if w := got[unsized]; w.Size != 9_728_001 || len(w.Matched) != 2 {
		t.Errorf("hash sized by its second list watched as %+v, want size 9728001 and both lists", w)
	}
}

// AddED2K runs the eD2K sensor through the pipeline: a lab client found by
// the lab's server is probed, and its observations reach the store
// through ingest (placed), the analysis (a target) and the sensor's
// metrics.
func TestED2KSensorStoresThroughIngestAndAnalysis(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 31, Server: true, Files: 1, Clients: 1,
		Base: netip.MustParseAddr("127.88.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	f := lab.Files[0]
	st := openStore(t)
	importList(t, st, "lab", false, watchlist.Entry{Hash: hashkind.MustNew(hashkind.ED2K, f.Hash[:]), Size: f.Size, Category: "1"})

	labGeo, labRules := labEnrichment(t)
	reg := prometheus.NewRegistry()
	var probes atomic.Int32
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	p, err := New(ctx, Config{Store: st, Analysis: st, Registry: reg, Geo: labGeo, Rules: labRules,
		OnCommit: func(batch []observe.Observation) {
			for _, o := range batch {
				if o.Method == observe.MethodPeerProbe {
					probes.Add(1)
					stop()
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ed2k.LabConfig()
	cfg.ID, cfg.Listen, cfg.Servers = "ed2k-test", netip.MustParseAddr("127.88.255.1"), []netip.AddrPort{lab.Server.Addr()}
	cfg.Version, cfg.Commit, cfg.Modified, cfg.ConfigSHA256 = "1.2.3", "c0ffee", true, strings.Repeat("ab", 32)
	// The sensor's clock is measured against a lab NTP server two
	// seconds ahead of the machine's clock.
	ntpSrv, err := ntpserver.Start(ntpserver.Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Shift: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ntpSrv.Close()
	ntp := timesync.Config{Servers: []netip.AddrPort{ntpSrv.Addr()}}
	if _, err := p.AddED2K(ctx, ED2K{Sensor: cfg, Scope: scope.DefaultConfig(), NTP: ntp}); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	if probes.Load() == 0 {
		t.Fatal("no probe committed before the deadline")
	}
	var stored []observe.Observation
	if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		stored = append(stored, *o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	uh := lab.Clients[0].UserHash()
	var probe *observe.Observation
	for i := range stored {
		o := &stored[i]
		if o.Place.Country == "" {
			t.Errorf("%s %s stored without a place: not enriched at ingest", o.Method, o.ID)
		}
		if o.Method == observe.MethodPeerProbe {
			probe = o
		}
	}
	if probe == nil || string(probe.Client.UserHash) != string(uh[:]) || probe.Network != observe.NetED2K {
		t.Fatalf("stored probe %+v, want the lab client's user hash %x", probe, uh)
	}
	if !probe.ClockKnown || probe.ClockOffset > -1900*time.Millisecond || probe.ClockOffset < -2100*time.Millisecond ||
		probe.ClockUncertainty <= 0 || probe.ClockSource != "ntp:"+ntpSrv.Addr().String()+" (single source, not cross-checked: uncertainty doubled)" {
		t.Fatalf("stored probe's clock: known %v, %v ± %v from %q; want about -2s from ntp:%s",
			probe.ClockKnown, probe.ClockOffset, probe.ClockUncertainty, probe.ClockSource, ntpSrv.Addr())
	}
	if want := (observe.Sensor{ID: "ed2k-test", Version: "1.2.3", Vantage: "127.88.255.1", Commit: "c0ffee", Modified: true,
		Config: strings.Repeat("ab", 32)}); probe.Sensor != want {
		t.Fatalf("stored probe's sensor %+v, want %+v", probe.Sensor, want)
	}
	ts, n, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 10})
	if err != nil || n == 0 {
		t.Fatalf("targets %v (%d), %v: the analysis scored nothing", ts, n, err)
	}
	got := gathered(t, reg)
	if got["vigil_ntp_offset_known"] != 1 || got["vigil_ntp_answers_total"] < 1 || got["vigil_ntp_offset_seconds"] > -1.9 {
		t.Fatalf("the sensor clock's metrics: %v", got)
	}
	if got["vigil_ed2k_observations_total"] < 1 || got["vigil_ed2k_probes_total"] < 1 {
		t.Fatalf("the sensor's metrics are not registered: %v", got)
	}
}

// discard is a remote bus that drops what it is given.
type discard struct{}

func (discard) Publish(context.Context, observe.Observation) error { return nil }

// With keywords, the files a search finds that no list names become
// suspect leads in the analysis, seen at no endpoint; a watched file and
// a known-benign one do not; nothing of them becomes an observation. A
// pipeline with a remote bus refuses keywords: leads do not travel on it.
func TestED2KKeywordSearchesBecomeSuspectLeads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 32, Server: true, Files: 3, Clients: 3,
		Names: []string{"lab-keyword-alpha 01.bin", "lab-keyword-alpha 02.bin", "lab-keyword-alpha 03.bin"},
		Base:  netip.MustParseAddr("127.116.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	h := func(i int) hashkind.Hash { return hashkind.MustNew(hashkind.ED2K, lab.Files[i].Hash[:]) }
	st := openStore(t)
	importList(t, st, "lab", false, watchlist.Entry{Hash: h(0), Size: lab.Files[0].Size, Category: "1"})
	importList(t, st, "known-benign", true, watchlist.Entry{Hash: h(2), Size: -1})

	cfg := ed2k.LabConfig()
	cfg.ID, cfg.Listen, cfg.Servers = "ed2k-test", netip.MustParseAddr("127.116.255.1"), []netip.AddrPort{lab.Server.Addr()}
	cfg.Keywords = []string{"lab-keyword-alpha"}
	remote, err := New(ctx, Config{Store: st, Remote: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.AddED2K(ctx, ED2K{Sensor: cfg, Scope: scope.DefaultConfig()}); err == nil {
		t.Fatal("keywords accepted by a pipeline without an analysis")
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	labGeo, labRules := labEnrichment(t)
	p, err := New(ctx, Config{Store: st, Analysis: st, Geo: labGeo, Rules: labRules})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.AddED2K(ctx, ED2K{Sensor: cfg, Scope: scope.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for runCtx.Err() == nil {
			if st := s.Stats(); st.Suspects > 0 && st.KeywordWatched > 0 {
				stop()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	if err := p.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	leads, n, err := st.Leads(ctx, analysis.LeadQuery{})
	if err != nil || n != 1 {
		t.Fatalf("leads %+v (%d), %v; want one", leads, n, err)
	}
	if l := leads[0]; l.Key != analysis.HashKey(h(1)) || l.Path != lab.Files[1].Name || l.Endpoints != 0 || l.State != analysis.LeadOpen ||
		len(l.Keywords) != 1 || len(l.Networks) != 1 || l.Networks[0] != observe.NetED2K || l.Sources != 1 {
		t.Fatalf("lead %+v", l)
	}
	if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		if o.Item.Hash != h(0) {
			t.Errorf("observation of an unwatched hash stored: %+v", o)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
