package ed2k

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// ScriptedServer is an eD2K server a test scripts, to play a hostile or
// broken server: it accepts every connection on its listener, answers
// each OP_LOGINREQUEST with an OP_IDCHANGE giving ID, and hands every
// other packet to Handle, which answers as the test wants (sources,
// silence, late answers, zlib bombs). Unlike Server it keeps nothing.
type ScriptedServer struct {
	// ID is the client id each login gets (7, a low id, when zero).
	ID uint32
	// Idle is how long a connection may stay silent before it is
	// closed (a minute when zero).
	Idle time.Duration
	// Handle gets every packet but logins, with the connection it came
	// on; returning false closes that connection. Handle runs in the
	// connection's goroutine, one packet at a time per connection.
	Handle func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool
	// Logins counts the logins answered.
	Logins atomic.Int64
}

// Serve accepts connections on ln until it is closed, each served in
// its own goroutine with ctx, and returns then.
func (s *ScriptedServer) Serve(ctx context.Context, ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go s.serve(ctx, nc)
	}
}

func (s *ScriptedServer) serve(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	id, idle := s.ID, s.Idle
	if id == 0 {
		id = 7
	}
	if idle == 0 {
		idle = time.Minute
	}
	pc := pconn.New(nc, nil, wire.DefaultLimits())
	for {
		p, _, err := pc.Next(ctx, idle)
		if err != nil {
			return
		}
		if p.Opcode == wire.OpLoginRequest {
			s.Logins.Add(1)
			pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpIDChange, wire.IDChange{ID: id, Fields: 1}.AppendTo(nil))
			continue
		}
		if s.Handle != nil && !s.Handle(ctx, pc, p) {
			return
		}
	}
}

// SendSources sends pc an OP_FOUNDSOURCES naming srcs for hash, as a
// server answers OP_GETSOURCES.
func SendSources(ctx context.Context, pc *pconn.Conn, hash [16]byte, srcs []wire.Source) error {
	fs := wire.FoundSources{Hash: hash, Sources: srcs}
	return pc.Send(ctx, time.Second, wire.ProtoEDonkey, fs.Opcode(), fs.AppendTo(nil))
}

// ListSources is a Handle that answers every OP_GETSOURCES with srcs,
// whatever the file, and closes the connection at one it cannot decode.
func ListSources(srcs []wire.Source) func(context.Context, *pconn.Conn, wire.Packet) bool {
	return func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		gs, err := wire.DecodeGetSources(p.Payload)
		if err != nil {
			return false
		}
		SendSources(ctx, pc, gs.Hash, srcs)
		return true
	}
}

// SendSearchResult sends pc an OP_SEARCHRESULT naming files, as a
// server answers OP_SEARCHREQUEST.
func SendSearchResult(ctx context.Context, pc *pconn.Conn, files []wire.OfferedFile) error {
	return pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpSearchResult, wire.SearchResult{Files: files}.AppendTo(nil))
}
