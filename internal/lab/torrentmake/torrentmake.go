// Package torrentmake builds .torrent files of the three BitTorrent
// layouts from bytes in memory: v1 (BEP 3), v2 (BEP 52) and hybrid (both
// in one info dictionary, with BEP 47 pad files so that every file starts
// on a piece boundary). The lab uses it because anacrolix/torrent v1.59.1
// reads v2 and hybrid torrents but cannot create them.
//
// It does no I/O: bytes in, metainfo bytes and hashes out. It must never be
// used on anything but synthetic lab data; it is a test fixture builder,
// not a general torrent creator (no symlinks, no empty files, no file
// attributes other than padding).
package torrentmake

import (
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/anacrolix/torrent/bencode"
)

// BlockSize is the BEP 52 merkle leaf size.
const BlockSize = 16 << 10

// Version is the torrent layout to build.
type Version uint8

const (
	// V1 is a BEP 3 torrent: SHA-1 piece hashes over the concatenated files.
	V1 Version = iota + 1
	// V2 is a BEP 52 torrent: a file tree with a SHA-256 merkle root per file.
	V2
	// Hybrid holds both, and so has two info-hashes.
	Hybrid
)

func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	case Hybrid:
		return "hybrid"
	}
	return "version(" + strconv.Itoa(int(v)) + ")"
}

// Sentinel errors.
var (
	ErrPieceLength = errors.New("piece length must be a power of two of at least 16 KiB")
	ErrNoFiles     = errors.New("no files")
	ErrBadPath     = errors.New("bad file path")
	ErrEmptyFile   = errors.New("empty file")
	ErrVersion     = errors.New("unknown torrent version")
)

// File is one file of a torrent. Path is relative to the torrent's name
// (a directory for a multi-file torrent); for a single-file torrent it is
// ignored and the file is called Options.Name.
type File struct {
	Path []string
	Data []byte
}

// Options says what to build.
type Options struct {
	// Name is the torrent's name: the file name of a single-file torrent,
	// the directory name of a multi-file one.
	Name string
	// PieceLength is a power of two of at least BlockSize.
	PieceLength int64
	Version     Version
	// MultiFile makes a multi-file torrent even of one file.
	MultiFile bool
	// Announce is the tracker URL, empty for a trackerless torrent.
	Announce string
	// CreatedBy fills "created by"; no creation date is written, so that
	// the same input always gives the same bytes.
	CreatedBy string
}

// FileResult is what the builder computed for one file, in the order the
// files appear in the torrent (sorted by path).
type FileResult struct {
	Path   []string
	Length int64
	// PiecesRoot is the BEP 52 merkle root (zero for a v1 torrent).
	PiecesRoot [32]byte
	// Offset is the file's offset in the v1 piece space (after pad files).
	Offset int64
}

// Torrent is a built torrent.
type Torrent struct {
	// MetaInfo is the bencoded .torrent file.
	MetaInfo []byte
	// Info is the bencoded info dictionary.
	Info    []byte
	Version Version
	// InfoHashV1 is the SHA-1 of Info (v1 and hybrid), HasV1 says whether
	// it is meaningful.
	InfoHashV1 [20]byte
	HasV1      bool
	// InfoHashV2 is the SHA-256 of Info (v2 and hybrid), HasV2 says
	// whether it is meaningful. Its first 20 bytes are what a v2 torrent
	// is announced under in the DHT and on trackers.
	InfoHashV2 [32]byte
	HasV2      bool
	Files      []FileResult
	NumPieces  int
}

// ShortV2 is the truncated v2 info-hash used on the DHT (BEP 52).
func (t *Torrent) ShortV2() [20]byte {
	var s [20]byte
	copy(s[:], t.InfoHashV2[:20])
	return s
}

// Build makes a torrent of files.
func Build(opts Options, files []File) (*Torrent, error) {
	pl := opts.PieceLength
	if pl < BlockSize || bits.OnesCount64(uint64(pl)) != 1 {
		return nil, fmt.Errorf("torrent %q piece length %d: %w", opts.Name, pl, ErrPieceLength)
	}
	if opts.Version < V1 || opts.Version > Hybrid {
		return nil, fmt.Errorf("torrent %q: %w %d", opts.Name, ErrVersion, opts.Version)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("torrent %q: %w", opts.Name, ErrNoFiles)
	}
	if err := checkElem(opts.Name); err != nil {
		return nil, fmt.Errorf("torrent name %q: %w", opts.Name, err)
	}
	single := len(files) == 1 && !opts.MultiFile
	fs := slices.Clone(files)
	if single {
		fs[0].Path = []string{opts.Name}
	}
	for _, f := range fs {
		if len(f.Path) == 0 {
			return nil, fmt.Errorf("torrent %q: %w: empty path", opts.Name, ErrBadPath)
		}
		for _, e := range f.Path {
			if err := checkElem(e); err != nil {
				return nil, fmt.Errorf("torrent %q file %q: %w", opts.Name, strings.Join(f.Path, "/"), err)
			}
		}
		if len(f.Data) == 0 {
			return nil, fmt.Errorf("torrent %q file %q: %w", opts.Name, strings.Join(f.Path, "/"), ErrEmptyFile)
		}
	}
	// v2 file trees are dictionaries, so the files are in path order; a
	// hybrid's v1 file list must follow the same order.
	slices.SortFunc(fs, func(a, b File) int { return slices.Compare(a.Path, b.Path) })
	for i := 1; i < len(fs); i++ {
		if slices.Equal(fs[i-1].Path, fs[i].Path) {
			return nil, fmt.Errorf("torrent %q: %w: %q twice", opts.Name, ErrBadPath, strings.Join(fs[i].Path, "/"))
		}
	}

	t := &Torrent{Version: opts.Version, HasV1: opts.Version != V2, HasV2: opts.Version != V1}
	info := map[string]any{
		"name":         opts.Name,
		"piece length": pl,
	}
	var layers map[string]any
	if t.HasV2 {
		tree := map[string]any{}
		layers = map[string]any{}
		for _, f := range fs {
			root, layer := merkleFile(f.Data, pl)
			t.Files = append(t.Files, FileResult{Path: f.Path, Length: int64(len(f.Data)), PiecesRoot: root})
			if err := insertTree(tree, f.Path, map[string]any{"": map[string]any{
				"length":      int64(len(f.Data)),
				"pieces root": string(root[:]),
			}}); err != nil {
				return nil, fmt.Errorf("torrent %q: %w", opts.Name, err)
			}
			if int64(len(f.Data)) > pl {
				layers[string(root[:])] = string(layer)
			}
		}
		info["file tree"] = tree
		info["meta version"] = int64(2)
	} else {
		for _, f := range fs {
			t.Files = append(t.Files, FileResult{Path: f.Path, Length: int64(len(f.Data))})
		}
	}
	if t.HasV1 {
		// The v1 piece space: the files one after another, with a pad file
		// after each but the last in a hybrid so that v1 and v2 pieces
		// cover the same bytes.
		var stream [][]byte
		var list []any
		var off int64
		for i, f := range fs {
			t.Files[i].Offset = off
			stream = append(stream, f.Data)
			off += int64(len(f.Data))
			list = append(list, map[string]any{"length": int64(len(f.Data)), "path": toAny(f.Path)})
			if opts.Version == Hybrid && i < len(fs)-1 {
				if pad := (pl - off%pl) % pl; pad > 0 {
					stream = append(stream, make([]byte, pad))
					off += pad
					list = append(list, map[string]any{
						"attr": "p", "length": pad, "path": []any{".pad", strconv.FormatInt(pad, 10)},
					})
				}
			}
		}
		info["pieces"] = string(v1Pieces(stream, pl))
		if single {
			info["length"] = int64(len(fs[0].Data))
		} else {
			info["files"] = list
		}
		t.NumPieces = int((off + pl - 1) / pl)
	} else {
		for _, f := range fs {
			t.NumPieces += int((int64(len(f.Data)) + pl - 1) / pl)
		}
	}

	var err error
	t.Info, err = bencode.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("torrent %q: encoding info: %w", opts.Name, err)
	}
	if t.HasV1 {
		t.InfoHashV1 = sha1.Sum(t.Info)
	}
	if t.HasV2 {
		t.InfoHashV2 = sha256.Sum256(t.Info)
	}
	mi := map[string]any{"info": bencode.Bytes(t.Info)}
	if opts.Announce != "" {
		mi["announce"] = opts.Announce
	}
	if opts.CreatedBy != "" {
		mi["created by"] = opts.CreatedBy
	}
	if len(layers) > 0 {
		mi["piece layers"] = layers
	}
	t.MetaInfo, err = bencode.Marshal(mi)
	if err != nil {
		return nil, fmt.Errorf("torrent %q: encoding metainfo: %w", opts.Name, err)
	}
	return t, nil
}

func checkElem(e string) error {
	if e == "" || e == "." || e == ".." || strings.ContainsAny(e, "/\\\x00") {
		return fmt.Errorf("%w: element %q", ErrBadPath, e)
	}
	return nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// insertTree puts leaf at path in a BEP 52 file tree.
func insertTree(tree map[string]any, path []string, leaf map[string]any) error {
	for _, e := range path[:len(path)-1] {
		sub, ok := tree[e]
		if !ok {
			m := map[string]any{}
			tree[e] = m
			tree = m
			continue
		}
		m, ok := sub.(map[string]any)
		if _, isFile := m[""]; !ok || isFile {
			return fmt.Errorf("%w: %q is both a file and a directory", ErrBadPath, strings.Join(path, "/"))
		}
		tree = m
	}
	last := path[len(path)-1]
	if _, ok := tree[last]; ok {
		return fmt.Errorf("%w: %q is both a file and a directory", ErrBadPath, strings.Join(path, "/"))
	}
	tree[last] = leaf
	return nil
}

// v1Pieces hashes the concatenation of parts in pieces of pl bytes.
func v1Pieces(parts [][]byte, pl int64) []byte {
	var out []byte
	h := sha1.New()
	var n int64
	for _, p := range parts {
		for len(p) > 0 {
			take := min(int64(len(p)), pl-n)
			h.Write(p[:take])
			p = p[take:]
			n += take
			if n == pl {
				out = h.Sum(out)
				h.Reset()
				n = 0
			}
		}
	}
	if n > 0 {
		out = h.Sum(out)
	}
	return out
}

// merkleFile returns a file's BEP 52 pieces root and its piece layer (the
// concatenated hashes of its piece-sized subtrees).
func merkleFile(data []byte, pl int64) (root [32]byte, layer []byte) {
	nBlocks := (len(data) + BlockSize - 1) / BlockSize
	leaves := make([][32]byte, nBlocks)
	for i := range leaves {
		leaves[i] = sha256.Sum256(data[i*BlockSize : min(len(data), (i+1)*BlockSize)])
	}
	perPiece := int(pl / BlockSize)
	if nBlocks <= perPiece {
		// One piece: the tree is only as wide as the file needs (leaves
		// padded with zero hashes to a power of two).
		return merkleRoot(padTo(leaves, ceilPow2(nBlocks), [32]byte{})), nil
	}
	var pieces [][32]byte
	for i := 0; i < nBlocks; i += perPiece {
		p := leaves[i:min(nBlocks, i+perPiece)]
		pieces = append(pieces, merkleRoot(padTo(p, perPiece, [32]byte{})))
	}
	for _, p := range pieces {
		layer = append(layer, p[:]...)
	}
	// Piece-layer hashes beyond the end of the file are roots of all-zero
	// leaf subtrees, not zero.
	padHash := merkleRoot(make([][32]byte, perPiece))
	return merkleRoot(padTo(pieces, ceilPow2(len(pieces)), padHash)), layer
}

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

func padTo(hs [][32]byte, n int, pad [32]byte) [][32]byte {
	out := make([][32]byte, n)
	copy(out, hs)
	for i := len(hs); i < n; i++ {
		out[i] = pad
	}
	return out
}

// merkleRoot folds a power-of-two number of hashes into their root.
func merkleRoot(hs [][32]byte) [32]byte {
	for len(hs) > 1 {
		next := make([][32]byte, len(hs)/2)
		var buf [64]byte
		for i := range next {
			copy(buf[:32], hs[2*i][:])
			copy(buf[32:], hs[2*i+1][:])
			next[i] = sha256.Sum256(buf[:])
		}
		hs = next
	}
	return hs[0]
}
