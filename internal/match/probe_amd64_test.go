//go:build amd64 && !purego

package match

import "golang.org/x/sys/cpu"

type probeMode struct {
	name string
	set  func() (restore func())
}

// probeModes are the AVX2 probe, where the CPU has it, and the SSE2 one.
func probeModes() []probeMode {
	force := func(v bool) func() func() {
		return func() func() {
			old := useAVX2
			useAVX2 = v
			return func() { useAVX2 = old }
		}
	}
	modes := []probeMode{{"sse2", force(false)}}
	if cpu.X86.HasAVX2 {
		modes = append(modes, probeMode{"avx2", force(true)})
	}
	return modes
}
