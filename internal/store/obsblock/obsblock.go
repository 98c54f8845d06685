// Package obsblock encodes many observations as one block: columnar (each
// field of observe.Observation a column of its own), compressed with zstd
// column by column, and decoded back exactly. It is the groundwork of block
// storage (issue 13: at most 100 bytes an observation on disk): a store
// would keep one block a row, with its seq and time ranges beside it, in
// place of one row an observation. No store uses it yet.
//
// A block holds every field of an observation but the transcript's bytes,
// which are stored apart (the block keeps the transcript's reference and
// SHA-256). Times come back in UTC, as every store gives them; everything
// else comes back as it went in, nil and empty slices told apart.
//
// The decoder reads bytes that someone with access to the database may
// have edited: it never panics, and rejects a malformed block with an
// error (ErrCorrupt) naming the column and what broke. Whatever a length
// field says, the columns it keeps take at most MaxRawBytes a block, the
// parsed values a few times their raw bytes, and decompressing one column
// at most MaxRawBytes more while it runs (zstd's own bound, checked
// against the directory's length after). It must never guess: a block
// that does not decode whole is refused, not patched.
//
// Layout (versions 1 and 2), all integers unsigned LEB128 (uvarint):
//
//	"VOB" 0x01 or 0x02               magic and version
//	n                                observations, 1..MaxObservations
//	c                                columns, numCols
//	c × (mode byte, raw length, stored length)
//	c × stored bytes                 mode 0: raw; mode 1: one zstd frame
//
// and nothing after. A column's raw bytes are one of three kinds (see
// columns.go): unsigned integers (a mode byte: plain values, or
// zig-zag deltas from the value before), blobs (plain: a tag a value, 0 for
// nil and k+1 for k bytes, then the bytes; or a dictionary of distinct
// values in order of first use, then an index a value; or, when every
// value has one length, that length, a bitmap of the nil values and the
// values end to end), or fixed-width
// values (the UUID's low 8 bytes, latitudes and longitudes). The flags
// column says, a row at a time, which optional columns hold a value for
// it (a presence bitmap) and holds the booleans.
//
// Version 2 (what Encode writes) is version 1 with one more flag,
// flagPrevDerived: the row's chain hash (Chain.Prev, 32 random bytes a
// signed row) is not in the chain_prev column but follows from the row
// before it in its chain (chain.go). Every version's decoder is kept: a
// block is read years after it was written, and its version byte is never
// given another meaning.
package obsblock

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// Limits a decoder enforces, whatever a block's length fields say.
const (
	// MaxObservations is the most observations a block holds.
	MaxObservations = 1 << 16
	// MaxRawBytes is the most bytes a block's columns take decompressed,
	// all together: a decoder keeps no more than this of one block's
	// columns.
	MaxRawBytes = 64 << 20
)

// ErrCorrupt is returned, wrapped with the column and what broke, for a
// block that does not decode.
var ErrCorrupt = errors.New("observation block is malformed")

// ErrUnencodable is returned, wrapped with the observation and field, for
// an observation a block cannot hold exactly (a time outside what a signed
// 64-bit count of nanoseconds since 1970 holds), or for too many
// observations or bytes for one block.
var ErrUnencodable = errors.New("observation cannot be put in a block")

// magic is a block's first bytes: "VOB" and the version Encode writes.
var magic = [4]byte{'V', 'O', 'B', version}

// Versions of the format. Version 1 stores every row's chain hash;
// version 2 derives those that follow from the row before in their chain.
const (
	version1 = 1
	version2 = 2
	version  = version2 // what Encode writes
)

// Column modes as stored.
const (
	storeRaw  = 0
	storeZstd = 1
)

// zstd is klauspost/compress's, already in the module (the NATS server
// and client use it): pure Go (no cgo beside the pure-Go SQLite), widely
// used and maintained, with a decoder that bounds its output
// (WithDecoderMaxMemory), which a decoder of edited blocks needs. Among
// its codecs zstd is the one that trades speed for size at the levels
// wanted here; flate compresses less for more CPU, s2/snappy are faster
// and compress less (not measured here: the disk is what this is for).
// Level SpeedDefault; EncodeAll and DecodeAll are safe for concurrent
// use.
var (
	encoder    = newEncoder(zstd.SpeedDefault)
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxRawBytes))
)

func corrupt(col string, format string, args ...any) error {
	return fmt.Errorf("%w: column %s: %s", ErrCorrupt, col, fmt.Sprintf(format, args...))
}

func newEncoder(l zstd.EncoderLevel) *zstd.Encoder {
	e, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false))
	return e
}
