//go:build !amd64 || purego

package match

type probeMode struct {
	name string
	set  func() (restore func())
}

func probeModes() []probeMode {
	return []probeMode{{"portable", func() func() { return func() {} }}}
}
