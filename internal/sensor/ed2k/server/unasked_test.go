package server

import (
	"context"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A hostile server answers a request for a watched file's sources with,
// first, sources of a file nobody watches (once plain, once packed), then
// the answer. Those were not taken, but their bytes stayed in the
// answer's transcript, and so in the observations and the evidence log:
// a file nobody watches and the addresses said to share it, kept by the
// sensor (a search result's bytes were left out for that reason, sources
// of another file were not). Now sources of a file other than the one
// awaited are counted in the transcript by a cut record, never kept.
func TestSourcesOfAnotherFileAreNotKeptInTheAnswersTranscript(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	asked := [16]byte{0x5f, 0x7e, 7}
	unwatched := [16]byte{0xEE, 0xD2, 0x4B, 0x99, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	other := wire.FoundSources{Hash: unwatched, Sources: source("127.91.133.66")}
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		labed2k.SendSources(ctx, pc, unwatched, other.Sources)
		pc.SendRaw(ctx, time.Second, wire.AppendPacked(nil, wire.OpFoundSources, other.AppendTo(nil)))
		labed2k.SendSources(ctx, pc, asked, source("127.91.133.9"))
		return true
	}}
	s := loginScripted(ctx, t, "127.91.133.4:0", cfg, srv)
	f, err := s.Sources(ctx, asked, 1000)
	if err != nil || len(f.Sources) != 1 || f.Sources[0] != source("127.91.133.9")[0] || !f.Kept {
		t.Fatalf("sources %v kept %v, %v; want the answer's, kept", f.Sources, f.Kept, err)
	}
	if f.Unasked != 2 {
		t.Fatalf("%d unasked; want the two answers about another file counted", f.Unasked)
	}
	recs, err := tscript.Decode(f.Transcript.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cut := false
	for _, r := range recs {
		cut = cut || r.Type == tscript.Cut
		if r.Type != tscript.Received {
			continue
		}
		p, _, err := wire.Decode(r.Data, wire.DefaultLimits())
		if err != nil || p.Opcode != wire.OpFoundSources {
			continue
		}
		if fs, err := wire.DecodeFoundSources(p.Payload, false); err == nil && fs.Hash != asked {
			t.Fatalf("the transcript keeps sources of a file not asked for: %x, %v (packed %v)", fs.Hash, fs.Sources, p.Packed)
		}
	}
	if !cut {
		t.Fatal("no cut record: the bytes left out must be counted where they came")
	}
}
