// Package probe is one conversation with one BitTorrent peer about one
// torrent (BEP 3, 6, 9, 10, 11, 29): it dials the peer from the sensor's
// address of its family, over TCP or uTP, shakes hands for the torrent,
// and reads what the peer itself says it holds, its client and ports, and
// the peers it knows (PEX), recording every byte that crosses in a
// bounded transcript. It can also fetch and verify a torrent's info
// dictionary (FetchMetadata), and, when asked, one piece.
//
// A probe returns what was said (a Result) and the transcript that shows
// it; what that makes of the peer is the sensor's to decide. It must
// never build an Observation, never send a piece or claim one (it says
// have-none), never keep content (a piece fetched to verify is hashed in
// memory and dropped, and never enters the transcript), and never dial
// outside the scope guard or from the other family's address.
package probe

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/metainfo"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// Transports a probe can use; Result.Transport names the one that carried
// the conversation.
const (
	TransportTCP = "tcp"
	TransportUTP = "utp" // uTP, BEP 29: a stream over UDP
)

// Extension ids the sensor asks peers to use for messages to it.
const (
	ExtMetadataID = 1
	ExtPEXID      = 2
)

// maxMetadataSize bounds the info dictionary the sensor will fetch.
const maxMetadataSize = 8 << 20

// ErrWrongTorrent is a peer that answered the handshake for another
// info-hash: it said nothing about the torrent asked.
var ErrWrongTorrent = errors.New("peer answered the handshake for another info-hash")

// ErrMirror is a peer whose handshake carries the sensor's own peer id: it
// reflected the sensor's handshake (info-hash included) and has shown
// nothing of its own.
var ErrMirror = errors.New("peer answered with the sensor's own peer id (a mirror)")

// ErrHandshakeCut is a peer whose handshake the transcript could not
// keep (a bound too small to hold it): nothing it said can be shown.
var ErrHandshakeCut = errors.New("the peer's handshake is not in the transcript")

// ErrNoListenFamily is a dial to a peer of an address family the sensor
// has no listen address of: nothing was dialled.
var ErrNoListenFamily = errors.New("no listen address of the peer's address family")

// Config is what a Prober needs of the sensor.
type Config struct {
	// PeerID is the peer id the probes send (one per sensor run).
	PeerID [20]byte
	// Listen are the sensor's addresses, at most one of each family: a
	// peer is dialled from the one of its family, never from the other.
	Listen []netip.Addr
	// PortWait is how long a probe, once it knows what the peer has,
	// waits for a PORT message from a peer that set the DHT bit and has
	// not sent one yet. 0: no wait.
	PortWait time.Duration
	// PEXWait is how long a probe, once it knows what the peer has, waits
	// for a first PEX message from a peer whose extension handshake offers
	// ut_pex. 0: no wait.
	PEXWait time.Duration
	// Verify fetches one piece from the peer to check it against the info
	// dictionary's hash (Result.Verified). The piece is hashed in memory
	// and discarded.
	Verify bool
	// TranscriptLimit bounds the bytes of a probe's transcript.
	TranscriptLimit int
	// Clock returns the time of transcript records and of Connected.
	Clock func() time.Time
	// Info returns what is known of a torrent's info dictionary; a probe
	// fetches the dictionary from the peer (BEP 9) while the piece count
	// is unknown. Nil: nothing is known.
	Info func(key routing.ID) (*metainfo.Info, bool)
	// Remember is told a verified info dictionary fetched from a peer,
	// before the probe uses it (to pick a piece to verify). May be nil.
	Remember func(key routing.ID, info []byte)
	// Dialled is told the local address and port of every connection a
	// probe or a metadata fetch makes, before any byte crosses it: the
	// sensor's registry of its own addresses (a peer that passes them on
	// by PEX must not make the sensor record itself). May be nil.
	Dialled func(local netip.AddrPort)
}

// Prober runs probes. It is safe for concurrent use.
type Prober struct {
	cfg   Config
	guard *scope.Guard
}

// New returns a Prober whose every socket goes through guard.
func New(cfg Config, guard *scope.Guard) (*Prober, error) {
	if guard == nil {
		return nil, errors.New("probe: no scope guard")
	}
	if len(cfg.Listen) == 0 {
		return nil, errors.New("probe: no listen address")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	cfg.Listen = slices.Clone(cfg.Listen)
	return &Prober{cfg: cfg, guard: guard}, nil
}

// Peer is a peer to probe and the transport to try first: TransportUTP
// for a peer that said it takes uTP (a PEX entry with the uTP flag), else
// TCP (Dial's policy).
type Peer struct {
	Addr      netip.AddrPort
	Transport string
}

// Result is what one probe learned: what the peer said, each message
// counted only if its bytes are in the transcript.
type Result struct {
	// Handshake is the peer's handshake (its peer id, its reserved bits).
	Handshake peerwire.Handshake
	// Ext is the peer's extension handshake, if it sent one: the first
	// one whose bytes are all in the transcript, else the last one read.
	// ExtKept says whether its bytes are in the transcript: only then may
	// its listen port and client name go into a record.
	Ext     *peerwire.ExtHandshake
	ExtKept bool
	// Claims are the possession messages whose bytes are in the
	// transcript (a message cut from it counts as unknown), to be judged
	// strictly once the piece count is known (peerwire.Claims).
	Claims peerwire.Claims
	// Bitfield, HaveAll, HaveNone and Haves are what came, as raw hints
	// for choosing a piece to verify and for knowing when the peer has
	// said what it holds; a level rests on Claims alone.
	Bitfield []byte
	HaveAll  bool
	HaveNone bool
	Haves    map[uint32]bool
	// DHTPort is the port of the peer's PORT message (its DHT node), 0 if
	// none came.
	DHTPort uint16
	// PEX are the peers named in PEX messages kept in the transcript;
	// PEXUnkept those named in PEX messages cut from it, which may be
	// probed but never recorded (no record would show where they came
	// from).
	PEX       []PEXPeer
	PEXUnkept []PEXPeer
	// Metadata is the verified info dictionary, if one was fetched.
	Metadata []byte
	// Verified: one piece fetched from this peer matched its hash.
	Verified bool
	// Connected is when the handshake came.
	Connected time.Time
	// Spoke is set once the peer sent anything after its handshake (a
	// message, even a keep-alive) that a reader of the transcript finds
	// (its length prefix and type byte kept, and those before it),
	// or held the connection open until the probe stopped reading, at
	// least a second after its handshake, and the transcript keeps the
	// note that says so (transcript.HeldNote). A peer that echoes the info-hash and
	// hangs up at once has acknowledged nothing: some libraries echo
	// whatever info-hash they are sent before they check that they serve
	// it (anacrolix/torrent 1.59 does; docs/traps.md).
	Spoke bool
	// Transport is the one that carried the exchange (TransportTCP or
	// TransportUTP); Local is the sensor's end of the connection.
	Transport string
	Local     netip.AddrPort
}

// PEXPeer is a peer a PEX message named, and when that message came: the
// time of the transcript record that holds its last byte.
type PEXPeer struct {
	peerwire.PEXPeer
	At time.Time
}

// Probe connects to a peer, shakes hands for the torrent ih, and reads
// what the peer itself says: that it accepted the torrent, which pieces
// it has, its client and listen port, its DHT port, and peers it knows
// (PEX). It sends no piece and claims none (have-none). ctx bounds the
// whole conversation: its deadline is the connection's.
//
// The result is nil if the peer did not accept the torrent (no handshake
// for it: ErrWrongTorrent when it answered for another). With an error
// and a result, the result holds what the peer said before the error.
// The transcript is returned open: the caller may add to it (a DHT ping
// of the peer's node) before it takes its bytes.
func (p *Prober) Probe(ctx context.Context, peer Peer, ih hashkind.Hash) (*Result, *transcript.Writer, error) {
	tr := transcript.NewWriter(p.cfg.TranscriptLimit)
	res, err := p.exchange(ctx, peer, ih, tr)
	return res, tr, err
}

// info is what the sensor knows of key's info dictionary.
func (p *Prober) info(key routing.ID) (*metainfo.Info, bool) {
	if p.cfg.Info == nil {
		return nil, false
	}
	return p.cfg.Info(key)
}

// pieceCount is key's piece count, or -1 while unknown.
func (p *Prober) pieceCount(key routing.ID) int {
	if ti, ok := p.info(key); ok && ti.Pieces > 0 {
		return ti.Pieces
	}
	return -1
}

func (p *Prober) remember(key routing.ID, info []byte) {
	if p.cfg.Remember != nil {
		p.cfg.Remember(key, info)
	}
}

// key is the 20-byte key under which peers know the torrent (the first 20
// bytes of a v2 info-hash, BEP 52).
func key(ih hashkind.Hash) routing.ID {
	var k routing.ID
	copy(k[:], ih.Bytes())
	return k
}

// listenFor returns the sensor's listen address of a's family, if it has
// one.
func (p *Prober) listenFor(a netip.Addr) (netip.Addr, bool) {
	v6 := a.Unmap().Is6()
	for _, l := range p.cfg.Listen {
		if l.Is6() == v6 {
			return l, true
		}
	}
	return netip.Addr{}, false
}
