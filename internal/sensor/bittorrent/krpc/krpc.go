// Package krpc is the message layer of the BitTorrent DHT (BEP 5): the
// bencoded queries, responses and errors a DHT node exchanges over UDP, with
// the extensions a sensor meets in the wild — IPv6 nodes and want (BEP 32),
// the external-address field and secure node ids (BEP 42), read-only nodes
// (BEP 43) and infohash sampling (BEP 51).
//
// It is bytes in, values out: no sockets, no timers, no routing. Decoding is
// strict (malformed bencoding, fields of the wrong type or length and
// duplicate keys are errors) and bounded (message size, list length,
// nesting), and allocation-free once a Msg has been reused a few times, so
// that one core can answer tens of thousands of queries a second. Decoded
// byte fields alias the input buffer.
//
// It must never trust a length, a count or an address from the wire without
// checking it against the bytes present, and never panic on any input.
package krpc

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vigil-oss/vigil/internal/bencode"
)

// Bounds on what the decoder accepts.
const (
	// MaxMessageSize is the largest datagram the decoder reads. Real KRPC
	// messages fit in one Ethernet frame; this leaves room for a BEP 51
	// sample set and a full values list.
	MaxMessageSize = 16 << 10
	// MaxListLen bounds the "values" and "want" lists.
	MaxListLen = 512
	// MaxDepth bounds nesting, counting the message dictionary itself;
	// unknown keys may hold values nested up to this depth.
	MaxDepth = 8
	// MaxTransactionIDLen bounds "t", which a node echoes back: a long one
	// would turn the sensor into an amplifier.
	MaxTransactionIDLen = 64
	// MaxTokenLen bounds the announce token.
	MaxTokenLen = 256
)

// Sentinel errors. Decode errors wrap one of them and name the key at fault.
var (
	// ErrNotKRPC means the datagram is not a bencoded dictionary with a
	// message type: some other protocol (uTP shares the port with the DHT in
	// many clients).
	ErrNotKRPC = errors.New("krpc: not a KRPC message")
	// ErrTruncated means the datagram ends inside a value.
	ErrTruncated = bencode.ErrTruncated
	// ErrTooLarge means the datagram or one of its lists exceeds the bounds.
	ErrTooLarge = errors.New("krpc: too large")
	// ErrTooDeep means values nest deeper than MaxDepth.
	ErrTooDeep = bencode.ErrTooDeep
	// ErrSyntax means the bencoding itself is malformed.
	ErrSyntax = errors.New("krpc: malformed bencoding")
	// ErrBadField means a known key holds a value of the wrong type or size.
	ErrBadField = errors.New("krpc: bad field")
	// ErrMissingField means a required key is absent.
	ErrMissingField = errors.New("krpc: missing field")
	// ErrDuplicateKey means a known key appears twice in one dictionary.
	ErrDuplicateKey = errors.New("krpc: duplicate key")
	// ErrTrailingData means bytes follow the message dictionary.
	ErrTrailingData = errors.New("krpc: trailing data")
	// ErrEncode means a Msg cannot be encoded as it stands.
	ErrEncode = errors.New("krpc: cannot encode")
)

// ID is a 160-bit node id or info-hash.
type ID [20]byte

// Kind is the message type, the "y" key.
type Kind byte

// Message types.
const (
	KindQuery    Kind = 'q'
	KindResponse Kind = 'r'
	KindError    Kind = 'e'
)

func (k Kind) String() string {
	switch k {
	case KindQuery:
		return "query"
	case KindResponse:
		return "response"
	case KindError:
		return "error"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// Method is a query's method, the "q" key.
type Method uint8

// Methods the decoder understands. Any other method name decodes as
// MethodUnknown with its name kept in Msg.MethodName.
const (
	MethodUnknown Method = iota
	MethodPing
	MethodFindNode
	MethodGetPeers
	MethodAnnouncePeer
	MethodSampleInfohashes
)

var methodNames = [...]string{
	MethodUnknown:          "",
	MethodPing:             "ping",
	MethodFindNode:         "find_node",
	MethodGetPeers:         "get_peers",
	MethodAnnouncePeer:     "announce_peer",
	MethodSampleInfohashes: "sample_infohashes",
}

// String returns the wire name of a known method, or "unknown".
func (m Method) String() string {
	if m == MethodUnknown || int(m) >= len(methodNames) {
		return "unknown"
	}
	return methodNames[m]
}

func methodFromName(b []byte) Method {
	switch string(b) {
	case "ping":
		return MethodPing
	case "find_node":
		return MethodFindNode
	case "get_peers":
		return MethodGetPeers
	case "announce_peer":
		return MethodAnnouncePeer
	case "sample_infohashes":
		return MethodSampleInfohashes
	}
	return MethodUnknown
}

// Want is the BEP 32 "want" list: which address families of nodes the
// querier wants back.
type Want uint8

// Want flags.
const (
	WantN4 Want = 1 << iota // "n4": IPv4 nodes
	WantN6                  // "n6": IPv6 nodes
)

// Error codes of BEP 5.
const (
	ErrorGeneric       = 201
	ErrorServer        = 202
	ErrorProtocol      = 203 // malformed packet, invalid arguments or bad token
	ErrorMethodUnknown = 204
)

// NodeInfo is one entry of a compact node list: 26 bytes for IPv4 ("nodes"),
// 38 for IPv6 ("nodes6", BEP 32).
type NodeInfo struct {
	ID   ID
	Addr netip.AddrPort
}

// Args are a query's arguments, the "a" dictionary. After decoding, only the
// fields the query's method uses are set; the others are zero.
type Args struct {
	// ID is the querying node's id (every method).
	ID ID
	// Target is the id sought (find_node, sample_infohashes).
	Target ID
	// InfoHash is the torrent key (get_peers, announce_peer).
	InfoHash ID
	// Token is the write token from an earlier get_peers (announce_peer).
	Token []byte
	// Port is the announcing peer's listen port (announce_peer).
	Port uint16
	// ImpliedPort says the source port of the datagram is the listen port
	// (announce_peer, BEP 5 "implied_port").
	ImpliedPort bool
	// Name is the torrent name some clients add ("n", announce_peer).
	Name []byte
	// Seed says the announcer is a seed ("seed", announce_peer; libtorrent).
	Seed bool
	// Want lists the node families asked for (find_node, get_peers,
	// sample_infohashes; BEP 32).
	Want Want
}

// Return is a response's values, the "r" dictionary. A response does not
// name the method it answers, so every known key is decoded.
type Return struct {
	// ID is the responding node's id.
	ID ID
	// Nodes are IPv4 nodes close to the target.
	Nodes []NodeInfo
	// Nodes6 are IPv6 nodes close to the target (BEP 32).
	Nodes6 []NodeInfo
	// Values are peers for the info-hash (get_peers). IPv4 peers sent in
	// 18-byte IPv4-mapped form are unmapped.
	Values []netip.AddrPort
	// Token is the write token for a later announce_peer (get_peers).
	Token []byte
	// Samples are info-hashes the node stores (BEP 51).
	Samples []ID
	// Num is how many info-hashes the node stores (BEP 51); see HasNum.
	Num int
	// Interval is how many seconds before asking the node again (BEP 51);
	// see HasInterval.
	Interval int
	// HasNum and HasInterval say whether "num" and "interval" were present,
	// since zero is a meaningful value of both.
	HasNum, HasInterval bool
}

// Error is an error message's "e" list: a code and a human-readable text.
type Error struct {
	Code int
	Msg  []byte
}

// Msg is one KRPC message. A Msg may be reused for many Decode calls; its
// slices keep their capacity, so steady-state decoding does not allocate.
type Msg struct {
	// T is the transaction id, echoed in the answer.
	T []byte
	// Kind is the message type.
	Kind Kind
	// Method is the query method (queries only).
	Method Method
	// MethodName is the method as sent; it matters for MethodUnknown. When
	// encoding a known Method it is ignored.
	MethodName []byte
	// A holds a query's arguments.
	A Args
	// R holds a response's values.
	R Return
	// E holds an error's code and message.
	E Error
	// V is the sender's client version ("v"), conventionally two letters
	// of client and two bytes of version.
	V []byte
	// IP is the recipient's address as the sender sees it ("ip", BEP 42);
	// IPv4 addresses are unmapped. Zero when absent.
	IP netip.AddrPort
	// RO marks a read-only node that must not be added to routing tables
	// ("ro", BEP 43).
	RO bool
}

// Reset clears m for reuse, keeping its slices' capacity.
func (m *Msg) Reset() {
	nodes, nodes6, values, samples := m.R.Nodes[:0], m.R.Nodes6[:0], m.R.Values[:0], m.R.Samples[:0]
	*m = Msg{}
	m.R.Nodes, m.R.Nodes6, m.R.Values, m.R.Samples = nodes, nodes6, values, samples
}
