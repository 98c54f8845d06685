package tracker

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// This file holds the UDP tracker wire format of BEP 15: encoders and
// decoders of every packet, for both ends (the client and the lab's fake
// trackers). Nothing here does I/O. All integers are big-endian.

// ProtocolID is the magic constant of a connect request.
const ProtocolID uint64 = 0x41727101980

// Action is the action field of a UDP tracker packet.
type Action uint32

// Actions.
const (
	ActionConnect  Action = 0
	ActionAnnounce Action = 1
	ActionScrape   Action = 2
	ActionError    Action = 3
)

const (
	udpConnectLen        = 16
	udpAnnounceReqLen    = 98
	udpAnnounceRespLen   = 20 // before the peers
	udpScrapeReqHdrLen   = 16 // before the hashes
	udpScrapeRespHdrLen  = 8  // before the counts
	udpHeaderLen         = 8  // action and transaction id, of every response
	udpMinDatagram       = udpAnnounceRespLen
	udpMaxScrapeHashes   = 74 // BEP 15: about 74 fit a datagram
	udpScrapeEntryLen    = 12
	udpIPv4PeerLen       = 6
	udpIPv6PeerLen       = 18
	udpMaxErrorMessage   = 1024
	udpAnnounceNumWantDf = -1
)

// ConnectRequest is the first packet to a UDP tracker.
type ConnectRequest struct {
	TransactionID uint32
}

// AppendConnectRequest appends the 16-byte connect request.
func AppendConnectRequest(dst []byte, p ConnectRequest) []byte {
	dst = binary.BigEndian.AppendUint64(dst, ProtocolID)
	dst = binary.BigEndian.AppendUint32(dst, uint32(ActionConnect))
	return binary.BigEndian.AppendUint32(dst, p.TransactionID)
}

// ParseConnectRequest parses a connect request; it must carry the protocol
// id. Bytes after the 16 are ignored.
func ParseConnectRequest(b []byte) (ConnectRequest, error) {
	if len(b) < udpConnectLen {
		return ConnectRequest{}, fmt.Errorf("connect request of %d bytes, want 16: %w", len(b), ErrMalformed)
	}
	if id := binary.BigEndian.Uint64(b); id != ProtocolID {
		return ConnectRequest{}, fmt.Errorf("connect request protocol id %#x, want %#x: %w", id, ProtocolID, ErrMalformed)
	}
	if a := Action(binary.BigEndian.Uint32(b[8:])); a != ActionConnect {
		return ConnectRequest{}, fmt.Errorf("connect request action %d: %w", a, ErrMalformed)
	}
	return ConnectRequest{TransactionID: binary.BigEndian.Uint32(b[12:])}, nil
}

// ConnectResponse carries the connection id.
type ConnectResponse struct {
	TransactionID uint32
	ConnectionID  uint64
}

// AppendConnectResponse appends the 16-byte connect response.
func AppendConnectResponse(dst []byte, p ConnectResponse) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(ActionConnect))
	dst = binary.BigEndian.AppendUint32(dst, p.TransactionID)
	return binary.BigEndian.AppendUint64(dst, p.ConnectionID)
}

// ParseConnectResponse parses a connect response. BEP 15 asks clients to
// accept packets longer than needed, so bytes after the 16 are ignored.
func ParseConnectResponse(b []byte) (ConnectResponse, error) {
	if err := checkHeader(b, ActionConnect, udpConnectLen); err != nil {
		return ConnectResponse{}, err
	}
	return ConnectResponse{TransactionID: binary.BigEndian.Uint32(b[4:]), ConnectionID: binary.BigEndian.Uint64(b[8:])}, nil
}

// AnnounceRequest is a UDP announce.
type AnnounceRequest struct {
	ConnectionID  uint64
	TransactionID uint32
	InfoHash      [20]byte
	PeerID        [20]byte
	Downloaded    int64
	Left          int64
	Uploaded      int64
	Event         Event
	IP            uint32 // 0: the sender's address
	Key           uint32
	NumWant       int32 // -1: the tracker's default
	Port          uint16
}

// AppendAnnounceRequest appends the 98-byte announce request.
func AppendAnnounceRequest(dst []byte, p AnnounceRequest) []byte {
	be := binary.BigEndian
	dst = be.AppendUint64(dst, p.ConnectionID)
	dst = be.AppendUint32(dst, uint32(ActionAnnounce))
	dst = be.AppendUint32(dst, p.TransactionID)
	dst = append(dst, p.InfoHash[:]...)
	dst = append(dst, p.PeerID[:]...)
	dst = be.AppendUint64(dst, uint64(p.Downloaded))
	dst = be.AppendUint64(dst, uint64(p.Left))
	dst = be.AppendUint64(dst, uint64(p.Uploaded))
	dst = be.AppendUint32(dst, uint32(p.Event))
	dst = be.AppendUint32(dst, p.IP)
	dst = be.AppendUint32(dst, p.Key)
	dst = be.AppendUint32(dst, uint32(p.NumWant))
	return be.AppendUint16(dst, p.Port)
}

// ParseAnnounceRequest parses an announce request. Bytes after the 98
// (BEP 41 options) are ignored.
func ParseAnnounceRequest(b []byte) (AnnounceRequest, error) {
	if len(b) < udpAnnounceReqLen {
		return AnnounceRequest{}, fmt.Errorf("announce request of %d bytes, want 98: %w", len(b), ErrMalformed)
	}
	be := binary.BigEndian
	if a := Action(be.Uint32(b[8:])); a != ActionAnnounce {
		return AnnounceRequest{}, fmt.Errorf("announce request action %d: %w", a, ErrMalformed)
	}
	p := AnnounceRequest{
		ConnectionID:  be.Uint64(b),
		TransactionID: be.Uint32(b[12:]),
		InfoHash:      [20]byte(b[16:36]),
		PeerID:        [20]byte(b[36:56]),
		Downloaded:    int64(be.Uint64(b[56:])),
		Left:          int64(be.Uint64(b[64:])),
		Uploaded:      int64(be.Uint64(b[72:])),
		Event:         Event(be.Uint32(b[80:])),
		IP:            be.Uint32(b[84:]),
		Key:           be.Uint32(b[88:]),
		NumWant:       int32(be.Uint32(b[92:])),
		Port:          be.Uint16(b[96:]),
	}
	if p.Event < EventNone || p.Event > EventStopped {
		return AnnounceRequest{}, fmt.Errorf("announce request event %d: %w", p.Event, ErrMalformed)
	}
	return p, nil
}

// AnnounceResponse is a UDP tracker's answer to an announce.
type AnnounceResponse struct {
	TransactionID uint32
	Interval      uint32 // seconds
	Leechers      uint32
	Seeders       uint32
	Peers         []netip.AddrPort
	// PeersSkipped counts peers in the packet beyond the parser's limit
	// or with port 0; they are not in Peers.
	PeersSkipped int
}

// AppendAnnounceResponse appends an announce response. Peers are written in
// the form of the address family the request came over: 6 bytes each for
// IPv4 (an IPv6 peer is an error), 18 bytes for IPv6 (an IPv4 peer is
// written IPv4-mapped).
func AppendAnnounceResponse(dst []byte, p AnnounceResponse, ipv6 bool) ([]byte, error) {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(ActionAnnounce))
	dst = be.AppendUint32(dst, p.TransactionID)
	dst = be.AppendUint32(dst, p.Interval)
	dst = be.AppendUint32(dst, p.Leechers)
	dst = be.AppendUint32(dst, p.Seeders)
	for _, ap := range p.Peers {
		a := ap.Addr().Unmap()
		switch {
		case ipv6:
			b := a.As16()
			dst = append(dst, b[:]...)
		case a.Is4():
			b := a.As4()
			dst = append(dst, b[:]...)
		default:
			return dst, fmt.Errorf("peer %v in an IPv4 announce response: %w", ap, ErrMalformed)
		}
		dst = be.AppendUint16(dst, ap.Port())
	}
	return dst, nil
}

// ParseAnnounceResponse parses an announce response. ipv6 says whether the
// request went over IPv6, which makes the peers 18 bytes each (BEP 15);
// at most maxPeers are kept.
func ParseAnnounceResponse(b []byte, ipv6 bool, maxPeers int) (AnnounceResponse, error) {
	if err := checkHeader(b, ActionAnnounce, udpAnnounceRespLen); err != nil {
		return AnnounceResponse{}, err
	}
	be := binary.BigEndian
	p := AnnounceResponse{
		TransactionID: be.Uint32(b[4:]),
		Interval:      be.Uint32(b[8:]),
		Leechers:      be.Uint32(b[12:]),
		Seeders:       be.Uint32(b[16:]),
	}
	size := udpIPv4PeerLen
	if ipv6 {
		size = udpIPv6PeerLen
	}
	var err error
	if p.Peers, p.PeersSkipped, err = appendCompact(nil, 0, b[udpAnnounceRespLen:], size, maxPeers); err != nil {
		return AnnounceResponse{}, fmt.Errorf("announce response peers: %w", err)
	}
	return p, nil
}

// ScrapeRequest asks for the counts of up to about 74 torrents.
type ScrapeRequest struct {
	ConnectionID  uint64
	TransactionID uint32
	InfoHashes    [][20]byte
}

// AppendScrapeRequest appends a scrape request.
func AppendScrapeRequest(dst []byte, p ScrapeRequest) []byte {
	be := binary.BigEndian
	dst = be.AppendUint64(dst, p.ConnectionID)
	dst = be.AppendUint32(dst, uint32(ActionScrape))
	dst = be.AppendUint32(dst, p.TransactionID)
	for _, h := range p.InfoHashes {
		dst = append(dst, h[:]...)
	}
	return dst
}

// ParseScrapeRequest parses a scrape request of 1 to 74 hashes.
func ParseScrapeRequest(b []byte) (ScrapeRequest, error) {
	if len(b) < udpScrapeReqHdrLen {
		return ScrapeRequest{}, fmt.Errorf("scrape request of %d bytes: %w", len(b), ErrMalformed)
	}
	be := binary.BigEndian
	if a := Action(be.Uint32(b[8:])); a != ActionScrape {
		return ScrapeRequest{}, fmt.Errorf("scrape request action %d: %w", a, ErrMalformed)
	}
	rest := b[udpScrapeReqHdrLen:]
	if len(rest) == 0 || len(rest)%20 != 0 || len(rest)/20 > udpMaxScrapeHashes {
		return ScrapeRequest{}, fmt.Errorf("scrape request with %d bytes of hashes: %w", len(rest), ErrMalformed)
	}
	p := ScrapeRequest{ConnectionID: be.Uint64(b), TransactionID: be.Uint32(b[12:])}
	for ; len(rest) > 0; rest = rest[20:] {
		p.InfoHashes = append(p.InfoHashes, [20]byte(rest[:20]))
	}
	return p, nil
}

// ScrapeResponse holds counts in the order of the request's hashes.
type ScrapeResponse struct {
	TransactionID uint32
	Stats         []ScrapeStats
}

// AppendScrapeResponse appends a scrape response (seeders, completed,
// leechers per torrent). Counts outside 0..2^32-1 are an error.
func AppendScrapeResponse(dst []byte, p ScrapeResponse) ([]byte, error) {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(ActionScrape))
	dst = be.AppendUint32(dst, p.TransactionID)
	for i, s := range p.Stats {
		for _, n := range [3]int{s.Complete, s.Downloaded, s.Incomplete} {
			if n < 0 || uint64(n) > 1<<32-1 {
				return dst, fmt.Errorf("scrape entry %d count %d: %w", i, n, ErrMalformed)
			}
			dst = be.AppendUint32(dst, uint32(n))
		}
	}
	return dst, nil
}

// ParseScrapeResponse parses a scrape response. Its length must be a whole
// number of 12-byte entries, at most 74.
func ParseScrapeResponse(b []byte) (ScrapeResponse, error) {
	if err := checkHeader(b, ActionScrape, udpScrapeRespHdrLen); err != nil {
		return ScrapeResponse{}, err
	}
	rest := b[udpScrapeRespHdrLen:]
	if len(rest)%udpScrapeEntryLen != 0 || len(rest)/udpScrapeEntryLen > udpMaxScrapeHashes {
		return ScrapeResponse{}, fmt.Errorf("scrape response with %d bytes of counts: %w", len(rest), ErrMalformed)
	}
	be := binary.BigEndian
	p := ScrapeResponse{TransactionID: be.Uint32(b[4:])}
	for ; len(rest) > 0; rest = rest[udpScrapeEntryLen:] {
		// uint32 counts fit an int on the 64-bit platforms Vigil supports;
		// clamp on 32-bit ones rather than go negative.
		p.Stats = append(p.Stats, ScrapeStats{
			Complete:   clampInt(be.Uint32(rest)),
			Downloaded: clampInt(be.Uint32(rest[4:])),
			Incomplete: clampInt(be.Uint32(rest[8:])),
		})
	}
	return p, nil
}

func clampInt(v uint32) int {
	if uint64(v) > uint64(^uint(0)>>1) {
		return int(^uint(0) >> 1)
	}
	return int(v)
}

// ErrorResponse is a tracker's error action.
type ErrorResponse struct {
	TransactionID uint32
	Message       string
}

// AppendErrorResponse appends an error response.
func AppendErrorResponse(dst []byte, p ErrorResponse) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(ActionError))
	dst = binary.BigEndian.AppendUint32(dst, p.TransactionID)
	return append(dst, p.Message...)
}

// ParseErrorResponse parses an error response; the message is kept up to
// 1024 bytes.
func ParseErrorResponse(b []byte) (ErrorResponse, error) {
	if err := checkHeader(b, ActionError, udpHeaderLen); err != nil {
		return ErrorResponse{}, err
	}
	msg := b[udpHeaderLen:]
	if len(msg) > udpMaxErrorMessage {
		msg = msg[:udpMaxErrorMessage]
	}
	return ErrorResponse{TransactionID: binary.BigEndian.Uint32(b[4:]), Message: string(msg)}, nil
}

// ResponseHeader returns the action and transaction id of a response, so
// that a reader can match it to its request before parsing it.
func ResponseHeader(b []byte) (Action, uint32, error) {
	if len(b) < udpHeaderLen {
		return 0, 0, fmt.Errorf("response of %d bytes, want at least 8: %w", len(b), ErrMalformed)
	}
	return Action(binary.BigEndian.Uint32(b)), binary.BigEndian.Uint32(b[4:]), nil
}

func checkHeader(b []byte, want Action, minLen int) error {
	if len(b) < minLen {
		return fmt.Errorf("action %d packet of %d bytes, want at least %d: %w", want, len(b), minLen, ErrMalformed)
	}
	if a := Action(binary.BigEndian.Uint32(b)); a != want {
		return fmt.Errorf("action %d, want %d: %w", a, want, ErrMalformed)
	}
	return nil
}
