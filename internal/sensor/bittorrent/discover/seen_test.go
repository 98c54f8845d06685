package discover

import (
	"crypto/rand"
	"testing"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

func randomKeys(n int) []routing.ID {
	out := make([]routing.ID, n)
	for i := range out {
		rand.Read(out[i][:])
	}
	return out
}

// TestSeenSetFalsePositiveRate fills a generation to capacity and checks
// that keys never added are reported seen at most 1.5% of the time (the
// design figure is about 1%; with 200,000 trials the standard deviation
// is 0.02 points, so a correct filter cannot fail this by chance).
func TestSeenSetFalsePositiveRate(t *testing.T) {
	const capacity, trials = 200_000, 200_000
	s := newSeenSet(capacity)
	for _, k := range randomKeys(capacity) {
		if s.testAndAdd(k) {
			// A false positive on insertion: counted below like any other.
			continue
		}
	}
	fp := 0
	for _, k := range randomKeys(trials) {
		if s.has(k) {
			fp++
		}
	}
	rate := float64(fp) / trials
	t.Logf("false-positive rate at capacity: %.3f%% (%d of %d); %d bytes for %d keys", 100*rate, fp, trials, s.bytes(), capacity)
	if rate > 0.015 {
		t.Fatalf("false-positive rate %.3f%%, want at most 1.5%%", 100*rate)
	}
	if rate == 0 {
		t.Fatalf("no false positive in %d trials: the filter is not the size it claims", trials)
	}
}

// TestSeenSetRemembersEveryAddedKey: a Bloom filter has no false
// negatives, within the capacity it promises (the last capacity keys
// added; a key already reported seen is not added again).
func TestSeenSetRemembersEveryAddedKey(t *testing.T) {
	const capacity = 50_000
	s := newSeenSet(capacity)
	var added []routing.ID
	for _, k := range randomKeys(3 * capacity) {
		if !s.testAndAdd(k) {
			added = append(added, k)
		}
	}
	for i, k := range added[len(added)-capacity:] {
		if !s.has(k) {
			t.Fatalf("key %d of the last %d added is not remembered", i, capacity)
		}
	}
}

// TestSeenSetForgetsOldGenerations: after two generations the first keys
// are forgotten (apart from false positives), so that a key once skipped
// by a false positive gets another, independent chance.
func TestSeenSetForgetsOldGenerations(t *testing.T) {
	const capacity = 20_000
	s := newSeenSet(capacity)
	first := randomKeys(capacity)
	for _, k := range first {
		s.testAndAdd(k)
	}
	for _, k := range randomKeys(2*capacity + 1) {
		s.testAndAdd(k)
	}
	still := 0
	for _, k := range first {
		if s.has(k) {
			still++
		}
	}
	if still > capacity/20 {
		t.Fatalf("%d of %d keys two generations old are still reported seen", still, capacity)
	}
	if got, want := s.bytes(), 2*((capacity*bloomBitsPerKey+511)/512)*64; got != want {
		t.Fatalf("seen-set holds %d bytes, want %d (two generations)", got, want)
	}
}

func BenchmarkSeenSet(b *testing.B) {
	s := newSeenSet(1_000_000)
	keys := randomKeys(1 << 16)
	b.ResetTimer()
	for i := range b.N {
		s.testAndAdd(keys[i&(1<<16-1)])
	}
	b.ReportMetric(float64((1_000_000*bloomBitsPerKey+511)/512*64)/1e6, "MB/Mkeys/generation")
}
