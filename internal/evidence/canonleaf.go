package evidence

import (
	"crypto/sha256"
	"fmt"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// canonLeaf is the log leaf of an observation's JSON line, in its
// evidence form (docs/evidence.md, "Evidence forms"): form 1 (no
// evidence_form) the whole canonical form's, form 2 that of the ingest
// keys and sensor_sha256.
func canonLeaf(line []byte) ([32]byte, error) {
	obj, err := canon.Parse(line)
	if err != nil {
		return [32]byte{}, err
	}
	v, ok := obj.Value(canon.FormKey)
	switch {
	case !ok:
		return canon.LeafHash(obj.AppendForm(nil, nil)), nil
	case string(v) == "2":
		sensor := sha256.Sum256(obj.AppendSensorForm(nil, 2))
		return canon.LeafHash(obj.AppendLeaf2(nil, sensor[:])), nil
	}
	return [32]byte{}, fmt.Errorf("%s %s: not an evidence form", canon.FormKey, v)
}
