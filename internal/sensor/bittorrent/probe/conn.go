package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// peerConn is one probe's connection and what it has learned so far: the
// state machine of the exchange, with one handler per message type (after
// anacrolix/torrent's PeerConn). It reads until it knows what the peer
// holds, its extension handshake (if any) and the metadata (if wanted),
// and a verified piece (if asked), then lingers briefly for what the
// peer can still send and has not: PORT if it set the DHT bit, PEX if its
// extension handshake offers ut_pex (Config.PortWait, Config.PEXWait).
type peerConn struct {
	p        *Prober
	peer     netip.AddrPort
	ih       hashkind.Hash
	key      routing.ID
	raw      net.Conn
	conn     *recordingConn
	br       *bufio.Reader
	dec      *peerwire.Decoder
	tr       *transcript.Writer
	deadline time.Time // the probe's, zero if none

	theirs peerwire.Handshake
	res    *Result

	needMeta       bool          // the piece count is unknown: fetch the info dictionary
	meta           metadataFetch // the info dictionary being fetched
	vf             *pieceFetch   // the piece being fetched for verification
	verifyDone     bool          // verification is over, or was not asked
	unchoked       bool          // the peer's last word on choking
	handshakeAt    time.Time     // when the peer's handshake came, by the wall clock (minHold)
	saidPossession bool          // a bitfield, have_all or have_none came
	pexSeen        bool          // a PEX message came
	framingLost    bool          // a message's length prefix or type byte was cut: no later message can be found by a reader
	lingerFrom     time.Time     // when all was known and the linger began
}

// exchange runs the wire conversation. It returns a nil result if the peer
// did not accept the torrent.
func (p *Prober) exchange(ctx context.Context, peer Peer, ih hashkind.Hash, tr *transcript.Writer) (*Result, error) {
	raw, transport, err := p.dialPeer(ctx, peer)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	c := &peerConn{p: p, peer: peer.Addr, ih: ih, key: key(ih), raw: raw, tr: tr}
	c.deadline, _ = ctx.Deadline()
	_ = raw.SetDeadline(c.deadline)
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Now()) })
	defer stop()
	c.conn = &recordingConn{Conn: raw, tr: tr, peer: peer.Addr, now: p.cfg.Clock, fr: newFramer()}
	if err := c.handshake(transport); err != nil {
		return nil, err
	}
	if err := c.greet(); err != nil {
		return c.res, err
	}
	return c.res, c.run()
}

// handshake sends ours and reads theirs, which must be for the torrent.
func (c *peerConn) handshake(transport string) error {
	var rsv peerwire.Reserved
	rsv.SetExtended(true)
	rsv.SetFast(true)
	rsv.SetDHT(true)
	hs := peerwire.Handshake{Reserved: rsv, InfoHash: c.key, PeerID: c.p.cfg.PeerID}
	if _, err := c.conn.Write(hs.AppendTo(nil)); err != nil {
		return err
	}
	c.br = bufio.NewReaderSize(c.conn, 32<<10)
	c.dec = peerwire.NewDecoder(c.br, peerwire.DefaultMaxLength)
	theirs, err := c.dec.ReadHandshake()
	if err != nil {
		return err
	}
	if theirs.InfoHash != [20]byte(c.key) {
		return ErrWrongTorrent
	}
	if theirs.PeerID == c.p.cfg.PeerID {
		// Our own handshake, reflected: the info-hash in it is ours, not
		// an acceptance, and whatever follows may be our bytes too.
		return ErrMirror
	}
	if !c.tr.Kept(0, uint64(peerwire.HandshakeLen)) {
		// Nothing the peer says can be shown without its handshake (a
		// transcript bound too small to hold it).
		return ErrHandshakeCut
	}
	c.theirs, c.handshakeAt = theirs, time.Now()
	c.res = &Result{Handshake: theirs, Connected: c.p.cfg.Clock(), Haves: map[uint32]bool{}, Transport: transport,
		Local: addrPortOf(c.raw.LocalAddr())}
	return nil
}

// greet says have-none (BEP 6) and sends the extension handshake (BEP
// 10), as the peer's reserved bits allow.
func (c *peerConn) greet() error {
	var out []byte
	if c.theirs.Reserved.Fast() {
		m := peerwire.Message{ID: peerwire.HaveNone}
		out = m.AppendTo(out)
	}
	if c.theirs.Reserved.Extended() {
		eh := peerwire.ExtHandshake{M: map[string]uint8{"ut_metadata": ExtMetadataID, "ut_pex": ExtPEXID}, Client: "Vigil sensor", ReqQ: 1}
		m := peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)}
		out = m.AppendTo(out)
	}
	if len(out) > 0 {
		if _, err := c.conn.Write(out); err != nil {
			return err
		}
	}
	c.needMeta = c.p.pieceCount(c.key) < 0
	c.verifyDone = !c.p.cfg.Verify
	return nil
}

// streamPos is the stream offset the decoder has reached: what was read
// minus what is buffered. A message counts only if its bytes are in the
// transcript (Writer.Kept): no level rests on bytes a reader cannot see.
func (c *peerConn) streamPos() uint64 { return c.conn.rx - uint64(c.br.Buffered()) }

// run reads and handles messages until the conversation is over.
func (c *peerConn) run() error {
	for {
		var m peerwire.Message
		from := c.streamPos()
		err := c.dec.Decode(&m)
		if err != nil {
			if errors.Is(err, peerwire.ErrBadLength) && c.typeLost(from) {
				c.res.Spoke = true // as for a message read (below): a reader cannot see it was refused
			}
			return c.readEnded(err)
		}
		to := c.streamPos()
		if !m.Keepalive && c.typeLost(from) {
			// A reader finds its length prefix, its type byte cut: the
			// peer said more than its handshake, and nothing in the
			// message can be read (nor anything after it, below).
			c.res.Spoke = true
		}
		if !c.tr.Kept(from, min(from+5, to)) {
			// A reader finds a message by the lengths of those before it:
			// past a length prefix left out, no message can be found; past
			// a type byte left out, a reader cannot tell whether this
			// decoder refused the message (every length is wrong for some
			// type) and stopped.
			c.framingLost = true
		}
		if !c.framingLost {
			c.res.Spoke = true // the transcript shows the peer said more than its handshake
			c.account(&m, c.tr.Kept(from, to))
		}
		kept := !c.framingLost && c.tr.Kept(from, to)
		if err := c.handle(&m, kept); err != nil {
			return err
		}
		if done, err := c.settle(); done || err != nil {
			return err
		}
	}
}

// typeLost reports whether a reader finds the length prefix of the
// message at stream offset from and not its type byte (the transcript's
// bound cut it there): the verifier (internal/evidence/verify) says the
// peer spoke, and reads nothing from it or after it.
func (c *peerConn) typeLost(from uint64) bool {
	return !c.framingLost && c.tr.Kept(from, from+4) && !c.tr.Kept(from+4, from+5)
}

// minHold is how long a peer that says nothing after its handshake must
// hold the connection for that to count as speaking. A peer that echoes
// the info-hash and hangs up (docs/traps.md) has its hang-up on the way
// within a round trip; a probe that stops reading sooner (its deadline,
// the sensor stopping) has not seen whether it would come.
const minHold = time.Second

// readEnded says how a read that failed ends the probe.
func (c *peerConn) readEnded(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		if held := time.Since(c.handshakeAt); held >= minHold && !c.res.Spoke { // a duration: the wall clock, as the deadlines
			// It held the connection: it serves the torrent. The
			// transcript says so, or it is not claimed.
			c.res.Spoke = c.tr.Note(c.p.cfg.Clock(), c.peer, fmt.Sprintf(
				"%s %s after its handshake, when the probe stopped reading", transcript.HeldNote, held.Round(time.Millisecond)))
		}
		return nil
	}
	if errors.Is(err, io.EOF) {
		return nil // the peer had its say (Spoke says whether it said anything)
	}
	return err
}

// handle hands a message to the handler of its type; kept says whether
// its bytes are in the transcript. Other types are read and ignored.
func (c *peerConn) handle(m *peerwire.Message, kept bool) error {
	switch m.ID {
	case peerwire.Bitfield:
		c.onBitfield(m)
	case peerwire.Have:
		c.onHave(m, kept)
	case peerwire.HaveAll:
		c.onHaveAll(m)
	case peerwire.HaveNone:
		c.onHaveNone(m)
	case peerwire.Choke:
		c.onChoke()
	case peerwire.Unchoke:
		return c.onUnchoke(m)
	case peerwire.Piece:
		return c.onPiece(m)
	case peerwire.Port:
		c.onPort(m, kept)
	case peerwire.Extended:
		return c.onExtended(m, kept)
	}
	return nil
}

// account counts a message a reader of the transcript finds (its length
// prefix and type byte kept, and those of every message before it) in
// Claims, the possession messages a level rests on; kept says whether all
// of its bytes are kept. A bitfield or have cut counts as a message whose
// content is unknown; a have_all counts only if the peer's handshake set
// the fast extension bit (BEP 6). What no reader can find counts neither
// for nor against a level: the verifier (internal/evidence/verify, read)
// replays the messages it finds through the same Claims, fed the same
// way, and must reach the same verdict.
func (c *peerConn) account(m *peerwire.Message, kept bool) {
	if m.Keepalive {
		return
	}
	cl := &c.res.Claims
	switch m.ID {
	case peerwire.Bitfield:
		if kept {
			cl.Bitfield(m.Payload)
		} else {
			cl.Unknown()
		}
	case peerwire.Have:
		if kept {
			cl.Have(m.Index)
		} else {
			cl.Unknown()
		}
	case peerwire.HaveAll:
		switch {
		case !c.theirs.Reserved.Fast():
			// BEP 6: without the fast extension bit in the peer's
			// handshake have_all means nothing here; it shows no piece.
			cl.HaveAllUnnegotiated()
		case kept: // found, a have_all is whole
			cl.HaveAll()
		default:
			cl.Unknown()
		}
	case peerwire.HaveNone:
		if kept {
			cl.HaveNone()
		} else {
			cl.Unknown()
		}
	}
}

func (c *peerConn) onBitfield(m *peerwire.Message) {
	if m.Keepalive {
		return
	}
	c.saidPossession = true
	if c.res.Bitfield == nil {
		c.res.Bitfield = append([]byte(nil), m.Payload...)
	}
}

func (c *peerConn) onHave(m *peerwire.Message, kept bool) {
	if !m.Keepalive && kept && len(c.res.Haves) < peerwire.MaxHaves {
		c.res.Haves[m.Index] = true
	}
}

func (c *peerConn) onHaveAll(m *peerwire.Message) {
	if m.Keepalive {
		return
	}
	c.saidPossession = true
	if c.theirs.Reserved.Fast() {
		c.res.HaveAll = true
	}
}

func (c *peerConn) onHaveNone(m *peerwire.Message) {
	if m.Keepalive {
		return
	}
	c.saidPossession, c.res.HaveNone = true, true
}

// onChoke notes the peer choked us. A keep-alive, which has no type,
// decodes with type 0 and so lands here too, as it always has.
func (c *peerConn) onChoke() { c.unchoked = false }

// onUnchoke asks for the piece being verified, if it waits for that.
func (c *peerConn) onUnchoke(m *peerwire.Message) error {
	c.unchoked = !m.Keepalive
	if c.vf != nil && !m.Keepalive && !c.vf.requested {
		return c.vf.request(c.conn)
	}
	return nil
}

// onPiece takes a block of the piece being verified; when the piece is
// whole it is hashed, noted in the transcript and dropped.
func (c *peerConn) onPiece(m *peerwire.Message) error {
	if c.vf == nil || m.Keepalive || !c.vf.add(m.Index, m.Begin, m.Payload) {
		return nil
	}
	ok := c.vf.check()
	c.conn.resume()
	// Verified only if the transcript says so (the note kept).
	c.res.Verified = c.tr.Note(c.p.cfg.Clock(), c.peer, fmt.Sprintf(
		"piece %d (%d bytes) fetched from this peer alone, hashed in memory and discarded; SHA-1 matches the info dictionary: %v",
		c.vf.index, len(c.vf.buf), ok)) && ok
	c.vf.buf = nil
	c.vf = nil
	nm := peerwire.Message{ID: peerwire.NotInterested}
	if _, err := c.conn.Write(nm.AppendTo(nil)); err != nil {
		return err
	}
	c.verifyDone = true
	return nil
}

// onPort takes the peer's DHT port, if its bytes are in the transcript:
// the node pinged at it must be one a reader sees the peer name.
func (c *peerConn) onPort(m *peerwire.Message, kept bool) {
	if !m.Keepalive && kept {
		c.res.DHTPort = m.Port
	}
}

// onExtended hands an extension message (BEP 10) to the handler of its
// extension, under the ids the sensor asked the peer to use. A peer whose
// handshake did not set the extension bit has no extension messages: BEP
// 10 gives them no meaning there, and nothing is taken from them (its
// listen port, client name, PEX or metadata).
func (c *peerConn) onExtended(m *peerwire.Message, kept bool) error {
	if m.Keepalive || !c.theirs.Reserved.Extended() {
		return nil
	}
	switch m.ExtendedID {
	case peerwire.ExtHandshakeID:
		return c.onExtHandshake(m, kept)
	case ExtPEXID:
		c.onPEX(m, kept)
	case ExtMetadataID:
		return c.onMetadata(m, kept)
	}
	return nil
}

// onExtHandshake keeps the peer's extension handshake and, if the info
// dictionary is wanted and offered, asks for all of it.
func (c *peerConn) onExtHandshake(m *peerwire.Message, kept bool) error {
	eh, err := peerwire.ParseExtHandshake(m.Payload)
	if err != nil {
		if !kept {
			// No reader can see that it does not parse: read past it,
			// as the verifier does.
			return nil
		}
		return err
	}
	if !c.res.ExtKept {
		// The first kept whole is the one recorded (its listen port and
		// client), and kept: the probe may stop reading at a write that
		// fails with more already in the transcript, so that a reader
		// cannot tell which one it read last, always which one first
		// (the verifier, internal/evidence/verify, takes that one).
		c.res.Ext, c.res.ExtKept = &eh, kept
	}
	if c.needMeta && eh.M["ut_metadata"] != 0 && eh.MetadataSize > 0 && eh.MetadataSize <= maxMetadataSize {
		c.meta.start(eh.MetadataSize)
		return c.meta.requestAll(c.conn, eh.M["ut_metadata"])
	}
	return nil
}

// onPEX keeps the peers a PEX message adds (BEP 11), IPv4 and IPv6; a
// message that does not parse names no one.
func (c *peerConn) onPEX(m *peerwire.Message, kept bool) {
	c.pexSeen = true
	x, err := peerwire.ParsePEX(m.Payload)
	if err != nil {
		return
	}
	// The message was decoded as soon as its last byte was read: that
	// read is the latest (no read happens between it and the decode).
	to := &c.res.PEX
	if !kept {
		to = &c.res.PEXUnkept
	}
	for _, list := range [][]peerwire.PEXPeer{x.Added, x.Added6} {
		for _, p := range list {
			*to = append(*to, PEXPeer{PEXPeer: p, At: c.conn.lastRead})
		}
	}
}

// onMetadata takes a piece of the info dictionary (BEP 9); the whole is
// kept only if it hashes to the info-hash.
func (c *peerConn) onMetadata(m *peerwire.Message, kept bool) error {
	md, err := peerwire.ParseMetadata(m.Payload)
	if err != nil {
		if !kept {
			return nil // as for an extension handshake (onExtHandshake)
		}
		return err
	}
	if done := c.meta.add(md); done {
		if info, ok := c.meta.verify(c.ih); ok {
			c.res.Metadata = info
		}
	}
	return nil
}

// settle runs after each message: it starts the verification once what
// the peer holds and the metadata are known, and once all is known it
// lingers for PORT and PEX. done says the probe is over.
func (c *peerConn) settle() (done bool, err error) {
	knowsPossession := c.saidPossession
	extDone := !c.theirs.Reserved.Extended() || c.res.Ext != nil
	// Metadata is settled once fetched or failed, or once the extension
	// handshake came without an offer of it (or none was needed).
	metaDone := !c.needMeta || c.res.Metadata != nil || c.meta.failed || (extDone && !c.meta.active())
	if !c.verifyDone && c.vf == nil && knowsPossession && metaDone {
		if err := c.startVerify(); err != nil {
			return true, err
		}
	}
	if knowsPossession && extDone && metaDone && c.verifyDone {
		return c.linger(), nil
	}
	return false, nil
}

// startVerify picks a piece to verify and asks for it, or, with none to
// pick, ends the verification.
func (c *peerConn) startVerify() error {
	if c.res.Metadata != nil {
		c.p.remember(c.key, c.res.Metadata)
	}
	c.vf = c.p.pickPiece(c.key, c.res)
	if c.vf == nil {
		c.verifyDone = true
		return nil
	}
	c.conn.pause()
	im := peerwire.Message{ID: peerwire.Interested}
	if _, err := c.conn.Write(im.AppendTo(nil)); err != nil {
		return err
	}
	if c.unchoked { // some peers unchoke before we are interested
		return c.vf.request(c.conn)
	}
	return nil
}

// linger decides, once all the probe wanted has come, whether to wait for
// PORT or PEX the peer can still send; it reports the probe over when
// nothing more is awaited or the wait has ended. A quiet peer (most stay
// connected and say nothing more) must not hold the probe until its
// deadline: the read itself ends with the linger.
func (c *peerConn) linger() bool {
	if c.lingerFrom.IsZero() {
		c.lingerFrom = time.Now()
	}
	var until time.Time
	if c.theirs.Reserved.DHT() && c.res.DHTPort == 0 && c.p.cfg.PortWait > 0 {
		until = c.lingerFrom.Add(c.p.cfg.PortWait)
	}
	if c.res.Ext != nil && c.res.Ext.M["ut_pex"] != 0 && !c.pexSeen && c.p.cfg.PEXWait > 0 {
		if u := c.lingerFrom.Add(c.p.cfg.PEXWait); u.After(until) {
			until = u
		}
	}
	if wholeMessageBuffered(c.br) {
		return false // already received (and in the transcript): read it too
	}
	if until.IsZero() || !time.Now().Before(until) {
		return true // all it can send has come, or the wait is over
	}
	if !c.deadline.IsZero() && c.deadline.Before(until) {
		until = c.deadline
	}
	_ = c.raw.SetReadDeadline(until)
	return false
}

// wholeMessageBuffered reports whether br holds a whole message already,
// so that decoding it does not wait on the network.
func wholeMessageBuffered(br *bufio.Reader) bool {
	if br.Buffered() < 4 {
		return false
	}
	hdr, err := br.Peek(4)
	if err != nil {
		return false
	}
	n := uint64(hdr[0])<<24 | uint64(hdr[1])<<16 | uint64(hdr[2])<<8 | uint64(hdr[3])
	return uint64(br.Buffered()) >= 4+n
}

// recordingConn copies what crosses a connection into a transcript and
// counts the bytes received, so that each message's place in the stream
// is known (streamPos).
type recordingConn struct {
	net.Conn
	tr   *transcript.Writer
	peer netip.AddrPort
	now  func() time.Time
	rx   uint64 // bytes received
	fr   framer // what of the received stream is kept (frame.go)
	// lastRead is the time of the latest read that returned bytes (the
	// time of its transcript record).
	lastRead time.Time
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.rx += uint64(n)
		c.lastRead = c.now()
		c.fr.record(c.tr, c.lastRead, c.peer, p[:n])
	}
	return n, err
}

func (c *recordingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.tr.StreamSent(c.now(), c.peer, p[:n])
	}
	return n, err
}

// pause stops recording while a piece is fetched for verification:
// content never goes into a transcript, only a record of how many bytes
// were not kept, and a note of what was checked.
func (c *recordingConn) pause()  { c.tr.PauseAt(c.now(), c.peer) }
func (c *recordingConn) resume() { c.tr.ResumeAt(c.now()) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
