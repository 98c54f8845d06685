//go:build amd64 && !purego

package digest

// md4BlocksAMD64 is implemented in md4_amd64.s.
//
//go:noescape
func md4BlocksAMD64(s *[4]uint32, p []byte)

// md4Blocks runs MD4's compression over every whole 64-byte block of p.
func md4Blocks(s *[4]uint32, p []byte) {
	if len(p) >= md4BlockSize {
		md4BlocksAMD64(s, p)
	}
}
