package bittorrent

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/tracker"
)

// serveUDPTracker is a BEP 15 tracker on pc for a test, until pc is
// closed: after delay (none when zero) it answers a connect with
// connection id 42, and an announce that parses with what announce
// gives (its transaction id set; peers of 18 bytes when v6); an
// announce that does not parse gets nothing, another action an empty
// datagram.
func serveUDPTracker(pc *net.UDPConn, delay time.Duration, v6 bool, announce func(from netip.AddrPort, a tracker.AnnounceRequest) tracker.AnnounceResponse) {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		pkt := buf[:n]
		if n < 16 {
			continue
		}
		tx := binary.BigEndian.Uint32(pkt[12:])
		time.Sleep(delay)
		var out []byte
		switch binary.BigEndian.Uint32(pkt[8:]) {
		case uint32(tracker.ActionConnect):
			out = tracker.AppendConnectResponse(nil, tracker.ConnectResponse{TransactionID: tx, ConnectionID: 42})
		case uint32(tracker.ActionAnnounce):
			a, err := tracker.ParseAnnounceRequest(pkt)
			if err != nil {
				continue
			}
			r := announce(from, a)
			r.TransactionID = tx
			out, _ = tracker.AppendAnnounceResponse(nil, r, v6)
		}
		_, _ = pc.WriteToUDPAddrPort(out, from)
	}
}
