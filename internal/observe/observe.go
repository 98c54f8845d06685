// Package observe defines the Observation: the one record every sensor emits
// when a peer shares or looks for a watched item, and its JSON Lines form.
//
// An Observation never overstates: its possession Level says how surely the
// endpoint held the item, and travels with it to every store, screen, export
// and score. Sensors construct Observations only for watched items; nothing
// unwatched leaves a sensor.
package observe

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// Level is how surely an endpoint held an item. Levels are ordered: a
// higher level implies every lower one.
type Level uint8

const (
	// LevelUnknown is the zero value; it is never stored.
	LevelUnknown Level = iota
	// Announced: a third party (DHT, tracker, PEX) says the endpoint has or wants the item.
	Announced
	// Acknowledged: the endpoint itself accepted a handshake for the item.
	Acknowledged
	// Partial: the endpoint advertised some pieces.
	Partial
	// Complete: the endpoint advertised all pieces (bitfield, have-all).
	Complete
	// Verified: a piece fetched from this endpoint alone matched its hash.
	Verified
)

var levelNames = [...]string{"unknown", "announced", "acknowledged", "partial", "complete", "verified"}

func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// ParseLevel parses a level name.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if i > 0 && n == s {
			return Level(i), nil
		}
	}
	return LevelUnknown, fmt.Errorf("unknown possession level %q (known: announced, acknowledged, partial, complete, verified)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Networks and methods. Methods are free strings so that later networks add
// their own; these are the ones in use.
const (
	NetBitTorrent = "bittorrent"
	NetED2K       = "ed2k"
	NetKad        = "kad"
	NetGnutella   = "gnutella"

	MethodDHTAnnounce = "dht_announce"
	MethodDHTGetPeers = "dht_get_peers"
	MethodTracker     = "tracker"
	MethodPEX         = "pex"
	MethodPeerProbe   = "peer_probe"

	// eDonkey (network ed2k) and Kad (network kad). A probe of an eD2K
	// client is MethodPeerProbe with network ed2k.
	MethodED2KServerSources = "ed2k_server_sources" // an eD2K server named the endpoint as a source
	MethodKadSources        = "kad_sources"         // a Kad node named the endpoint as a source
)

// Sensor identifies the sensor instance that made an observation, and the
// exact build and configuration it ran (docs/evidence.md, "Tool identity").
type Sensor struct {
	ID      string // instance name, e.g. "bt-paris-1"
	Version string // Vigil version of the sensor
	Vantage string // the sensor's own address as seen on the network, if known
	// Commit is the VCS revision the sensor was built from (Go build
	// info's vcs.revision); "" when the build did not record one.
	Commit string
	// Modified says the build's tree held uncommitted changes
	// (vcs.modified): the commit alone does not name the code.
	Modified bool
	// Config is the SHA-256, in lower-case hex, of the sensor's effective
	// configuration in its canonical form (docs/evidence.md); "" when
	// unknown.
	Config string
}

// Build is a tool's exact build, as the JSON Lines form's "build" and the
// API write it.
type Build struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Modified bool   `json:"modified"`
}

// Build is the sensor's build.
func (s Sensor) Build() Build {
	return Build{Version: s.Version, Commit: s.Commit, Modified: s.Modified}
}

// Match is one watch-list entry that an item matched at the edge.
type Match struct {
	List     string // list name
	Category string // entry category as the list gives it
}

// Item is what was shared or looked for.
type Item struct {
	Hash    hashkind.Hash
	Matched []Match
}

// Endpoint is where the peer was. The port is always recorded: behind
// carrier-grade NAT an ISP cannot name a subscriber from IP and time alone.
type Endpoint struct {
	IP        netip.Addr
	Port      uint16
	Transport string // "tcp", "utp", "udp"
	// Local is the sensor's own address and port in the conversation with
	// the endpoint (the other end of the connection or datagram), which a
	// carrier-grade NAT log needs to name a subscriber. Zero when the
	// endpoint never talked to the sensor (a third party named it).
	Local netip.AddrPort
}

// Client is whatever identifiers the protocol gave about the peer's software.
type Client struct {
	PeerID     []byte // BitTorrent peer id, raw
	Name       string // decoded client name, e.g. "Transmission"
	Version    string // decoded client version, e.g. "3.00"
	ListenPort uint16 // port the peer says it listens on (BEP 10 "p", eD2K)
	NodeID     []byte // DHT node id
	UserHash   []byte // eMule user hash
	GUID       []byte // Gnutella servent GUID
}

// Possession is the level and, where known, how many pieces the peer has.
type Possession struct {
	Level       Level
	PiecesHave  int // -1 when unknown
	PiecesTotal int // -1 when unknown
}

// Transcript is the raw protocol exchange behind the observation, bounded,
// or a reference to it with its SHA-256.
type Transcript struct {
	Bytes  []byte
	Ref    string
	SHA256 []byte
}

// Observation is one sighting of an endpoint sharing or looking for a
// watched item.
type Observation struct {
	ID      string    // time-ordered unique id (UUIDv7)
	Sensor  Sensor    //
	Network string    // NetBitTorrent, ...
	Method  string    // MethodDHTAnnounce, ...
	Time    time.Time // UTC, nanoseconds
	// The sensor clock's offset when the observation was made
	// (docs/evidence.md, "Clock"). ClockKnown says whether it was
	// measured: when false the offset is unknown, and ClockOffset and
	// ClockUncertainty are zero and mean nothing. Never read an unknown
	// offset as 0.
	ClockKnown       bool
	ClockOffset      time.Duration // sensor clock minus reference clock, as measured
	ClockUncertainty time.Duration // the true offset lies within ClockOffset ± this
	// ClockSource is how the offset was measured ("ntp:127.0.0.1:123"),
	// or why it is unknown ("none": no server configured; "ntp:...
	// failed: ..." naming what went wrong).
	ClockSource string
	Item        Item
	Endpoint    Endpoint
	Client      Client
	Possession  Possession
	// Marks say what a reader must know before relying on the
	// observation (MarkThirdParty, MarkMalformedBitfield, ...): sorted,
	// without repeats, nil when nothing applies. See marks.go.
	Marks      []string
	Transcript Transcript
	// Place is where the address was placed at ingest, from the geo
	// database in force then; later database updates never rewrite it.
	// Zero when no database was configured or it knew nothing.
	Place Place
	// Jurisdiction is the agency the observation was routed to at ingest
	// (a rules-file agency id), with the rule that decided it.
	Jurisdiction Jurisdiction
	// Chain is the observation's place in its sensor's signed hash chain
	// (internal/evidence); zero when no sensor signed it.
	Chain Chain

	// memo is the sensor hash as ingest's gate or a store computed it
	// (RememberSensorHash), for the store's leaf and ingest's check to
	// reuse while what it covers is unchanged; never written to a line or
	// a store.
	memo sensorMemo
}

// Chain is where a sensor's hash chain holds an observation. The sensor
// hashes each observation it publishes (all it wrote, Chain.BatchSig
// aside), chains the hashes, and signs the chain's head at the end of each
// batch; BatchSig is that signature, on the batch's last observation.
type Chain struct {
	Key      []byte // the sensor's ed25519 public key; nil: not signed
	ID       string // the chain: one per sensor start (hex)
	Seq      uint64 // position in the chain, from 1
	Prev     []byte // the chain hash before this observation (32 bytes)
	BatchSig []byte // on a batch's last observation: the sensor's signature
	// Form is the evidence form the sensor hashed the observation in
	// (docs/evidence.md, "Evidence forms"): 0 for form 1 (the line has
	// no evidence_form: what its sensor hash and its leaf cover is the
	// whole canonical form), Form2 for form 2 (the sensor hash covers the
	// transcript through transcript_sha256, the leaf the sensor hash).
	Form uint8
}

// Form2 is Chain.Form's value for evidence form 2, what BatchSigner
// writes; form 1 is 0 (the line has no evidence_form key).
const Form2 = 2

// Signed reports whether a sensor signed the observation.
func (o *Observation) Signed() bool { return len(o.Chain.Key) > 0 }

// Place is what a geo database said of the endpoint's address when the
// observation was ingested. The observe package keeps its own copy of the
// shape so that it imports no geo code.
type Place struct {
	Country      string    // ISO 3166-1 alpha-2
	Subdivisions []string  // largest first: region, then département
	City         string    //
	Lat, Lon     float64   // degrees; both zero when unknown
	ASN          uint32    // 0 when unknown
	Org          string    // the AS's organisation
	DB           string    // the database's name (file name)
	DBBuild      time.Time // its build time, from its metadata
	VPN          bool      // the ASN is a VPN provider's: the place is the exit's
	Hosting      bool      // the ASN is a hosting provider's
}

// Found reports whether the place holds anything.
func (p *Place) Found() bool {
	return p.Country != "" || p.ASN != 0 || p.City != "" || len(p.Subdivisions) > 0
}

// Jurisdiction is the routing decision made at ingest.
type Jurisdiction struct {
	Agency string // agency id from the rules file; "" when not routed
	Rule   string // the rule that decided, e.g. "subdivision FR/78 (france.yaml:12)"
}
