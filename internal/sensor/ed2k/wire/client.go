package wire

import (
	"fmt"
	"net/netip"
)

// Client-to-client opcodes (ProtoEDonkey unless noted).
const (
	OpHello            byte = 0x01
	OpSendingPart      byte = 0x46
	OpRequestParts     byte = 0x47
	OpFileReqAnsNoFile byte = 0x48
	OpHelloAnswer      byte = 0x4C
	OpMessage          byte = 0x4E
	OpSetReqFileID     byte = 0x4F
	OpFileStatus       byte = 0x50
	OpHashSetRequest   byte = 0x51
	OpHashSetAnswer    byte = 0x52
	OpStartUploadReq   byte = 0x54
	OpAcceptUploadReq  byte = 0x55
	OpCancelTransfer   byte = 0x56
	OpOutOfPartReqs    byte = 0x57
	OpRequestFileName  byte = 0x58
	OpReqFileNameAns   byte = 0x59
	OpQueueRank        byte = 0x5C

	// ProtoEMule opcodes.
	OpEmuleInfo       byte = 0x01
	OpEmuleInfoAnswer byte = 0x02
	OpCompressedPart  byte = 0x40
	OpQueueRanking    byte = 0x60
	OpSecIdentState   byte = 0x87
)

// EDonkeyVersion is the eDonkey protocol version eMule and aMule announce
// in CT_VERSION.
const EDonkeyVersion = 0x3C

// Hello is OP_HELLO (with its leading hash length byte) or OP_HELLOANSWER
// (without): who the client says it is.
type Hello struct {
	// Answer: this is OP_HELLOANSWER, which has no hash length byte.
	Answer   bool
	UserHash [16]byte
	// ClientID is the client's eD2K id: its IPv4 address (high id) or a
	// number below 2^24 a server gave it (low id: firewalled).
	ClientID   uint32
	Port       uint16
	Tags       []Tag
	ServerIP   uint32 // the server the client is connected to, as an id
	ServerPort uint16
	// Trailer is 4 bytes some clients append ("KDLM" for MLDonkey,
	// anything else for eDonkey Hybrid); nil when absent.
	Trailer []byte
}

// DecodeHello decodes an OP_HELLO (answer false) or OP_HELLOANSWER
// payload.
func DecodeHello(payload []byte, answer bool) (Hello, error) {
	r := newReader(payload)
	h := Hello{Answer: answer}
	if !answer {
		if n := r.U8("hash length"); r.Err == nil && n != 16 {
			r.Fail("hash length %d", n)
		}
	}
	h.UserHash = r.hash("user hash")
	h.ClientID = r.U32("client id")
	h.Port = r.U16("port")
	h.Tags = readTags(r)
	h.ServerIP = r.U32("server ip")
	h.ServerPort = r.U16("server port")
	if r.Err == nil && r.Left() == 4 {
		h.Trailer = r.Take(4, "trailer")
	}
	if err := r.end("hello"); err != nil {
		return Hello{}, err
	}
	return h, nil
}

// Opcode is OpHello or OpHelloAnswer.
func (h Hello) Opcode() byte {
	if h.Answer {
		return OpHelloAnswer
	}
	return OpHello
}

// AppendTo appends the payload (not the packet header).
func (h Hello) AppendTo(b []byte) []byte {
	if !h.Answer {
		b = append(b, 16)
	}
	b = append(b, h.UserHash[:]...)
	b = appendU32(b, h.ClientID)
	b = appendU16(b, h.Port)
	b = appendTags(b, h.Tags)
	b = appendU32(b, h.ServerIP)
	b = appendU16(b, h.ServerPort)
	return append(b, h.Trailer...)
}

// Compatible-client codes (the top byte of CT_EMULE_VERSION).
var compatNames = map[byte]string{
	0x00: "eMule", 0x01: "cDonkey", 0x02: "xMule", 0x03: "aMule", 0x04: "Shareaza",
	0x05: "eMule Plus", 0x06: "Hydranode", 0x0a: "MLDonkey", 0x14: "lphant", 0x28: "Shareaza",
	0x32: "eDonkey Hybrid", 0x33: "eDonkey", 0x34: "MLDonkey", 0x35: "eMule", 0x44: "Shareaza",
	0x98: "MLDonkey",
}

// Client is what a hello says of the software and its ports.
type Client struct {
	Nick    string // CT_NAME: the user's nick name (free text)
	Name    string // decoded software, e.g. "aMule"
	Version string // e.g. "2.3.3"
	// Compat is CT_EMULE_VERSION's compatible-client byte, -1 if absent.
	Compat     int
	ListenPort uint16 // TCP listen port (CT_PORT, else the hello's port)
	UDPPort    uint16 // eD2K UDP port (CT_EMULE_UDPPORTS)
	KadPort    uint16 // Kad UDP port (CT_EMULE_UDPPORTS)
	KadVersion uint8  // CT_EMULE_MISCOPTIONS2
	Mod        string // ET_MOD_VERSION
}

// Client decodes the client software and ports the hello names, the way
// eMule and aMule do (BaseClient.cpp ReGetClientSoft): CT_EMULE_VERSION's
// top byte names the compatible client and its low 24 bits the version
// (major << 17 | minor << 10 | update << 7). Clients that send no such tag
// are named by their trailer (MLDonkey, eDonkey Hybrid) or "eDonkey".
func (h Hello) Client() Client {
	c := Client{Compat: -1, ListenPort: h.Port}
	var emuleVersion uint32
	haveEmule := false
	for _, t := range h.Tags {
		if t.Form == FormName {
			continue
		}
		switch t.ID {
		case CTName:
			if t.IsStr() {
				c.Nick = t.Str
			}
		case CTPort:
			if t.IsInt() && t.Int > 0 && t.Int <= 0xFFFF {
				c.ListenPort = uint16(t.Int)
			}
		case CTEmuleUDP:
			if t.IsInt() {
				c.KadPort, c.UDPPort = uint16(t.Int>>16), uint16(t.Int)
			}
		case CTEmuleMisc2:
			if t.IsInt() {
				c.KadVersion = uint8(t.Int & 0x0F)
			}
		case CTEmuleVersion:
			if t.IsInt() {
				haveEmule, emuleVersion = true, uint32(t.Int)
			}
		case CTModVersion:
			if t.IsStr() {
				c.Mod = t.Str
			}
		}
	}
	switch {
	case haveEmule:
		c.Compat = int(emuleVersion >> 24)
		c.Name = compatNames[byte(c.Compat)]
		if c.Name == "" {
			c.Name = fmt.Sprintf("compatible client 0x%02x", c.Compat)
		}
		v := emuleVersion & 0xFFFFFF
		maj, min, upd := v>>17&0x7F, v>>10&0x7F, v>>7&0x07
		switch byte(c.Compat) {
		case 0x00, 0x35, 0x04, 0x28, 0x44:
			// eMule style: 0.50a
			c.Version = fmt.Sprintf("%d.%d%c", maj, min, 'a'+byte(upd))
		default:
			c.Version = fmt.Sprintf("%d.%d.%d", maj, min, upd)
		}
	case string(h.Trailer) == "MLDK":
		c.Name = "MLDonkey"
	case len(h.Trailer) == 4:
		c.Name = "eDonkey Hybrid"
	default:
		c.Name = "eDonkey"
	}
	return c
}

// HashMsg is a message whose payload is one file hash: OP_SETREQFILEID,
// OP_FILEREQANSNOFIL, OP_HASHSETREQUEST, OP_STARTUPLOADREQ, OP_GETSOURCES
// (v1), and OP_REQUESTFILENAME without extended information.
type HashMsg struct{ Hash [16]byte }

// DecodeHashMsg decodes a payload that must be exactly one hash.
func DecodeHashMsg(payload []byte) (HashMsg, error) {
	r := newReader(payload)
	m := HashMsg{Hash: r.hash("file hash")}
	if err := r.end("hash message"); err != nil {
		return HashMsg{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m HashMsg) AppendTo(b []byte) []byte { return append(b, m.Hash[:]...) }

// FileName is OP_REQFILENAMEANSWER: the client's name for the file.
type FileName struct {
	Hash [16]byte
	Name string
}

// DecodeFileName decodes OP_REQFILENAMEANSWER.
func DecodeFileName(payload []byte) (FileName, error) {
	r := newReader(payload)
	m := FileName{Hash: r.hash("file hash")}
	m.Name = r.str("file name")
	if err := r.end("file name answer"); err != nil {
		return FileName{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m FileName) AppendTo(b []byte) []byte { return appendStr(append(b, m.Hash[:]...), m.Name) }

// FileStatus is OP_FILESTATUS: which parts of the file the client has.
// Count 0 means the client shares the whole file; otherwise Count is the
// file's part count as eMule counts it for this message (size/PartSize+1,
// see StatusPartCount) and Bits holds one bit a part, least significant
// bit first, in exactly (Count+7)/8 bytes.
type FileStatus struct {
	Hash  [16]byte
	Count uint16
	Bits  []byte
}

// DecodeFileStatus decodes OP_FILESTATUS. A part map whose byte length is
// not (Count+7)/8 is malformed: a ragged map is rejected whole, never read
// in part.
func DecodeFileStatus(payload []byte) (FileStatus, error) {
	r := newReader(payload)
	m := FileStatus{Hash: r.hash("file hash"), Count: r.U16("part count")}
	if r.Err == nil {
		want := (int(m.Count) + 7) / 8
		if r.Left() != want {
			r.Fail("part map of %d bytes for %d parts (want %d)", r.Left(), m.Count, want)
		}
		m.Bits = r.Take(want, "part map")
	}
	if err := r.end("file status"); err != nil {
		return FileStatus{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m FileStatus) AppendTo(b []byte) []byte {
	b = appendU16(append(b, m.Hash[:]...), m.Count)
	bits := make([]byte, (int(m.Count)+7)/8)
	copy(bits, m.Bits)
	return append(b, bits...)
}

// Has reports whether bit i is set.
func (m FileStatus) Has(i int) bool {
	return i >= 0 && i/8 < len(m.Bits) && m.Bits[i/8]>>(i%8)&1 == 1
}

// HashSet is OP_HASHSETANSWER: the file's part hashes.
type HashSet struct {
	Hash   [16]byte
	Hashes [][16]byte
}

// DecodeHashSet decodes OP_HASHSETANSWER.
func DecodeHashSet(payload []byte) (HashSet, error) {
	r := newReader(payload)
	m := HashSet{Hash: r.hash("file hash")}
	n := r.U16("hash count")
	if r.Err == nil && r.Left() != int(n)*16 {
		r.Fail("%d hashes in %d bytes", n, r.Left())
	}
	if r.Err == nil {
		m.Hashes = make([][16]byte, n)
		for i := range m.Hashes {
			m.Hashes[i] = r.hash("part hash")
		}
	}
	if err := r.end("hash set"); err != nil {
		return HashSet{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m HashSet) AppendTo(b []byte) []byte {
	b = appendU16(append(b, m.Hash[:]...), uint16(len(m.Hashes)))
	for _, h := range m.Hashes {
		b = append(b, h[:]...)
	}
	return b
}

// RequestParts is OP_REQUESTPARTS: up to three byte ranges [Start, End)
// of the file (an unused range is 0, 0).
type RequestParts struct {
	Hash  [16]byte
	Start [3]uint32
	End   [3]uint32
}

// DecodeRequestParts decodes OP_REQUESTPARTS.
func DecodeRequestParts(payload []byte) (RequestParts, error) {
	r := newReader(payload)
	m := RequestParts{Hash: r.hash("file hash")}
	for i := range m.Start {
		m.Start[i] = r.U32("start")
	}
	for i := range m.End {
		m.End[i] = r.U32("end")
	}
	if err := r.end("request parts"); err != nil {
		return RequestParts{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m RequestParts) AppendTo(b []byte) []byte {
	b = append(b, m.Hash[:]...)
	for _, v := range m.Start {
		b = appendU32(b, v)
	}
	for _, v := range m.End {
		b = appendU32(b, v)
	}
	return b
}

// SendingPart is OP_SENDINGPART: bytes [Start, End) of the file.
type SendingPart struct {
	Hash       [16]byte
	Start, End uint32
	Data       []byte
}

// DecodeSendingPart decodes OP_SENDINGPART; the data must be exactly
// End-Start bytes, and not empty.
func DecodeSendingPart(payload []byte) (SendingPart, error) {
	r := newReader(payload)
	m := SendingPart{Hash: r.hash("file hash"), Start: r.U32("start"), End: r.U32("end")}
	if r.Err == nil && (m.End <= m.Start || int64(m.End-m.Start) != int64(r.Left())) {
		r.Fail("range %d-%d with %d bytes", m.Start, m.End, r.Left())
	}
	m.Data = r.Take(r.Left(), "data")
	if err := r.end("sending part"); err != nil {
		return SendingPart{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m SendingPart) AppendTo(b []byte) []byte {
	b = append(b, m.Hash[:]...)
	b = appendU32(b, m.Start)
	b = appendU32(b, m.End)
	return append(b, m.Data...)
}

// QueueRank decodes OP_QUEUERANK (eDonkey, 32 bits) or OP_QUEUERANKING
// (eMule, 16 bits, padded to 12 bytes by eMule).
func QueueRank(p Packet) (uint32, error) {
	r := newReader(p.Payload)
	if p.Proto == ProtoEDonkey {
		return r.U32("queue rank"), r.end("queue rank")
	}
	v := r.U16("queue rank")
	r.Take(r.Left(), "padding")
	return uint32(v), r.Err
}

// IDToAddr returns the IPv4 address of a high client id (its four bytes in
// wire order), and ok false for a low id (below 2^24: a client behind a
// firewall that only a server can reach).
func IDToAddr(id uint32) (netip.Addr, bool) {
	if id < 1<<24 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)}), true
}

// AddrToID returns the high client id of an IPv4 address (0 for others).
func AddrToID(a netip.Addr) uint32 {
	a = a.Unmap()
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
