package ed2k

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// Server is a small eD2K server of the lab's: it accepts logins (every
// client gets the high id of the address it connected from; no callback
// test), keeps what each client offers while it stays connected, answers
// OP_GETSOURCES with the clients that offered the file, and
// OP_SEARCHREQUEST with the files offered whose names hold the search's
// words (string terms and AND, OR, NOT only; a term on a tag or a number
// matches nothing). It is a stand-in for real servers, not one: no UDP,
// no server list.
type Server struct {
	ln net.Listener
	mu sync.Mutex
	// sources: file hash -> session -> source
	sources map[[16]byte]map[*session]wire.Source
	// names: file hash -> name and size, as first offered
	names  map[[16]byte]wire.OfferedFile
	wg     sync.WaitGroup
	closed atomic.Bool
	// Logins, Asks and Searches count logins, source requests and
	// searches.
	Logins, Asks, Searches atomic.Int64
}

type session struct {
	id       uint32
	port     uint16
	userHash [16]byte
	nc       net.Conn
}

// StartServer listens on addr (a loopback address, port 0 for any).
func StartServer(addr netip.AddrPort) (*Server, error) {
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("lab server: %w", err)
	}
	s := &Server{ln: ln, sources: map[[16]byte]map[*session]wire.Source{}, names: map[[16]byte]wire.OfferedFile{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer nc.Close()
				s.serve(nc)
			}()
		}
	}()
	return s, nil
}

// Addr is the server's address.
func (s *Server) Addr() netip.AddrPort { return s.ln.Addr().(*net.TCPAddr).AddrPort() }

// Close stops the server.
func (s *Server) Close() {
	s.closed.Store(true)
	s.ln.Close()
	s.mu.Lock()
	for _, m := range s.sources {
		for ss := range m {
			ss.nc.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Sources returns the sources the server holds for a file.
func (s *Server) Sources(h [16]byte) []wire.Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wire.Source
	for _, src := range s.sources[h] {
		out = append(out, src)
	}
	return out
}

// UserHash returns the user hash a client that offered file h from addr
// logged in with.
func (s *Server) UserHash(h [16]byte, addr netip.AddrPort) ([16]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss, src := range s.sources[h] {
		if a, ok := src.Addr(); ok && a == addr {
			return ss.userHash, true
		}
	}
	return [16]byte{}, false
}

func (s *Server) drop(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, m := range s.sources {
		delete(m, ss)
		if len(m) == 0 {
			delete(s.sources, h)
		}
	}
}

func (s *Server) serve(nc net.Conn) {
	ctx := context.Background()
	pc := pconn.New(nc, nil, wire.DefaultLimits())
	ss := &session{nc: nc}
	defer s.drop(ss)
	for !s.closed.Load() {
		p, _, err := pc.Next(ctx, 10*time.Minute)
		if err != nil {
			return
		}
		switch p.Opcode {
		case wire.OpLoginRequest:
			l, err := wire.DecodeLogin(p.Payload)
			if err != nil {
				return
			}
			ss.id, ss.port, ss.userHash = wire.AddrToID(pc.Peer().Addr()), l.Port, l.UserHash
			s.Logins.Add(1)
			out := wire.Append(nil, wire.ProtoEDonkey, wire.OpServerMessage, wire.ServerMessage{Text: "Vigil lab server (not a real eD2K server)"}.AppendTo(nil))
			out = wire.Append(out, wire.ProtoEDonkey, wire.OpIDChange, wire.IDChange{ID: ss.id, Flags: wire.CapZlib | wire.CapNewTags | wire.CapUnicode | wire.CapLargeFiles, Fields: 2}.AppendTo(nil))
			out = wire.Append(out, wire.ProtoEDonkey, wire.OpServerStatus, wire.ServerStatus{Users: uint32(s.Logins.Load()), Files: 0}.AppendTo(nil))
			if pc.SendRaw(ctx, 10*time.Second, out) != nil {
				return
			}
		case wire.OpOfferFiles:
			if ss.id == 0 {
				return
			}
			of, err := wire.DecodeOfferFiles(p.Payload)
			if err != nil {
				return
			}
			s.mu.Lock()
			for _, f := range of.Files {
				if s.sources[f.Hash] == nil {
					s.sources[f.Hash] = map[*session]wire.Source{}
				}
				s.sources[f.Hash][ss] = wire.Source{ID: ss.id, Port: ss.port}
				if _, ok := s.names[f.Hash]; !ok {
					s.names[f.Hash] = f
				}
			}
			s.mu.Unlock()
		case wire.OpSearchRequest:
			if ss.id == 0 {
				return
			}
			sr, err := wire.DecodeSearchRequest(p.Payload)
			if err != nil {
				return
			}
			s.Searches.Add(1)
			res := s.search(sr.Expr)
			if pc.SendRaw(ctx, 10*time.Second, wire.AppendPacked(nil, wire.OpSearchResult, res.AppendTo(nil))) != nil {
				return
			}
		case wire.OpGetSources:
			if ss.id == 0 {
				return
			}
			gs, err := wire.DecodeGetSources(p.Payload)
			if err != nil {
				return
			}
			s.Asks.Add(1)
			s.mu.Lock()
			fs := wire.FoundSources{Hash: gs.Hash}
			for other, src := range s.sources[gs.Hash] {
				if other != ss && len(fs.Sources) < 255 {
					fs.Sources = append(fs.Sources, src)
				}
			}
			s.mu.Unlock()
			if len(fs.Sources) == 0 {
				continue // real servers say nothing when they know no source
			}
			var out []byte
			if len(fs.Sources) > 20 {
				out = wire.AppendPacked(nil, fs.Opcode(), fs.AppendTo(nil))
			} else {
				out = wire.Append(nil, wire.ProtoEDonkey, fs.Opcode(), fs.AppendTo(nil))
			}
			if pc.SendRaw(ctx, 10*time.Second, out) != nil {
				return
			}
		}
	}
}

// searchLimit is how many files the lab server returns for one search
// (real servers return some 200 to 300).
const searchLimit = 200

// search returns the files offered whose names match e, with their name,
// size and source count, ordered by hash.
func (s *Server) search(e *wire.SearchExpr) wire.SearchResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res wire.SearchResult
	for h, f := range s.names {
		if len(s.sources[h]) == 0 || !matches(e, f.Name()) {
			continue
		}
		var one wire.Source
		for _, src := range s.sources[h] {
			one = src
			break
		}
		res.Files = append(res.Files, wire.OfferedFile{Hash: h, ClientID: one.ID, Port: one.Port, Tags: []wire.Tag{
			wire.StrTag(wire.FTFileName, f.Name()), wire.IntTag(wire.FTFileSize, uint32(max(f.Size(), 0))),
			wire.IntTag(wire.FTSources, uint32(len(s.sources[h])))}})
	}
	slices.SortFunc(res.Files, func(a, b wire.OfferedFile) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
	if len(res.Files) > searchLimit {
		res.Files = res.Files[:searchLimit]
	}
	return res
}

// matches evaluates a search expression against a file name.
func matches(e *wire.SearchExpr, name string) bool {
	if e == nil {
		return false
	}
	switch e.Type {
	case wire.SearchString:
		w := wire.Words(e.Str)
		return len(w) > 0 && wire.HasWords(name, w)
	case wire.SearchOperator:
		l, r := matches(e.Left, name), matches(e.Right, name)
		switch e.Op {
		case wire.SearchAnd:
			return l && r
		case wire.SearchOr:
			return l || r
		case wire.SearchNot:
			return l && !r
		}
	}
	return false
}
