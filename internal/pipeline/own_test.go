package pipeline

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/store"
)

// A sensor that was not given --own-addresses recorded a fellow sensor in
// the middle of a signed batch. Ingest, given the file, stores it as it
// came (its batch's signature still checks: dropping it would break the
// chain of the other six), and the analysis makes no target of it, and
// counts it; the other observations are targets as before.
func TestAFellowInASignedBatchIsStoredButMakesNoTarget(t *testing.T) {
	st := openStore(t)
	reg := prometheus.NewRegistry()
	set, err := own.Parse("own.txt", []byte("192.0.2.50\n"))
	if err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	p, err := New(context.Background(), Config{Store: st, Analysis: st, SensorKey: key,
		Signer: evidence.SignerConfig{BatchSize: 7, Interval: time.Hour}, Registry: reg, Own: set})
	if err != nil {
		t.Fatal(err)
	}
	fellow := netip.MustParseAddr("192.0.2.50")
	f := newFlood(p.Publisher(), 7)
	f.obs = bustest.Observations(7)
	for i := range f.obs {
		f.obs[i].Endpoint.IP = netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)})
		f.obs[i].Marks = nil // first-hand probes of public addresses: each a target
	}
	f.obs[3].Endpoint.IP = fellow
	addSensor(t, p, "sensor without the file", f.run)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	f.waitAccepted(t, 6)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		n++
		if !o.Signed() {
			t.Errorf("observation %s stored unsigned", o.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m := gathered(t, reg)
	// The flood publishes its last observation as the pipeline stops:
	// the signer may have signed the first six as a batch by then, so one
	// batch or two, each checked.
	if n != 7 || m["vigil_ingest_signed_batches_total"] < 1 || m["vigil_ingest_signature_failures_total"] != 0 {
		t.Fatalf("stored %d (want 7); signed batches %v (want 1 or 2), failures %v (want 0)",
			n, m["vigil_ingest_signed_batches_total"], m["vigil_ingest_signature_failures_total"])
	}
	if m["vigil_analysis_dropped_total"] != 1 {
		t.Errorf("vigil_analysis_dropped_total %v, want 1 (deployment_address)", m["vigil_analysis_dropped_total"])
	}
	ts, total, err := p.Engine().Targets(context.Background(), analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if total != 6 {
		t.Errorf("%d targets, want 6 (every observation but the fellow's)", total)
	}
	for _, s := range ts {
		d, err := p.Engine().Target(context.Background(), s.ID, analysis.AllAgencies)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range d.Endpoints {
			if e.IP == fellow {
				t.Errorf("target %s holds the fellow sensor %v:%d", s.ID, e.IP, e.Port)
			}
		}
	}
}
