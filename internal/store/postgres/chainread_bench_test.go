package postgres

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// BenchmarkChainRead reads, from 20,000 signed lab observations stored
// 10,000 a commit (one chain, a head every 100), one position at a time
// (the gate's Stored) and a whole batch of 100 (a bundle's rebuild).
func BenchmarkChainRead(b *testing.B) {
	ctx := context.Background()
	st := openTest(b, DefaultConfig())
	lab := storetest.LabObservations(20000, 1)
	for i := 0; i < len(lab); i += 10000 {
		if err := st.InsertObservations(ctx, lab[i:i+10000]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	chain := lab[0].Chain.ID
	r := rand.New(rand.NewPCG(1, 1))
	read := func(b *testing.B, first, head uint64) {
		n := 0
		if err := st.ChainObservations(ctx, chain, first, head, func(*observe.Observation) error { n++; return nil }); err != nil || n != int(head-first+1) {
			b.Fatalf("ChainObservations(%d, %d): %d, %v", first, head, n, err)
		}
	}
	b.Run("position", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			k := uint64(1 + r.IntN(len(lab)))
			read(b, k, k)
		}
	})
	b.Run("batch", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			k := uint64(r.IntN(len(lab) / 100))
			read(b, k*100+1, k*100+100)
		}
	})
}
