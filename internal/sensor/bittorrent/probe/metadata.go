package probe

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/metainfo"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// FetchMetadata connects to a peer over TCP, shakes hands for key, and
// fetches the info dictionary over ut_metadata (BEP 9), verified against
// key: SHA-1 for a v1 or hybrid key, the first 20 bytes of SHA-256 for a
// v2 one. Nothing of it is recorded (no transcript): it serves discovery,
// for torrents not watched (yet). ctx bounds the whole fetch.
func (p *Prober) FetchMetadata(ctx context.Context, peer netip.AddrPort, key routing.ID) ([]byte, error) {
	// Dial dials from the sensor's address of the peer's family and
	// hands the connection's source port to Config.Dialled.
	conn, err := p.Dial(ctx, TransportTCP, peer)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	var rsv peerwire.Reserved
	rsv.SetExtended(true)
	rsv.SetFast(true)
	hs := peerwire.Handshake{Reserved: rsv, InfoHash: key, PeerID: p.cfg.PeerID}
	if _, err := conn.Write(hs.AppendTo(nil)); err != nil {
		return nil, err
	}
	dec := peerwire.NewDecoder(bufio.NewReaderSize(conn, 32<<10), peerwire.DefaultMaxLength)
	theirs, err := dec.ReadHandshake()
	if err != nil {
		return nil, err
	}
	if theirs.InfoHash != [20]byte(key) {
		return nil, ErrWrongTorrent
	}
	if !theirs.Reserved.Extended() {
		return nil, errors.New("peer does not speak the extension protocol (BEP 10)")
	}
	var out []byte
	if theirs.Reserved.Fast() {
		m := peerwire.Message{ID: peerwire.HaveNone}
		out = m.AppendTo(out)
	}
	eh := peerwire.ExtHandshake{M: map[string]uint8{"ut_metadata": ExtMetadataID}, Client: "Vigil sensor", ReqQ: 1}
	m := peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)}
	if _, err := conn.Write(m.AppendTo(out)); err != nil {
		return nil, err
	}
	return readMetadata(dec, conn, key)
}

// readMetadata reads the peer's messages until the whole info dictionary
// is in and verified, asking for it once the extension handshake offers
// it.
func readMetadata(dec *peerwire.Decoder, w io.Writer, key routing.ID) ([]byte, error) {
	var meta metadataFetch
	for {
		var m peerwire.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) || isTimeout(err) {
				return nil, fmt.Errorf("peer closed or went quiet before the metadata was in: %w", err)
			}
			return nil, err
		}
		if m.ID != peerwire.Extended || m.Keepalive {
			continue
		}
		switch m.ExtendedID {
		case peerwire.ExtHandshakeID:
			eh, err := peerwire.ParseExtHandshake(m.Payload)
			if err != nil {
				return nil, err
			}
			if eh.M["ut_metadata"] == 0 || eh.MetadataSize <= 0 || eh.MetadataSize > maxMetadataSize {
				return nil, fmt.Errorf("peer offers no usable metadata (ut_metadata %d, size %d)", eh.M["ut_metadata"], eh.MetadataSize)
			}
			meta.start(eh.MetadataSize)
			if err := meta.requestAll(w, eh.M["ut_metadata"]); err != nil {
				return nil, err
			}
		case ExtMetadataID:
			md, err := peerwire.ParseMetadata(m.Payload)
			if err != nil {
				return nil, err
			}
			done := meta.add(md)
			if meta.failed {
				return nil, errors.New("peer rejected a metadata request or sent a piece of the wrong size")
			}
			if done {
				info := meta.join()
				if _, ok := metainfo.Verify(info, key); !ok {
					return nil, errors.New("metadata does not hash to the info-hash")
				}
				return info, nil
			}
		}
	}
}

// metadataFetch assembles an info dictionary from ut_metadata pieces.
type metadataFetch struct {
	size   int
	pieces [][]byte
	got    int
	failed bool
}

func (f *metadataFetch) active() bool { return f.size > 0 }

func (f *metadataFetch) start(size int) {
	f.size = size
	f.pieces = make([][]byte, (size+peerwire.MetadataPieceLen-1)/peerwire.MetadataPieceLen)
}

func (f *metadataFetch) requestAll(w io.Writer, theirID uint8) error {
	var out []byte
	for i := range f.pieces {
		md := peerwire.Metadata{Type: peerwire.MetadataRequest, Piece: i}
		m := peerwire.Message{ID: peerwire.Extended, ExtendedID: theirID, Payload: md.AppendTo(nil)}
		out = m.AppendTo(out)
	}
	_, err := w.Write(out)
	return err
}

// add stores one piece; it reports whether every piece is in.
func (f *metadataFetch) add(md peerwire.Metadata) bool {
	if !f.active() {
		return false
	}
	if md.Type == peerwire.MetadataReject {
		f.failed = true
		return false
	}
	if md.Type != peerwire.MetadataData || md.Piece < 0 || md.Piece >= len(f.pieces) || f.pieces[md.Piece] != nil {
		return false
	}
	want := peerwire.MetadataPieceLen
	if md.Piece == len(f.pieces)-1 {
		want = f.size - md.Piece*peerwire.MetadataPieceLen
	}
	if len(md.Data) != want {
		f.failed = true
		return false
	}
	f.pieces[md.Piece] = append([]byte(nil), md.Data...)
	f.got++
	return f.got == len(f.pieces)
}

// join is the pieces in order: the info dictionary.
func (f *metadataFetch) join() []byte {
	info := make([]byte, 0, f.size)
	for _, p := range f.pieces {
		info = append(info, p...)
	}
	return info
}

// verify joins the pieces and checks them against the info-hash: SHA-1 for
// v1, SHA-256 for v2 (whose DHT key is its first 20 bytes).
func (f *metadataFetch) verify(h hashkind.Hash) ([]byte, bool) {
	info := f.join()
	switch h.Kind() {
	case hashkind.BTIH:
		sum := sha1.Sum(info)
		if string(sum[:]) == string(h.Bytes()) {
			return info, true
		}
	case hashkind.BTIH2:
		sum := sha256.Sum256(info)
		if string(sum[:]) == string(h.Bytes()) {
			return info, true
		}
	}
	f.failed = true
	return nil, false
}
