package bittorrent

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/bencode"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// ErrBadInfo means an info dictionary does not describe a torrent.
var ErrBadInfo = errors.New("bad info dictionary")

// TorrentInfo is what the sensor keeps of a watched torrent's info
// dictionary: enough to count pieces and to match files. It never keeps
// or fetches content.
type TorrentInfo struct {
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

// ParseInfo reads an info dictionary (v1, v2 or hybrid).
func ParseInfo(b []byte) (*TorrentInfo, error) {
	v, err := bencode.Decode(b, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInfo, err)
	}
	d, ok := v.(bencode.Dict)
	if !ok {
		return nil, fmt.Errorf("%w: not a dictionary", ErrBadInfo)
	}
	ti := &TorrentInfo{}
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

func walkFileTree(d bencode.Dict, prefix string, ti *TorrentInfo, depth int) error {
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

// rememberInfo keeps a verified info dictionary's summary for a watched key.
func (s *Sensor) rememberInfo(key routing.ID, b []byte) {
	ti, err := ParseInfo(b)
	if err != nil {
		s.log.Warn("info dictionary that matched its info-hash does not parse", "err", err)
		return
	}
	s.mu.Lock()
	if s.infos == nil {
		s.infos = map[routing.ID]*TorrentInfo{}
	}
	s.infos[key] = ti
	s.mu.Unlock()
}

// TorrentFiles is what a peer's verified metadata says about the files of
// a watched torrent (Config.OnFiles).
type TorrentFiles struct {
	Torrent   hashkind.Hash // the watched info-hash
	Name      string
	Files     []File
	Peer      netip.AddrPort
	Transport string
	Time      time.Time
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

// pieceCount is a watched torrent's piece count, or -1 while unknown.
func (s *Sensor) pieceCount(key routing.ID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ti, ok := s.infos[key]; ok && ti.Pieces > 0 {
		return ti.Pieces
	}
	return -1
}

// Info returns what the sensor learned of a watched torrent's files.
func (s *Sensor) Info(key routing.ID) (*TorrentInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ti, ok := s.infos[key]
	return ti, ok
}

func pingMsg() *krpc.Msg { return &krpc.Msg{Method: krpc.MethodPing} }
