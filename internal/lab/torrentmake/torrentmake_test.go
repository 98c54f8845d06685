package torrentmake

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/vigil-oss/vigil/internal/testenv"
)

func synth(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

type buildCase struct {
	name  string
	opts  Options
	files []File
}

func buildCases() []buildCase {
	const pl = 32 << 10
	multi := []File{
		{Path: []string{"b", "synthetic-002.bin"}, Data: synth(2, 100_000)},
		{Path: []string{"synthetic-001.bin"}, Data: synth(1, 40_000)},
		{Path: []string{"a.bin"}, Data: synth(3, 5_000)},
	}
	return []buildCase{
		{"v1-single", Options{Name: "synthetic-001.bin", PieceLength: pl, Version: V1}, []File{{Data: synth(1, 70_000)}}},
		{"v1-multi", Options{Name: "synthetic-set", PieceLength: pl, Version: V1}, multi},
		{"v2-single-small", Options{Name: "synthetic-003.bin", PieceLength: pl, Version: V2}, []File{{Data: synth(4, 20_000)}}},
		{"v2-single", Options{Name: "synthetic-004.bin", PieceLength: pl, Version: V2}, []File{{Data: synth(5, 200_000)}}},
		{"v2-multi", Options{Name: "synthetic-set", PieceLength: pl, Version: V2}, multi},
		{"hybrid-single", Options{Name: "synthetic-005.bin", PieceLength: pl, Version: Hybrid}, []File{{Data: synth(6, 150_000)}}},
		{"hybrid-multi", Options{Name: "synthetic-set", PieceLength: pl, Version: Hybrid, Announce: "http://127.0.0.1:1/announce"}, multi},
		{"hybrid-exact-pieces", Options{Name: "synthetic-set2", PieceLength: pl, Version: Hybrid}, []File{
			{Path: []string{"x.bin"}, Data: synth(7, 2*pl)}, {Path: []string{"y.bin"}, Data: synth(8, 3*BlockSize)},
		}},
	}
}

// TestBuildIsReadByAnacrolix checks the built torrents against an
// independent reader: anacrolix/torrent's metainfo, which recomputes the
// info-hashes and validates the v2 piece layers against the roots.
func TestBuildIsReadByAnacrolix(t *testing.T) {
	for _, c := range buildCases() {
		t.Run(c.name, func(t *testing.T) {
			tor, err := Build(c.opts, c.files)
			if err != nil {
				t.Fatal(err)
			}
			mi, err := metainfo.Load(bytes.NewReader(tor.MetaInfo))
			if err != nil {
				t.Fatal(err)
			}
			info, err := mi.UnmarshalInfo()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := info.HasV1(), tor.HasV1; got != want {
				t.Fatalf("HasV1 = %v, want %v", got, want)
			}
			if got, want := info.HasV2(), tor.HasV2; got != want {
				t.Fatalf("HasV2 = %v, want %v", got, want)
			}
			if tor.HasV1 {
				if got, want := mi.HashInfoBytes().HexString(), hex.EncodeToString(tor.InfoHashV1[:]); got != want {
					t.Fatalf("v1 info-hash = %s, want %s", got, want)
				}
			}
			if tor.HasV2 {
				if err := metainfo.ValidatePieceLayers(mi.PieceLayers, &info.FileTree, info.PieceLength); err != nil {
					t.Fatalf("piece layers: %v", err)
				}
			}
			if got, want := info.TotalLength(), totalLen(c.files, tor); got != want {
				t.Fatalf("total length = %d, want %d", got, want)
			}
			if got, want := mi.Announce, c.opts.Announce; got != want {
				t.Fatalf("announce = %q, want %q", got, want)
			}
		})
	}
}

// totalLen is the sum of the file lengths: anacrolix counts no pad files.
func totalLen(files []File, _ *Torrent) int64 {
	var n int64
	for _, f := range files {
		n += int64(len(f.Data))
	}
	return n
}

// TestV1PiecesHashTheFiles recomputes the v1 piece hashes of a multi-file
// torrent from the concatenated file bytes, independently of v1Pieces.
func TestV1PiecesHashTheFiles(t *testing.T) {
	c := buildCases()[1]
	tor, err := Build(c.opts, c.files)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Load(bytes.NewReader(tor.MetaInfo))
	if err != nil {
		t.Fatal(err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, f := range tor.Files {
		for _, in := range c.files {
			if strings.Join(in.Path, "/") == strings.Join(f.Path, "/") {
				all = append(all, in.Data...)
			}
		}
	}
	pl := int(c.opts.PieceLength)
	for i := 0; i*pl < len(all); i++ {
		sum := sha1.Sum(all[i*pl : min(len(all), (i+1)*pl)])
		if got := info.Pieces[i*20 : i*20+20]; !bytes.Equal(got, sum[:]) {
			t.Fatalf("piece %d hash %x, want %x", i, got, sum)
		}
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	ok := []File{{Data: []byte("x")}}
	cases := []struct {
		name  string
		opts  Options
		files []File
		want  error
	}{
		{"piece-length-not-power-of-two", Options{Name: "n", PieceLength: 20000, Version: V1}, ok, ErrPieceLength},
		{"piece-length-too-small", Options{Name: "n", PieceLength: 8192, Version: V1}, ok, ErrPieceLength},
		{"no-files", Options{Name: "n", PieceLength: BlockSize, Version: V1}, nil, ErrNoFiles},
		{"empty-file", Options{Name: "n", PieceLength: BlockSize, Version: V2}, []File{{}}, ErrEmptyFile},
		{"dot-dot-path", Options{Name: "n", PieceLength: BlockSize, Version: V1, MultiFile: true}, []File{{Path: []string{"..", "x"}, Data: []byte("x")}}, ErrBadPath},
		{"slash-in-name", Options{Name: "a/b", PieceLength: BlockSize, Version: V1}, ok, ErrBadPath},
		{"file-and-dir", Options{Name: "n", PieceLength: BlockSize, Version: V2}, []File{{Path: []string{"a"}, Data: []byte("x")}, {Path: []string{"a", "b"}, Data: []byte("y")}}, ErrBadPath},
		{"unknown-version", Options{Name: "n", PieceLength: BlockSize}, ok, ErrVersion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(c.opts, c.files)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	c := buildCases()[6]
	a, err := Build(c.opts, c.files)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(c.opts, c.files)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.MetaInfo, b.MetaInfo) {
		t.Fatal("two builds of the same input differ")
	}
}

// libtorrentCheck loads a torrent with libtorrent-rasterbar, prints its
// info-hashes and file roots, then rechecks the files on disk and reports
// whether every piece passed. The session listens on loopback only and
// has DHT, LSD, UPnP and NAT-PMP off: it sends nothing anywhere.
const libtorrentCheck = `
import json, sys, time
import libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
ih = ti.info_hashes()
fs = ti.files()
roots = []
for i in range(fs.num_files()):
    if fs.file_flags(i) & lt.file_storage.flag_pad_file:
        continue
    roots.append(str(fs.root(i)))
s = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'alert_mask': 0})
p = lt.add_torrent_params()
p.ti = ti
p.save_path = sys.argv[2]
h = s.add_torrent(p)
deadline = time.time() + 30
while time.time() < deadline:
    st = h.status()
    if st.state in (lt.torrent_status.seeding, lt.torrent_status.finished) or (st.state == lt.torrent_status.downloading and st.progress < 1):
        break
    time.sleep(0.05)
st = h.status()
print(json.dumps({"v1": str(ih.v1) if ih.has_v1() else "", "v2": str(ih.v2) if ih.has_v2() else "",
                  "roots": roots, "num_pieces": ti.num_pieces(), "seeding": st.is_seeding,
                  "pieces_ok": st.num_pieces}))
`

// TestBuildIsVerifiedByLibtorrent checks every layout against
// libtorrent-rasterbar: the info-hashes it computes, the per-file roots,
// and a full recheck of the files written to disk.
func TestBuildIsVerifiedByLibtorrent(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import libtorrent").Run(); err != nil {
		testenv.Missingf(t, "LIBTORRENT", "%s cannot import libtorrent: %v", py, err)
	}
	for _, c := range buildCases() {
		t.Run(c.name, func(t *testing.T) {
			tor, err := Build(c.opts, c.files)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			tf := filepath.Join(dir, "t.torrent")
			if err := os.WriteFile(tf, tor.MetaInfo, 0o644); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(dir, "data")
			for i, f := range tor.Files {
				p := filepath.Join(append([]string{data}, f.Path...)...)
				if len(tor.Files) > 1 || c.opts.MultiFile {
					p = filepath.Join(append([]string{data, c.opts.Name}, f.Path...)...)
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, fileData(c.files, tor, i), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(py, "-c", libtorrentCheck, tf, data)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("libtorrent: %v\n%s", err, stderr.Bytes())
			}
			var got struct {
				V1, V2    string
				Roots     []string
				NumPieces int  `json:"num_pieces"`
				Seeding   bool `json:"seeding"`
				PiecesOK  int  `json:"pieces_ok"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("libtorrent output %q: %v", out, err)
			}
			want1, want2 := "", ""
			if tor.HasV1 {
				want1 = hex.EncodeToString(tor.InfoHashV1[:])
			}
			if tor.HasV2 {
				want2 = hex.EncodeToString(tor.InfoHashV2[:])
			}
			if got.V1 != want1 || got.V2 != want2 {
				t.Fatalf("libtorrent info-hashes v1=%s v2=%s, want v1=%s v2=%s", got.V1, got.V2, want1, want2)
			}
			if tor.HasV2 {
				for i, f := range tor.Files {
					if i >= len(got.Roots) || got.Roots[i] != hex.EncodeToString(f.PiecesRoot[:]) {
						t.Fatalf("libtorrent roots %v, file %d want %x", got.Roots, i, f.PiecesRoot)
					}
				}
			}
			if got.NumPieces != tor.NumPieces {
				t.Fatalf("libtorrent num_pieces = %d, want %d", got.NumPieces, tor.NumPieces)
			}
			if !got.Seeding || got.PiecesOK != tor.NumPieces {
				t.Fatalf("libtorrent recheck: seeding=%v pieces ok %d of %d", got.Seeding, got.PiecesOK, tor.NumPieces)
			}
		})
	}
}

func fileData(files []File, tor *Torrent, i int) []byte {
	if len(files) == 1 {
		return files[0].Data
	}
	for _, f := range files {
		if strings.Join(f.Path, "/") == strings.Join(tor.Files[i].Path, "/") {
			return f.Data
		}
	}
	return nil
}
