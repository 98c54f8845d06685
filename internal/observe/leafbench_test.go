package observe

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkLeafHash is what a store spends on each observation's leaf, and
// ingest's check on each signed one's sensor hash (the samples: every
// field filled in one, a 256-byte transcript added to each).
func BenchmarkLeafHash(b *testing.B) {
	obs := samples()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range obs {
		obs[i].Transcript.Bytes = make([]byte, 256)
		for j := range obs[i].Transcript.Bytes {
			obs[i].Transcript.Bytes[j] = byte(r.Uint32())
		}
	}
	obs2 := make([]Observation, len(obs))
	known := make([]Observation, len(obs))
	for i := range obs {
		obs2[i] = asForm2(obs[i])
		known[i] = obs2[i]
		h, _ := known[i].SensorHash()
		known[i].RememberSensorHash(h)
	}
	for _, c := range []struct {
		name string
		obs  []Observation
		fn   func(o *Observation) ([32]byte, error)
	}{
		{"leaf", obs, (*Observation).LeafHash}, {"sensor", obs, (*Observation).SensorHash},
		// Form 2: the leaf includes its sensor hash (Hashes gives both).
		{"form2-leaf", obs2, (*Observation).LeafHash}, {"form2-sensor", obs2, (*Observation).SensorHash},
		// Remembered by ingest's gate: what the store's leaf and ingest's
		// check pay then (the fingerprint, not the sensor hash).
		{"form2-leaf-known", known, (*Observation).LeafHash}, {"form2-sensor-known", known, (*Observation).KnownSensorHash},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := c.fn(&c.obs[i%len(c.obs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
