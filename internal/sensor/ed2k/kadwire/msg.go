package kadwire

import (
	"encoding/binary"
	"net/netip"
)

// ContactLen is the length of a contact on the wire.
const ContactLen = 16 + 4 + 2 + 2 + 1

// Contact is a Kad node as other nodes describe it.
type Contact struct {
	ID      ID
	Addr    netip.AddrPort // IPv4 address and UDP port
	TCPPort uint16
	Version uint8
}

func readContact(r *reader) Contact {
	id := r.id("contact id")
	ip := r.ip("contact ip")
	udp := r.U16("contact udp port")
	return Contact{ID: id, Addr: netip.AddrPortFrom(ip, udp), TCPPort: r.U16("contact tcp port"), Version: r.U8("contact version")}
}

// AppendTo appends the contact's 25 bytes (as in KADEMLIA2_RES and
// nodes.dat).
func (c Contact) AppendTo(b []byte) []byte { return appendContact(b, c) }

func appendContact(b []byte, c Contact) []byte {
	b = appendID(b, c.ID)
	b = binary.LittleEndian.AppendUint32(b, IPToUint32(c.Addr.Addr()))
	b = binary.LittleEndian.AppendUint16(b, c.Addr.Port())
	b = binary.LittleEndian.AppendUint16(b, c.TCPPort)
	return append(b, c.Version)
}

// BootstrapRes is KADEMLIA2_BOOTSTRAP_RES: the answering node, then up to
// 20 contacts it knows (BOOTSTRAP_REQ has no payload).
type BootstrapRes struct {
	ID       ID
	TCPPort  uint16
	Version  uint8
	Contacts []Contact
}

// DecodeBootstrapRes decodes KADEMLIA2_BOOTSTRAP_RES.
func DecodeBootstrapRes(b []byte) (BootstrapRes, error) {
	r := newReader(b)
	m := BootstrapRes{ID: r.id("node id"), TCPPort: r.U16("tcp port"), Version: r.U8("version")}
	n := int(r.U16("contact count"))
	if r.Err == nil && r.Left() != n*ContactLen {
		r.Fail("%d contacts in %d bytes", n, r.Left())
	}
	if r.Err == nil {
		m.Contacts = make([]Contact, n)
		for i := range m.Contacts {
			m.Contacts[i] = readContact(r)
		}
	}
	if err := r.end("bootstrap response"); err != nil {
		return BootstrapRes{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m BootstrapRes) AppendTo(b []byte) []byte {
	b = appendID(b, m.ID)
	b = binary.LittleEndian.AppendUint16(b, m.TCPPort)
	b = append(b, m.Version)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(m.Contacts)))
	for _, c := range m.Contacts {
		b = appendContact(b, c)
	}
	return b
}

// Hello is KADEMLIA2_HELLO_REQ or KADEMLIA2_HELLO_RES: a node's id, TCP
// port, version and tags (its internal UDP port, misc options).
type Hello struct {
	ID      ID
	TCPPort uint16
	Version uint8
	Tags    []Tag
}

// DecodeHello decodes a hello request or response.
func DecodeHello(b []byte) (Hello, error) {
	r := newReader(b)
	m := Hello{ID: r.id("node id"), TCPPort: r.U16("tcp port"), Version: r.U8("version")}
	m.Tags = readTags(r)
	if err := r.end("hello"); err != nil {
		return Hello{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m Hello) AppendTo(b []byte) []byte {
	b = appendID(b, m.ID)
	b = binary.LittleEndian.AppendUint16(b, m.TCPPort)
	b = append(b, m.Version)
	return appendTags(b, m.Tags)
}

// AckRequested reports whether the hello's misc options ask for a
// KADEMLIA2_HELLO_RES_ACK (version 8 and bit 2).
func (m Hello) AckRequested() bool {
	for _, t := range m.Tags {
		if t.Named(TagKadMisc) && t.IsInt() {
			return m.Version >= 8 && t.Int&0x04 != 0
		}
	}
	return false
}

// UDPFirewalled reports whether the hello says the node is firewalled for
// UDP (such nodes are not added to routing tables).
func (m Hello) UDPFirewalled() bool {
	for _, t := range m.Tags {
		if t.Named(TagKadMisc) && t.IsInt() {
			return t.Int&0x01 != 0
		}
	}
	return false
}

// UDPPort returns the internal UDP port the hello names (TAG_SOURCEUPORT),
// or 0.
func (m Hello) UDPPort() uint16 {
	for _, t := range m.Tags {
		if t.Named(TagSourceUPort) && t.IsInt() && t.Int > 0 && t.Int <= 0xFFFF {
			return uint16(t.Int)
		}
	}
	return 0
}

// HelloAck is KADEMLIA2_HELLO_RES_ACK.
type HelloAck struct {
	ID   ID
	Tags []Tag
}

// DecodeHelloAck decodes KADEMLIA2_HELLO_RES_ACK.
func DecodeHelloAck(b []byte) (HelloAck, error) {
	r := newReader(b)
	m := HelloAck{ID: r.id("node id")}
	m.Tags = readTags(r)
	if err := r.end("hello ack"); err != nil {
		return HelloAck{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m HelloAck) AppendTo(b []byte) []byte { return appendTags(appendID(b, m.ID), m.Tags) }

// Req is KADEMLIA2_REQ: find the contacts closest to Target. Receiver is
// the id of the node asked; a node answers only when it is its own.
type Req struct {
	Type     byte // FindValue, Store, FindNode: the number of contacts wanted (low 5 bits)
	Target   ID
	Receiver ID
}

// DecodeReq decodes KADEMLIA2_REQ.
func DecodeReq(b []byte) (Req, error) {
	r := newReader(b)
	m := Req{Type: r.U8("type"), Target: r.id("target"), Receiver: r.id("receiver")}
	if r.Err == nil && m.Type&0x1F == 0 {
		r.Fail("request type 0x%02x", m.Type)
	}
	if err := r.end("request"); err != nil {
		return Req{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m Req) AppendTo(b []byte) []byte {
	return appendID(appendID(append(b, m.Type), m.Target), m.Receiver)
}

// Res is KADEMLIA2_RES: contacts closer to Target.
type Res struct {
	Target   ID
	Contacts []Contact
}

// DecodeRes decodes KADEMLIA2_RES; its length must be exact.
func DecodeRes(b []byte) (Res, error) {
	r := newReader(b)
	m := Res{Target: r.id("target")}
	n := int(r.U8("contact count"))
	if r.Err == nil && r.Left() != n*ContactLen {
		r.Fail("%d contacts in %d bytes", n, r.Left())
	}
	if r.Err == nil {
		m.Contacts = make([]Contact, n)
		for i := range m.Contacts {
			m.Contacts[i] = readContact(r)
		}
	}
	if err := r.end("response"); err != nil {
		return Res{}, err
	}
	return m, nil
}

// AppendTo appends the payload (at most 255 contacts).
func (m Res) AppendTo(b []byte) []byte {
	cs := m.Contacts
	if len(cs) > 255 {
		cs = cs[:255]
	}
	b = append(appendID(b, m.Target), byte(len(cs)))
	for _, c := range cs {
		b = appendContact(b, c)
	}
	return b
}

// SearchSourceReq is KADEMLIA2_SEARCH_SOURCE_REQ: the sources of a file.
type SearchSourceReq struct {
	Target ID
	Start  uint16 // results to skip (low 15 bits)
	Size   uint64 // file size; 0 when unknown
}

// DecodeSearchSourceReq decodes KADEMLIA2_SEARCH_SOURCE_REQ.
func DecodeSearchSourceReq(b []byte) (SearchSourceReq, error) {
	r := newReader(b)
	m := SearchSourceReq{Target: r.id("target"), Start: r.U16("start"), Size: r.U64("size")}
	if err := r.end("search source request"); err != nil {
		return SearchSourceReq{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m SearchSourceReq) AppendTo(b []byte) []byte {
	b = appendID(b, m.Target)
	b = binary.LittleEndian.AppendUint16(b, m.Start)
	return binary.LittleEndian.AppendUint64(b, m.Size)
}

// Result is one answer of a search: an id (for a source, its user hash)
// and its tags.
type Result struct {
	ID   ID
	Tags []Tag
}

// SearchRes is KADEMLIA2_SEARCH_RES.
type SearchRes struct {
	Sender  ID // the answering node's id
	Target  ID
	Results []Result
}

// DecodeSearchRes decodes KADEMLIA2_SEARCH_RES.
func DecodeSearchRes(b []byte) (SearchRes, error) {
	r := newReader(b)
	m := SearchRes{Sender: r.id("sender"), Target: r.id("target")}
	n := int(r.U16("result count"))
	if r.Err == nil && n*17 > r.Left() {
		r.Fail("%d results in %d bytes", n, r.Left())
	}
	for i := 0; i < n && r.Err == nil; i++ {
		res := Result{ID: r.id("answer")}
		res.Tags = readTags(r)
		m.Results = append(m.Results, res)
	}
	if err := r.end("search response"); err != nil {
		return SearchRes{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m SearchRes) AppendTo(b []byte) []byte {
	b = appendID(appendID(b, m.Sender), m.Target)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(m.Results)))
	for _, res := range m.Results {
		b = appendTags(appendID(b, res.ID), res.Tags)
	}
	return b
}

// Source is what a source entry's tags say.
type Source struct {
	// Type: 1 a reachable client, 4 the same for a file of 4 GiB or
	// more; 3, 5 firewalled behind a buddy; 6 firewalled, reachable by a
	// direct UDP callback.
	Type      uint8
	Addr      netip.AddrPort // TAG_SOURCEIP (added by the storing node) and TAG_SOURCEPORT (TCP)
	UDPPort   uint16
	BuddyAddr netip.AddrPort // TAG_SERVERIP and TAG_SERVERPORT, for types 3 and 5
	Crypt     uint8          // TAG_ENCRYPTION
	Size      uint64         // TAG_FILESIZE, when given
}

// Reachable reports whether a TCP connection to Addr may reach the
// client (types 1 and 4); the others are behind a firewall.
func (s Source) Reachable() bool {
	return (s.Type == 1 || s.Type == 4) && s.Addr.Addr().IsValid() && s.Addr.Port() != 0
}

// Source decodes a source result's tags; ok is false when they carry no
// source type (not a source entry).
func (res Result) Source() (s Source, ok bool) {
	var ip, buddyIP netip.Addr
	var port, buddyPort uint16
	for _, t := range res.Tags {
		switch {
		case t.Named(TagSourceType) && t.IsInt():
			s.Type, ok = uint8(t.Int), true
		case t.Named(TagSourceIP) && t.IsInt():
			ip = IPFromUint32(uint32(t.Int))
		case t.Named(TagSourcePort) && t.IsInt():
			port = uint16(t.Int)
		case t.Named(TagSourceUPort) && t.IsInt():
			s.UDPPort = uint16(t.Int)
		case t.Named(TagServerIP) && t.IsInt():
			buddyIP = IPFromUint32(uint32(t.Int))
		case t.Named(TagServerPort) && t.IsInt():
			buddyPort = uint16(t.Int)
		case t.Named(TagEncryption) && t.IsInt():
			s.Crypt = uint8(t.Int)
		case t.Named(TagFileSize) && t.IsInt():
			s.Size = t.Int
		case t.Named(TagFileSize) && t.Type == TagBsob && len(t.Raw) == 8:
			s.Size = binary.LittleEndian.Uint64(t.Raw)
		}
	}
	if ip.IsValid() {
		s.Addr = netip.AddrPortFrom(ip, port)
	}
	if buddyIP.IsValid() {
		s.BuddyAddr = netip.AddrPortFrom(buddyIP, buddyPort)
	}
	return s, ok
}

// PublishSourceReq is KADEMLIA2_PUBLISH_SOURCE_REQ: a client says it
// shares File; Source is its user hash. (Vigil never sends it; the lab's
// simulated clients do.)
type PublishSourceReq struct {
	File   ID
	Source ID
	Tags   []Tag
}

// DecodePublishSourceReq decodes KADEMLIA2_PUBLISH_SOURCE_REQ.
func DecodePublishSourceReq(b []byte) (PublishSourceReq, error) {
	r := newReader(b)
	m := PublishSourceReq{File: r.id("file"), Source: r.id("source")}
	m.Tags = readTags(r)
	if err := r.end("publish source"); err != nil {
		return PublishSourceReq{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m PublishSourceReq) AppendTo(b []byte) []byte {
	return appendTags(appendID(appendID(b, m.File), m.Source), m.Tags)
}

// PublishRes is KADEMLIA2_PUBLISH_RES: the key stored, and the storing
// node's load (0-100).
type PublishRes struct {
	File ID
	Load uint8
}

// DecodePublishRes decodes KADEMLIA2_PUBLISH_RES.
func DecodePublishRes(b []byte) (PublishRes, error) {
	r := newReader(b)
	m := PublishRes{File: r.id("file"), Load: r.U8("load")}
	return m, r.end("publish response")
}

// AppendTo appends the payload.
func (m PublishRes) AppendTo(b []byte) []byte { return append(appendID(b, m.File), m.Load) }

// Pong is KADEMLIA2_PONG: the UDP port the ping came from, as the
// answering node saw it (PING has no payload).
type Pong struct{ Port uint16 }

// DecodePong decodes KADEMLIA2_PONG.
func DecodePong(b []byte) (Pong, error) {
	r := newReader(b)
	m := Pong{Port: r.U16("port")}
	return m, r.end("pong")
}

// AppendTo appends the payload.
func (m Pong) AppendTo(b []byte) []byte { return binary.LittleEndian.AppendUint16(b, m.Port) }

// Firewalled2Req is KADEMLIA_FIREWALLED2_REQ: "connect to my TCP port and
// tell me if you could", the check by which a client learns it is not
// firewalled.
type Firewalled2Req struct {
	TCPPort  uint16
	UserHash ID
	Options  uint8
}

// DecodeFirewalled2Req decodes KADEMLIA_FIREWALLED2_REQ.
func DecodeFirewalled2Req(b []byte) (Firewalled2Req, error) {
	r := newReader(b)
	m := Firewalled2Req{TCPPort: r.U16("tcp port"), UserHash: r.id("user hash"), Options: r.U8("options")}
	return m, r.end("firewalled request")
}

// AppendTo appends the payload.
func (m Firewalled2Req) AppendTo(b []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, m.TCPPort)
	return append(appendID(b, m.UserHash), m.Options)
}

// FirewalledRes is KADEMLIA_FIREWALLED_RES: the asker's address as the
// answering node sees it.
type FirewalledRes struct{ IP netip.Addr }

// DecodeFirewalledRes decodes KADEMLIA_FIREWALLED_RES.
func DecodeFirewalledRes(b []byte) (FirewalledRes, error) {
	r := newReader(b)
	m := FirewalledRes{IP: r.ip("ip")}
	return m, r.end("firewalled response")
}

// AppendTo appends the payload.
func (m FirewalledRes) AppendTo(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, IPToUint32(m.IP))
}
