package bittorrent

import (
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerid"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/probe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
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

// Extension ids the sensor asks peers to use for messages to it
// (package probe's).
const (
	extMetadataID = probe.ExtMetadataID
	extPEXID      = probe.ExtPEXID
)

// Transports a probe can use; the observation's Endpoint.Transport names
// the one that carried the conversation.
const (
	transportTCP = probe.TransportTCP
	transportUTP = probe.TransportUTP // uTP, BEP 29: a stream over UDP
)

// errWrongTorrent is a peer that answered the handshake for another
// info-hash.
var errWrongTorrent = probe.ErrWrongTorrent

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
	s.probedMu.Lock()
	if last, ok := s.probed[k]; ok && now.Sub(last) < s.cfg.ProbeEvery {
		s.probedMu.Unlock()
		return
	}
	if !s.roomToProbeLocked(now) {
		s.probedMu.Unlock()
		s.countDrop(dropProbeTableFull)
		return
	}
	s.probed[k] = now
	s.probedMu.Unlock()
	select {
	case s.probeQ <- probeJob{peer: peer, w: w, via: via, transport: transport}:
	default:
		// Counted, and logged at most once a minute with the count: a
		// hostile PEX message naming thousands of peers must not flood
		// the log. The peer may be queued again next round.
		s.probeFailures.Add(1)
		s.countDrop(dropProbeQueueFull)
		s.probedMu.Lock()
		delete(s.probed, k)
		s.probedMu.Unlock()
		if last := s.queueFullLogged.Load(); now.UnixNano()-last >= int64(time.Minute) && s.queueFullLogged.CompareAndSwap(last, now.UnixNano()) {
			s.log.Warn("probe queue full: peers not probed this round", "dropped_total", s.drops.snapshot()[dropProbeQueueFull])
		}
	}
}

// roomToProbeLocked reports whether the table of recent probes has room
// for one more pair (Config.MaxProbed), sweeping the pairs older than
// ProbeEvery when it is full, at most once a second: a table full of
// recent pairs must not cost a scan per peer named. Called with probedMu
// held.
func (s *Sensor) roomToProbeLocked(now time.Time) bool {
	m := s.cfg.MaxProbed
	if m <= 0 || len(s.probed) < m {
		return true
	}
	if now.Sub(s.probedSwept) >= time.Second || now.Before(s.probedSwept) {
		s.probedSwept = now
		for k, t := range s.probed {
			if now.Sub(t) >= s.cfg.ProbeEvery {
				delete(s.probed, k)
			}
		}
	}
	return len(s.probed) < m
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

// probe runs one probe of a peer for a watched torrent (package probe:
// handshake, what it holds, its client and ports, the peers it knows) and
// records what the peer itself said. It sends no piece and claims none
// (have-none).
func (s *Sensor) probe(ctx context.Context, job probeJob) {
	s.probes.Add(1)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	if err := s.lim.Acquire(ctx); err != nil {
		return
	}
	defer s.lim.Release()
	if !s.lim.AllowAddr(job.peer.Addr(), s.cfg.Clock()) {
		// Not probed: counted, and forgotten, so that the next lookup
		// naming the peer queues it again rather than ProbeEvery later
		// (peers behind one address, or made-up ports of it named by a
		// hostile peer, must not keep the others of it unprobed).
		s.probeFailures.Add(1)
		s.countDrop(dropAddressBudget)
		s.probedMu.Lock()
		delete(s.probed, probeKey{job.peer, Key(job.w.Hash)})
		s.probedMu.Unlock()
		return
	}
	res, tr, err := s.prober.Probe(ctx, probe.Peer{Addr: job.peer, Transport: job.transport}, job.w.Hash)
	switch {
	case errors.Is(err, errWrongTorrent):
		// The peer answered for another torrent: it said nothing about
		// this one. No observation (not even announced: a peer_probe
		// would read as first-hand); counted.
		s.countDrop(dropInfohashMismatch)
	case errors.Is(err, probe.ErrMirror):
		// It reflected the sensor's own handshake: nothing of its own.
		s.countDrop(dropMirror)
	case res != nil && reflectsTheSensor(res) && !saidItsOwn(res):
		// A mirror that changed the peer id it reflected: what it said
		// after its handshake is the sensor's own (have-none, our
		// extension handshake). Nothing of its own; counted.
		s.countDrop(dropMirror)
		return
	}
	if res != nil && !res.Spoke {
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
	s.recordProbe(ctx, job, res, tr)
}

// recordProbe records what a probe learned: a peer_probe observation of
// the peer (its possession judged against the piece count, its client,
// its DHT node id if a ping confirms it), a pex observation of each peer
// it named in the transcript, and a probe of each peer it named.
func (s *Sensor) recordProbe(ctx context.Context, job probeJob, res *probe.Result, tr *tscript.Writer) {
	key := Key(job.w.Hash)
	if res.Metadata != nil {
		s.rememberInfo(key, res.Metadata)
		if s.cfg.OnFiles != nil {
			if ti, ok := s.Info(key); ok {
				s.cfg.OnFiles(TorrentFiles{Torrent: job.w.Hash, Name: ti.Name, Files: ti.Files, Peer: job.peer,
					Transport: res.Transport, Time: res.Connected.UTC()})
			}
		}
	}
	total := s.pieceCount(key)
	pos, marks := possessionOf(&res.Claims, total)
	if res.Verified {
		pos.Level = observe.Verified
	}
	cl := probeClient(res)
	if res.DHTPort != 0 {
		if id, ok, checked := s.pingNodeID(ctx, netip.AddrPortFrom(job.peer.Addr(), res.DHTPort), tr); ok {
			cl.NodeID = id[:]
			marks = append(marks, observe.MarkNodeIDViaPing)
			if !checked {
				marks = append(marks, observe.MarkNodeIDUnchecked)
			}
		}
	}
	o := observe.Observation{
		Method: observe.MethodPeerProbe, Time: res.Connected.UTC(),
		Item:       observe.Item{Hash: job.w.Hash, Matched: job.w.Matched},
		Endpoint:   observe.Endpoint{IP: job.peer.Addr(), Port: job.peer.Port(), Transport: res.Transport, Local: res.Local},
		Client:     cl,
		Possession: pos,
		Transcript: final(tr),
	}
	for _, m := range marks {
		o.Mark(m)
	}
	s.emit(context.WithoutCancel(ctx), o)
	kept, unkept := s.pexNamed(res)
	for _, p := range kept {
		po := observe.Observation{
			Method: observe.MethodPEX, Time: p.At.UTC(),
			Item:       observe.Item{Hash: job.w.Hash, Matched: job.w.Matched},
			Endpoint:   observe.Endpoint{IP: p.Addr.Addr().Unmap(), Port: p.Addr.Port(), Transport: pexTransport(p.Flags)},
			Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
			Transcript: o.Transcript,
		}
		po.Mark(observe.MarkThirdParty)
		s.emit(context.WithoutCancel(ctx), po)
	}
	for _, p := range append(kept, unkept...) {
		s.enqueueProbeOver(netip.AddrPortFrom(p.Addr.Addr().Unmap(), p.Addr.Port()), job.w, "pex", pexTransport(p.Flags))
	}
}

// pexNamed is the peers a probe's PEX messages named, each once (its
// first mention), those kept in the transcript first, at most
// maxPEXPerProbe in all; the distinct peers past the bound are counted
// (pex_excess).
func (s *Sensor) pexNamed(res *probe.Result) (kept, unkept []probe.PEXPeer) {
	seen := map[netip.AddrPort]bool{}
	take := func(from []probe.PEXPeer) (out []probe.PEXPeer) {
		for _, p := range from {
			ap := netip.AddrPortFrom(p.Addr.Addr().Unmap(), p.Addr.Port())
			if seen[ap] {
				continue
			}
			seen[ap] = true
			if len(seen) > maxPEXPerProbe {
				s.countDrop(dropPEXExcess)
				continue
			}
			out = append(out, p)
		}
		return out
	}
	kept = take(res.PEX)
	return kept, take(res.PEXUnkept)
}

// maxPEXPerProbe bounds the distinct peers one probe's PEX messages
// name that are recorded and probed. Clients send at most 50 added peers
// a message and at most one message a minute (the ut_pex conventions of
// BEP 11's authors); a probe lasts seconds, so two messages' worth is
// room to spare. A peer that names more breaks the convention: past the
// bound its names are counted (pex_excess), since each pex observation
// carries the probe's whole transcript and one hostile peer must not
// flood the sensor's output.
const maxPEXPerProbe = 100

// probeClient is the client a probe's handshakes name: the peer id, the
// client it decodes to, and, from an extension handshake kept in the
// transcript, its listen port and (where the peer id names no client we
// know) its "v". (A handshake with the sensor's own peer id ended the
// probe: probe.ErrMirror.)
func probeClient(res *probe.Result) observe.Client {
	cl := observe.Client{PeerID: append([]byte(nil), res.Handshake.PeerID[:]...)}
	pc := peerid.Decode(res.Handshake.PeerID)
	cl.Name, cl.Version = pc.Name, pc.Version
	if res.Ext != nil && res.ExtKept {
		if res.Ext.Client != "" && cl.Name == "" {
			// The peer id names no client we know: take the extension
			// handshake's "v" ("Transmission 3.00"). Where the peer id is
			// known it wins: "v" is free text, and some libraries put the
			// embedding program's name there.
			cl.Name, cl.Version = splitClient(res.Ext.Client)
		}
		cl.ListenPort = res.Ext.Port
	}
	return cl
}

// reflectsTheSensor reports whether a probe's peer named itself as the
// sensor does: a peer id that starts with the sensor's client code and
// version ("-VG0001-"; "-VG" alone is also Vagaa's, a real client's), or
// an extension handshake whose "v" is the sensor's own. Both are what
// a reflector that rewrites part of the handshake it echoes sends back;
// a peer id equal to the sensor's whole one ended the probe already
// (probe.ErrMirror).
func reflectsTheSensor(res *probe.Result) bool {
	if string(res.Handshake.PeerID[:len(sensorPeerIDPrefix)]) == sensorPeerIDPrefix {
		return true
	}
	return res.Ext != nil && res.Ext.Client == sensorClientName
}

// saidItsOwn reports whether a peer sent anything the sensor never sends
// (a bitfield, have, have_all, PEX, PORT), which no mirror of the
// sensor's messages can have: a peer that names itself as the sensor but
// advertises pieces is recorded for what it advertised (a peer must not
// escape the record by calling itself Vigil).
func saidItsOwn(res *probe.Result) bool {
	return res.Bitfield != nil || res.HaveAll || len(res.Haves) > 0 || len(res.PEX) > 0 || len(res.PEXUnkept) > 0 || res.DHTPort != 0
}

// possessionOf is the level a peer's kept possession messages establish
// for a torrent of total pieces (-1: unknown), and the marks they call
// for. Partial and complete from a bitfield or haves need the piece count
// (from the verified info dictionary): without it nothing can be checked
// for range, and a peer that advertises pieces is `acknowledged` with
// pieces unknown. A have_all that nothing contradicts is `complete`
// whatever the count: it names no piece that could be out of range.
// A peer whose bitfield broke the format (spare bits set, the wrong
// length, or not its first possession message) is never `complete`,
// whatever it set in range or said after it: BEP 3 tells a client to drop
// such a peer, and one that breaks the protocol is not taken at its
// highest word (the eD2K sensor judges a malformed part map alike). Its
// in-range pieces still count: `partial`, up to every piece.
func possessionOf(c *peerwire.Claims, total int) (observe.Possession, []string) {
	v := c.Judge(total)
	pos := observe.Possession{Level: observe.Acknowledged, PiecesHave: v.Have, PiecesTotal: total}
	switch {
	case v.MalformedBitfield:
		if total > 0 && v.Have > 0 {
			pos.Level, pos.PiecesHave = observe.Partial, min(v.Have, total)
		}
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

// sensorClientName is the "v" of the extension handshake package probe
// sends (TestProbeHostileMirrorThatChangesThePeerID fails if they part).
const sensorClientName = "Vigil sensor"

// sensorPeerIDPrefix is the client code and version that start the
// sensor's peer id.
const sensorPeerIDPrefix = "-VG0001-"

// sensorPeerID is the peer id the sensor's probes send: Azureus style,
// "VG" for Vigil, then random bytes, so that a peer's logs name us.
func sensorPeerID() [20]byte {
	var id [20]byte
	copy(id[:], sensorPeerIDPrefix)
	_, _ = rand.Read(id[8:])
	return id
}

// pingNodeID asks a DHT node its id (from the peer's PORT message), so
// that the peer's DHT identity links its observations. The ping and its
// reply go into the probe's transcript. A reply is taken only from the
// address pinged, with the transaction id sent (Node.Query matches it;
// both are checked again here). checked says whether the id passes BEP 42
// for the peer's address: an id that does not (or cannot: BEP 42 exempts
// local addresses) is self-declared, and the observation is marked
// node_id_unchecked.
func (s *Sensor) pingNodeID(ctx context.Context, addr netip.AddrPort, tr *tscript.Writer) (id [20]byte, ok, checked bool) {
	n := s.dht.IdentityFor(addr.Addr(), 0) // from the peer's family
	if n == nil {
		return id, false, false
	}
	q := pingMsg()
	at := s.cfg.Clock()
	r, rr, err := n.Query(ctx, addr, q)
	// query filled in the transaction id and our node id: the bytes it sent.
	// The id is taken only if the ping and the reply are both kept in the
	// transcript: it must rest on bytes a reader sees.
	sentKept, replyKept := false, false
	if b, encErr := q.AppendTo(nil); encErr == nil && len(q.T) > 0 {
		sentKept = tr.Sent(at, addr, b)
	}
	if len(rr.B) > 0 {
		replyKept = tr.Received(rr.At, rr.From, rr.B)
	}
	if err != nil || r == nil || r.Kind != krpc.KindResponse || !sentKept || !replyKept {
		return id, false, false
	}
	if rr.From.Addr().Unmap() != addr.Addr().Unmap() || rr.From.Port() != addr.Port() || string(r.T) != string(q.T) {
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
