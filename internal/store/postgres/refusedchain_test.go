package postgres

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Attack (h-nul): what PostgreSQL still refuses of an observation (a
// field its sensor writes, not the peer: here the zone of the sensor's
// own link-local address, an interface name that is not UTF-8) leaves a
// gap in a signing sensor's stored chain, mid-batch. Ingest's gate must
// still take the next batches as signed; the refusal's log line names
// the chain and seq; a bundle of an observation after the gap (in the
// same signed batch) must not pass 'vigil verify' silently: the report
// names the positions its sensor signed that the bundle's chain lacks;
// and a bundle of an observation before the gap, whose batch cannot be
// rebuilt, fails saying so (evidence.ErrBatchIncomplete) and naming the
// missing seq. Before, the bundle after the gap verified with nothing
// said, and the one before it failed with the store's bare "seq 6
// missing from the store".
func TestARefusedSignedObservationLeavesANamedGap(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(30, 30))
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var raw []observe.Observation
	for i := range 12 {
		o := storetest.Observation(r, t0.Add(time.Duration(i)*time.Second), i+1)
		o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 60+i)), 51413
		o.Chain = observe.Chain{}
		o.Marks = nil
		raw = append(raw, o)
	}
	const refused = 5 // seq 6, in the batch of seqs 5 to 8
	raw[refused].Endpoint.Local = netip.MustParseAddrPort("[fe80::1%\xffeth]:6881")
	obs := signedBatches(t, raw, 9)
	var logged bytes.Buffer
	stats, err := ingest.Run(ctx, inproc.NewSlice(obs), st, ingest.Config{BatchSize: 12, FlushEvery: time.Millisecond,
		Gate: evidence.NewGate(evidence.DefaultGateConfig()), Log: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil || stats.Refused != 1 || stats.Committed != 11 {
		t.Fatalf("ingest: %+v, %v; want 11 stored and 1 refused", stats, err)
	}
	if line := logged.String(); !strings.Contains(line, "chain="+obs[refused].Chain.ID) || !strings.Contains(line, "seq=6") {
		t.Errorf("the refusal's log line does not name its chain and seq:\n%s", line)
	}
	var failed int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM observations WHERE chain_ref IS NULL`).Scan(&failed); err != nil || failed != 0 {
		t.Fatalf("%d observations stored without their chain (signature_failed), %v; want every one the store holds signed", failed, err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{10}, 32))
	if _, err := evidence.MakeCheckpoint(ctx, st, key, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// After the gap: signed (its chain_prev links it to the head), and the
	// report names seq 6 as a position of its batch the bundle lacks.
	var buf bytes.Buffer
	if err := evidence.WriteBundle(ctx, &buf, st, key, evidence.Export{Target: "t", IDs: []string{obs[refused+1].ID}, Now: t0.Add(time.Hour)}); err != nil {
		t.Fatalf("bundle of seq 7: %v", err)
	}
	rep, err := verify.Verify(bytes.NewReader(buf.Bytes()), int64(buf.Len()), verify.Options{})
	if err != nil || rep.Signed != 1 {
		t.Fatalf("verify: %+v, %v; want seq 7 signed", rep, err)
	}
	for _, p := range rep.Problems {
		if !strings.Contains(fmt.Sprint(p), "transcript") { // storetest's transcripts are random bytes
			t.Errorf("verify: %v", p)
		}
	}
	if len(rep.Gaps) != 1 || rep.Gaps[0].Chain != obs[refused].Chain.ID || rep.Gaps[0].SignedFrom != 5 || rep.Gaps[0].FirstSeq != 7 ||
		fmt.Sprint(rep.Gaps[0].Missing) != "[6]" {
		t.Fatalf("verify's gaps %+v: want chain %s, signed from seq 5, checked from seq 7, seq 6 missing from the store", rep.Gaps, obs[refused].Chain.ID)
	}
	// Before the gap: the batch cannot be rebuilt; the error says so.
	err = evidence.WriteBundle(ctx, &bytes.Buffer{}, st, key, evidence.Export{Target: "t", IDs: []string{obs[refused-1].ID}, Now: t0.Add(time.Hour)})
	if !errors.Is(err, evidence.ErrBatchIncomplete) || !strings.Contains(err.Error(), "seq 6") || !strings.Contains(err.Error(), obs[refused-1].ID) {
		t.Fatalf("bundle of seq 5: %v; want ErrBatchIncomplete naming seq 6 and the observation", err)
	}
}
