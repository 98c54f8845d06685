package obsblock

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"

	"github.com/vigil-oss/vigil/internal/observe"
)

// A signed observation's chain hash (Chain.Prev) is the chain hash after
// the observation before it in its chain:
//
//	Prev(seq) = SHA-256(chainContext || Prev(seq-1) || SensorHash(observation seq-1))
//
// Version 2 keeps a row's chain hash only where it cannot be computed
// again exactly at decode from the row before it in the same block, and
// marks the others with flagPrevDerived. The encoder derives row i only
// when all of this holds, and keeps it otherwise:
//
//   - row i is signed (a sensor key) and has a predecessor: the last row
//     before it in the block with the same sensor key and chain id (two
//     chains may be interleaved; a chain's first row in the block, whose
//     predecessor is in another block or nowhere, is kept);
//   - the predecessor's chain seq is row i's minus one (a duplicated or
//     missing position is kept);
//   - the step holds on the predecessor as the decoder will give it back
//     (asDecoded: without the transcript's bytes, times in UTC): its
//     chain hash, stepped with its sensor hash, is row i's chain hash,
//     byte for byte. A lying or forged chain hash, or a predecessor whose
//     fields changed after it was signed, fails this and is kept;
//   - the predecessor is not in evidence form 1 with transcript bytes:
//     form 1's sensor hash covers the transcript's bytes, which blocks
//     keep apart (and retention may purge), so it cannot be computed from
//     the block (the step above fails too; this says why);
//   - row i would not make a run of derived rows keepEvery long: a run
//     is at most keepEvery-1 rows, so that At, which must hash the rows
//     of a run up to its row, hashes at most that many.
//
// The decoder recomputes the derived rows in order, each from the row the
// same rule names (refusing a block where that row is missing or not the
// position before), and never checks a chain: it gives back what was
// stored. Deriving depends on observe.Observation.SensorHash giving the
// same hash for the same observation for as long as blocks are kept;
// the evidence log's leaves, checked against every decoded observation,
// depend on it already.

// chainContext and chainStep are verify.ChainContext and verify.ChainStep
// (a test checks that they agree), copied here rather than imported: the
// store's layer is below verify's (cmd/vigil's layerTable), and version 2
// is defined by this step whatever verify's becomes. A chain signed with
// another step fails the step check and keeps its chain hashes.
const chainContext = "vigil/sensor-chain/v1\n"

func chainStep(prev []byte, leaf *[32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(chainContext))
	h.Write(prev)
	h.Write(leaf[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// keepEvery bounds a run of derived rows: every keepEvery-th row of a run
// keeps its chain hash (32 bytes every 32 rows, a byte a row). Measured
// in a block of 1,024 lab observations of one signed chain
// (docs/benchmarks.md, "obsblock version 2"): At on the last row of a
// run costs about what it costs in version 1 with runs of 15, 1.1–1.6
// times with 31, 1.4–2.0 with 63, 1.7–2.3 with 127; the block takes
// 56.96, 55.96, 55.45 and 55.19 bytes an observation.
const keepEvery = 32

// chainOf is a signed row's chain: its sensor key and chain id, told apart
// whatever bytes they hold.
func chainOf(key []byte, id string) string {
	b := binary.AppendUvarint(make([]byte, 0, 1+len(key)+len(id)), uint64(len(key)))
	return string(append(append(b, key...), id...))
}

// asDecoded is o as a block gives it back: what the decoder hashes.
func asDecoded(o *observe.Observation) observe.Observation {
	d := *o
	d.Transcript.Bytes = nil
	if !d.Time.IsZero() {
		d.Time = d.Time.UTC()
	}
	if !d.Place.DBBuild.IsZero() {
		d.Place.DBBuild = d.Place.DBBuild.UTC()
	}
	return d
}

// derivable reports, a row each, which rows of obs version 2 derives
// (nil when none).
func derivable(obs []observe.Observation) []bool {
	var out []bool
	type last struct{ row, run int }
	chains := map[string]last{}
	for i := range obs {
		o := &obs[i]
		if len(o.Chain.Key) == 0 {
			continue
		}
		c := chainOf(o.Chain.Key, o.Chain.ID)
		l, ok := chains[c]
		run := 0
		if ok && l.run < keepEvery-1 && stepHolds(&obs[l.row], o) {
			if out == nil {
				out = make([]bool, len(obs))
			}
			out[i], run = true, l.run+1
		}
		chains[c] = last{i, run}
	}
	return out
}

// stepHolds reports whether o's chain hash is exactly what the decoder
// computes from p, the row before it in its chain.
func stepHolds(p, o *observe.Observation) bool {
	if o.Chain.Seq == 0 || p.Chain.Seq != o.Chain.Seq-1 || len(o.Chain.Prev) != sha256.Size {
		return false
	}
	if p.Chain.Form != observe.Form2 && len(p.Transcript.Bytes) > 0 {
		return false
	}
	d := asDecoded(p)
	h, err := d.SensorHash()
	if err != nil {
		return false
	}
	s := chainStep(d.Chain.Prev, &h)
	return bytes.Equal(s[:], o.Chain.Prev)
}

// linkChains finds each derived row's predecessor (the rule above) once
// every column is parsed, refusing a derived row that has none.
func (b *Block) linkChains() error {
	if b.derived == 0 {
		return nil
	}
	b.pred = make([]int32, b.n)
	chains := map[string]int{}
	for i, f := range b.flags {
		key, _ := b.b[colChainKey].at(i)
		if len(key) == 0 {
			if f&flagPrevDerived != 0 {
				return corrupt("flags", "row %d: its chain hash is derived, but it has no sensor key", i)
			}
			continue
		}
		c := chainOf(key, b.str(colChainID, i))
		p, ok := chains[c]
		chains[c] = i
		if f&flagPrevDerived == 0 {
			continue
		}
		seq := b.u[colChainSeq][i]
		switch {
		case !ok:
			return corrupt("flags", "row %d: its chain hash is derived, but no row before it is in its chain", i)
		case seq == 0 || b.u[colChainSeq][p] != seq-1:
			return corrupt("flags", "row %d: its chain hash is derived from row %d, at chain seq %d, not %d", i, p, b.u[colChainSeq][p], seq-1)
		}
		b.pred[i] = int32(p)
	}
	return nil
}

// stepFrom is the chain hash of the row after p in p's chain.
func stepFrom(p *observe.Observation, row int) ([]byte, error) {
	h, err := p.SensorHash()
	if err != nil {
		return nil, corrupt("chain_prev", "row %d: derived from a row whose sensor hash cannot be computed: %v", row, err)
	}
	s := chainStep(p.Chain.Prev, &h)
	return s[:], nil
}

// derivedPrev is derived row i's chain hash, for At: the rows of its run
// back to one whose chain hash is known are built and hashed in order,
// and the hashes kept for later calls.
func (b *Block) derivedPrev(i int) ([]byte, error) {
	if b.prevs == nil {
		b.prevs = make([][]byte, b.n)
	}
	var path []int // derived rows not yet known, i first
	for j := i; b.flags[j]&flagPrevDerived != 0 && b.prevs[j] == nil; j = int(b.pred[j]) {
		path = append(path, j)
		if len(path) > b.n {
			return nil, corrupt("flags", "row %d: a cycle of derived rows", i) // pred[j] < j: never
		}
	}
	if len(path) > 0 {
		r := int(b.pred[path[len(path)-1]])
		cur := b.cursorAt(r)
		for k := len(path) - 1; k >= 0; k-- {
			for ; r < int(b.pred[path[k]]); r++ {
				b.advance(&cur, r)
			}
			var o observe.Observation
			if err := b.build(&o, r, &cur); err != nil {
				return nil, err
			}
			r++
			if b.flags[r-1]&flagPrevDerived != 0 {
				o.Chain.Prev = b.prevs[r-1]
			}
			prev, err := stepFrom(&o, path[k])
			if err != nil {
				return nil, err
			}
			b.prevs[path[k]] = prev
		}
	}
	return append(make([]byte, 0, len(b.prevs[i])), b.prevs[i]...), nil
}

// derivedRows counts the rows flags mark derived.
func derivedRows(flags []uint64) int {
	n := 0
	for _, f := range flags {
		n += int(f & flagPrevDerived / flagPrevDerived)
	}
	return n
}
