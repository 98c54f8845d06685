//go:build !amd64 || purego

package digest

// md4Blocks runs MD4's compression over every whole 64-byte block of p.
func md4Blocks(s *[4]uint32, p []byte) { md4BlocksGeneric(s, p) }
