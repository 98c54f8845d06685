package storetest

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// labPeer is one peer a live sensor keeps seeing.
type labPeer struct {
	ip              netip.Addr
	port, listen    uint16
	peerID, nodeID  []byte
	client, version string
	items           []int
	place           observe.Place
	jurisdiction    observe.Jurisdiction
	probeMarks      []string
	pieces          int
}

// LabObservations are what a live BitTorrent sensor emits, as this tree's
// sensor builds them (internal/sensor/bittorrent: dht.go, lookup.go,
// probe.go), with synthetic values: 3,000 peers sharing 1–3 of 400
// watched items, seen again and again. Three in five are DHT get_peers
// replies (a reply names up to 8 peers at once, with the same time and
// transcript; third-party marks; no client), two in five probes of one
// peer (its client's identifiers, pieces, the sensor's own address, a
// transcript of its own). One sensor, signing: its key and chain id in
// every row, a chain hash (random here, as a hash is) in every row and a
// batch signature every 100. About 1,000 observations a second.
func LabObservations(n int, seed uint64) []observe.Observation {
	r := rand.New(rand.NewPCG(seed, 7))
	rb := func(k int) []byte {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	items := make([]observe.Item, 400)
	for i := range items {
		k := hashkind.BTIH
		if i%5 == 0 {
			k = hashkind.BTIH2
		}
		items[i] = observe.Item{Hash: hashkind.MustNew(k, rb(k.Size())),
			Matched: []observe.Match{{List: "national", Category: fmt.Sprint(1 + i%3)}}}
		if i%4 == 0 {
			items[i].Matched = append(items[i].Matched, observe.Match{List: "partner", Category: "A"})
		}
	}
	places := make([]observe.Place, 40)
	for i := range places {
		places[i] = observe.Place{Country: "FR", Subdivisions: []string{"Région " + fmt.Sprint(i%13), fmt.Sprintf("%02d", 1+i)},
			City: "Ville " + fmt.Sprint(i), Lat: 43 + r.Float64()*8, Lon: -1 + r.Float64()*8, ASN: uint32(64512 + i%9),
			Org: "Opérateur " + fmt.Sprint(i%9), DB: "lab-city.mmdb", DBBuild: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), VPN: i == 7}
	}
	clients := [][2]string{{"Transmission", "3.00"}, {"qBittorrent", "4.6.2"}, {"µTorrent", "3.6"}, {"libtorrent", "2.0.9"}}
	peers := make([]labPeer, 3000)
	for i := range peers {
		c := clients[r.IntN(len(clients))]
		p := labPeer{ip: netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))}),
			port: uint16(1024 + r.IntN(60000)), peerID: append([]byte("-TR3000-"), rb(12)...), nodeID: rb(20),
			client: c[0], version: c[1], place: places[r.IntN(len(places))], pieces: 1 + r.IntN(2000)}
		if i%5 == 0 {
			p.ip = netip.AddrFrom16([16]byte(append([]byte{0x20, 0x01, 0x0d, 0xb8}, rb(12)...)))
		}
		p.listen = p.port
		for range 1 + r.IntN(3) {
			p.items = append(p.items, r.IntN(len(items)))
		}
		p.jurisdiction = observe.Jurisdiction{Agency: "fr-agency-" + p.place.Subdivisions[1], Rule: "subdivision FR/" + p.place.Subdivisions[1] + " (france.yaml:12)"}
		if i%17 == 0 {
			p.probeMarks = []string{observe.MarkMalformedBitfield}
		}
		peers[i] = p
	}
	sensor := observe.Sensor{ID: "bt-paris-1", Version: "0.4.0", Vantage: "10.0.0.1:6881",
		Commit: "4927d5e0c0ffee0000000000000000000000beef", Config: fmt.Sprintf("%064x", 99)}
	key, chain := rb(32), fmt.Sprintf("%032x", r.Uint64())
	at := time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)
	offset := time.Duration(r.IntN(4_000_000) - 2_000_000)
	out := make([]observe.Observation, 0, n)
	for len(out) < n {
		at = at.Add(time.Duration(r.ExpFloat64() * float64(time.Millisecond)))
		if r.IntN(600) == 0 {
			offset += time.Duration(r.IntN(20_000) - 10_000) // a new clock reading
		}
		base := observe.Observation{Sensor: sensor, Network: observe.NetBitTorrent, Time: at,
			ClockKnown: true, ClockOffset: offset, ClockUncertainty: 250 * time.Microsecond, ClockSource: "ntp:10.0.0.2:123",
			Chain: observe.Chain{Key: key, ID: chain, Form: observe.Form2}}
		if r.IntN(5) < 3 { // a get_peers reply naming up to 8 peers
			item := r.IntN(len(items))
			sha := rb(32)
			for range 1 + r.IntN(8) {
				p := &peers[r.IntN(len(peers))]
				o := base
				o.Method, o.Item = observe.MethodDHTGetPeers, items[item]
				o.Endpoint = observe.Endpoint{IP: p.ip, Port: p.port, Transport: "tcp"}
				o.Possession = observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1}
				o.Marks = []string{observe.MarkSpoofableSource, observe.MarkThirdParty}
				o.Transcript.SHA256 = sha
				o.Place, o.Jurisdiction = p.place, p.jurisdiction // as ingest adds them
				out = append(out, o)
			}
		} else {
			p := &peers[r.IntN(len(peers))]
			o := base
			o.Method, o.Item = observe.MethodPeerProbe, items[p.items[r.IntN(len(p.items))]]
			o.Endpoint = observe.Endpoint{IP: p.ip, Port: p.port, Transport: "tcp",
				Local: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(32768+r.IntN(28000)))}
			have := p.pieces
			lvl := observe.Complete
			if r.IntN(3) == 0 {
				have, lvl = r.IntN(p.pieces), observe.Partial
			}
			o.Possession = observe.Possession{Level: lvl, PiecesHave: have, PiecesTotal: p.pieces}
			o.Client = observe.Client{PeerID: p.peerID, Name: p.client, Version: p.version, ListenPort: p.listen, NodeID: p.nodeID}
			o.Marks = p.probeMarks
			sum := sha256.Sum256(rb(64))
			o.Transcript.SHA256 = sum[:]
			o.Place, o.Jurisdiction = p.place, p.jurisdiction
			out = append(out, o)
		}
	}
	out = out[:n]
	for i := range out {
		o := &out[i]
		o.ID = observe.NewID(o.Time)
		o.Chain.Seq = uint64(i + 1)
		o.Chain.Prev = rb(32)
		if i%100 == 99 {
			o.Chain.BatchSig = rb(64)
		}
	}
	return out
}
