package evidence

import "github.com/vigil-oss/vigil/internal/evidence/canon"

// canonLeaf is the log leaf of an observation's JSON line.
func canonLeaf(line []byte) ([32]byte, error) {
	c, err := canon.Form(line)
	if err != nil {
		return [32]byte{}, err
	}
	return canon.LeafHash(c), nil
}
