// Package metainfo reads a torrent's info dictionary (BEP 3, BEP 52 v2
// and hybrid): its name, pieces and files, the files whose SHA-1 a v1
// piece gives exactly, and which info-hash a dictionary proves. Bytes in,
// values out.
//
// It must never do I/O, and never keep or fetch content: what the sensor
// learns of a torrent is what its verified info dictionary says.
package metainfo

import (
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-oss/vigil/internal/bencode"
	"github.com/vigil-oss/vigil/internal/hashkind"
)

// ErrBadInfo means an info dictionary does not describe a torrent.
var ErrBadInfo = errors.New("bad info dictionary")

// Info is what the sensor keeps of a watched torrent's info
// dictionary: enough to count pieces and to match files. It never keeps
// or fetches content.
type Info struct {
	Name        string
	PieceLength int64
	Pieces      int    // v1 piece count, or the v2 count where v2-only
	Files       []File // in the torrent's order
	V1, V2      bool
	// PieceHashes are the v1 piece hashes (20 bytes each), kept for the
	// optional verification of one piece; Length is the v1 total length.
	PieceHashes []byte
	Length      int64
}

// File is one file of a torrent.
type File struct {
	Path       string
	Length     int64
	PiecesRoot []byte // BEP 52 v2 merkle root, 32 bytes, when the torrent is v2 or hybrid
	// PieceSHA1 is the v1 piece hash of a file that is a torrent's only
	// piece, i.e. the SHA-1 of the whole file.
	PieceSHA1 []byte
}

// Parse reads an info dictionary (v1, v2 or hybrid).
func Parse(b []byte) (*Info, error) {
	v, err := bencode.Decode(b, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInfo, err)
	}
	d, ok := v.(bencode.Dict)
	if !ok {
		return nil, fmt.Errorf("%w: not a dictionary", ErrBadInfo)
	}
	ti := &Info{}
	if name, ok := getBytes(d, "name"); ok {
		ti.Name = string(name)
	}
	pl, ok := getInt(d, "piece length")
	if !ok || pl <= 0 {
		return nil, fmt.Errorf("%w: no piece length", ErrBadInfo)
	}
	ti.PieceLength = pl
	if mv, ok := getInt(d, "meta version"); ok && mv == 2 {
		ti.V2 = true
		if ft, ok := d.Get("file tree"); ok {
			ftd, ok := ft.(bencode.Dict)
			if !ok {
				return nil, fmt.Errorf("%w: file tree is not a dictionary", ErrBadInfo)
			}
			if err := walkFileTree(ftd, "", ti, 0); err != nil {
				return nil, err
			}
		}
	}
	if pieces, ok := getBytes(d, "pieces"); ok {
		if len(pieces)%20 != 0 {
			return nil, fmt.Errorf("%w: pieces is %d bytes, not a multiple of 20", ErrBadInfo, len(pieces))
		}
		ti.V1 = true
		ti.Pieces = len(pieces) / 20
		ti.PieceHashes = append([]byte(nil), pieces...)
		if length, ok := getInt(d, "length"); ok {
			ti.Length = length
		} else if files, ok := d.Get("files"); ok {
			list, _ := files.([]any)
			for _, fv := range list {
				if fd, ok := fv.(bencode.Dict); ok {
					l, _ := getInt(fd, "length")
					ti.Length += l
				}
			}
		}
		if !ti.V2 {
			if length, ok := getInt(d, "length"); ok {
				f := File{Path: ti.Name, Length: length}
				if ti.Pieces == 1 {
					f.PieceSHA1 = append([]byte(nil), pieces...)
				}
				ti.Files = append(ti.Files, f)
			} else if files, ok := d.Get("files"); ok {
				list, _ := files.([]any)
				for _, fv := range list {
					fd, ok := fv.(bencode.Dict)
					if !ok {
						return nil, fmt.Errorf("%w: a files entry is not a dictionary", ErrBadInfo)
					}
					length, _ := getInt(fd, "length")
					ti.Files = append(ti.Files, File{Path: joinPath(fd), Length: length})
				}
			}
		}
	}
	if !ti.V1 && ti.V2 {
		for _, f := range ti.Files {
			ti.Pieces += int((f.Length + ti.PieceLength - 1) / ti.PieceLength)
		}
	}
	if !ti.V1 && !ti.V2 {
		return nil, fmt.Errorf("%w: neither pieces (v1) nor a file tree (v2)", ErrBadInfo)
	}
	return ti, nil
}

func walkFileTree(d bencode.Dict, prefix string, ti *Info, depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: file tree too deep", ErrBadInfo)
	}
	for _, p := range d {
		sub, ok := p.Value.(bencode.Dict)
		if !ok {
			return fmt.Errorf("%w: file tree entry %q is not a dictionary", ErrBadInfo, p.Key)
		}
		if len(p.Key) == 0 {
			// The file itself: "" -> {length, pieces root}.
			length, _ := getInt(sub, "length")
			root, _ := getBytes(sub, "pieces root")
			ti.Files = append(ti.Files, File{Path: prefix, Length: length, PiecesRoot: append([]byte(nil), root...)})
			continue
		}
		path := string(p.Key)
		if prefix != "" {
			path = prefix + "/" + path
		}
		if err := walkFileTree(sub, path, ti, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(fd bencode.Dict) string {
	v, _ := fd.Get("path")
	parts, _ := v.([]any)
	out := ""
	for i, p := range parts {
		b, _ := p.([]byte)
		if i > 0 {
			out += "/"
		}
		out += string(b)
	}
	return out
}

func getInt(d bencode.Dict, k string) (int64, bool) {
	v, ok := d.Get(k)
	if !ok {
		return 0, false
	}
	i, ok := v.(int64)
	return i, ok
}

func getBytes(d bencode.Dict, k string) ([]byte, bool) {
	v, ok := d.Get(k)
	if !ok {
		return nil, false
	}
	b, ok := v.([]byte)
	return b, ok
}

// FileHash is the content hash a file can be listed under: its v2 root
// (btv2) or, for a file that is exactly one v1 piece, its SHA-1; zero when
// the metadata gives neither.
func (f *File) FileHash() hashkind.Hash {
	if len(f.PiecesRoot) == 32 {
		if h, err := hashkind.New(hashkind.BTV2, f.PiecesRoot); err == nil {
			return h
		}
	}
	if len(f.PieceSHA1) == 20 {
		if h, err := hashkind.New(hashkind.SHA1, f.PieceSHA1); err == nil {
			return h
		}
	}
	return hashkind.Hash{}
}

// Verify checks an info dictionary against a 20-byte DHT key and
// returns the info-hash it proves: btih if its SHA-1 is the key, btih2 (the
// full SHA-256) if the key is its SHA-256 truncated (BEP 52).
func Verify(info []byte, key [20]byte) (hashkind.Hash, bool) {
	if s1 := sha1.Sum(info); s1 == key {
		return hashkind.MustNew(hashkind.BTIH, s1[:]), true
	}
	if s2 := sha256.Sum256(info); [20]byte(s2[:20]) == key {
		return hashkind.MustNew(hashkind.BTIH2, s2[:]), true
	}
	return hashkind.Hash{}, false
}

// PieceFile is a v1 file that is exactly one piece.
type PieceFile struct {
	Path   string
	Length int64
	SHA1   [20]byte
}

// SinglePieceFiles returns the files of a v1 or hybrid info dictionary
// whose bytes are exactly one piece: the file starts on a piece boundary
// and either fills the piece or is the last data of the torrent. That
// piece's hash is then the SHA-1 of the whole file, so it can be matched
// against sha1 list entries exactly. A single-file torrent of at most one
// piece is the common case; in a multi-file torrent a file that shares a
// piece with its neighbours is never matched this way (its piece hash
// covers other bytes too), and pad files (BEP 47) are skipped.
func SinglePieceFiles(info []byte) ([]PieceFile, error) {
	v, err := bencode.Decode(info, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInfo, err)
	}
	d, ok := v.(bencode.Dict)
	if !ok {
		return nil, fmt.Errorf("%w: not a dictionary", ErrBadInfo)
	}
	pl, ok := getInt(d, "piece length")
	if !ok || pl <= 0 {
		return nil, fmt.Errorf("%w: no piece length", ErrBadInfo)
	}
	pieces, ok := getBytes(d, "pieces")
	if !ok {
		return nil, nil // v2 only: no v1 pieces
	}
	if len(pieces)%20 != 0 {
		return nil, fmt.Errorf("%w: pieces is %d bytes, not a multiple of 20", ErrBadInfo, len(pieces))
	}
	type span struct {
		path   string
		length int64
		pad    bool
	}
	var spans []span
	name, _ := getBytes(d, "name")
	if l, ok := getInt(d, "length"); ok {
		spans = append(spans, span{path: string(name), length: l})
	} else if fv, ok := d.Get("files"); ok {
		list, ok := fv.([]any)
		if !ok {
			return nil, fmt.Errorf("%w: files is not a list", ErrBadInfo)
		}
		for _, e := range list {
			fd, ok := e.(bencode.Dict)
			if !ok {
				return nil, fmt.Errorf("%w: a files entry is not a dictionary", ErrBadInfo)
			}
			l, ok := getInt(fd, "length")
			if !ok || l < 0 {
				return nil, fmt.Errorf("%w: a file has no length", ErrBadInfo)
			}
			attr, _ := getBytes(fd, "attr")
			spans = append(spans, span{path: joinPath(fd), length: l, pad: strings.ContainsRune(string(attr), 'p')})
		}
	}
	var total int64
	for _, sp := range spans {
		if sp.length > 1<<50 || total > 1<<50 {
			return nil, fmt.Errorf("%w: lengths out of range", ErrBadInfo)
		}
		total += sp.length
	}
	if n := (total + pl - 1) / pl; n != int64(len(pieces)/20) {
		return nil, fmt.Errorf("%w: %d pieces for %d bytes of piece length %d", ErrBadInfo, len(pieces)/20, total, pl)
	}
	var out []PieceFile
	var off int64
	for _, sp := range spans {
		start := off
		off += sp.length
		if sp.pad || sp.length == 0 || start%pl != 0 {
			continue
		}
		if sp.length == pl || (sp.length < pl && off == total) {
			i := start / pl
			var h [20]byte
			copy(h[:], pieces[i*20:i*20+20])
			out = append(out, PieceFile{Path: sp.path, Length: sp.length, SHA1: h})
		}
	}
	return out, nil
}
