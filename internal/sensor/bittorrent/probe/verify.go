package probe

import (
	"crypto/sha1"
	"io"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// maxVerifyPiece bounds the piece the sensor will fetch to verify.
const maxVerifyPiece = 4 << 20

// pieceFetch is one piece being fetched, in memory only, to verify.
type pieceFetch struct {
	index     uint32
	want      [20]byte
	buf       []byte
	got       []bool // the blocks received, each once
	left      int    // blocks still to come
	requested bool
}

// blockSize is the size of every block asked for but a piece's last.
const blockSize = 16 << 10

// pickPiece picks a piece the peer advertised, of a v1 or hybrid torrent
// whose info dictionary the sensor holds, or returns nil.
func (p *Prober) pickPiece(key routing.ID, res *Result) *pieceFetch {
	ti, ok := p.info(key)
	if !ok || len(ti.PieceHashes) == 0 || ti.PieceLength <= 0 || ti.PieceLength > maxVerifyPiece {
		return nil
	}
	idx := -1
	switch {
	case res.Claims.Judge(ti.Pieces).All:
		idx = 0
	default:
		for i := 0; i < ti.Pieces; i++ {
			if peerwire.HasPiece(res.Bitfield, i) || res.Haves[uint32(i)] {
				idx = i
				break
			}
		}
	}
	if idx < 0 {
		return nil
	}
	size := ti.PieceLength
	if last := int64(idx+1) * ti.PieceLength; last > ti.Length {
		size = ti.Length - int64(idx)*ti.PieceLength
	}
	if size <= 0 {
		return nil
	}
	vf := newPieceFetch(uint32(idx), int(size))
	copy(vf.want[:], ti.PieceHashes[idx*20:idx*20+20])
	return vf
}

func newPieceFetch(index uint32, size int) *pieceFetch {
	n := (size + blockSize - 1) / blockSize
	return &pieceFetch{index: index, buf: make([]byte, size), got: make([]bool, n), left: n}
}

// request asks for every 16 KiB block of the piece.
func (f *pieceFetch) request(w io.Writer) error {
	f.requested = true
	var out []byte
	for begin := 0; begin < len(f.buf); begin += blockSize {
		n := min(blockSize, len(f.buf)-begin)
		m := peerwire.Message{ID: peerwire.Request, Index: f.index, Begin: uint32(begin), Length: uint32(n)}
		out = m.AppendTo(out)
	}
	_, err := w.Write(out)
	return err
}

// add stores one block; it reports whether the piece is complete. Only
// the blocks asked for count, each once: a block sent twice must not
// stand for one never sent (the buffer's zeros would be hashed in its
// place).
func (f *pieceFetch) add(index, begin uint32, b []byte) bool {
	if index != f.index || int64(begin) >= int64(len(f.buf)) || begin%blockSize != 0 {
		return false
	}
	i := int(begin / blockSize)
	if f.got[i] || len(b) != min(blockSize, len(f.buf)-int(begin)) {
		return false
	}
	copy(f.buf[begin:], b)
	f.got[i] = true
	f.left--
	return f.left == 0
}

func (f *pieceFetch) check() bool {
	sum := sha1.Sum(f.buf)
	return sum == f.want
}
