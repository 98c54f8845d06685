package evidence

import "github.com/transparency-dev/merkle/proof"

type proofNodes = proof.Nodes

func inclusion(index, size uint64) (proof.Nodes, error) { return proof.Inclusion(index, size) }
