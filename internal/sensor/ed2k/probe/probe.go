// Package probe asks one eD2K client, over TCP, about one file: the hello
// exchange (its user hash, client software and version, ports), the file
// request, and the file status (its part map); optionally, off by default,
// one part fetched from that client alone and hashed in memory against the
// part hash, then discarded. It returns what the client itself said and
// the transcript of the exchange; it builds no Observation (the sensor
// does).
//
// It must never dial except through the Dial it is given (the scope
// guard's), never read without a deadline or past the packet bounds, never
// take a value from bytes left out of the transcript, never keep or write
// a byte of file content, and never offer or send any file.
package probe

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash"
	"net"
	"net/netip"
	"time"

	"golang.org/x/crypto/md4"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/record"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// DialFunc is the shape of net.Dialer.DialContext; the sensor passes the
// scope guard's.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Config is how probes are made.
type Config struct {
	// Dial opens the TCP connection; required (the scope guard's dialer).
	Dial DialFunc
	// UserHash is the sensor's own user hash, sent in its hello.
	UserHash [16]byte
	// Nick is the name the sensor gives in its hello (CT_NAME).
	Nick string
	// Port is the TCP port the hello names; 0 when the sensor accepts no
	// eD2K connections (it offers nothing).
	Port uint16
	// Timeout bounds one whole probe, verification excluded.
	Timeout time.Duration
	// VerifyTimeout bounds the verification (hash set, upload slot, one
	// part) that follows, when Verify is set.
	VerifyTimeout time.Duration
	// Verify fetches one part the client advertises, hashes it in memory
	// against the part hash and discards it (level verified). Off by
	// default: it downloads up to 9.28 MiB of the file from the client.
	Verify bool
	// Limits bound each packet.
	Limits wire.Limits
	// TranscriptLimit bounds the transcript (0: none kept).
	TranscriptLimit int
	// MaxPackets bounds the packets read in one probe, so that a client
	// that talks without end is left.
	MaxPackets int
	// Clock is the time source (time.Now when nil).
	Clock func() time.Time
}

// DefaultConfig returns conservative settings; Dial and UserHash must be
// set.
func DefaultConfig() Config {
	return Config{Nick: "vigil", Timeout: 20 * time.Second, VerifyTimeout: 5 * time.Minute,
		Limits: wire.DefaultLimits(), TranscriptLimit: 64 << 10, MaxPackets: 64}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Dial == nil:
		return errors.New("probe: no dialer (every dial goes through the scope guard)")
	case c.UserHash == [16]byte{}:
		return errors.New("probe: no user hash")
	case c.Timeout <= 0:
		return errors.New("probe: timeout must be positive")
	case c.Verify && c.VerifyTimeout <= 0:
		return errors.New("probe: verify timeout must be positive")
	case c.Limits.MaxPacket <= wire.HeaderLen || c.Limits.MaxUnpacked <= 0:
		return errors.New("probe: packet limits must be positive")
	case c.MaxPackets <= 0:
		return errors.New("probe: max packets must be positive")
	case c.TranscriptLimit < 0:
		return errors.New("probe: transcript limit is negative")
	}
	return nil
}

// NewUserHash returns a random user hash marked as eMule marks its own
// (byte 5 = 14, byte 14 = 111), so that clients treat the sensor as an
// eMule-compatible client and answer its file requests.
func NewUserHash() [16]byte {
	var h [16]byte
	rand.Read(h[:])
	h[5], h[14] = 14, 111
	return h
}

// Target is what to probe: a client's address and a file.
type Target struct {
	Addr netip.AddrPort
	Hash [16]byte
	// Size is the file's size in bytes, -1 when unknown: without it a
	// part map cannot be checked, and partial or complete come only from
	// a status that says the whole file.
	Size int64
}

// Errors a probe returns.
var (
	// ErrWrongFile: the client answered for another file hash; the
	// exchange says nothing about the file asked for.
	ErrWrongFile = errors.New("probe: client answered for another file")
	// ErrNoHello: the client never sent a hello answer.
	ErrNoHello = errors.New("probe: no hello answer")
	// errWithdrawn: after its file status, the client said it has no
	// such file (Result.Withdrawn).
	errWithdrawn = errors.New("the client said it has no such file, after its file status: of the two statements the lower is kept (acknowledged)")
)

// Result is what the client itself said. A value is set only when the
// bytes it came from are whole in the transcript.
type Result struct {
	// Connected is when the connection was made; Local is the sensor's
	// end of it.
	Connected time.Time
	Local     netip.AddrPort
	// Hello is the client's hello answer, nil when none was kept.
	Hello  *wire.Hello
	Client wire.Client
	// NoFile: the client said it does not share the file.
	NoFile bool
	// Named: the client named the file (OP_REQFILENAMEANSWER for it).
	Named bool
	// Status is the client's file status, nil when none was kept; Map is
	// its judgement against the file's size.
	Status *wire.FileStatus
	Map    wire.PartMap
	// Withdrawn: after its file status the client said it has no such
	// file (OP_FILEREQANSNOFIL for the file, kept whole in the
	// transcript): in a packet already sent when the probe had the
	// status (readOn), or, with Verify, asked for the hash set or an
	// upload slot.
	// Of its two statements the lower is kept (Possession).
	Withdrawn bool
	// Verified: one part fetched from this client matched its part hash.
	Verified bool
	// VerifyNote says what verification did, when it was asked for.
	VerifyNote string
	// Packets counts the packets read.
	Packets int
}

// Acknowledged reports whether the client accepted the request for the
// file: it named it or gave its status.
func (r *Result) Acknowledged() bool {
	return r.Hello != nil && !r.NoFile && (r.Named || r.Status != nil)
}

// Possession is the level the result establishes, with the part counts
// and the marks it calls for. Without an acknowledgement it is
// LevelUnknown (nothing to record).
func (r *Result) Possession() (observe.Possession, []string) {
	pos := observe.Possession{PiecesHave: -1, PiecesTotal: -1}
	if !r.Acknowledged() {
		return pos, nil
	}
	pos.Level = observe.Acknowledged
	var marks []string
	if r.Status != nil {
		m := r.Map
		pos.PiecesHave, pos.PiecesTotal = m.Have, m.Total
		switch {
		case m.Complete():
			pos.Level = observe.Complete
		case m.Total > 0 && m.Have > 0:
			pos.Level = observe.Partial
		}
		if m.Malformed {
			marks = append(marks, observe.MarkMalformedBitfield)
		}
	}
	if r.Withdrawn {
		// Of the client's two statements the lower is kept, as of a
		// BitTorrent peer's have_none after its have_all: it accepted
		// the request for the file, and holds none of it by its word.
		pos.Level, pos.PiecesHave = observe.Acknowledged, 0
		marks = append(marks, observe.MarkMalformedHave)
	}
	if r.Verified {
		pos.Level = max(pos.Level, observe.Verified)
	}
	return pos, marks
}

// Probe connects to t.Addr and asks about t.Hash. It returns what the
// client said (nil when nothing was said), the transcript, and the error
// that ended the exchange early, if any: a result and an error can come
// together (a client that gave its status and then hung up).
func Probe(ctx context.Context, cfg Config, t Target) (*Result, observe.Transcript, error) {
	if err := cfg.Validate(); err != nil {
		return nil, observe.Transcript{}, err
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	rec := record.New(cfg.TranscriptLimit, now)
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	nc, err := cfg.Dial(pctx, "tcp", t.Addr.String())
	if err != nil {
		return nil, observe.Transcript{}, fmt.Errorf("dialing %s: %w", t.Addr, err)
	}
	defer nc.Close()
	c := pconn.New(nc, rec, cfg.Limits)
	res := &Result{Connected: now().UTC(), Local: c.Local()}
	p := &prober{cfg: cfg, t: t, c: c, res: res}
	c.SetWithheld(func(h wire.Header, _ *wire.Packet) bool { return p.padding(h) })
	err = p.ask(pctx)
	if err == nil && !cfg.Verify && res.Status != nil {
		// Whether the name came before the status or not: a no-file
		// answer already sent after the status withdraws it.
		p.readOn(pctx)
	}
	if err == nil && cfg.Verify && res.Status != nil {
		vctx, vcancel := context.WithTimeout(ctx, cfg.VerifyTimeout)
		p.verify(vctx)
		vcancel()
	}
	if res.Hello == nil {
		res = nil
	}
	return res, rec.Final(), err
}

// maxPaddingKept is the longest payload of a packet that shows nothing
// that the transcript keeps: a client's ordinary small packets (eMule
// info, secure ident) stay in it whole, and with the defaults (64
// packets a probe, 64 KiB) kept padding never fills more than half.
const maxPaddingKept = 512

// padding selects the packets a probe withholds from its transcript
// (counted in a cut record, never kept): those whose payload is longer
// than maxPaddingKept and that the probe cannot take now, so that a
// client cannot push what does show out of the bound by padding the
// conversation. It can take only the first hello answer, a file name
// answer until one is kept, the first file status or no-file answer
// after the hello, and a hash set it asked for: a second hello answer, a
// hash set nobody asked for, a status before the hello (which the probe
// ignores) are padding like any other opcode's.
func (p *prober) padding(h wire.Header) bool {
	if h.PayloadLen() <= maxPaddingKept {
		return false
	}
	if h.Proto != wire.ProtoEDonkey {
		return true
	}
	asked := p.res.Hello != nil
	switch h.Opcode {
	case wire.OpHelloAnswer:
		return asked
	case wire.OpReqFileNameAns:
		return !asked || p.res.Named
	case wire.OpFileStatus, wire.OpFileReqAnsNoFile:
		return !asked || p.res.Status != nil || p.res.NoFile
	case wire.OpHashSetAnswer:
		return !p.wantHashSet
	}
	return true
}

type prober struct {
	cfg Config
	t   Target
	c   *pconn.Conn
	res *Result
	// wantHashSet: the probe asked for the hash set and has not had it.
	wantHashSet bool
}

// hello is the sensor's OP_HELLO: its user hash, the port it names, its
// nick, the eDonkey version, and eMule tags that say it supports none of
// the extensions (no compression, no secure ident, no extended requests,
// no large files, no obfuscation), so that clients send it plain packets.
func (p *prober) hello() wire.Hello {
	return wire.Hello{
		UserHash: p.cfg.UserHash, Port: p.cfg.Port,
		Tags: []wire.Tag{
			wire.StrTag(wire.CTName, p.cfg.Nick),
			wire.IntTag(wire.CTVersion, wire.EDonkeyVersion),
			wire.IntTag(wire.CTEmuleVersion, 0x56<<24|0<<17|1<<10),
			wire.IntTag(wire.CTEmuleMisc1, 0),
			wire.IntTag(wire.CTEmuleMisc2, 0),
		},
	}
}

func (p *prober) next(ctx context.Context) (wire.Packet, bool, error) {
	if p.res.Packets >= p.cfg.MaxPackets {
		return wire.Packet{}, false, fmt.Errorf("probe of %s: more than %d packets", p.t.Addr, p.cfg.MaxPackets)
	}
	pk, kept, err := p.c.Next(ctx, p.cfg.Timeout)
	if err == nil {
		p.res.Packets++
	}
	return pk, kept, err
}

// ask runs the hello exchange and the file request.
func (p *prober) ask(ctx context.Context) error {
	h := p.hello()
	if err := p.c.Send(ctx, p.cfg.Timeout, wire.ProtoEDonkey, wire.OpHello, h.AppendTo(nil)); err != nil {
		return err
	}
	for p.res.Hello == nil {
		pk, kept, err := p.next(ctx)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrNoHello, err)
		}
		if pk.Proto != wire.ProtoEDonkey || pk.Opcode != wire.OpHelloAnswer {
			continue // secure ident, eMule info, ...: not needed
		}
		ha, err := wire.DecodeHello(pk.Payload, true)
		if err != nil {
			return fmt.Errorf("hello answer from %s: %w", p.t.Addr, err)
		}
		if !kept {
			return fmt.Errorf("hello answer from %s not kept whole in the transcript: %w", p.t.Addr, ErrNoHello)
		}
		p.res.Hello, p.res.Client = &ha, ha.Client()
	}
	req := wire.HashMsg{Hash: p.t.Hash}.AppendTo(nil)
	out := wire.Append(nil, wire.ProtoEDonkey, wire.OpRequestFileName, req)
	out = wire.Append(out, wire.ProtoEDonkey, wire.OpSetReqFileID, req)
	if err := p.c.SendRaw(ctx, p.cfg.Timeout, out); err != nil {
		return err
	}
	for p.res.Status == nil && !p.res.NoFile {
		pk, kept, err := p.next(ctx)
		if err != nil {
			return err
		}
		if pk.Proto != wire.ProtoEDonkey {
			continue
		}
		switch pk.Opcode {
		case wire.OpReqFileNameAns:
			if p.res.Named {
				// One is enough; later ones are padding (withheld when
				// long), read past as the verifier reads past them.
				continue
			}
			fn, err := wire.DecodeFileName(pk.Payload)
			if err != nil {
				return fmt.Errorf("file name from %s: %w", p.t.Addr, err)
			}
			if fn.Hash != p.t.Hash {
				return ErrWrongFile
			}
			p.res.Named = p.res.Named || kept
		case wire.OpFileStatus:
			fs, err := wire.DecodeFileStatus(pk.Payload)
			if err != nil {
				return fmt.Errorf("file status from %s: %w", p.t.Addr, err)
			}
			if fs.Hash != p.t.Hash {
				return ErrWrongFile
			}
			if !kept {
				return fmt.Errorf("file status from %s not kept whole in the transcript", p.t.Addr)
			}
			p.res.Status, p.res.Map = &fs, fs.Judge(p.t.Size)
		case wire.OpFileReqAnsNoFile:
			m, err := wire.DecodeHashMsg(pk.Payload)
			if err != nil {
				return fmt.Errorf("no-file answer from %s: %w", p.t.Addr, err)
			}
			if m.Hash != p.t.Hash {
				return ErrWrongFile
			}
			p.res.NoFile = true
		}
	}
	return nil
}

// readOn reads, after the file status, every packet the client had
// already sent when the probe had the status (pconn.NextWithin with
// nothing more waited for), up to MaxPackets: the probe asked for the
// name and the status in one go, and a client may answer either first. A
// no-file answer for the file there (kept whole), before or
// after its answer to the name request, is its second statement, and the
// lower of the two is kept (Withdrawn), as --verify keeps it when it
// reads on (hashSet, uploadSlot, which read every packet after the
// status). A read that finds nothing, or fails, ends it and changes
// nothing; the transcript ends where it stopped, so that a reader finds
// every packet it read (internal/evidence/verify, ed2kWithdrawn, looks
// for a withdrawal in all of them). (It stopped at the name answer
// before: a no-file answer sent right after it was left unread.)
func (p *prober) readOn(ctx context.Context) {
	for p.res.Packets < p.cfg.MaxPackets {
		pk, kept, err := p.c.NextWithin(ctx, 0, p.cfg.Timeout)
		if err != nil {
			return
		}
		p.res.Packets++
		if p.withdraws(pk, kept) {
			p.res.Withdrawn = true
			return
		}
	}
}

// verify fetches one part the client advertises and hashes it in memory.
// The transcript is paused while file content crosses: only a paused
// record counting the bytes, and a note of what was found, are kept.
func (p *prober) verify(ctx context.Context) {
	note := func(s string) {
		p.res.VerifyNote = s
		p.c.Recorder().Note(p.t.Addr, s)
	}
	size := p.t.Size
	part := p.res.Status.FirstPart(size)
	switch {
	case size <= 0:
		note("verify: file size unknown, no part can be checked")
		return
	case size > 0xFFFFFFFF:
		note("verify: files of 4 GiB and more are not verified (64-bit part requests not supported)")
		return
	case part < 0 || p.res.Map.Malformed:
		note("verify: the part map names no valid part")
		return
	}
	var hs wire.HashSet
	if wire.HashSetCount(size) > 0 {
		var err error
		if hs, err = p.hashSet(ctx); errors.Is(err, errWithdrawn) {
			note("verify: " + err.Error())
			return
		} else if err != nil {
			note("verify: no hash set: " + err.Error())
			return
		}
	}
	want, ok := wire.ExpectedPartHash(p.t.Hash, size, hs, part)
	if !ok {
		note("verify: the client's hash set does not hash to the file hash")
		return
	}
	if err := p.uploadSlot(ctx); err != nil {
		note("verify: " + err.Error())
		return
	}
	start, end := wire.PartRange(size, part)
	p.c.Recorder().Pause(p.t.Addr)
	got, err := p.fetch(ctx, start, end)
	p.c.Recorder().Resume()
	p.c.Send(ctx, p.cfg.Timeout, wire.ProtoEDonkey, wire.OpCancelTransfer, nil)
	if err != nil {
		note(fmt.Sprintf("verify: part %d (bytes %d-%d) not fetched: %v", part, start, end, err))
		return
	}
	if got != want {
		note(fmt.Sprintf("verify: part %d (bytes %d-%d) has MD4 %x, the part hash is %x: NOT verified", part, start, end, got, want))
		return
	}
	p.res.Verified = true
	note(fmt.Sprintf("verify: part %d (bytes %d-%d) fetched from this client alone has MD4 %x, its part hash; hashed in memory and discarded", part, start, end, got))
}

func (p *prober) hashSet(ctx context.Context) (wire.HashSet, error) {
	p.wantHashSet = true
	defer func() { p.wantHashSet = false }()
	if err := p.c.Send(ctx, p.cfg.VerifyTimeout, wire.ProtoEDonkey, wire.OpHashSetRequest, wire.HashMsg{Hash: p.t.Hash}.AppendTo(nil)); err != nil {
		return wire.HashSet{}, err
	}
	for {
		pk, kept, err := p.next(ctx)
		if err != nil {
			return wire.HashSet{}, err
		}
		if p.withdraws(pk, kept) {
			p.res.Withdrawn = true
			return wire.HashSet{}, errWithdrawn
		}
		if pk.Proto != wire.ProtoEDonkey || pk.Opcode != wire.OpHashSetAnswer {
			continue
		}
		hs, err := wire.DecodeHashSet(pk.Payload)
		if err != nil {
			return hs, err
		}
		if !kept {
			return hs, errors.New("hash set not kept whole in the transcript")
		}
		return hs, nil
	}
}

// withdraws reports whether pk, read after the file status, is the
// client's word that it has no such file: an OP_FILEREQANSNOFIL for the
// file, kept whole in the transcript (what lowers the level, too, a
// reader must find where the probe found it). Read while the transcript
// is paused (part data) it would not be: none is looked for there.
func (p *prober) withdraws(pk wire.Packet, kept bool) bool {
	if pk.Proto != wire.ProtoEDonkey || pk.Opcode != wire.OpFileReqAnsNoFile || !kept {
		return false
	}
	m, err := wire.DecodeHashMsg(pk.Payload)
	return err == nil && m.Hash == p.t.Hash
}

// uploadSlot asks to download and waits for the client to accept. A
// client that queues the sensor instead is left: the probe does not wait
// in queues.
func (p *prober) uploadSlot(ctx context.Context) error {
	if err := p.c.Send(ctx, p.cfg.VerifyTimeout, wire.ProtoEDonkey, wire.OpStartUploadReq, wire.HashMsg{Hash: p.t.Hash}.AppendTo(nil)); err != nil {
		return err
	}
	for {
		pk, kept, err := p.next(ctx)
		if err != nil {
			return err
		}
		if p.withdraws(pk, kept) {
			p.res.Withdrawn = true
			return errWithdrawn
		}
		switch {
		case pk.Proto == wire.ProtoEDonkey && pk.Opcode == wire.OpAcceptUploadReq:
			return nil
		case pk.Proto == wire.ProtoEDonkey && pk.Opcode == wire.OpQueueRank,
			pk.Proto == wire.ProtoEMule && pk.Opcode == wire.OpQueueRanking:
			r, _ := wire.QueueRank(pk)
			return fmt.Errorf("the client queued the sensor (rank %d); not waiting", r)
		case pk.Proto == wire.ProtoEDonkey && pk.Opcode == wire.OpFileReqAnsNoFile:
			// For another file, or not kept whole: it withdraws nothing
			// a reader can see.
			return errors.New("the client answered with a no-file answer that is not for the file or not kept whole in the transcript; the level stands")
		}
	}
}

// fetch downloads bytes [start, end) in order, three blocks a request, and
// returns their MD4. Data must come exactly in order and in range; nothing
// is kept but the running hash.
func (p *prober) fetch(ctx context.Context, start, end int64) ([16]byte, error) {
	h := md4.New()
	next := start
	for next < end {
		var rp wire.RequestParts
		rp.Hash = p.t.Hash
		reqEnd := next
		for i := 0; i < 3 && reqEnd < end; i++ {
			e := min(reqEnd+wire.BlockSize, end)
			rp.Start[i], rp.End[i] = uint32(reqEnd), uint32(e)
			reqEnd = e
		}
		if err := p.c.Send(ctx, p.cfg.VerifyTimeout, wire.ProtoEDonkey, wire.OpRequestParts, rp.AppendTo(nil)); err != nil {
			return [16]byte{}, err
		}
		if err := p.receive(ctx, h, &next, reqEnd); err != nil {
			return [16]byte{}, err
		}
	}
	var sum [16]byte
	h.Sum(sum[:0])
	return sum, nil
}

// receive reads part data until *next reaches upTo.
func (p *prober) receive(ctx context.Context, h hash.Hash, next *int64, upTo int64) error {
	other := 0
	for *next < upTo {
		pk, _, err := p.c.Next(ctx, p.cfg.VerifyTimeout)
		if err != nil {
			return err
		}
		switch {
		case pk.Proto == wire.ProtoEDonkey && pk.Opcode == wire.OpSendingPart:
			sp, err := wire.DecodeSendingPart(pk.Payload)
			if err != nil {
				return err
			}
			if sp.Hash != p.t.Hash || int64(sp.Start) != *next || int64(sp.End) > upTo {
				return fmt.Errorf("data for bytes %d-%d, expected from %d up to %d", sp.Start, sp.End, *next, upTo)
			}
			h.Write(sp.Data)
			*next = int64(sp.End)
		case pk.Proto == wire.ProtoEMule && pk.Opcode == wire.OpCompressedPart:
			return errors.New("compressed part data, which the sensor's hello did not offer")
		case pk.Proto == wire.ProtoEDonkey && (pk.Opcode == wire.OpOutOfPartReqs || pk.Opcode == wire.OpCancelTransfer):
			return errors.New("the client stopped the transfer")
		default:
			if other++; other > p.cfg.MaxPackets {
				return fmt.Errorf("more than %d packets that are not part data", p.cfg.MaxPackets)
			}
		}
	}
	return nil
}
