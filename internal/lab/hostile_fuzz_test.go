package lab

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab/torrentmake"
)

// FuzzHostileServe feeds a hostile device's peer-wire server whatever
// follows a valid handshake: it must neither panic nor hang, whatever a
// probe (or anything else on loopback) sends it.
func FuzzHostileServe(f *testing.F) {
	ext := func(id byte, payload string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(2+len(payload)))
		return append(append(b, 20, id), payload...)
	}
	f.Add(append(ext(0, "d1:md11:ut_metadatai2eee"), ext(3, "d8:msg_typei0e5:piecei0ee")...))  // metadata-request
	f.Add(append(ext(0, "d1:md11:ut_metadatai2eee"), ext(3, "d8:msg_typei0e5:piecei-1ee")...)) // negative-piece
	f.Add(append(ext(0, "d1:md11:ut_metadatai2eee"), ext(3, "d8:msg_typei0e5:piecei99999999999ee")...))
	f.Add([]byte{0, 0, 0, 1, 20})         // extended-without-id
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0}) // keepalives
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}) // huge-length
	info := []byte("d6:lengthi1024e4:name4:test12:piece lengthi16384e6:pieces20:01234567890123456789e")
	sum := sha1.Sum(info)
	tor := &Torrent{Name: "fuzz", InfoHash: hex.EncodeToString(sum[:]),
		built: &torrentmake.Torrent{Info: info, InfoHashV1: sum, HasV1: true, NumPieces: 10}}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kind := range []string{KindPartial, KindLiarHavePastEnd} {
			d := &hostileDevice{name: "fuzz", kind: kind, torrent: tor, torrents: []*Torrent{tor}, port: 6881}
			a, b := net.Pipe()
			done := make(chan struct{})
			go func() {
				defer close(done)
				d.serve(a)
				a.Close()
			}()
			go func() { _, _ = io.Copy(io.Discard, b) }()
			hs := append([]byte("\x13BitTorrent protocol"), 0, 0, 0, 0, 0, 0x10, 0, 0x05)
			hs = append(hs, sum[:]...)
			hs = append(hs, []byte("-XX0001-000000000000")...)
			_ = b.SetWriteDeadline(time.Now().Add(2 * time.Second))
			_, _ = b.Write(append(hs, data...))
			b.Close()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: serve did not return after the peer closed", kind)
			}
		}
	})
}
