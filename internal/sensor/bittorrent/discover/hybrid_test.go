package discover

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// watchRecorder is a sensor that records what discovery asks it to watch.
type watchRecorder struct {
	fakeSensor
	mu2     sync.Mutex
	watches map[hashkind.Kind][]observe.Match
}

func (w *watchRecorder) Watch(h hashkind.Hash, m []observe.Match, _ string, _ []byte) error {
	w.mu2.Lock()
	defer w.mu2.Unlock()
	w.watches[h.Kind()] = append([]observe.Match(nil), m...)
	return nil
}

func (w *watchRecorder) Watched(routing.ID) bool { return false }

// hybridInfo is a hybrid (v1 and v2) single-file info dictionary of one
// 16 KiB piece whose v1 piece hash and v2 pieces root are given: nothing
// makes them describe the same bytes (BEP 52 says they must; a client
// that reads only v1 checks only the v1 hash).
func hybridInfo(sha1Piece [20]byte, root [32]byte) []byte {
	return []byte(fmt.Sprintf("d9:file treed1:ad0:d6:lengthi16384e11:pieces root32:%seee6:lengthi16384e12:meta versioni2e4:name1:a12:piece lengthi16384e6:pieces20:%se",
		root[:], sha1Piece[:]))
}

// A hybrid torrent whose v2 pieces root is on a list, and whose v1 piece
// hash is of other bytes. Peers under its v1 info-hash are v1 clients,
// which check only the v1 piece hashes: they may hold the other bytes, the
// v2 root says nothing of what they share. The code before this watched
// both info-hashes with the v2 root's entry, so a v1 peer of a torrent
// made to frame it was recorded as sharing the listed file. Each
// info-hash is watched with the entries its own hashes prove: the v2 one
// with v2 roots, the v1 one with v1 piece hashes.
func TestHybridTorrentIsWatchedOnlyUnderTheHashesThatMatched(t *testing.T) {
	var sha [20]byte
	var root [32]byte
	rand.Read(sha[:])
	rand.Read(root[:])
	rootHash := hashkind.MustNew(hashkind.BTV2, root[:])
	shaHash := hashkind.MustNew(hashkind.SHA1, sha[:])
	for _, tc := range []struct {
		name          string
		listed        []hashkind.Hash
		wantV1, want2 bool
	}{
		{"v2-root-listed", []hashkind.Hash{rootHash}, false, true},
		{"v1-piece-listed", []hashkind.Hash{shaHash}, true, false},
		{"both-listed", []hashkind.Hash{rootHash, shaHash}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &watchRecorder{watches: map[hashkind.Kind][]observe.Match{}}
			match := func(h hashkind.Hash) []observe.Match {
				for _, l := range tc.listed {
					if h == l {
						return []observe.Match{{List: "list-" + h.Kind().String()}}
					}
				}
				return nil
			}
			d := &Discoverer{cfg: Config{Match: match, Clock: time.Now}, p: Parts{Sensor: rec, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
			info := hybridInfo(sha, root)
			sum := sha256.Sum256(info)
			d.matchInfo(fetchJob{key: routing.ID(sum[:20])}, netip.AddrPort{}, info)
			_, v1 := rec.watches[hashkind.BTIH]
			_, v2 := rec.watches[hashkind.BTIH2]
			if v1 != tc.wantV1 || v2 != tc.want2 {
				t.Fatalf("watched v1 %v (%v) v2 %v (%v), want v1 %v v2 %v", v1, rec.watches[hashkind.BTIH], v2, rec.watches[hashkind.BTIH2], tc.wantV1, tc.want2)
			}
			if v1 && len(rec.watches[hashkind.BTIH]) != 1 || v2 && len(rec.watches[hashkind.BTIH2]) != 1 {
				t.Fatalf("entries %v: each info-hash carries its own family's entry only", rec.watches)
			}
		})
	}
}
