package evidence_test

import (
	"bytes"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestGateChainKeyPinsNoLine: a chain the gate remembers keeps its key,
// not the bytes the key was decoded among. A line decodes sensor_key,
// chain_prev and batch_sig into one array (observe's record.chain); a
// hostile hub can begin a chain per line (MaxChains of them, each kept
// up to HeadWait) with a batch_sig of half a megabyte that checks under
// nothing: the chain's key must not keep that array alive once the
// observation is released.
func TestGateChainKeyPinsNoLine(t *testing.T) {
	o := signed(t, sample(4))[3]
	o.Chain.ID = "hub-begun-chain"
	o.Chain.BatchSig = bytes.Repeat([]byte{0xa5}, 256<<10) // no signature of anyone
	line, err := observe.MarshalLine(&o)
	if err != nil {
		t.Fatal(err)
	}
	g := evidence.NewGate(evidence.DefaultGateConfig())
	now := time.Now()
	wp := func() weak.Pointer[byte] {
		batch := make([]observe.Observation, 1) // a fetched batch
		if err := observe.DecodeLine(line, &batch[0]); err != nil {
			t.Fatal(err)
		}
		if len(batch[0].Chain.BatchSig) != 256<<10 {
			t.Fatalf("decoded batch_sig of %d bytes", len(batch[0].Chain.BatchSig))
		}
		wp := weak.Make(&batch[0].Chain.BatchSig[0])
		rel := g.AddRef(nil, &batch[0], 0, now)
		g.Detach()
		rel = append(rel, g.Expire(now, true)...)
		if len(rel) != 1 || rel[0].Failed == "" || len(rel[0].Obs.Chain.BatchSig) != 0 {
			t.Fatalf("released %d; want the forgery, failed, without its chain fields", len(rel))
		}
		g.TakeFailures()
		return wp
	}()
	// A batch_sig that is no ed25519 signature is refused before the gate
	// remembers a chain for it.
	if g.Chains() != 0 || g.Held() != 0 {
		t.Fatalf("the gate remembers %d chains and holds %d; want 0 and 0", g.Chains(), g.Held())
	}
	for range 3 {
		runtime.GC()
	}
	pinned := wp.Value() != nil
	runtime.KeepAlive(g)
	if pinned {
		t.Fatal("the gate's chain keeps the released line's 256 KiB batch_sig array alive (its key is a slice of it)")
	}
}

// TestGateRemembersNoChainForFieldsOfWrongLength: a hub that begins a
// chain a line (MaxChains of them, each kept up to HeadWait) with a
// sensor_key or batch_sig of the wrong length (half a megabyte, say) gets
// each line failed at once, and no chain remembered for it.
func TestGateRemembersNoChainForFieldsOfWrongLength(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(o *observe.Observation)
	}{
		{"key 512 KiB", func(o *observe.Observation) { o.Chain.Key = bytes.Repeat([]byte{1}, 512<<10) }},
		{"key 33 bytes", func(o *observe.Observation) { o.Chain.Key = bytes.Repeat([]byte{1}, 33) }},
		{"batch_sig 512 KiB", func(o *observe.Observation) { o.Chain.BatchSig = bytes.Repeat([]byte{2}, 512<<10) }},
		{"batch_sig 63 bytes", func(o *observe.Observation) { o.Chain.BatchSig = o.Chain.BatchSig[:63] }},
		{"batch_sig 65 bytes", func(o *observe.Observation) { o.Chain.BatchSig = append(bytes.Clone(o.Chain.BatchSig), 0) }},
	} {
		g := evidence.NewGate(evidence.DefaultGateConfig())
		o := signed(t, sample(4))[3] // a head: it carries batch_sig
		c.set(&o)
		rel := g.Add(o, 1, time.Now())
		if g.Chains() != 0 || g.Held() != 0 {
			t.Errorf("%s: the gate remembers %d chains and holds %d; want none", c.name, g.Chains(), g.Held())
		}
		rel = append(rel, g.Expire(time.Now(), true)...)
		if len(rel) != 1 || rel[0].Failed == "" {
			t.Errorf("%s: released %d, want the line failed", c.name, len(rel))
		}
	}
}
