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
	"github.com/vigil-oss/vigil/internal/own"
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
	// Seven before the stop (one whole batch, the fellow in its middle),
	// the eighth as the sensor stops (a batch of its own).
	f := newFlood(p.Publisher(), 8)
	f.obs = bustest.Observations(8)
	for i := range f.obs {
		f.obs[i].Endpoint.IP = netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)})
		f.obs[i].Marks = nil // first-hand probes of public addresses: each a target
	}
	f.obs[3].Endpoint.IP = fellow
	addSensor(t, p, "sensor without the file", f.run)
	n := runUntilAccepted(t, p, f, st, 7)
	m := gathered(t, reg)
	if n != 8 || m["vigil_ingest_signed_batches_total"] != 2 || m["vigil_ingest_signature_failures_total"] != 0 {
		t.Fatalf("stored %d (want 8); signed batches %v (want 2: 7 and the last 1), failures %v (want 0)",
			n, m["vigil_ingest_signed_batches_total"], m["vigil_ingest_signature_failures_total"])
	}
	if m["vigil_analysis_dropped_total"] != 1 {
		t.Errorf("vigil_analysis_dropped_total %v, want 1 (deployment_address)", m["vigil_analysis_dropped_total"])
	}
	ts, total, err := p.Engine().Targets(context.Background(), analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if total != 7 {
		t.Errorf("%d targets, want 7 (every observation but the fellow's)", total)
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
