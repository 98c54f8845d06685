// Package server is the sensor's eD2K server client: it logs in to a
// server as a client that shares nothing, and asks it for the sources of
// watched files (OP_GETSOURCES). What a server answers is its claim about
// other clients: the sensor records it as a third party's, never as
// first-hand. It also runs an analyst's keyword searches
// (OP_SEARCHREQUEST), whose results describe files, never clients.
//
// It must never dial except through the Dial it is given (the scope
// guard's), offer a file (it sends no OP_OFFERFILES), ask for anything
// but watched hashes, or read without a deadline or past the packet
// bounds.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/record"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// DialFunc is the shape of net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Config is how the sensor talks to servers.
type Config struct {
	// Dial opens the connection; required (the scope guard's dialer).
	Dial DialFunc
	// UserHash and Nick are the sensor's, sent at login.
	UserHash [16]byte
	Nick     string
	// Port is the TCP port the login names (0: the sensor accepts no
	// eD2K connections; servers then give it a low id, which is enough to
	// ask for sources).
	Port uint16
	// Timeout bounds the login, each write, and the drain before each
	// request (more than drainWait).
	Timeout time.Duration
	// AnswerWait is how long to wait for a server's answer to a request
	// for sources: a server that knows none says nothing.
	AnswerWait time.Duration
	// Limits bound each packet.
	Limits wire.Limits
	// TranscriptLimit bounds each request's transcript.
	TranscriptLimit int
	// MaxSearchResults bounds the files one search returns; the rest of
	// an answer are counted (Searched.Over), not kept.
	MaxSearchResults int
	// Clock is the time source (time.Now when nil).
	Clock func() time.Time
}

// DefaultConfig returns conservative settings; Dial and UserHash must be
// set.
func DefaultConfig() Config {
	return Config{Nick: "vigil", Timeout: 20 * time.Second, AnswerWait: 10 * time.Second,
		Limits: wire.DefaultLimits(), TranscriptLimit: 64 << 10, MaxSearchResults: 300}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Dial == nil:
		return errors.New("server: no dialer (every dial goes through the scope guard)")
	case c.UserHash == [16]byte{}:
		return errors.New("server: no user hash")
	case c.Timeout <= 0 || c.AnswerWait <= 0:
		return errors.New("server: timeouts must be positive")
	case c.Timeout <= drainWait:
		// The drain waits up to drainWait for a packet to begin, within
		// the Timeout: no quiet spell would fit, silence taken for a flood.
		return fmt.Errorf("server: Timeout %v must exceed the drain's wait, %v", c.Timeout, drainWait)
	case c.MaxSearchResults <= 0:
		return errors.New("server: MaxSearchResults must be positive")
	case c.Limits.MaxPacket <= wire.HeaderLen || c.Limits.MaxUnpacked <= 0:
		return errors.New("server: packet limits must be positive")
	}
	return nil
}

// ErrRefused is returned when the server refuses the login (id 0).
var ErrRefused = errors.New("server: login refused")

// Session is a logged-in connection to one server. It is not safe for
// concurrent use: requests are asked one at a time.
type Session struct {
	cfg  Config
	c    *pconn.Conn
	now  func() time.Time
	addr netip.AddrPort
	// ID is the id the server gave the sensor (a low id when it could not
	// connect back); Messages are the texts it sent at login.
	ID       uint32
	Messages []string
	// Login is the transcript of the login exchange.
	Login observe.Transcript
	// unanswered: the files a request for sources got no answer for in
	// time, since the last quiet drain: a late answer may be on its way
	// (drain), whatever was asked and answered after.
	unanswered map[[16]byte]bool
	// searchLate: a search got no answer in time since the last quiet
	// drain: its answer may be on its way.
	searchLate bool
	// awaited is the file whose sources are asked for, while they are
	// (the transcript keeps no sources of another).
	awaited [16]byte
}

// maxUnanswered bounds the files remembered as asked and not answered;
// past it, a request for any file drains for drainWait.
const maxUnanswered = 1 << 16

// Before each request, ask reads what the server sent since the last
// wait for an answer ended, until no packet begins within drainPeek
// (what has arrived is read at once: pconn.NextWithin) or, when a late
// answer to an earlier request for the same file (or an earlier search)
// may be on its way, within drainWait; at most drainMax packets, and
// for at most the Timeout in all.
const (
	drainPeek = time.Millisecond
	drainWait = 50 * time.Millisecond
	drainMax  = 64
)

// ErrNotQuiet is returned, the request not sent, when the server sent
// more than drainMax packets unasked for before a request without going
// quiet, or kept sending for the Timeout (a slow trickle would hold the
// session drainMax times the Timeout, each request): any of those past
// the bound could be a late answer, which the protocol gives no way to
// tell from the request's own (OP_FOUNDSOURCES names a file, not a
// request; OP_SEARCHRESULT names neither). The session ends with it; a
// new connection carries no late answer.
var ErrNotQuiet = errors.New("more packets unasked for than the drain reads before a request: request not sent")

// ask reads and drops, unrecorded, what the server sent since the last
// wait for an answer ended, before a request, until no packet begins
// within quiet (one that began is read whole, within the drain's
// Timeout), then sends the request (opcode, payload; recorded by rec,
// nil: none) and returns when it did (at) and how many of what it read
// were answers (OP_FOUNDSOURCES of any file, OP_SEARCHRESULT): each
// arrived before the request was sent, so it answers an earlier one (or
// none), however well it fits this one. An answer is the server's word
// when it came, not when Vigil read it, and only one that came after its
// request is taken. When bytes arrived between the quiet spell and the
// write (pconn.SendQuiet), nothing is sent and the drain goes on. A
// drain that waited drainWait also ends every wait for a late answer.
// Past drainMax packets, or the Timeout, without a quiet spell,
// ErrNotQuiet: the request must not be sent on this connection. asked
// says the request was sent.
func (s *Session) ask(ctx context.Context, quiet time.Duration, rec *record.Recorder, opcode byte, payload []byte) (late int, at time.Time, asked bool, err error) {
	s.c.SetRecorder(nil)
	// Wall time, as the socket's deadlines (pconn) are.
	until := time.Now().Add(s.cfg.Timeout)
	for range drainMax {
		left := time.Until(until)
		if left < quiet {
			break // no time left for a quiet spell
		}
		p, _, err := s.c.NextWithin(ctx, quiet, left)
		if errors.Is(err, os.ErrDeadlineExceeded) && s.c.Broken() && ctx.Err() == nil && !time.Now().Before(until) {
			// A packet begun and not whole when the drain's time was up.
			return late, at, false, fmt.Errorf("server %s: %w (%w)", s.addr, ErrNotQuiet, err)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && !s.c.Broken() {
			if quiet >= drainWait {
				clear(s.unanswered)
				s.searchLate = false
			}
			at = s.now().UTC()
			s.c.SetRecorder(rec)
			err := s.c.SendQuiet(ctx, s.cfg.Timeout, wire.ProtoEDonkey, opcode, payload)
			if errors.Is(err, pconn.ErrArrived) {
				s.c.SetRecorder(nil) // came before the request: drained as the rest
				continue
			}
			return late, at, err == nil, err
		}
		if errors.Is(err, pconn.ErrNotUnpacked) {
			continue // dropped as the rest: the stream is in step
		}
		if err != nil {
			return late, at, false, fmt.Errorf("server %s: %w", s.addr, err)
		}
		if isAnswer(p.Opcode) {
			late++
		}
	}
	return late, at, false, fmt.Errorf("server %s: %w", s.addr, ErrNotQuiet)
}

// withheld says a packet received is counted in the transcript, never
// kept: a search result, and sources (p unpacked: nil when it did not
// unpack) of a file other than the one awaited.
func (s *Session) withheld(h wire.Header, p *wire.Packet) bool {
	switch h.Opcode {
	case wire.OpSearchResult:
		return true
	case wire.OpFoundSources, wire.OpFoundSourcesObf:
		return p != nil && len(p.Payload) >= 16 && [16]byte(p.Payload[:16]) != s.awaited
	}
	return false
}

// isAnswer says op is a server's answer to a request: sources of a file
// or a search result.
func isAnswer(op byte) bool {
	return op == wire.OpFoundSources || op == wire.OpFoundSourcesObf || op == wire.OpSearchResult
}

// Login connects to the server at addr and logs in.
func Login(ctx context.Context, cfg Config, addr netip.AddrPort) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	nc, err := cfg.Dial(lctx, "tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", addr, err)
	}
	rec := record.New(cfg.TranscriptLimit, now)
	s := &Session{cfg: cfg, c: pconn.New(nc, rec, cfg.Limits), now: now, addr: addr}
	// A keyword search's answer names files nobody watches, and sources of
	// a file other than the one awaited may name one (a hostile server's,
	// or a late answer about a hash no longer watched); arriving while the
	// sources of a watched file are awaited, they would land in their
	// transcript, and so in observations: their bytes are counted there,
	// never kept.
	s.c.SetWithheld(s.withheld)
	login := wire.Login{UserHash: cfg.UserHash, Port: cfg.Port, Tags: []wire.Tag{
		wire.StrTag(wire.CTName, cfg.Nick),
		wire.IntTag(wire.CTVersion, wire.EDonkeyVersion),
		wire.IntTag(wire.CTServerFlags, wire.CapZlib|wire.CapNewTags|wire.CapLargeFiles),
		wire.IntTag(wire.CTEmuleVersion, 0x56<<24|1<<10),
	}}
	if err := s.c.Send(lctx, cfg.Timeout, wire.ProtoEDonkey, wire.OpLoginRequest, login.AppendTo(nil)); err != nil {
		nc.Close()
		return nil, err
	}
	for s.ID == 0 {
		p, _, err := s.c.Next(lctx, cfg.Timeout)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("server %s: login: %w", addr, err)
		}
		switch p.Opcode {
		case wire.OpServerMessage:
			if m, err := wire.DecodeServerMessage(p.Payload); err == nil {
				s.Messages = append(s.Messages, m.Text)
			}
		case wire.OpIDChange:
			m, err := wire.DecodeIDChange(p.Payload)
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("server %s: %w", addr, err)
			}
			if m.ID == 0 {
				nc.Close()
				return nil, fmt.Errorf("server %s: %w", addr, ErrRefused)
			}
			s.ID = m.ID
		case wire.OpReject:
			nc.Close()
			return nil, fmt.Errorf("server %s: %w", addr, ErrRefused)
		}
	}
	s.Login = rec.Final()
	return s, nil
}

// Addr is the server's address; Local the sensor's end.
func (s *Session) Addr() netip.AddrPort  { return s.addr }
func (s *Session) Local() netip.AddrPort { return s.c.Local() }

// Close ends the session.
func (s *Session) Close() error { return s.c.Close() }

// Found is a server's answer about one file.
type Found struct {
	Hash    [16]byte
	Sources []wire.Source // as the server gave them, low ids included
	// At is when the answer came (the request time when none came).
	At time.Time
	// Transcript holds the request and the answer, with the server as
	// peer; Kept says the answer is whole in it (sources are taken only
	// from an answer that is).
	Transcript observe.Transcript
	Kept       bool
	// NotUnpacked counts the server's packets, read whole while the
	// answer was awaited, that did not unpack within the bounds (a zlib
	// bomb): dropped, and the wait goes on.
	NotUnpacked int
	// Late counts the answers (sources of any file, search results) read
	// and dropped before the request was sent (drain): each came before
	// it. Unasked counts those read while this answer was awaited that
	// are not it: sources of another file (OP_FOUNDSOURCES names the file
	// it is about, and an answer about another never stands for this
	// one), search results. Neither is taken.
	Late, Unasked int
	// Asked says the request was sent.
	Asked bool
}

// unanswer notes that the request for hash got no answer in time.
func (s *Session) unanswer(hash [16]byte) {
	if s.unanswered == nil {
		s.unanswered = map[[16]byte]bool{}
	}
	s.unanswered[hash] = true
}

// Sources asks the server for the sources of a file of size bytes (-1:
// unknown; servers since 17.8 want it). No answer within AnswerWait means
// the server knows none: Found has no sources and no error. What the
// server sent before the request is read and dropped first (drain), for
// drainWait after a request for the file that got no answer in time,
// and an error (ErrNotQuiet among them) leaves the request unsent. Only
// an OP_FOUNDSOURCES about hash that came after the request is taken:
// the first. A packet read whole that does not unpack within the bounds
// (a zlib bomb, perhaps the answer) is dropped and counted
// (Found.NotUnpacked) and the wait goes on: ending the session there
// would leave every hash after this one unasked on the server, round
// after round.
func (s *Session) Sources(ctx context.Context, hash [16]byte, size int64) (Found, error) {
	f := Found{Hash: hash, At: s.now().UTC()}
	quiet := drainPeek
	if s.unanswered[hash] || len(s.unanswered) >= maxUnanswered {
		quiet = drainWait
	}
	rec := record.New(s.cfg.TranscriptLimit, s.now)
	defer s.c.SetRecorder(nil)
	s.awaited = hash
	late, at, asked, err := s.ask(ctx, quiet, rec, wire.OpGetSources, wire.GetSources{Hash: hash, Size: size}.AppendTo(nil))
	f.Late, f.Asked = late, asked
	if !at.IsZero() {
		f.At = at
	}
	if err != nil {
		return f, err
	}
	deadline := s.now().Add(s.cfg.AnswerWait)
	for {
		wait := deadline.Sub(s.now())
		if wait <= 0 {
			f.Transcript = rec.Final()
			s.unanswer(hash)
			return f, nil
		}
		p, kept, err := s.c.Next(ctx, wait)
		if errors.Is(err, os.ErrDeadlineExceeded) && !s.c.Broken() {
			f.Transcript = rec.Final()
			s.unanswer(hash)
			return f, nil
		}
		if errors.Is(err, pconn.ErrNotUnpacked) {
			f.NotUnpacked++
			continue
		}
		if err != nil {
			f.Transcript = rec.Final()
			return f, err
		}
		if p.Opcode == wire.OpSearchResult {
			f.Unasked++ // a search's answer, late or unasked
			continue
		}
		if p.Opcode != wire.OpFoundSources && p.Opcode != wire.OpFoundSourcesObf {
			continue // messages, status: not about the file
		}
		fs, err := wire.DecodeFoundSources(p.Payload, p.Opcode == wire.OpFoundSourcesObf)
		if err != nil {
			f.Transcript = rec.Final()
			return f, fmt.Errorf("server %s: %w", s.addr, err)
		}
		if fs.Hash != hash {
			f.Unasked++ // about another file: a late answer to another request, or none
			continue
		}
		f.Sources, f.Kept, f.At = fs.Sources, kept, s.now().UTC()
		f.Transcript = rec.Final()
		return f, nil
	}
}

// Searched is a server's answer to a keyword search: files as the server
// indexes them (name, size, source count). The client id and port each
// result carries are left out: a search result proves nothing of any
// client.
type Searched struct {
	Files []SearchedFile
	// Over is the number of files of the answer past MaxSearchResults.
	Over int
	// At is when the answer came (the request time when none came).
	At time.Time
	// Late and Unasked count answers not taken, as Found's do: read
	// before the search was sent, and sources read while its answer was
	// awaited. NotUnpacked counts the packets read whole while it was
	// awaited that did not unpack within the bounds (a zlib bomb):
	// dropped, and the wait goes on, as Found's.
	Late, Unasked, NotUnpacked int
	// Asked says the search was sent.
	Asked bool
}

// SearchedFile is one file of a search result.
type SearchedFile struct {
	Hash    [16]byte
	Name    string
	Size    int64 // -1 when the server gave none
	Sources int   // -1 when the server gave none
}

// Search asks the server for the files whose names hold every one of
// words (OP_SEARCHREQUEST, the words joined by AND as eMule does) and
// waits up to AnswerWait for its OP_SEARCHRESULT. No answer in time
// means none: no files and no error. What the server sent before the
// search is read and dropped first (drain; for drainWait after a search
// that got no answer in time), and an error (ErrNotQuiet among them)
// leaves the search unsent. An OP_SEARCHRESULT names no search: the
// first that came after the request is taken, as eMule takes it for its
// one search under way; one the server sent before it read the request
// but that came after it cannot be told from it (the caller keeps only
// files whose names hold the words). A packet that does not unpack
// within the bounds is dropped and counted (Searched.NotUnpacked), and
// the wait goes on, as Sources's. The exchange is not recorded: a
// search result is no observation.
func (s *Session) Search(ctx context.Context, words []string) (Searched, error) {
	out := Searched{At: s.now().UTC()}
	if len(words) == 0 {
		return out, errors.New("server: a search needs a word")
	}
	quiet := drainPeek
	if s.searchLate {
		quiet = drainWait // the last search's answer may be on its way
	}
	late, at, asked, err := s.ask(ctx, quiet, nil, wire.OpSearchRequest, wire.KeywordSearch(words).AppendTo(nil))
	out.Late, out.Asked = late, asked
	if !at.IsZero() {
		out.At = at
	}
	if err != nil {
		return out, err
	}
	deadline := s.now().Add(s.cfg.AnswerWait)
	for {
		wait := deadline.Sub(s.now())
		if wait <= 0 {
			s.searchLate = true
			return out, nil
		}
		p, _, err := s.c.Next(ctx, wait)
		if errors.Is(err, os.ErrDeadlineExceeded) && !s.c.Broken() {
			s.searchLate = true
			return out, nil
		}
		if errors.Is(err, pconn.ErrNotUnpacked) {
			out.NotUnpacked++
			continue
		}
		if err != nil {
			return out, err
		}
		if p.Opcode == wire.OpFoundSources || p.Opcode == wire.OpFoundSourcesObf {
			out.Unasked++ // sources: a late answer to a request for them, or none
			continue
		}
		if p.Opcode != wire.OpSearchResult {
			continue // messages, status
		}
		sr, err := wire.DecodeSearchResult(p.Payload)
		if err != nil {
			return out, fmt.Errorf("server %s: %w", s.addr, err)
		}
		out.At = s.now().UTC()
		for _, f := range sr.Files {
			if len(out.Files) == s.cfg.MaxSearchResults {
				out.Over++
				continue
			}
			out.Files = append(out.Files, SearchedFile{Hash: f.Hash, Name: f.Name(), Size: f.Size(), Sources: f.Sources()})
		}
		return out, nil
	}
}
