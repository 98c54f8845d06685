package wire

import (
	"fmt"
	"net/netip"
)

// Client-to-server opcodes (ProtoEDonkey).
const (
	OpLoginRequest    byte = 0x01
	OpReject          byte = 0x05
	OpGetServerList   byte = 0x14
	OpOfferFiles      byte = 0x15
	OpGetSources      byte = 0x19
	OpServerList      byte = 0x32
	OpServerStatus    byte = 0x34
	OpServerMessage   byte = 0x38
	OpIDChange        byte = 0x40
	OpServerIdent     byte = 0x41
	OpFoundSources    byte = 0x42
	OpFoundSourcesObf byte = 0x44
)

// Server capability flags a client sends in CT_SERVER_FLAGS at login.
const (
	CapZlib       uint32 = 0x0001
	CapAuxPort    uint32 = 0x0004
	CapNewTags    uint32 = 0x0008
	CapUnicode    uint32 = 0x0010
	CapLargeFiles uint32 = 0x0100
)

// Login is OP_LOGINREQUEST: the same layout as a hello without the hash
// length byte and the server address.
type Login struct {
	UserHash [16]byte
	ClientID uint32
	Port     uint16
	Tags     []Tag
}

// DecodeLogin decodes OP_LOGINREQUEST.
func DecodeLogin(payload []byte) (Login, error) {
	r := newReader(payload)
	m := Login{UserHash: r.hash("user hash"), ClientID: r.U32("client id"), Port: r.U16("port")}
	m.Tags = readTags(r)
	if err := r.end("login"); err != nil {
		return Login{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m Login) AppendTo(b []byte) []byte {
	b = append(b, m.UserHash[:]...)
	b = appendU32(b, m.ClientID)
	b = appendU16(b, m.Port)
	return appendTags(b, m.Tags)
}

// IDChange is OP_IDCHANGE: the id the server gave the client (0: login
// refused), and what else the server says of itself.
type IDChange struct {
	ID uint32
	// Flags, AuxPort, ReportedIP and ObfuscationPort are present only in
	// longer forms; Fields says how many 32-bit fields came (1 to 5).
	Flags, AuxPort, ReportedIP, ObfuscationPort uint32
	Fields                                      int
}

// DecodeIDChange decodes OP_IDCHANGE (4, 8, 12 or 20 bytes).
func DecodeIDChange(payload []byte) (IDChange, error) {
	switch len(payload) {
	case 4, 8, 12, 20:
	default:
		return IDChange{}, fmt.Errorf("id change of %d bytes: %w", len(payload), ErrMalformed)
	}
	r := newReader(payload)
	m := IDChange{Fields: len(payload) / 4}
	v := []*uint32{&m.ID, &m.Flags, &m.AuxPort, &m.ReportedIP, &m.ObfuscationPort}
	for i := 0; i < m.Fields; i++ {
		*v[i] = r.U32("id change")
	}
	return m, r.end("id change")
}

// AppendTo appends the payload.
func (m IDChange) AppendTo(b []byte) []byte {
	n := max(m.Fields, 1)
	if n == 4 {
		n = 5
	}
	for _, v := range []uint32{m.ID, m.Flags, m.AuxPort, m.ReportedIP, m.ObfuscationPort}[:n] {
		b = appendU32(b, v)
	}
	return b
}

// ServerMessage is OP_SERVERMESSAGE: text for the user.
type ServerMessage struct{ Text string }

// DecodeServerMessage decodes OP_SERVERMESSAGE.
func DecodeServerMessage(payload []byte) (ServerMessage, error) {
	r := newReader(payload)
	m := ServerMessage{Text: r.str("message")}
	return m, r.end("server message")
}

// AppendTo appends the payload.
func (m ServerMessage) AppendTo(b []byte) []byte { return appendStr(b, m.Text) }

// ServerStatus is OP_SERVERSTATUS: users and files on the server.
type ServerStatus struct{ Users, Files uint32 }

// DecodeServerStatus decodes OP_SERVERSTATUS.
func DecodeServerStatus(payload []byte) (ServerStatus, error) {
	r := newReader(payload)
	m := ServerStatus{Users: r.U32("users"), Files: r.U32("files")}
	return m, r.end("server status")
}

// AppendTo appends the payload.
func (m ServerStatus) AppendTo(b []byte) []byte { return appendU32(appendU32(b, m.Users), m.Files) }

// GetSources is OP_GETSOURCES for one file. With the size known it is the
// form servers since 17.8 require (hash, 32-bit size; or hash, 0, 64-bit
// size for files of 4 GiB and more); with the size unknown (Size < 0),
// the hash alone.
type GetSources struct {
	Hash [16]byte
	Size int64
}

// DecodeGetSources decodes OP_GETSOURCES in any of its three forms.
func DecodeGetSources(payload []byte) (GetSources, error) {
	r := newReader(payload)
	m := GetSources{Hash: r.hash("file hash"), Size: -1}
	switch r.Left() {
	case 0:
	case 4:
		m.Size = int64(r.U32("size"))
		if m.Size == 0 {
			r.Fail("size 0")
		}
	case 12:
		if r.U32("size") != 0 {
			r.Fail("large form with a 32-bit size")
		}
		v := r.U64("large size")
		if v <= 0xFFFFFFFF || v > 1<<62 {
			r.Fail("large size %d", v)
		}
		m.Size = int64(v)
	default:
		r.Fail("get sources of %d bytes", len(payload))
	}
	return m, r.end("get sources")
}

// AppendTo appends the payload.
func (m GetSources) AppendTo(b []byte) []byte {
	b = append(b, m.Hash[:]...)
	switch {
	case m.Size < 0:
	case m.Size > 0xFFFFFFFF:
		b = appendU64(appendU32(b, 0), uint64(m.Size))
	default:
		b = appendU32(b, uint32(m.Size))
	}
	return b
}

// Source is one source a server names: a client id (an address for a
// high id) and a TCP port. The obfuscated form adds crypt options and,
// where they say so, the client's user hash.
type Source struct {
	ID       uint32
	Port     uint16
	Crypt    uint8    // OP_FOUNDSOURCES_OBFU only
	UserHash [16]byte // OP_FOUNDSOURCES_OBFU only, when Crypt&0x80
	HasHash  bool
}

// Addr returns the source's address for a high id.
func (s Source) Addr() (netip.AddrPort, bool) {
	a, ok := IDToAddr(s.ID)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, s.Port), true
}

// FoundSources is OP_FOUNDSOURCES or OP_FOUNDSOURCES_OBFU.
type FoundSources struct {
	Obfuscated bool
	Hash       [16]byte
	Sources    []Source
}

// DecodeFoundSources decodes OP_FOUNDSOURCES (obf false) or
// OP_FOUNDSOURCES_OBFU.
func DecodeFoundSources(payload []byte, obf bool) (FoundSources, error) {
	r := newReader(payload)
	m := FoundSources{Obfuscated: obf, Hash: r.hash("file hash")}
	n := int(r.U8("source count"))
	if r.Err == nil && (!obf && r.Left() != 6*n || obf && r.Left() < 7*n) {
		r.Fail("%d sources in %d bytes", n, r.Left())
	}
	if r.Err == nil {
		m.Sources = make([]Source, 0, n)
	}
	for i := 0; i < n && r.Err == nil; i++ {
		s := Source{ID: r.U32("source id"), Port: r.U16("source port")}
		if obf {
			s.Crypt = r.U8("crypt options")
			// eMule: the user hash follows when bit 7 is set.
			if s.Crypt&0x80 != 0 {
				s.UserHash, s.HasHash = r.hash("source user hash"), true
			}
		}
		m.Sources = append(m.Sources, s)
	}
	if err := r.end("found sources"); err != nil {
		return FoundSources{}, err
	}
	return m, nil
}

// Opcode is OpFoundSources or OpFoundSourcesObf.
func (m FoundSources) Opcode() byte {
	if m.Obfuscated {
		return OpFoundSourcesObf
	}
	return OpFoundSources
}

// AppendTo appends the payload (at most 255 sources).
func (m FoundSources) AppendTo(b []byte) []byte {
	srcs := m.Sources
	if len(srcs) > 255 {
		srcs = srcs[:255]
	}
	b = append(append(b, m.Hash[:]...), byte(len(srcs)))
	for _, s := range srcs {
		b = appendU16(appendU32(b, s.ID), s.Port)
		if m.Obfuscated {
			b = append(b, s.Crypt)
			if s.Crypt&0x80 != 0 {
				b = append(b, s.UserHash[:]...)
			}
		}
	}
	return b
}

// OfferedFile is one file of OP_OFFERFILES: what a client tells its
// server it shares.
type OfferedFile struct {
	Hash     [16]byte
	ClientID uint32
	Port     uint16
	Tags     []Tag
}

// Size returns the file size the tags give (FT_FILESIZE, FT_FILESIZE_HI),
// or -1.
func (f OfferedFile) Size() int64 {
	var lo, hi uint64
	found := false
	for _, t := range f.Tags {
		switch {
		case t.Named(FTFileSize) && t.IsInt():
			lo, found = t.Int, true
		case t.Named(FTSizeHi) && t.IsInt():
			hi = t.Int
		}
	}
	if !found {
		return -1
	}
	if lo > 0xFFFFFFFF {
		return int64(lo & (1<<62 - 1))
	}
	return int64(hi<<32 | lo)
}

// OfferFiles is OP_OFFERFILES.
type OfferFiles struct{ Files []OfferedFile }

// DecodeOfferFiles decodes OP_OFFERFILES.
func DecodeOfferFiles(payload []byte) (OfferFiles, error) {
	r := newReader(payload)
	n := r.U32("file count")
	if r.Err == nil && int64(n)*26 > int64(r.Left()) {
		r.Fail("%d files in %d bytes", n, r.Left())
	}
	var m OfferFiles
	for i := uint32(0); i < n && r.Err == nil; i++ {
		f := OfferedFile{Hash: r.hash("file hash"), ClientID: r.U32("client id"), Port: r.U16("port")}
		f.Tags = readTags(r)
		m.Files = append(m.Files, f)
	}
	if err := r.end("offer files"); err != nil {
		return OfferFiles{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m OfferFiles) AppendTo(b []byte) []byte {
	b = appendU32(b, uint32(len(m.Files)))
	for _, f := range m.Files {
		b = append(b, f.Hash[:]...)
		b = appendU16(appendU32(b, f.ClientID), f.Port)
		b = appendTags(b, f.Tags)
	}
	return b
}

// ServerEntry is one server of a server.met file or OP_SERVERLIST.
type ServerEntry struct {
	Addr netip.AddrPort
	Tags []Tag
}

// Name returns the server's name tag, or "".
func (s ServerEntry) Name() string {
	for _, t := range s.Tags {
		if t.Named(STServerName) && t.IsStr() {
			return t.Str
		}
	}
	return ""
}

// ServerMet is a server.met file.
type ServerMet struct {
	Version byte // 0x0E or 0xE0
	Servers []ServerEntry
}

// ParseServerMet parses a server.met file: a version byte (0x0E, or 0xE0
// from old clients), a 32-bit count, then each server's IPv4 address, port
// and tags.
func ParseServerMet(b []byte) (ServerMet, error) {
	r := newReader(b)
	m := ServerMet{Version: r.U8("version")}
	if r.Err == nil && m.Version != 0x0E && m.Version != 0xE0 {
		r.Fail("server.met version 0x%02x (want 0x0e or 0xe0)", m.Version)
	}
	n := r.U32("server count")
	if r.Err == nil && int64(n)*10 > int64(r.Left()) {
		r.Fail("%d servers in %d bytes", n, r.Left())
	}
	for i := uint32(0); i < n && r.Err == nil; i++ {
		ip := r.Take(4, "server ip")
		port := r.U16("server port")
		tags := readTags(r)
		if r.Err != nil {
			break
		}
		m.Servers = append(m.Servers, ServerEntry{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip)), port), Tags: tags})
	}
	if err := r.end("server.met"); err != nil {
		return ServerMet{}, fmt.Errorf("server.met: %w", err)
	}
	return m, nil
}

// AppendTo appends the file's bytes.
func (m ServerMet) AppendTo(b []byte) []byte {
	b = appendU32(append(b, m.Version), uint32(len(m.Servers)))
	for _, s := range m.Servers {
		a := s.Addr.Addr().Unmap().As4()
		b = appendU16(append(b, a[:]...), s.Addr.Port())
		b = appendTags(b, s.Tags)
	}
	return b
}
