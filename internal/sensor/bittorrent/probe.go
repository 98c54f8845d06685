package bittorrent

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerid"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// probeJob is one peer to probe for one watched torrent.
type probeJob struct {
	peer netip.AddrPort
	w    Watched
	via  string // what named the peer: dht_get_peers, dht_announce, tracker, pex
	// transport is the one to try first: transportUTP for a peer that said
	// it takes uTP (a PEX entry with the uTP flag), else TCP. See dialPeer.
	transport string
}

type probeKey struct {
	peer netip.AddrPort
	key  routing.ID
}

// Extension ids the sensor asks peers to use for messages to it.
const (
	extMetadataID = 1
	extPEXID      = 2
)

// maxMetadataSize bounds the info dictionary the sensor will fetch.
const maxMetadataSize = 8 << 20

// enqueueProbe queues a probe unless the peer was probed for this torrent
// within ProbeEvery, or the queue is full (counted).
func (s *Sensor) enqueueProbe(peer netip.AddrPort, w Watched, via string) {
	s.enqueueProbeOver(peer, w, via, transportTCP)
}

// enqueueProbeOver is enqueueProbe with the transport to try first.
func (s *Sensor) enqueueProbeOver(peer netip.AddrPort, w Watched, via, transport string) {
	if !s.cfg.Probe {
		return
	}
	if err := s.guard.Check(peer); err != nil {
		s.scopeRefused.Add(1)
		return
	}
	if r := s.selfReason(peer, s.cfg.Clock()); r != "" {
		s.countDrop(r) // the sensor's own address: never probed, never recorded
		return
	}
	if _, ok := s.listenFor(peer.Addr()); !ok {
		// A peer of a family the sensor has no address of: never dialled
		// from the other family's address.
		s.countDrop(dropNoListenFamily)
		return
	}
	k := probeKey{peer, Key(w.Hash)}
	now := s.cfg.Clock()
	s.mu.Lock()
	if last, ok := s.probed[k]; ok && now.Sub(last) < s.cfg.ProbeEvery {
		s.mu.Unlock()
		return
	}
	s.probed[k] = now
	s.mu.Unlock()
	select {
	case s.probeQ <- probeJob{peer: peer, w: w, via: via, transport: transport}:
	default:
		// Counted, and logged at most once a minute with the count: a
		// hostile PEX message naming thousands of peers must not flood
		// the log. The peer may be queued again next round.
		s.probeFailures.Add(1)
		s.countDrop(dropProbeQueueFull)
		s.mu.Lock()
		delete(s.probed, k)
		s.mu.Unlock()
		if last := s.queueFullLogged.Load(); now.UnixNano()-last >= int64(time.Minute) && s.queueFullLogged.CompareAndSwap(last, now.UnixNano()) {
			s.log.Warn("probe queue full: peers not probed this round", "dropped_total", s.drops.snapshot()[dropProbeQueueFull])
		}
	}
}

func (s *Sensor) probeWorker(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case job := <-s.probeQ:
			s.probe(ctx, job)
		}
	}
}

// probeResult is what one probe learned.
type probeResult struct {
	hs  peerwire.Handshake
	ext *peerwire.ExtHandshake
	// extKept: the extension handshake's bytes are in the transcript;
	// only then do its listen port and client name go into the record.
	extKept bool
	// claims are the possession messages whose bytes are in the
	// transcript (a message cut from it counts as unknown), judged
	// strictly once the piece count is known (peerwire.Claims).
	claims peerwire.Claims
	// bitfield, haveAll, haveNone and haves are what came, as raw hints
	// for choosing a piece to verify and for knowing when the peer has
	// said what it holds; the level rests on claims alone.
	bitfield []byte
	haveAll  bool
	haveNone bool
	haves    map[uint32]bool
	dhtPort  uint16
	pex      []peerwire.PEXPeer // named in PEX messages kept in the transcript
	// pexUnkept are named in PEX messages cut from the transcript: probed,
	// never recorded (no record would show where they came from).
	pexUnkept []peerwire.PEXPeer
	metadata  []byte // the verified info dictionary, if fetched
	verified  bool   // one piece fetched from this peer matched its hash
	connected time.Time
	// spoke is set once the peer sent anything after its handshake (a
	// message, even a keep-alive) or held the connection open until the
	// sensor stopped reading. A peer that echoes the info-hash and hangs
	// up at once has acknowledged nothing: some libraries echo whatever
	// info-hash they are sent before they check that they serve it
	// (anacrolix/torrent 1.59 does; docs/traps.md).
	spoke     bool
	transport string         // transportTCP or transportUTP: what carried the exchange
	local     netip.AddrPort // the sensor's end of the connection
}

// probe connects to a peer, shakes hands for the watched torrent, and
// records what the peer itself says: that it accepted the torrent, which
// pieces it has, its client and listen port, its DHT port, and peers it
// knows (PEX). It sends no piece and claims none (have-none).
func (s *Sensor) probe(ctx context.Context, job probeJob) {
	s.probes.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	if err := s.lim.Acquire(ctx); err != nil {
		return
	}
	defer s.lim.Release()
	if !s.lim.AllowAddr(job.peer.Addr(), s.cfg.Clock()) {
		s.probeFailures.Add(1)
		return
	}
	tr := newTranscript(s.cfg.TranscriptLimit)
	res, err := s.exchange(ctx, job, tr)
	if errors.Is(err, errWrongTorrent) {
		// The peer answered for another torrent: it said nothing about
		// this one. No observation (not even announced: a peer_probe
		// would read as first-hand); counted.
		s.countDrop(dropInfohashMismatch)
	}
	if res != nil && !res.spoke {
		// The handshake echoed the info-hash and the peer hung up (or
		// reset) without another byte: no acknowledgement; counted.
		s.countDrop(dropHandshakeOnly)
		return
	}
	if err != nil {
		s.probeFailures.Add(1)
		s.log.Debug("probe failed", "peer", job.peer, "infohash", job.w.Hash.Hex(), "err", err)
		if res == nil {
			return // no handshake for the torrent: nothing the peer said
		}
	}
	key := Key(job.w.Hash)
	if res.metadata != nil {
		s.rememberInfo(key, res.metadata)
		if s.cfg.OnFiles != nil {
			if ti, ok := s.Info(key); ok {
				s.cfg.OnFiles(TorrentFiles{Torrent: job.w.Hash, Name: ti.Name, Files: ti.Files, Peer: job.peer,
					Transport: res.transport, Time: res.connected.UTC()})
			}
		}
	}
	total := s.pieceCount(key)
	pos, marks := possessionOf(&res.claims, total)
	if res.verified {
		pos.Level = observe.Verified
	}
	cl := observe.Client{PeerID: append([]byte(nil), res.hs.PeerID[:]...)}
	pc := peerid.Decode(res.hs.PeerID)
	cl.Name, cl.Version = pc.Name, pc.Version
	if res.ext != nil && res.extKept {
		if res.ext.Client != "" && cl.Name == "" {
			// The peer id names no client we know: take the extension
			// handshake's "v" ("Transmission 3.00"). Where the peer id is
			// known it wins: "v" is free text, and some libraries put the
			// embedding program's name there.
			cl.Name, cl.Version = splitClient(res.ext.Client)
		}
		cl.ListenPort = res.ext.Port
	}
	if res.dhtPort != 0 {
		if id, ok, checked := s.pingNodeID(ctx, netip.AddrPortFrom(job.peer.Addr(), res.dhtPort), tr); ok {
			cl.NodeID = id[:]
			marks = append(marks, observe.MarkNodeIDViaPing)
			if !checked {
				marks = append(marks, observe.MarkNodeIDUnchecked)
			}
		}
	}
	o := observe.Observation{
		Method: observe.MethodPeerProbe, Time: res.connected.UTC(),
		Item:       observe.Item{Hash: job.w.Hash, Matched: job.w.Matched},
		Endpoint:   observe.Endpoint{IP: job.peer.Addr(), Port: job.peer.Port(), Transport: res.transport, Local: res.local},
		Client:     cl,
		Possession: pos,
		Transcript: tr.final(),
	}
	for _, m := range marks {
		o.Mark(m)
	}
	s.emit(context.WithoutCancel(ctx), o)
	for _, p := range res.pex {
		po := observe.Observation{
			Method: observe.MethodPEX, Time: res.connected.UTC(),
			Item:       observe.Item{Hash: job.w.Hash, Matched: job.w.Matched},
			Endpoint:   observe.Endpoint{IP: p.Addr.Addr().Unmap(), Port: p.Addr.Port(), Transport: pexTransport(p.Flags)},
			Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
			Transcript: o.Transcript,
		}
		po.Mark(observe.MarkThirdParty)
		s.emit(context.WithoutCancel(ctx), po)
	}
	for _, p := range append(res.pex, res.pexUnkept...) {
		s.enqueueProbeOver(netip.AddrPortFrom(p.Addr.Addr().Unmap(), p.Addr.Port()), job.w, "pex", pexTransport(p.Flags))
	}
}

// possessionOf is the level a peer's kept possession messages establish
// for a torrent of total pieces (-1: unknown), and the marks they call
// for. Partial and complete from a bitfield or haves need the piece count
// (from the verified info dictionary): without it nothing can be checked
// for range, and a peer that advertises pieces is `acknowledged` with
// pieces unknown. A have_all that nothing contradicts is `complete`
// whatever the count: it names no piece that could be out of range.
func possessionOf(c *peerwire.Claims, total int) (observe.Possession, []string) {
	v := c.Judge(total)
	pos := observe.Possession{Level: observe.Acknowledged, PiecesHave: v.Have, PiecesTotal: total}
	switch {
	case v.All:
		pos.Level = observe.Complete
	case total > 0 && v.Have >= total:
		pos.Level = observe.Complete
		pos.PiecesHave = total
	case total > 0 && v.Have > 0:
		pos.Level = observe.Partial
	}
	var marks []string
	if v.MalformedBitfield {
		marks = append(marks, observe.MarkMalformedBitfield)
	}
	if v.MalformedHave {
		marks = append(marks, observe.MarkMalformedHave)
	}
	return pos, marks
}

func pexTransport(f peerwire.PEXFlags) string {
	if f&peerwire.PEXUTP != 0 {
		return transportUTP
	}
	return transportTCP
}

// splitClient splits "Transmission 3.00" into name and version.
func splitClient(v string) (string, string) {
	for i := len(v) - 1; i > 0; i-- {
		if v[i] == ' ' || v[i] == '/' {
			return v[:i], v[i+1:]
		}
	}
	return v, ""
}

// recordingConn copies what crosses a connection into a transcript and
// counts the bytes received, so that each message's place in the stream
// is known (streamPos).
type recordingConn struct {
	net.Conn
	tr   *transcript
	peer netip.AddrPort
	now  func() time.Time
	rx   uint64 // bytes received
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.rx += uint64(n)
		c.tr.streamReceived(c.now(), c.peer, p[:n])
	}
	return n, err
}

func (c *recordingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.tr.streamSent(c.now(), c.peer, p[:n])
	}
	return n, err
}

// pause stops recording while a piece is fetched for verification:
// content never goes into a transcript, only a record of how many bytes
// were not kept, and a note of what was checked.
func (c *recordingConn) pause()  { c.tr.pauseAt(c.now(), c.peer) }
func (c *recordingConn) resume() { c.tr.resumeAt(c.now()) }

var errWrongTorrent = errors.New("peer answered the handshake for another info-hash")

// sensorPeerID is the peer id the sensor's probes send: Azureus style,
// "VG" for Vigil, then random bytes, so that a peer's logs name us.
func sensorPeerID() [20]byte {
	var id [20]byte
	copy(id[:], "-VG0001-")
	_, _ = rand.Read(id[8:])
	return id
}

// exchange runs the wire conversation. It returns a nil result if the peer
// did not accept the torrent.
func (s *Sensor) exchange(ctx context.Context, job probeJob, tr *transcript) (*probeResult, error) {
	raw, transport, err := s.dialPeer(ctx, job)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	local := addrPortOf(raw.LocalAddr())
	deadline, _ := ctx.Deadline()
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Now()) })
	defer stop()
	conn := &recordingConn{Conn: raw, tr: tr, peer: job.peer, now: s.cfg.Clock}

	key := Key(job.w.Hash)
	var rsv peerwire.Reserved
	rsv.SetExtended(true)
	rsv.SetFast(true)
	rsv.SetDHT(true)
	hs := peerwire.Handshake{Reserved: rsv, InfoHash: key, PeerID: s.peerID}
	if _, err := conn.Write(hs.AppendTo(nil)); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	dec := peerwire.NewDecoder(br, peerwire.DefaultMaxLength)
	theirs, err := dec.ReadHandshake()
	if err != nil {
		return nil, err
	}
	if theirs.InfoHash != [20]byte(key) {
		return nil, errWrongTorrent
	}
	res := &probeResult{hs: theirs, connected: s.cfg.Clock(), haves: map[uint32]bool{}, transport: transport, local: local}
	// The stream offset the decoder has reached: what was read minus what
	// is buffered. A message counts only if its bytes are in the
	// transcript (tr.kept): no level rests on bytes a reader cannot see.
	streamPos := func() uint64 { return conn.rx - uint64(br.Buffered()) }
	saidPossession := false

	var out []byte
	if theirs.Reserved.Fast() {
		m := peerwire.Message{ID: peerwire.HaveNone}
		out = m.AppendTo(out)
	}
	if theirs.Reserved.Extended() {
		eh := peerwire.ExtHandshake{M: map[string]uint8{"ut_metadata": extMetadataID, "ut_pex": extPEXID}, Client: "Vigil sensor", ReqQ: 1}
		m := peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)}
		out = m.AppendTo(out)
	}
	if len(out) > 0 {
		if _, err := conn.Write(out); err != nil {
			return res, err
		}
	}

	needMeta := s.pieceCount(key) < 0
	var meta metadataFetch
	var vf *pieceFetch // the piece being fetched for verification
	verifyDone := !s.cfg.Verify
	unchoked := false
	// Read until we know possession, the extension handshake (if any), and
	// the metadata (if wanted), then linger briefly for what the peer can
	// still send and has not: PORT if it set the DHT bit, PEX if its
	// extension handshake offers ut_pex (ProbePortWait, ProbePEXWait).
	var lingerFrom time.Time
	pexSeen := false
	for {
		var m peerwire.Message
		from := streamPos()
		err := dec.Decode(&m)
		kept := tr.kept(from, streamPos())
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				res.spoke = true // it held the connection: it serves the torrent
				return res, nil
			}
			if errors.Is(err, io.EOF) {
				return res, nil // the peer had its say (res.spoke says whether it said anything)
			}
			return res, err
		}
		res.spoke = true
		switch m.ID {
		case peerwire.Bitfield:
			if !m.Keepalive {
				saidPossession = true
				if res.bitfield == nil {
					res.bitfield = append([]byte(nil), m.Payload...)
				}
				if kept {
					res.claims.Bitfield(m.Payload)
				} else {
					res.claims.Unknown()
				}
			}
		case peerwire.Have:
			switch {
			case m.Keepalive:
			case kept:
				if len(res.haves) < peerwire.MaxHaves {
					res.haves[m.Index] = true
				}
				res.claims.Have(m.Index)
			default:
				// Cut: not counted, and a later have_all or have_none
				// cannot be checked against it (ignoring it let a cut
				// raise a level).
				res.claims.Unknown()
			}
		case peerwire.HaveAll:
			if !m.Keepalive {
				saidPossession, res.haveAll = true, true
				if kept {
					res.claims.HaveAll()
				} else {
					res.claims.Unknown()
				}
			}
		case peerwire.HaveNone:
			if !m.Keepalive {
				saidPossession, res.haveNone = true, true
				if kept {
					res.claims.HaveNone()
				} else {
					res.claims.Unknown()
				}
			}
		case peerwire.Choke:
			unchoked = false
		case peerwire.Unchoke:
			unchoked = !m.Keepalive
			if vf != nil && !m.Keepalive && !vf.requested {
				if err := vf.request(conn); err != nil {
					return res, err
				}
			}
		case peerwire.Piece:
			if vf != nil && !m.Keepalive && vf.add(m.Index, m.Begin, m.Payload) {
				res.verified = vf.check()
				conn.resume()
				tr.note(s.cfg.Clock(), job.peer, fmt.Sprintf(
					"piece %d (%d bytes) fetched from this peer alone, hashed in memory and discarded; SHA-1 matches the info dictionary: %v",
					vf.index, len(vf.buf), res.verified))
				vf.buf = nil
				vf = nil
				nm := peerwire.Message{ID: peerwire.NotInterested}
				if _, err := conn.Write(nm.AppendTo(nil)); err != nil {
					return res, err
				}
				verifyDone = true
			}
		case peerwire.Port:
			if !m.Keepalive {
				res.dhtPort = m.Port
			}
		case peerwire.Extended:
			if m.Keepalive {
				break
			}
			switch m.ExtendedID {
			case peerwire.ExtHandshakeID:
				eh, err := peerwire.ParseExtHandshake(m.Payload)
				if err != nil {
					return res, err
				}
				res.ext, res.extKept = &eh, kept
				if needMeta && eh.M["ut_metadata"] != 0 && eh.MetadataSize > 0 && eh.MetadataSize <= maxMetadataSize {
					meta.start(eh.MetadataSize)
					if err := meta.requestAll(conn, eh.M["ut_metadata"]); err != nil {
						return res, err
					}
				}
			case extPEXID:
				pexSeen = true
				if x, err := peerwire.ParsePEX(m.Payload); err == nil {
					if kept {
						res.pex = append(res.pex, x.Added...)
						res.pex = append(res.pex, x.Added6...)
					} else {
						res.pexUnkept = append(res.pexUnkept, x.Added...)
						res.pexUnkept = append(res.pexUnkept, x.Added6...)
					}
				}
			case extMetadataID:
				md, err := peerwire.ParseMetadata(m.Payload)
				if err != nil {
					return res, err
				}
				if done := meta.add(md); done {
					if info, ok := meta.verify(job.w.Hash); ok {
						res.metadata = info
					}
				}
			}
		}
		knowsPossession := saidPossession
		extDone := !theirs.Reserved.Extended() || res.ext != nil
		// Metadata is settled once fetched or failed, or once the extension
		// handshake came without an offer of it (or none was needed).
		metaDone := !needMeta || res.metadata != nil || meta.failed || (extDone && !meta.active())
		if !verifyDone && vf == nil && knowsPossession && metaDone {
			if res.metadata != nil {
				s.rememberInfo(key, res.metadata)
			}
			vf = s.startVerify(key, res)
			if vf == nil {
				verifyDone = true
			} else {
				conn.pause()
				im := peerwire.Message{ID: peerwire.Interested}
				if _, err := conn.Write(im.AppendTo(nil)); err != nil {
					return res, err
				}
				if unchoked { // some peers unchoke before we are interested
					if err := vf.request(conn); err != nil {
						return res, err
					}
				}
			}
		}
		if knowsPossession && extDone && metaDone && verifyDone {
			if lingerFrom.IsZero() {
				lingerFrom = time.Now()
			}
			var until time.Time
			if theirs.Reserved.DHT() && res.dhtPort == 0 && s.cfg.ProbePortWait > 0 {
				until = lingerFrom.Add(s.cfg.ProbePortWait)
			}
			if res.ext != nil && res.ext.M["ut_pex"] != 0 && !pexSeen && s.cfg.ProbePEXWait > 0 {
				if u := lingerFrom.Add(s.cfg.ProbePEXWait); u.After(until) {
					until = u
				}
			}
			if wholeMessageBuffered(br) {
				continue // already received (and in the transcript): read it too
			}
			if until.IsZero() || !time.Now().Before(until) {
				return res, nil // all it can send has come, or the wait is over
			}
			// A quiet peer (most stay connected and say nothing more) must
			// not hold the worker until the probe's deadline: the read
			// itself ends with the linger.
			if !deadline.IsZero() && deadline.Before(until) {
				until = deadline
			}
			_ = raw.SetReadDeadline(until)
		}
	}
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

// dialPeer connects to job.peer over TCP or uTP and says which.
//
// The policy: a peer that said it takes uTP (job.transport, from a PEX
// flag) is dialled over uTP first, any other over TCP first. The other
// transport is tried only if the first could not connect (refused,
// unreachable, or no answer within half the time left): many peers
// listen on one and not the other. Once a peer has answered, nothing is
// repeated over the other transport. A scope refusal is final: both
// transports go to the same address.
func (s *Sensor) dialPeer(ctx context.Context, job probeJob) (net.Conn, string, error) {
	order := [2]string{transportTCP, transportUTP}
	if job.transport == transportUTP {
		order = [2]string{transportUTP, transportTCP}
	}
	// Each dial gets half the time left, so that a peer that answers
	// late still leaves time for the conversation.
	dial := func(transport string) (net.Conn, error) {
		dctx, cancel := context.WithCancel(ctx)
		if deadline, ok := ctx.Deadline(); ok {
			dctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)/2))
		}
		defer cancel()
		return s.dialOver(dctx, transport, job.peer)
	}
	c, err := dial(order[0])
	if err == nil {
		return c, order[0], nil
	}
	if errors.Is(err, scope.ErrOutOfScope) || errors.Is(err, errNoListenFamily) || ctx.Err() != nil {
		return nil, "", err
	}
	c, err2 := dial(order[1])
	if err2 != nil {
		return nil, "", fmt.Errorf("%s: %w; %s: %w", order[0], err, order[1], err2)
	}
	return c, order[1], nil
}

// errNoListenFamily is a dial to a peer of an address family the sensor
// has no listen address of: nothing was dialled.
var errNoListenFamily = errors.New("no listen address of the peer's address family")

// dialOver dials peer over one transport from the sensor's listen address
// of the peer's family (never from the other family's: a sensor without
// an address of that family does not dial), through the scope guard.
//
// The connection's local address and port go into the sensor's registry
// of its own addresses (self.go) before any byte is exchanged: a peer
// that passes them on by PEX must not make the sensor record itself.
func (s *Sensor) dialOver(ctx context.Context, transport string, peer netip.AddrPort) (net.Conn, error) {
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if err := s.guard.Check(peer); err != nil {
		return nil, err // the guard's refusal first, whatever the family
	}
	local, ok := s.listenFor(peer.Addr())
	if !ok {
		return nil, fmt.Errorf("%w: %v", errNoListenFamily, peer)
	}
	var c net.Conn
	var err error
	if transport == transportUTP {
		c, err = dialUTP(ctx, s.guard, local, peer)
	} else {
		network := "tcp4"
		if peer.Addr().Is6() {
			network = "tcp6"
		}
		c, err = s.guard.Dialer(probeDialer(local)).DialContext(ctx, network, peer.String())
	}
	if err != nil {
		return nil, err
	}
	s.self.add(addrPortOf(c.LocalAddr()), s.cfg.Clock(), !s.labScope())
	return c, nil
}

// addrPortOf is a net.Addr of TCP or UDP as an AddrPort (zero if neither).
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return netip.AddrPortFrom(addrOf(a.IP), uint16(a.Port))
	case *net.UDPAddr:
		return netip.AddrPortFrom(addrOf(a.IP), uint16(a.Port))
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// probeDialer is the TCP dialer of probes: bound to the sensor's listen
// address, with the source port left to connect (bindNoPort), so that
// probes from one address are not limited to one connection per ephemeral
// port. The scope guard wraps it (Guard.Dialer keeps this Control hook and
// runs its own check first).
func probeDialer(listen netip.Addr) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: listen.AsSlice()}, Control: bindNoPort}
}

// maxVerifyPiece bounds the piece the sensor will fetch to verify.
const maxVerifyPiece = 4 << 20

// pieceFetch is one piece being fetched, in memory only, to verify.
type pieceFetch struct {
	index     uint32
	want      [20]byte
	buf       []byte
	got       int
	requested bool
}

// startVerify picks a piece the peer advertised, of a v1 or hybrid torrent
// whose info dictionary the sensor holds, or returns nil.
func (s *Sensor) startVerify(key routing.ID, res *probeResult) *pieceFetch {
	ti, ok := s.Info(key)
	if !ok || len(ti.PieceHashes) == 0 || ti.PieceLength <= 0 || ti.PieceLength > maxVerifyPiece {
		return nil
	}
	idx := -1
	switch {
	case res.claims.Judge(ti.Pieces).All:
		idx = 0
	default:
		for i := 0; i < ti.Pieces; i++ {
			if peerwire.HasPiece(res.bitfield, i) || res.haves[uint32(i)] {
				idx = i
				break
			}
		}
	}
	if idx < 0 {
		return nil
	}
	size := ti.PieceLength
	if last := int64(idx+1) * ti.PieceLength; last > ti.Length {
		size = ti.Length - int64(idx)*ti.PieceLength
	}
	if size <= 0 {
		return nil
	}
	vf := &pieceFetch{index: uint32(idx), buf: make([]byte, size)}
	copy(vf.want[:], ti.PieceHashes[idx*20:idx*20+20])
	return vf
}

// request asks for every 16 KiB block of the piece.
func (f *pieceFetch) request(w io.Writer) error {
	f.requested = true
	var out []byte
	for begin := 0; begin < len(f.buf); begin += 16 << 10 {
		n := min(16<<10, len(f.buf)-begin)
		m := peerwire.Message{ID: peerwire.Request, Index: f.index, Begin: uint32(begin), Length: uint32(n)}
		out = m.AppendTo(out)
	}
	_, err := w.Write(out)
	return err
}

// add stores one block; it reports whether the piece is complete.
func (f *pieceFetch) add(index, begin uint32, b []byte) bool {
	if index != f.index || int(begin) >= len(f.buf) || int(begin)+len(b) > len(f.buf) {
		return false
	}
	f.got += copy(f.buf[begin:], b)
	return f.got >= len(f.buf)
}

func (f *pieceFetch) check() bool {
	sum := sha1.Sum(f.buf)
	return sum == f.want
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
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

// verify joins the pieces and checks them against the info-hash: SHA-1 for
// v1, SHA-256 for v2 (whose DHT key is its first 20 bytes).
func (f *metadataFetch) verify(h hashkind.Hash) ([]byte, bool) {
	info := make([]byte, 0, f.size)
	for _, p := range f.pieces {
		info = append(info, p...)
	}
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

// pingNodeID asks a DHT node its id (from the peer's PORT message), so
// that the peer's DHT identity links its observations. The ping and its
// reply go into the probe's transcript. A reply is taken only from the
// address pinged, with the transaction id sent (node.query matches it;
// both are checked again here). checked says whether the id passes BEP 42
// for the peer's address: an id that does not (or cannot: BEP 42 exempts
// local addresses) is self-declared, and the observation is marked
// node_id_unchecked.
func (s *Sensor) pingNodeID(ctx context.Context, addr netip.AddrPort, tr *transcript) (id [20]byte, ok, checked bool) {
	n := s.identityFor(addr.Addr(), 0) // from the peer's family
	if n == nil {
		return id, false, false
	}
	q := pingMsg()
	at := s.cfg.Clock()
	r, rr, err := n.query(ctx, addr, q)
	// query filled in the transaction id and our node id: the bytes it sent.
	if b, encErr := q.AppendTo(nil); encErr == nil && len(q.T) > 0 {
		tr.sent(at, addr, b)
	}
	if len(rr.b) > 0 {
		tr.received(rr.at, rr.from, rr.b)
	}
	if err != nil || r == nil || r.Kind != krpc.KindResponse {
		return id, false, false
	}
	if rr.from.Addr().Unmap() != addr.Addr().Unmap() || rr.from.Port() != addr.Port() || string(r.T) != string(q.T) {
		s.countDrop(dropForeignReply)
		return id, false, false
	}
	id = [20]byte(r.R.ID)
	return id, true, nodeIDChecked(r.R.ID, addr.Addr())
}

// nodeIDChecked reports whether a DHT node id passes BEP 42 for the
// address the node answered from. Ids of addresses BEP 42 exempts (local,
// private: the lab) cannot be checked and do not pass.
func nodeIDChecked(id krpc.ID, ip netip.Addr) bool {
	return krpc.SecureNodeIDMatches(id, ip.Unmap())
}
