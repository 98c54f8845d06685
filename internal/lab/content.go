package lab

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-oss/vigil/internal/lab/torrentmake"
)

// TorrentFile is one file of a lab torrent, with the hashes a watch-list
// might hold for it.
type TorrentFile struct {
	Path   string `json:"path"` // slash-separated, relative to the torrent's directory
	Length int64  `json:"length"`
	MD5    string `json:"md5"`
	SHA1   string `json:"sha1"`
	SHA256 string `json:"sha256"`
	// PiecesRoot is the BEP 52 per-file merkle root (v2 and hybrid).
	PiecesRoot string `json:"pieces_root,omitempty"`
}

// Torrent is one lab torrent, as the manifest describes it.
type Torrent struct {
	Name    string `json:"name"`
	Version string `json:"version"` // v1, v2 or hybrid
	// InfoHash is the v1 info-hash (hex), empty for a v2-only torrent.
	InfoHash string `json:"infohash,omitempty"`
	// InfoHashV2 is the full v2 info-hash (64 hex), empty for v1; the DHT
	// and trackers see its first 20 bytes (InfoHashV2Short).
	InfoHashV2      string        `json:"infohash_v2,omitempty"`
	InfoHashV2Short string        `json:"infohash_v2_short,omitempty"`
	PieceLength     int64         `json:"piece_length"`
	Files           []TorrentFile `json:"files"`
	Watched         bool          `json:"watched"`
	Category        string        `json:"category,omitempty"`
	// Tracker is the announce URL, empty for a DHT-only torrent.
	Tracker string `json:"tracker,omitempty"`
	// Tracker6 is the tracker's IPv6 announce URL on a lab of both
	// families: the peers announce there too (the .torrent holds Tracker).
	Tracker6    string `json:"tracker6,omitempty"`
	TorrentPath string `json:"torrent_file"`

	built *torrentmake.Torrent
}

// SwarmHashes are the 20-byte info-hashes (hex) the torrent is found under
// on the DHT and on trackers: the v1 hash and the truncated v2 hash.
func (t *Torrent) SwarmHashes() []string {
	var out []string
	if t.InfoHash != "" {
		out = append(out, t.InfoHash)
	}
	if t.InfoHashV2Short != "" {
		out = append(out, t.InfoHashV2Short)
	}
	return out
}

// layouts cycle so that any six consecutive torrents hold every kind.
var layouts = []struct {
	v     torrentmake.Version
	multi bool
}{
	{torrentmake.V1, false}, {torrentmake.Hybrid, true}, {torrentmake.V2, false},
	{torrentmake.V1, true}, {torrentmake.Hybrid, false}, {torrentmake.V2, true},
}

var categories = []string{"synthetic-A", "synthetic-B", "synthetic-C"}

// makeContent writes the lab's synthetic files under dir/data and their
// .torrent files under dir/torrents. Everything but the tracker URLs
// follows from seed; the announce URL is outside the info dictionary, so
// the info-hashes do not depend on them (nor on the lab's families).
func makeContent(cfg *Config, trackerURL, trackerURL6 string) ([]*Torrent, error) {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x7a11))
	dataDir := filepath.Join(cfg.Dir, "data")
	torDir := filepath.Join(cfg.Dir, "torrents")
	for _, d := range []string{dataDir, torDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("lab dir %s: %w", d, err)
		}
	}
	var out []*Torrent
	for j := range cfg.Torrents {
		lay := layouts[j%len(layouts)]
		name := fmt.Sprintf("synthetic-%03d.bin", j+1)
		nfiles := 1
		if lay.multi {
			name = fmt.Sprintf("synthetic-set-%03d", j+1)
			nfiles = 2 + r.IntN(3)
		}
		var files []torrentmake.File
		var total int64
		for k := range nfiles {
			size := fileSize(r, cfg.FileSizes)
			total += size
			var key [32]byte
			binary.LittleEndian.PutUint64(key[:], r.Uint64())
			binary.LittleEndian.PutUint64(key[8:], r.Uint64())
			data := make([]byte, size)
			rand.NewChaCha8(key).Read(data)
			path := []string{fmt.Sprintf("synthetic-%03d-%d.bin", j+1, k+1)}
			if k == 2 {
				path = []string{"extra", path[0]}
			}
			files = append(files, torrentmake.File{Path: path, Data: data})
		}
		pl := int64(torrentmake.BlockSize)
		for total/pl > 64 {
			pl *= 2
		}
		t := &Torrent{Name: name, Version: lay.v.String(), PieceLength: pl, Watched: j < cfg.Watched}
		if t.Watched {
			t.Category = categories[j%len(categories)]
		}
		if cfg.Tracker && j%2 == 1 {
			t.Tracker, t.Tracker6 = trackerURL, trackerURL6
		}
		built, err := torrentmake.Build(torrentmake.Options{
			Name: name, PieceLength: pl, Version: lay.v, MultiFile: lay.multi,
			Announce: t.Tracker, CreatedBy: "vigil lab",
		}, files)
		if err != nil {
			return nil, fmt.Errorf("lab torrent %d: %w", j+1, err)
		}
		t.built = built
		if built.HasV1 {
			t.InfoHash = hex.EncodeToString(built.InfoHashV1[:])
		}
		if built.HasV2 {
			t.InfoHashV2 = hex.EncodeToString(built.InfoHashV2[:])
			short := built.ShortV2()
			t.InfoHashV2Short = hex.EncodeToString(short[:])
		}
		byPath := map[string][]byte{}
		for _, f := range files {
			byPath[strings.Join(f.Path, "/")] = f.Data
		}
		for _, f := range built.Files {
			rel := strings.Join(f.Path, "/")
			data := byPath[rel]
			if !lay.multi {
				data = files[0].Data
			}
			tf := TorrentFile{Path: rel, Length: f.Length}
			m, s1, s2 := md5.Sum(data), sha1.Sum(data), sha256.Sum256(data)
			tf.MD5, tf.SHA1, tf.SHA256 = hex.EncodeToString(m[:]), hex.EncodeToString(s1[:]), hex.EncodeToString(s2[:])
			if built.HasV2 {
				tf.PiecesRoot = hex.EncodeToString(f.PiecesRoot[:])
			}
			t.Files = append(t.Files, tf)
			// anacrolix's file storage puts a torrent's files at
			// base/name (single file) or base/name/path (multi-file).
			disk := filepath.Join(dataDir, name)
			if lay.multi {
				disk = filepath.Join(append([]string{dataDir, name}, f.Path...)...)
			}
			if err := os.MkdirAll(filepath.Dir(disk), 0o755); err != nil {
				return nil, fmt.Errorf("lab file %s: %w", disk, err)
			}
			if err := os.WriteFile(disk, data, 0o644); err != nil {
				return nil, fmt.Errorf("lab file %s: %w", disk, err)
			}
		}
		t.TorrentPath = filepath.Join(torDir, name+".torrent")
		if err := os.WriteFile(t.TorrentPath, built.MetaInfo, 0o644); err != nil {
			return nil, fmt.Errorf("lab torrent file %s: %w", t.TorrentPath, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// fileSize draws a size log-uniformly in [min, max], so that small and
// large files are both common.
func fileSize(r *rand.Rand, s SizeRange) int64 {
	if s.Max <= s.Min {
		return s.Min
	}
	lo, hi := math.Log(float64(s.Min)), math.Log(float64(s.Max))
	return min(s.Max, max(s.Min, int64(math.Exp(lo+r.Float64()*(hi-lo)))))
}

// writeWatchlist writes the watched torrents' info-hashes as a CSV
// watch-list (hash,kind,category,note): kind btih for a v1 info-hash,
// btih2 for a full v2 info-hash.
func writeWatchlist(path string, torrents []*Torrent) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"hash", "kind", "category", "note"})
	for _, t := range torrents {
		if !t.Watched {
			continue
		}
		note := "vigil lab synthetic torrent " + t.Name + " (" + t.Version + ")"
		if t.InfoHash != "" {
			w.Write([]string{t.InfoHash, "btih", t.Category, note})
		}
		if t.InfoHashV2 != "" {
			w.Write([]string{t.InfoHashV2, "btih2", t.Category, note})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("lab watch-list %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("lab watch-list %s: %w", path, err)
	}
	return nil
}
