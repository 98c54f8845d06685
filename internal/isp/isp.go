// Package isp prepares the requests that ask internet service providers to
// identify the subscribers behind a target's addresses: for one target, the
// rows of first-hand conversations between an endpoint and the sensor (IP,
// the endpoint's port in that conversation, transport, the sensor's own
// address and port, UTC time to the millisecond, clock offset, method,
// observation id, transcript SHA-256), grouped by ISP, exported as CSV,
// JSON and a printable PDF carrying a request text in French and English
// for a magistrate to sign, with an annex of everything that is not a row.
//
// The package works on plain data (Sighting, Target, Retention) and imports
// neither the store nor the analysis code; the caller reads and authorises.
// It never overstates and never points at the wrong household:
//
//   - only a first-hand contact is a row: the endpoint itself talked to the
//     sensor (a probe, or a DHT announce received over UDP with its real
//     source port), recorded with the sensor's own address and port and a
//     transcript digest. What a tracker, a PEX peer or a DHT node said of
//     the endpoint (with a port someone else reported, at the time Vigil
//     heard the claim), a datagram whose source could be forged, an
//     import, an address the sensor marked private, an announce stored
//     with its declared port, any method other than a probe or a DHT
//     announce: each goes to the annex with why (Annex* codes);
//   - every row keeps the endpoint's port and transport of that
//     conversation and the sensor's end: behind carrier-grade NAT an
//     address and a time alone cannot name a subscriber;
//   - times are the sensor clock's reading in UTC, printed to the millisecond
//     (truncated, RFC 3339), always with the clock offset measured for that
//     sighting and its source (reference time = listed time − offset);
//   - an address that appears at no other instant within the endpoint
//     window (Target.EndpointWindow, 24 hours by default) of a sighting's
//     own, among all the request's sightings within retention (first-hand
//     or not), is no row: addresses are reassigned, and after a longer
//     silence the address may be another subscriber's; it is in the annex
//     as seen_once;
//   - sightings older than the ISP's retention period (Retention, per
//     country) are in the annex, and the group says how many and from which
//     cut-off, so that nobody asks for data the law lets the ISP delete;
//   - VPN and hosting addresses are flagged: the subscriber there is the
//     provider's customer at best, not a household;
//   - a row at an address that is not globally routable (private,
//     loopback, CGNAT shared space, ...: the class the caller gives in
//     Sighting.NonPublic, for the sensors keep the endpoint's own
//     conversation from such an address unmarked) is flagged, and its
//     group carries the non-public note naming the lines: it names no
//     subscriber of a public network;
//   - a 6to4 (2002::/16), Teredo (2001::/32) or NAT64 (64:ff9b::/96,
//     64:ff9b:1::/48) address is a relay's or translator's, placed at
//     its operator (Hurricane Electric for the first two in the public
//     databases), who never had the subscriber: it is no row and belongs
//     to no group (AnnexTunnel); the annex names the IPv4 address inside
//     (and, for Teredo, the client's mapped port) whose ISP to ask;
//   - the device links that grouped the target's addresses are listed in the
//     annex with rule, evidence and confidence, under the words
//     "identifiers can be forged";
//   - the possession level of each sighting travels with its row, and
//     so do its marks (a first-hand row can carry malformed_bitfield,
//     malformed_have, transcript_cut, ...): in the JSON, the CSV, the
//     letter beside the level, and the request id;
//   - an IPv6 row names the full address with its port and time, and a
//     note on the prefix: the subscriber prefix that an active
//     subscriber_prefix link of the target groups it under, when the
//     row's address and port are one of that link's two endpoints, with
//     the allocation it rests on (the ISP's, from the analysis's table, or
//     the analysis's default length), or that the address stands alone
//     (another address of the prefix, or another port, is not grouped).
//     An ISP records the prefix it delegated, not every address in it:
//     the group's ipv6 note asks for the subscriber who held the prefix
//     containing the address.
//
// # Grouping
//
// Rows are grouped by (ASN, organisation, country): one letter per ISP and
// country, because both the retention law and the legal desk that answers
// are national. Sightings with no ASN form an "unknown ISP" group per country,
// with a note saying the operator must be found (RIR whois) before sending.
// Groups are ordered by ASN (unknown last), organisation, country; rows by
// time, then address, port and observation id.
//
// # JSON
//
// WriteJSON writes one object:
//
//	id                  request id, "ISP-" and 12 hex digits of a SHA-256 over the request's content
//	created             creation time, RFC 3339 UTC with milliseconds
//	target              {id, case, jurisdiction, agency, score}: internal, never printed in a letter;
//	                    with requester {id, name, address, contact, country}, the service the
//	                    letters name at their head (agency is its name)
//	sightings           how many sightings were given
//	kept, dropped       how many became rows, how many are in the annex
//	addresses_seen_once how many distinct addresses were seen at a single instant, or had a
//	                    sighting with no other instant within the endpoint window
//	notes               request-wide notes: [{code, en, fr}]
//	groups              one per ISP and country:
//	  id                request id + "-NN"
//	  asn               0 when unknown
//	  org               the AS organisation, "" when unknown
//	  isp               the name printed: org, or "unknown ISP"
//	  country           ISO 3166-1 alpha-2 of the addresses, "" when unknown
//	  retention         the period applied, e.g. "1y"
//	  cutoff            sightings before this instant were left out (RFC 3339 UTC, ms)
//	  dropped           how many were left out for retention
//	  notes             [{code, en, fr}]; codes: mutual-legal-assistance (the ISP is outside the
//	                    requester's country: one letter, in English), retention, unknown-asn, vpn, hosting,
//	                    ipv6 (some rows are IPv6 addresses), transcript-purged (some rows' raw
//	                    exchange was purged under retention: the lines and days), non-public
//	                    (some rows are at an address that is not publicly routable: the lines
//	                    and classes)
//	  rows              [{line, ip, source_port, transport, direction, sensor_address, time,
//	                      clock_offset, clock_offset_ns, clock_offset_ms, clock_uncertainty_ms,
//	                      clock_source, instants_of_ip, vpn,
//	                      hosting, level, network, method, item, observation_id,
//	                      transcript_sha256, transcript_purged, subscriber_prefix, prefix_note,
//	                      non_public, marks}]
//	annex               [{ip, port, transport, time, method, observation_id, level, marks, reason, en, fr}]
//	links               {warning: {code, en, fr}, links: [{a, b, rule, evidence, reason, confidence, state}]}
//
// Row fields: source_port is the endpoint's own port in the conversation
// (the port the sensor connected to for a probe, direction
// "sensor_to_peer"; the UDP source port of the datagram for a DHT
// announce, direction "peer_to_sensor"); sensor_address is the sensor's
// address:port at the other end; time is RFC 3339 UTC with milliseconds as
// read on the sensor clock; clock_offset is that clock minus the
// reference, in milliseconds with three decimals and a sign ("+0.512ms"),
// or "unknown" when it was not measured or no measurement could be trusted
// (clock_source says why); clock_offset_ns the exact value and
// clock_offset_ms the same in milliseconds, clock_uncertainty_ms the bound
// of its error (the reference time was within listed time - offset ±
// uncertainty), all three null when the offset is unknown; instants_of_ip counts the distinct
// instants at which the row's address appears among the request's
// sightings within retention; level is the possession level;
// subscriber_prefix (e.g. "2001:db8:1:2::/64") and prefix_note ({code, en,
// fr}, code subscriber-prefix or address-only) are present on IPv6 rows
// only; transcript_purged (RFC 3339 UTC, ms) is present on a row whose raw
// exchange a retention purge removed, when it did: transcript_sha256 is
// then the digest recorded at the time, with no transcript behind it any
// more; non_public (e.g. "private", "cgnat", "loopback") is present on a
// row whose address is not publicly routable. An annex
// entry's port is whatever its source gave (a third party's report, a
// declared port): never a conversation's port.
//
// # CSV
//
// WriteCSV writes a header line, then one line per row with the columns
// request_id, group_id, line, asn, isp, country, ip, source_port,
// transport, direction, sensor_address, time_utc, clock_offset_ms (three
// decimals, e.g. -2.500; empty when unknown), clock_uncertainty_ms (three
// decimals; empty when unknown), clock_source, instants_of_ip, vpn, hosting,
// level, network, method, item, observation_id, transcript_sha256,
// subscriber_prefix, prefix_note (English; both empty on IPv4 rows),
// non_public (the class of an address that is not publicly routable;
// empty for a public one), transcript_purged (when a retention purge
// removed the row's raw exchange, RFC 3339 UTC; empty while it is kept).
// Notes,
// the annex and the links are only in the JSON and the PDF. Cells of text
// that a spreadsheet would read as a formula (starting with = + - @) are
// prefixed with a single quote.
//
// This package must never fetch anything, send a request anywhere or decide
// on its own that an address is the target's: it prepares paper for a
// magistrate.
package isp

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// TimeLayout is how every time is printed: RFC 3339, UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Sighting is one observation of the target's endpoint, reduced to what an
// ISP request needs.
type Sighting struct {
	IP netip.Addr
	// Port is the endpoint's own port in the conversation: for a probe,
	// the port the sensor connected to; for a DHT announce, the UDP
	// source port of the datagram. For a third party's claim it is the
	// port the third party reported. 0 when unknown.
	Port      uint16
	Transport string // "tcp", "utp", "udp"
	// SensorAddress is the sensor's own address and port in that
	// conversation (observe.Endpoint.Local): a carrier-grade NAT log needs
	// both ends. Zero when the endpoint never talked to the sensor.
	SensorAddress netip.AddrPort
	// TranscriptSHA256 is the hex SHA-256 of the observation's transcript,
	// "" when it has none.
	TranscriptSHA256 string
	// Marks are the observation's marks (observe.Mark*).
	Marks []string
	Time  time.Time // as read on the sensor clock, UTC
	// ClockOffset is the sensor clock minus the reference clock, within
	// ± ClockUncertainty, when ClockKnown; when not, both are zero and
	// the offset is unknown (never read as 0).
	ClockKnown       bool
	ClockOffset      time.Duration
	ClockUncertainty time.Duration
	ClockSource      string // how the offset was measured ("ntp:..."), or why it is unknown ("none", "ntp:... failed: ...")
	ObservationID    string
	Network          string        // observe.NetBitTorrent, ...
	Method           string        // observe.MethodDHTAnnounce, ...
	Level            observe.Level // as counted (observe.CountedLevel: FromObservation sets it so)
	Item             string        // the item's hash as "kind:value", e.g. "btih:…"
	ASN              uint32        // 0 when unknown
	Org              string        // the AS organisation
	Country          string        // ISO 3166-1 alpha-2, where the address was placed
	VPN              bool          // the ASN is a VPN provider's
	Hosting          bool          // the ASN is a hosting provider's
	// NonPublic is the class of an address that is not globally routable
	// ("private", "loopback", "cgnat", "ula", "documentation", ...:
	// scope.NonPublicClass), "" for a public one. The caller sets it
	// (this package knows no address ranges): the sensors mark such an
	// address only on a third party's claim, and keep the endpoint's own
	// conversation from it, which may become a row (Row.NonPublic).
	NonPublic string
}

// FromObservation reduces an observation, with the Place filled at ingest,
// to a Sighting.
func FromObservation(o *observe.Observation) Sighting {
	item := ""
	if !o.Item.Hash.IsZero() {
		item = o.Item.Hash.Kind().String() + ":" + o.Item.Hash.String()
	}
	sum := ""
	if len(o.Transcript.SHA256) > 0 {
		sum = hex.EncodeToString(o.Transcript.SHA256)
	}
	return Sighting{
		SensorAddress:    o.Endpoint.Local,
		TranscriptSHA256: sum,
		Marks:            slices.Clone(o.Marks),
		IP:               o.Endpoint.IP,
		Port:             o.Endpoint.Port,
		Transport:        o.Endpoint.Transport,
		Time:             o.Time.UTC(),
		ClockKnown:       o.ClockKnown,
		ClockOffset:      o.ClockOffset,
		ClockUncertainty: o.ClockUncertainty,
		ClockSource:      o.ClockSource,
		ObservationID:    o.ID,
		Network:          o.Network,
		Method:           o.Method,
		Level:            observe.CountedLevel(o.Possession, o.Marks), // never complete from a malformed bitfield
		Item:             item,
		ASN:              o.Place.ASN,
		Org:              o.Place.Org,
		Country:          o.Place.Country,
		VPN:              o.Place.VPN,
		Hosting:          o.Place.Hosting,
	}
}

// Target is the descriptive header of a request. Only Case and Agency are
// printed in the letters; the rest stays on the internal summary page.
type Target struct {
	ID           string  // target id
	Case         string  // procedure or case reference; "" prints a placeholder
	Jurisdiction string  // agency id the target is routed to
	Agency       string  // name of the requesting service, when Requester.Name is empty
	Score        float64 // analysis score; internal
	// Requester is the requesting service as the letters name it (its name
	// and postal address) and the country whose providers it can ask
	// directly: a provider elsewhere gets a letter in English that says
	// it goes through mutual legal assistance.
	Requester Requester
	// Links are the device links that joined the target's endpoints,
	// shown in the annex with their rule, evidence and confidence:
	// identifiers can be forged, and a magistrate must see on what the
	// grouping of addresses rests.
	Links []Link
	// EndpointWindow is the analysis's endpoint window: an address silent
	// for longer may be another subscriber's, so a row's second instant
	// must be within it of the row's own (0: DefaultEndpointWindow).
	EndpointWindow time.Duration
}

// DefaultEndpointWindow is the window of Target.EndpointWindow when none
// is given: the analysis's default (analysis.DefaultConfig).
const DefaultEndpointWindow = 24 * time.Hour

// Requester is the service that makes a request, from the agency of the
// jurisdiction rules (or the agencies of the store).
type Requester struct {
	ID      string // agency id, e.g. "fr-pp-dpj"
	Name    string // printed at the head of each letter; "" prints a placeholder naming ID
	Address string // postal address; "" prints a placeholder
	Contact string // reply e-mail or telephone, free text; may be empty
	Country string // ISO 3166-1 alpha-2; "" tells no provider foreign
}

// DisplayName is the name to print: Name, else the Target's Agency.
func (t *Target) DisplayName() string {
	if strings.TrimSpace(t.Requester.Name) != "" {
		return t.Requester.Name
	}
	return t.Agency
}

// overseasFR are the French overseas territories that geolocation
// databases report as countries: their providers are French ones.
var overseasFR = map[string]bool{"GP": true, "MQ": true, "GF": true, "RE": true, "YT": true, "PM": true,
	"BL": true, "MF": true, "WF": true, "PF": true, "NC": true, "TF": true}

func nationOf(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if overseasFR[c] {
		return "FR"
	}
	return c
}

// Foreign reports whether a provider in country is outside the
// requester's country (false when either is unknown).
func (r Requester) Foreign(country string) bool {
	a, b := nationOf(r.Country), nationOf(country)
	return a != "" && b != "" && a != b
}

// Link is one device link of the target, as the annex shows it.
type Link struct {
	A, B       string  // "ip:port" of the two endpoints
	Rule       string  // the analysis rule, e.g. "peer_id_session"
	Evidence   string  // the identifier or pair that made it
	Reason     string  // what was seen where and when
	Confidence float64 // 0..1, as the analysis scored it
	State      string  // "active", "withdrawn", "rejected"
}

// ForgeryWarning is printed wherever links are shown.
const (
	ForgeryWarningEN = "Identifiers can be forged: a link between two addresses is an inference from protocol identifiers that a peer chooses or can copy, never proof that one subscriber used both."
	ForgeryWarningFR = "Les identifiants peuvent être falsifiés : un lien entre deux adresses est une déduction à partir d'identifiants de protocole qu'un pair choisit ou peut copier, jamais la preuve qu'un même abonné a utilisé les deux."
)

// Note is a remark in both languages, with a code callers can test.
type Note struct {
	Code string `json:"code"`
	EN   string `json:"en"`
	FR   string `json:"fr"`
}

// LinksWarning is the note that goes beside device links wherever a
// program reads them (the API's target, 'target show --json', an
// evidence bundle's links.json, the ISP request's JSON).
func LinksWarning() Note {
	return Note{Code: "forgery", EN: ForgeryWarningEN, FR: ForgeryWarningFR}
}

// Note codes.
const (
	NoteRetention        = "retention"               // sightings left out: older than the ISP's retention
	NoteTranscriptPurged = "transcript-purged"       // some rows' raw exchange was purged under Vigil's own retention
	NoteUnknownASN       = "unknown-asn"             // the ISP is not known
	NoteSeenOnce         = "seen-once"               // some addresses were seen at one instant only (they are in the annex)
	NoteVPN              = "vpn"                     // some addresses are a VPN provider's
	NoteHosting          = "hosting"                 // some addresses are a hosting provider's
	NoteNoPort           = "no-port"                 // some rows have no port (no longer made: such sightings go to the annex)
	NoteNoAddress        = "no-address"              // sightings without an address were left out
	NoteNothing          = "nothing"                 // no row is left to request
	NoteAnnex            = "annex"                   // sightings that are not rows are in the annex, each with why
	NoteLinks            = "links"                   // the target's addresses were grouped by device links
	NoteForeign          = "mutual-legal-assistance" // the provider is abroad: the request goes through mutual legal assistance
	NoteNonPublic        = "non-public"              // some rows are at an address that is not globally routable
	NoteIPv6             = "ipv6"                    // some rows are IPv6 addresses: the ISP identifies the holder of the delegated prefix
)

// Row prefix notes (Row.PrefixNote) of IPv6 rows.
const (
	NoteSubscriberPrefix = "subscriber-prefix" // the address is in a subscriber prefix that grouped the target's addresses
	NoteAddressOnly      = "address-only"      // the address is not grouped with any other of its prefix
)

// RuleSubscriberPrefix is the analysis rule whose links group the IPv6
// addresses of one subscriber prefix. Its evidence is
// "AS<asn>|<prefix>|<port>|<basis>|<client>|<version>", basis "table"
// (the ISP's allocation is in the analysis's table) or "default" (its
// default length); links stored before the client was part of it have
// the first four fields only. The client's fields are not read here.
const RuleSubscriberPrefix = "subscriber_prefix"

// subscriberPrefix is one subscriber prefix an active link grouped
// addresses under.
type subscriberPrefix struct {
	asn   uint32
	pfx   netip.Prefix
	table bool // the length is the ISP's, from the allocation table; else the default
	// ends are the link's two endpoints: only a row at one of them is
	// grouped (another address of the prefix, or another port, may be
	// another machine or a later holder of the prefix).
	ends [2]netip.AddrPort
}

// linkEnd reads a link's endpoint, "ip:port" or, for a later generation
// of an endpoint, "ip:port#n" (the analysis's EndpointKey).
func linkEnd(s string) (netip.AddrPort, bool) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), true
}

// linkedPrefixes reads the subscriber prefixes of the target's active
// subscriber_prefix links; evidence it cannot read is left out (the row
// is then said to stand alone: never a grouping the link did not state).
func linkedPrefixes(links []Link) []subscriberPrefix {
	var out []subscriberPrefix
	for _, l := range links {
		if l.Rule != RuleSubscriberPrefix || l.State != "active" {
			continue
		}
		// The client's name and version, after the basis, may hold
		// anything: they stay in the fifth field, unread.
		f := strings.SplitN(l.Evidence, "|", 5)
		if len(f) < 4 || !strings.HasPrefix(f[0], "AS") || (f[3] != "table" && f[3] != "default") {
			continue
		}
		asn, err := strconv.ParseUint(f[0][2:], 10, 32)
		pfx, perr := netip.ParsePrefix(f[1])
		// A /48 is the most an ISP gives one end site (RFC 6177): a
		// shorter prefix is no subscriber's, whatever the evidence says.
		if err != nil || perr != nil || !pfx.Addr().Is6() || pfx.Addr().Is4In6() || pfx != pfx.Masked() || pfx.Bits() < 48 {
			continue
		}
		a, aok := linkEnd(l.A)
		b, bok := linkEnd(l.B)
		if !aok || !bok {
			continue
		}
		out = append(out, subscriberPrefix{asn: uint32(asn), pfx: pfx, table: f[3] == "table", ends: [2]netip.AddrPort{a, b}})
	}
	return out
}

// prefixNote is the note of an IPv6 row of group g: the subscriber prefix
// of an active link (of the same AS) one of whose two endpoints is the
// row's address and port, or that the address stands alone. A row at
// another address of a linked prefix, or on another port, is not grouped:
// the link said nothing of it. A Link carries no time span, so a row at
// a link's endpoint is grouped whenever it was seen (the analysis names a
// later generation of an endpoint "ip:port#n", read as the same address
// and port).
func prefixNote(ip netip.Addr, port uint16, g *Group, prefixes []subscriberPrefix) (netip.Prefix, Note) {
	ep := netip.AddrPortFrom(ip, port)
	for _, sp := range prefixes {
		if sp.asn != g.ASN || !sp.pfx.Contains(ip) || (sp.ends[0] != ep && sp.ends[1] != ep) {
			continue
		}
		n := Note{Code: NoteSubscriberPrefix}
		if sp.table {
			n.EN = fmt.Sprintf("subscriber prefix %s (/%d per %s allocation)", sp.pfx, sp.pfx.Bits(), g.ISP())
			n.FR = fmt.Sprintf("préfixe d'abonné %s (/%d selon l'allocation de %s)", sp.pfx, sp.pfx.Bits(), g.ISP())
		} else {
			n.EN = fmt.Sprintf("subscriber prefix %s (/%d assumed: Vigil's default, %s's allocation is not in its table)", sp.pfx, sp.pfx.Bits(), g.ISP())
			n.FR = fmt.Sprintf("préfixe d'abonné %s (/%d supposé : valeur par défaut de Vigil, l'allocation de %s n'est pas dans sa table)", sp.pfx, sp.pfx.Bits(), g.ISP())
		}
		return sp.pfx, n
	}
	return netip.Prefix{}, Note{Code: NoteAddressOnly,
		EN: "address only: not grouped with another address of a subscriber prefix",
		FR: "adresse seule : non regroupée avec une autre adresse d'un préfixe d'abonné"}
}

// nonPublicNote warns, when some rows are at an address that is not
// globally routable, which lines and of what class: such an address
// names no subscriber of a public network, and only the operator of the
// network where the sensor met it could say who held it. The zero Note
// when every row is public.
func nonPublicNote(rows []Row) Note {
	var en, fr []string
	for _, r := range rows {
		if r.NonPublic != "" {
			en = append(en, fmt.Sprintf("line %d (%s)", r.Line, r.NonPublic))
			fr = append(fr, fmt.Sprintf("ligne %d (%s)", r.Line, r.NonPublic))
		}
	}
	if len(en) == 0 {
		return Note{}
	}
	return Note{Code: NoteNonPublic,
		EN: fmt.Sprintf("%d row(s) name an address that is not publicly routable: %s. Such an address (private, loopback, shared carrier-grade NAT space, unique-local, documentation, ...) names no subscriber of a public network: many homes hold the same one. Only the operator of the network inside which the sensor met it could say who held it; do not send these lines to any other provider.", len(en), strings.Join(en, ", ")),
		FR: fmt.Sprintf("%d ligne(s) désignent une adresse non routable publiquement : %s. Une telle adresse (privée, de bouclage, de l'espace partagé des CGNAT, locale unique, de documentation, ...) ne désigne aucun abonné d'un réseau public : de nombreux foyers détiennent la même. Seul l'opérateur du réseau à l'intérieur duquel le capteur l'a rencontrée pourrait dire qui la détenait ; ne pas adresser ces lignes à un autre fournisseur.", len(fr), strings.Join(fr, ", "))}
}

// ipv6Note tells the ISP how to read the IPv6 rows of a group.
func ipv6Note(n int) Note {
	return Note{Code: NoteIPv6,
		EN: fmt.Sprintf("%d row(s) name an IPv6 address in full, with its port and time. An ISP records the prefix it delegated to each subscriber, not every address the subscriber's devices draw in it: please identify the subscriber to whom the prefix holding the address was delegated at the time of the row. Where a row gives a subscriber prefix, the requesting service grouped that prefix's addresses as one subscriber's, by the allocation named (the device links are in the annex).", n),
		FR: fmt.Sprintf("%d ligne(s) désignent une adresse IPv6 complète, avec son port et son heure. Un fournisseur enregistre le préfixe qu'il a délégué à chaque abonné, non chaque adresse que les appareils de l'abonné y tirent : merci d'identifier l'abonné auquel était délégué, à l'heure de la ligne, le préfixe contenant l'adresse. Lorsqu'une ligne indique un préfixe d'abonné, le service requérant a regroupé les adresses de ce préfixe comme celles d'un même abonné, selon l'allocation indiquée (les liens d'appareil figurent en annexe).", n)}
}

// Why a sighting is in the annex rather than a row.
const (
	AnnexNoAddress        = "no_address"         // no IP address
	AnnexRetention        = "retention"          // older than the ISP's retention period
	AnnexThirdParty       = "third_party"        // a tracker, PEX peer or DHT node named the endpoint
	AnnexSpoofable        = "spoofable_source"   // rests on one unauthenticated datagram
	AnnexUnsigned         = "unsigned_import"    // imported from a file, or received unsigned: no sensor signed it
	AnnexSignatureFailed  = "signature_failed"   // came as a sensor's, but no trusted sensor's signature covers it
	AnnexNonPublic        = "non_public_address" // a private or local address names no subscriber
	AnnexInfohashMismatch = "infohash_mismatch"  // the exchange was about another item
	AnnexNoSensorAddress  = "no_sensor_address"  // the sensor's own address:port was not recorded
	AnnexNoTranscript     = "no_transcript"      // no transcript digest to check the row against
	AnnexDeclaredPort     = "declared_port"      // a DHT announce recorded with its declared port, not the datagram's
	AnnexNoPort           = "no_port"            // no port
	AnnexSeenOnce         = "seen_once"          // the address appears at a single instant in the whole request
	AnnexTunnel           = "tunnel_address"     // a 6to4, Teredo or NAT64 address: the relay's, not a subscriber's of its AS
	AnnexNotAConversation = "not_a_conversation" // a method not known here as the endpoint's own conversation with the sensor
	AnnexTimeImplausible  = "time_implausible"   // its time was impossible when ingest stored it: when it was seen is unknown
)

// Row is one line of a request: one first-hand conversation between the
// endpoint and the sensor.
type Row struct {
	Line      int // 1-based, within its group
	IP        netip.Addr
	Port      uint16 // the endpoint's own port in the conversation (source_port)
	Transport string
	// Direction says who opened the conversation: "sensor_to_peer" (the
	// sensor connected to IP:Port, a probe) or "peer_to_sensor" (the
	// endpoint sent from IP:Port to the sensor, a DHT announce).
	Direction        string
	SensorAddress    netip.AddrPort
	TranscriptSHA256 string
	// TranscriptPurged is when a retention purge removed the row's raw
	// protocol exchange (its purge record's time), zero while it is kept:
	// the digest is then only what was recorded at the time, and the row
	// says so (MarkTranscriptsPurged).
	TranscriptPurged time.Time
	Time             time.Time     // UTC
	ClockKnown       bool          // the offset was measured and trusted (Sighting.ClockKnown)
	ClockOffset      time.Duration // sensor clock minus reference, ± ClockUncertainty
	ClockUncertainty time.Duration
	ClockSource      string
	ObservationID    string
	Network          string
	Method           string
	Level            observe.Level
	// Marks are the observation's marks (observe.Mark*) that a
	// first-hand row can still carry (malformed_bitfield, malformed_have,
	// transcript_cut, node_id_via_ping, ...): what a reader must know
	// before relying on its level. They travel with the row into the
	// JSON, the CSV, the letter and the request id.
	Marks   []string
	Item    string
	VPN     bool
	Hosting bool
	// Instants is how many distinct instants (to the millisecond) the
	// row's address appears at among all the request's sightings within
	// retention, first-hand or not, near the row or not. A row always has
	// at least two, one of them within the endpoint window of its own: a
	// sighting without that goes to the annex.
	Instants int
	// SeenOnce is always false for a row (kept for readers of old files).
	SeenOnce bool
	// SubscriberPrefix is, for an IPv6 row, the subscriber prefix that an
	// active subscriber_prefix device link of the target groups its
	// address under, when the row's address and port are one of the
	// link's endpoints (the prefix the ISP delegated to one subscriber, by
	// the analysis's allocation table or its default); invalid otherwise.
	SubscriberPrefix netip.Prefix
	// PrefixNote, for an IPv6 row, says what the request rests on: the
	// subscriber prefix and the allocation it comes from
	// (NoteSubscriberPrefix), or that the address stands alone
	// (NoteAddressOnly). Empty for an IPv4 row.
	PrefixNote Note
	// NonPublic is the class of the row's address when it is not
	// globally routable (Sighting.NonPublic), "" for a public one: such an
	// address names no subscriber of a public network, and the row, its
	// group's non-public note and the letter say so.
	NonPublic string
}

// AnnexEntry is a sighting that is not a row, with why.
type AnnexEntry struct {
	IP            netip.Addr
	Port          uint16
	Transport     string
	Time          time.Time
	Method        string
	ObservationID string
	Level         observe.Level
	// Marks are the observation's marks, as a row's (Row.Marks): they
	// travel with its level into the JSON and the request id.
	Marks  []string
	Reason string // one of the Annex* codes
	EN, FR string // why it is not a row, for a reader
}

// Group is the part of a request addressed to one ISP in one country.
type Group struct {
	ID        string // request id + "-NN"
	ASN       uint32 // 0 when unknown
	Org       string // "" when unknown
	Country   string // "" when unknown
	Retention Period
	Cutoff    time.Time // sightings strictly before were left out
	Dropped   int       // left out for retention
	Notes     []Note
	Rows      []Row
}

// ISP is the name to print for the group's operator.
func (g *Group) ISP() string {
	switch {
	case g.ASN == 0:
		return "unknown ISP"
	case g.Org == "":
		return fmt.Sprintf("AS%d", g.ASN)
	}
	return g.Org
}

// Has reports whether the group carries a note with the code.
func (g *Group) Has(code string) bool {
	return slices.ContainsFunc(g.Notes, func(n Note) bool { return n.Code == code })
}

// Request is everything needed to write the letters for one target.
type Request struct {
	ID        string
	Created   time.Time // UTC, milliseconds
	Target    Target
	Sightings int // given to Build
	Kept      int // became rows
	Dropped   int // not rows: every entry of the annex
	SeenOnce  int // distinct addresses seen at a single instant, or with a sighting alone in its endpoint window
	Notes     []Note
	Groups    []Group
	// Annex lists every sighting that is not a row, with why, in time
	// order.
	Annex []AnnexEntry
}

// Has reports whether the request carries a note with the code.
func (r *Request) Has(code string) bool {
	return slices.ContainsFunc(r.Notes, func(n Note) bool { return n.Code == code })
}

type groupKey struct {
	asn     uint32
	org     string
	country string
}

// FirstHand reports whether the sighting is the endpoint itself talking to
// the sensor, by the rule of observe.Observation.FirstHand: never a
// tracker, PEX, DHT-value, eD2K server or Kad source report, nor one
// marked third_party, spoofable_source, unsigned_import,
// signature_failed or time_implausible.
func (x *Sighting) FirstHand() bool {
	o := observe.Observation{Method: x.Method, Marks: x.Marks}
	return o.FirstHand()
}

// thirdPartyMethods are the methods that record another party's claim
// about the endpoint, whatever marks the record carries.
var thirdPartyMethods = []string{observe.MethodDHTGetPeers, observe.MethodTracker, observe.MethodPEX,
	observe.MethodED2KServerSources, observe.MethodKadSources}

// conversationMethods are the only methods that can be rows: the sensor
// connected to the endpoint (a probe), or received its datagram with the
// real source port (a DHT announce). Any other method, known or not, is
// no row (AnnexNotAConversation for those not already a third party's).
var conversationMethods = []string{observe.MethodPeerProbe, observe.MethodDHTAnnounce}

func (x *Sighting) has(m string) bool { return slices.Contains(x.Marks, m) }

// notRow says why a sighting within retention cannot be a row, or "" when
// it can (subject to the seen-once check).
func notRow(x *Sighting) string {
	switch {
	case x.has(observe.MarkTimeImplausible): // before all: no time to place any other reason at
		return AnnexTimeImplausible
	case x.has(observe.MarkThirdParty) || slices.Contains(thirdPartyMethods, x.Method):
		return AnnexThirdParty
	case x.has(observe.MarkUnsigned): // not first-hand either: said first, as the more exact reason
		return AnnexUnsigned
	case x.has(observe.MarkSignatureFailed): // the same
		return AnnexSignatureFailed
	case !x.FirstHand(): // spoofable_source or unsigned_import. or whatever else observe decides
		return AnnexSpoofable
	case !slices.Contains(conversationMethods, x.Method):
		// observe.FirstHand names the third parties it knows; methods are
		// free strings, and a row needs a method known to be the
		// endpoint's own conversation with the sensor.
		return AnnexNotAConversation
	case x.has(observe.MarkNonPublicAddress):
		return AnnexNonPublic
	case x.has(observe.MarkInfohashMismatch):
		return AnnexInfohashMismatch
	case x.Port == 0:
		return AnnexNoPort
	case !x.SensorAddress.IsValid():
		return AnnexNoSensorAddress
	case x.TranscriptSHA256 == "":
		return AnnexNoTranscript
	case x.Method == observe.MethodDHTAnnounce && x.Transport != "udp":
		return AnnexDeclaredPort
	}
	// Last, so that its annex text (ask the ISP of the IPv4 address
	// inside) is given only for what would otherwise be a row.
	if _, ok := tunnelOf(x.IP.Unmap()); ok {
		return AnnexTunnel
	}
	return ""
}

// annexWhy explains an annex code in both languages.
func annexWhy(code string, x *Sighting) (en, fr string) {
	switch code {
	case AnnexNoAddress:
		return "No IP address was recorded.", "Aucune adresse IP n'a été enregistrée."
	case AnnexRetention:
		return "Older than the ISP's retention period: the ISP may lawfully have deleted the data.",
			"Au-delà de la durée de conservation du fournisseur : les données peuvent avoir été légalement effacées."
	case AnnexThirdParty:
		return fmt.Sprintf("Reported by a third party (%s): the endpoint never talked to the sensor; the port and time are another peer's claim, not a connection the sensor made.", x.Method),
			fmt.Sprintf("Signalé par un tiers (%s) : le pair n'a jamais communiqué avec le capteur ; le port et l'heure sont l'affirmation d'un autre pair, non une connexion du capteur.", x.Method)
	case AnnexSpoofable:
		return "Rests on one unauthenticated datagram whose source address could have been forged.",
			"Repose sur un seul datagramme non authentifié dont l'adresse source a pu être falsifiée."
	case AnnexUnsigned:
		return "Imported from a file, or received without a sensor's signature: not sensor evidence.",
			"Importé d'un fichier, ou reçu sans la signature d'un capteur : ce n'est pas une preuve du capteur."
	case AnnexSignatureFailed:
		return "Received as a sensor's, but no signature of a trusted sensor key covers it (changed, forged, reordered or replayed on the way, or an unknown key): not sensor evidence.",
			"Reçu comme venant d'un capteur, mais aucune signature d'une clé de capteur reconnue ne le couvre (modifié, falsifié, réordonné ou rejoué en route, ou clé inconnue) : ce n'est pas une preuve du capteur."
	case AnnexNonPublic:
		return "A private or local address: it names no subscriber of a public network.",
			"Adresse privée ou locale : elle ne désigne aucun abonné d'un réseau public."
	case AnnexInfohashMismatch:
		return "The peer's handshake named another item: the exchange proves nothing about the file.",
			"La poignée de main du pair désignait un autre contenu : l'échange ne prouve rien sur le fichier."
	case AnnexNoSensorAddress:
		return "The sensor's own address and port in the conversation were not recorded (older data): behind carrier-grade NAT the ISP needs both ends.",
			"L'adresse et le port du capteur dans l'échange n'ont pas été enregistrés (données anciennes) : derrière un CGNAT, le fournisseur a besoin des deux extrémités."
	case AnnexNoTranscript:
		return "No transcript digest: the row could not be checked against the exchange.",
			"Aucune empreinte de transcription : la ligne ne peut pas être vérifiée au regard de l'échange."
	case AnnexDeclaredPort:
		return "A DHT announce recorded with the port the peer declared, not the source port of its datagram.",
			"Annonce DHT enregistrée avec le port déclaré par le pair, non le port source de son datagramme."
	case AnnexNoPort:
		return "No port: behind carrier-grade NAT an address and a time alone name no subscriber.",
			"Sans port : derrière un CGNAT, une adresse et une heure seules ne désignent aucun abonné."
	case AnnexTimeImplausible:
		return "Its time could not be true when it was stored (before 1999, or ahead of the receiving server's clock): it was read on a wrong clock, and when the sensor saw the peer is unknown. It is kept as it was recorded, never corrected, and is not asked about.",
			"Son heure ne pouvait pas être vraie lors de son enregistrement (antérieure à 1999, ou en avance sur l'horloge du serveur qui l'a reçu) : elle a été lue sur une horloge fausse, et l'heure à laquelle le capteur a vu le pair est inconnue. Elle est conservée telle qu'enregistrée, jamais corrigée, et ne fait l'objet d'aucune demande."
	case AnnexTunnel:
		return tunnelWhy(x)
	case AnnexNotAConversation:
		return fmt.Sprintf("Method %q is not known as a conversation of the endpoint itself with the sensor (only a probe or a DHT announce received from the endpoint is): its address and port may be what the endpoint or another party declared.", x.Method),
			fmt.Sprintf("La méthode %q n'est pas connue comme un échange du pair lui-même avec le capteur (seuls une connexion du capteur ou une annonce DHT reçue du pair le sont) : son adresse et son port peuvent être ceux que le pair ou un tiers a déclarés.", x.Method)
	case AnnexSeenOnce:
		return "The address appears at a single instant in the whole request: addresses are reassigned, and one instant is not enough to ask for a subscriber.",
			"L'adresse n'apparaît qu'à un seul instant dans toute la demande : les adresses sont réattribuées, et un seul instant ne suffit pas à demander un abonné."
	}
	return code, code
}

// Build makes the request for a target's sightings at now. It keeps the
// input slice untouched. Only first-hand conversations become rows (the
// endpoint itself talked to the sensor, with the sensor's own address,
// a transcript digest and a port); every other sighting goes to the annex
// with why: third-party claims, unauthenticated datagrams, imports,
// private addresses, sightings older than the retention period of their
// country (now minus the period, in calendar terms; one exactly at the
// cut-off is kept), and addresses that appear at a single instant among
// all the sightings within retention.
//
// It runs in passes, because whether a sighting is a row depends on every
// other sighting of its address: sort each sighting into its group or the
// annex, then make rows of the candidates seen at two instants or more,
// then number and annotate each group, then order and annotate the whole.
func Build(t Target, s []Sighting, now time.Time, r Retention) Request {
	now = now.UTC().Truncate(time.Millisecond)
	b := &requestBuilder{
		req:      Request{Created: now, Target: t, Sightings: len(s)},
		groups:   map[groupKey]*Group{},
		instants: map[netip.Addr]map[int64]struct{}{},
		window:   cmp.Or(t.EndpointWindow, DefaultEndpointWindow),
		isolated: map[netip.Addr]bool{},
	}
	for i := range s {
		b.sort(&s[i], now, r)
	}
	b.makeRows()
	for ip, m := range b.instants {
		if len(m) == 1 || b.isolated[ip] {
			b.req.SeenOnce++
		}
	}
	b.closeGroups(t)
	b.req.Dropped = len(b.req.Annex)
	slices.SortStableFunc(b.req.Annex, func(a, b AnnexEntry) int {
		return cmp.Or(a.Time.Compare(b.Time), a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port), strings.Compare(a.ObservationID, b.ObservationID))
	})
	slices.SortFunc(b.req.Groups, func(a, b Group) int {
		// Unknown ASN last: ASN-1 wraps 0 to the largest value.
		return cmp.Or(cmp.Compare(a.ASN-1, b.ASN-1),
			strings.Compare(a.Org, b.Org), strings.Compare(a.Country, b.Country))
	})
	b.addNotes(t)

	req := b.req
	req.ID = requestID(&req)
	for i := range req.Groups {
		req.Groups[i].ID = fmt.Sprintf("%s-%02d", req.ID, i+1)
	}
	return req
}

// requestBuilder carries one request through Build's passes.
type requestBuilder struct {
	req    Request
	groups map[groupKey]*Group
	// Distinct instants per address over every sighting within retention.
	instants map[netip.Addr]map[int64]struct{}
	cands    []rowCandidate // sightings that are rows if their address is seen twice
	noAddr   int            // sightings without an address
	// window is the endpoint window: a second instant of an address
	// counts only within it of a candidate's own (Target.EndpointWindow).
	window time.Duration
	// sorted are the distinct instants of each address in order (ms),
	// made by makeRows; isolated, the addresses a candidate of which had
	// no other instant within the window.
	sorted   map[netip.Addr][]int64
	isolated map[netip.Addr]bool
}

// secondInstant reports whether ip appears at another instant than ms
// (one of its instants) within the endpoint window of it.
func (b *requestBuilder) secondInstant(ip netip.Addr, ms int64) bool {
	ts, ok := b.sorted[ip]
	if !ok {
		ts = slices.Sorted(maps.Keys(b.instants[ip]))
		b.sorted[ip] = ts
	}
	w := b.window.Milliseconds()
	i, found := slices.BinarySearch(ts, ms)
	if i > 0 && ms-ts[i-1] <= w {
		return true
	}
	if found {
		i++
	}
	return i < len(ts) && ts[i]-ms <= w
}

// rowCandidate is a sighting that passed every test but the last, and
// the group its row would join.
type rowCandidate struct {
	x *Sighting
	g *Group
}

// annex puts x in the annex with the reason code, in both languages.
func (b *requestBuilder) annex(x *Sighting, code string) {
	en, fr := annexWhy(code, x)
	if code == AnnexSeenOnce {
		en, fr = seenOnceWhy(b.window)
	}
	ip := x.IP
	if ip.IsValid() {
		ip = ip.Unmap().WithZone("")
	}
	b.req.Annex = append(b.req.Annex, AnnexEntry{IP: ip, Port: x.Port, Transport: x.Transport, Time: x.Time.UTC(),
		Method: x.Method, ObservationID: x.ObservationID, Level: x.Level, Marks: slices.Clone(x.Marks), Reason: code, EN: en, FR: fr})
}

// sort is the first pass for one sighting: it goes to the annex, or
// becomes a candidate row of its provider's group. Every address within
// retention counts its instant, row or not.
func (b *requestBuilder) sort(x *Sighting, now time.Time, r Retention) {
	if !x.IP.IsValid() {
		b.noAddr++
		b.annex(x, AnnexNoAddress)
		return
	}
	if x.has(observe.MarkTimeImplausible) {
		// Its time is not when its peer was seen: no row, no
		// retention count, not even an instant of its address (which
		// could turn a single sighting into a row).
		b.annex(x, AnnexTimeImplausible)
		return
	}
	// A 6to4, Teredo or NAT64 address is the relay's: it belongs to
	// no group (no letter, no retention count for the relay's
	// operator). notRow gives a tunnel's sighting its reason:
	// tunnel_address when nothing else keeps it from being a row.
	if _, ok := tunnelOf(x.IP.Unmap()); ok {
		b.annex(x, notRow(x))
		return
	}
	// The organisation and country are a geo database's text (a file from
	// outside): written by observe.PlaceText, the rule of a peer's text
	// (docs/evidence.md, "Peer text"), in every form of the request.
	k := groupKey{asn: x.ASN, country: observe.PlaceText(strings.ToUpper(strings.TrimSpace(x.Country)))}
	if x.ASN != 0 {
		k.org = observe.PlaceText(strings.TrimSpace(x.Org))
	}
	g := b.groups[k]
	if g == nil {
		p := r.For(k.country)
		g = &Group{ASN: k.asn, Org: k.org, Country: k.country, Retention: p, Cutoff: p.Cutoff(now)}
		b.groups[k] = g
	}
	tm := x.Time.UTC()
	if tm.Before(g.Cutoff) {
		g.Dropped++
		b.annex(x, AnnexRetention)
		return
	}
	if x.has(observe.MarkSignatureFailed) {
		// Not even a second instant of its address: what a hub forged
		// must not turn a sensor's single sighting into a row.
		b.annex(x, AnnexSignatureFailed)
		return
	}
	ip := x.IP.Unmap().WithZone("")
	m := b.instants[ip]
	if m == nil {
		m = map[int64]struct{}{}
		b.instants[ip] = m
	}
	m[tm.UnixMilli()] = struct{}{}
	if why := notRow(x); why != "" {
		b.annex(x, why)
		return
	}
	b.cands = append(b.cands, rowCandidate{x, g})
}

// makeRows is the second pass: a candidate whose address appears at no
// other instant within the endpoint window of its own (a single instant,
// or others so far off that the address may have been another
// subscriber's) goes to the annex; every other becomes a row of its group.
func (b *requestBuilder) makeRows() {
	b.sorted = map[netip.Addr][]int64{}
	for _, c := range b.cands {
		x := c.x
		ip := x.IP.Unmap().WithZone("")
		if !b.secondInstant(ip, x.Time.UTC().UnixMilli()) {
			b.isolated[ip] = true
			b.annex(x, AnnexSeenOnce)
			continue
		}
		dir := "sensor_to_peer"
		if x.Method == observe.MethodDHTAnnounce {
			dir = "peer_to_sensor"
		}
		c.g.Rows = append(c.g.Rows, Row{
			IP: ip, Port: x.Port, Transport: x.Transport, Direction: dir,
			SensorAddress: x.SensorAddress, TranscriptSHA256: x.TranscriptSHA256, Time: x.Time.UTC(),
			ClockKnown: x.ClockKnown, ClockOffset: x.ClockOffset, ClockUncertainty: x.ClockUncertainty,
			ClockSource: x.ClockSource, ObservationID: x.ObservationID,
			Network: x.Network, Method: x.Method, Level: x.Level, Marks: slices.Clone(x.Marks), Item: x.Item,
			VPN: x.VPN, Hosting: x.Hosting, Instants: len(b.instants[ip]), NonPublic: x.NonPublic,
		})
	}
}

// closeGroups orders and numbers each group's rows, gives the group its
// notes, and adds to the request every group with a row or a sighting
// dropped for retention (the letter says what was lost).
func (b *requestBuilder) closeGroups(t Target) {
	prefixes := linkedPrefixes(t.Links)
	for _, g := range b.groups {
		if g.Dropped == 0 && len(g.Rows) == 0 {
			continue
		}
		slices.SortFunc(g.Rows, func(a, b Row) int {
			return cmp.Or(a.Time.Compare(b.Time), a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port),
				strings.Compare(a.Transport, b.Transport), strings.Compare(a.ObservationID, b.ObservationID))
		})
		var vpn, hosting, v6 int
		for i := range g.Rows {
			row := &g.Rows[i]
			row.Line = i + 1
			if row.VPN {
				vpn++
			}
			if row.Hosting {
				hosting++
			}
			if row.IP.Is6() {
				v6++
				row.SubscriberPrefix, row.PrefixNote = prefixNote(row.IP, row.Port, g, prefixes)
			}
		}
		b.req.Kept += len(g.Rows)
		g.Notes = groupNotes(g, vpn, hosting)
		if n := nonPublicNote(g.Rows); n.Code != "" {
			g.Notes = append(g.Notes, n)
		}
		if v6 > 0 {
			g.Notes = append(g.Notes, ipv6Note(v6))
		}
		if t.Requester.Foreign(g.Country) {
			g.Notes = append([]Note{foreignNote(t.Requester.Country, g.Country)}, g.Notes...)
		}
		b.req.Groups = append(b.req.Groups, *g)
	}
}

// addNotes gives the request its own notes, in a fixed order: what was
// left out and why, how the target was grouped, and whether anything is
// left to send.
func (b *requestBuilder) addNotes(t Target) {
	req := &b.req
	if b.noAddr > 0 {
		req.Notes = append(req.Notes, Note{Code: NoteNoAddress,
			EN: fmt.Sprintf("%d sighting(s) without an address were left out.", b.noAddr),
			FR: fmt.Sprintf("%d observation(s) sans adresse ont été écartée(s).", b.noAddr)})
	}
	if req.SeenOnce > 0 {
		req.Notes = append(req.Notes, seenOnceNote(req.SeenOnce, b.window))
	}
	if len(req.Annex) > 0 {
		req.Notes = append(req.Notes, Note{Code: NoteAnnex,
			EN: fmt.Sprintf("%d sighting(s) are not rows: only a conversation of the endpoint itself with the sensor, recorded with both ends and a transcript, is asked about. The annex lists each with why.", len(req.Annex)),
			FR: fmt.Sprintf("%d observation(s) ne sont pas des lignes : seul un échange du pair lui-même avec le capteur, enregistré avec ses deux extrémités et une transcription, fait l'objet d'une demande. L'annexe les énumère avec leur motif.", len(req.Annex))})
	}
	if len(t.Links) > 0 {
		req.Notes = append(req.Notes, Note{Code: NoteLinks,
			EN: fmt.Sprintf("The target's addresses were grouped by %d device link(s), listed in the annex with their rule, evidence and confidence. %s", len(t.Links), ForgeryWarningEN),
			FR: fmt.Sprintf("Les adresses de la cible ont été regroupées par %d lien(s) d'appareil, énumérés en annexe avec leur règle, leur élément et leur degré de confiance. %s", len(t.Links), ForgeryWarningFR)})
	}
	if req.Kept == 0 {
		req.Notes = append(req.Notes, Note{Code: NoteNothing,
			EN: "No sighting is left to request: there is nothing to send.",
			FR: "Aucune observation ne reste à demander : il n'y a rien à envoyer."})
	}
}

// foreignNote says that a provider abroad cannot be sent a national
// requisition: the request goes through mutual legal assistance, and its
// letter is in English.
func foreignNote(home, abroad string) Note {
	return Note{Code: NoteForeign,
		EN: fmt.Sprintf("This provider is in %s, outside %s, the requesting service's country: it cannot be sent a national requisition. The request goes through mutual legal assistance (within the European Union, the judicial cooperation instruments between member states), through the magistrate and the competent central authority; its letter is in English.", abroad, home),
		FR: fmt.Sprintf("Ce fournisseur est établi en %s, hors du pays du service requérant (%s) : une réquisition nationale ne peut lui être adressée. La demande passe par l'entraide pénale internationale (dans l'Union européenne, par les instruments de coopération judiciaire entre États membres), par l'intermédiaire du magistrat et de l'autorité centrale compétente ; sa lettre est rédigée en anglais.", abroad, home)}
}

func seenOnceNote(n int, window time.Duration) Note {
	h := window.Hours()
	return Note{Code: NoteSeenOnce,
		EN: fmt.Sprintf("%d address(es) were seen at a single instant, or at instants more than %g hours apart: addresses are reassigned (after such a silence an address may be another subscriber's), so such sightings are not rows (see the annex).", n, h),
		FR: fmt.Sprintf("%d adresse(s) n'ont été observée(s) qu'à un seul instant, ou à des instants distants de plus de %g heures : les adresses sont réattribuées (après un tel silence, une adresse peut être celle d'un autre abonné), ces observations ne sont donc pas des lignes (voir l'annexe).", n, h)}
}

// seenOnceWhy is why a sighting is seen_once, in both languages.
func seenOnceWhy(window time.Duration) (en, fr string) {
	h := window.Hours()
	return fmt.Sprintf("The address appears at no other instant within %g hours of this one in the whole request: addresses are reassigned (after such a silence the address may be another subscriber's), and one instant is not enough to ask for a subscriber.", h),
		fmt.Sprintf("L'adresse n'apparaît à aucun autre instant à moins de %g heures de celui-ci dans toute la demande : les adresses sont réattribuées (après un tel silence, l'adresse peut être celle d'un autre abonné), et un seul instant ne suffit pas à demander un abonné.", h)
}

func groupNotes(g *Group, vpn, hosting int) []Note {
	var notes []Note
	if g.ASN == 0 {
		notes = append(notes, Note{Code: NoteUnknownASN,
			EN: "The network (ASN) of these addresses is unknown: find the operator from the regional internet registry (whois) before sending.",
			FR: "Le réseau (ASN) de ces adresses est inconnu : identifier l'opérateur auprès du registre internet régional (whois) avant envoi."})
	}
	if g.Dropped > 0 {
		c := g.Cutoff.Format(TimeLayout)
		notes = append(notes, Note{Code: NoteRetention,
			EN: fmt.Sprintf("%d sighting(s) before %s were left out: older than the retention period of %s (%s).",
				g.Dropped, c, countryName(g.Country), g.Retention),
			FR: fmt.Sprintf("%d observation(s) antérieure(s) au %s ont été écartée(s) : au-delà de la durée de conservation applicable (%s, %s).",
				g.Dropped, c, countryName(g.Country), g.Retention)})
	}
	if vpn > 0 {
		notes = append(notes, Note{Code: NoteVPN,
			EN: fmt.Sprintf("%d row(s) are a VPN provider's address: the provider's customer, if known, is not a household at this address.", vpn),
			FR: fmt.Sprintf("%d ligne(s) portent sur une adresse d'un fournisseur de VPN : le client du fournisseur, s'il est connu, n'est pas un foyer situé à cette adresse.", vpn)})
	}
	if hosting > 0 {
		notes = append(notes, Note{Code: NoteHosting,
			EN: fmt.Sprintf("%d row(s) are a hosting provider's address (server or proxy): ask for the customer of the server, not a subscriber line.", hosting),
			FR: fmt.Sprintf("%d ligne(s) portent sur une adresse d'hébergeur (serveur ou relais) : demander le client du serveur, non un abonné.", hosting)})
	}
	return notes
}

// DateLayout is how a purge's day is printed in a letter.
const DateLayout = "2006-01-02"

// MarkTranscriptsPurged marks the rows whose raw protocol exchange a
// retention purge removed, purged giving the purge's time by observation
// id, and notes it on each group that has such rows, with the lines and
// the days, in both languages: such a row still names a conversation the
// sensor had, but its transcript can no longer be produced, and the
// request must not present it as backed by one. It returns how many rows
// it marked.
func (r *Request) MarkTranscriptsPurged(purged map[string]time.Time) int {
	n := 0
	for gi := range r.Groups {
		g := &r.Groups[gi]
		var en, fr []string
		for i := range g.Rows {
			row := &g.Rows[i]
			at, ok := purged[row.ObservationID]
			if !ok || at.IsZero() {
				continue
			}
			row.TranscriptPurged = at.UTC()
			day := row.TranscriptPurged.Format(DateLayout)
			en = append(en, fmt.Sprintf("line %d on %s", row.Line, day))
			fr = append(fr, fmt.Sprintf("ligne %d le %s", row.Line, day))
		}
		if len(en) == 0 {
			continue
		}
		n += len(en)
		g.Notes = slices.DeleteFunc(g.Notes, func(x Note) bool { return x.Code == NoteTranscriptPurged })
		g.Notes = append(g.Notes, Note{Code: NoteTranscriptPurged,
			EN: fmt.Sprintf("%d row(s): the raw protocol exchange (transcript) was purged under the requesting service's retention (%s). The digest given on those lines is the one recorded when the exchange took place; the exchange itself can no longer be produced nor checked against it. A line whose entry in the service's evidence log commits to the exchange itself (evidence form 1, older data) could not be checked against the log either; one whose entry commits to the digest (evidence form 2) was checked against it.",
				len(en), strings.Join(en, ", ")),
			FR: fmt.Sprintf("%d ligne(s) : l'échange de protocole brut (transcription) a été purgé au titre de la durée de conservation du service requérant (%s). L'empreinte indiquée sur ces lignes est celle enregistrée lors de l'échange ; l'échange lui-même ne peut plus être produit, ni vérifié au regard de cette empreinte. Une ligne dont l'entrée au journal de preuve du service engage l'échange lui-même (forme de preuve 1, données anciennes) n'a pu non plus être vérifiée au regard du journal ; une ligne dont l'entrée engage l'empreinte (forme de preuve 2) l'a été.",
				len(fr), strings.Join(fr, ", "))})
	}
	return n
}

// TranscriptsPurged counts the rows whose raw exchange was purged, and
// the first and last day of those purges.
func (r *Request) TranscriptsPurged() (n int, first, last time.Time) {
	for _, g := range r.Groups {
		for _, row := range g.Rows {
			if row.TranscriptPurged.IsZero() {
				continue
			}
			n++
			if first.IsZero() || row.TranscriptPurged.Before(first) {
				first = row.TranscriptPurged
			}
			if row.TranscriptPurged.After(last) {
				last = row.TranscriptPurged
			}
		}
	}
	return n, first, last
}

func countryName(c string) string {
	if c == "" {
		return "country unknown"
	}
	return c
}

// requestIDContext begins what requestID hashes. Version 2 added each
// row's network, method, level, item and direction, and each annex
// entry's transport, method and level: version 1 (no context) left them
// out, so that two requests differing only in what their rows claim
// shared an id. Ids are recorded (the audit trail, the files' names),
// never computed again to be compared, so older ids stay as they were.
const requestIDContext = "vigil/isp-request-id/v2"

// requestID is a digest of what the request asks, so that the same rows
// asked at the same time give the same id. It covers the target's id and
// case, the creation time; each group's ASN, organisation, country and
// count left out for retention; each row's address, port, transport,
// time, clock (offset, and uncertainty and source when known),
// observation id, sensor address, transcript digest, network, method,
// level, item, direction, subscriber prefix (with its note's English
// text), non-public class and marks; each annex entry's address, port,
// transport, time, method, observation id, level, marks and reason. What
// follows from those or from the store's state (a row's line, instants,
// VPN and hosting flags, when its transcript was purged; notes) is not
// covered: the request file states it.
func requestID(r *Request) string {
	h := sha256.New()
	var b [8]byte
	w := func(s string) {
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	w(requestIDContext)
	w(r.Target.ID)
	w(r.Target.Case)
	w(r.Created.Format(time.RFC3339Nano))
	for _, g := range r.Groups {
		w(fmt.Sprint(g.ASN, "|", g.Org, "|", g.Country, "|", g.Dropped))
		for _, row := range g.Rows {
			w(fmt.Sprint(row.IP, "|", row.Port, "|", row.Transport, "|", row.Time.UnixNano(), "|", int64(row.ClockOffset), "|", row.ObservationID,
				"|", row.SensorAddress, "|", row.TranscriptSHA256))
			w(fmt.Sprint("claim|", row.Network, "|", row.Method, "|", row.Level, "|", row.Item, "|", row.Direction))
			if row.ClockKnown {
				w(fmt.Sprint("clock|", int64(row.ClockUncertainty), "|", row.ClockSource))
			}
			if row.SubscriberPrefix.IsValid() {
				w(row.SubscriberPrefix.String() + "|" + row.PrefixNote.EN)
			}
			if row.NonPublic != "" {
				w("non-public|" + row.NonPublic)
			}
			if len(row.Marks) > 0 {
				w("marks|" + strings.Join(row.Marks, " "))
			}
		}
	}
	for _, a := range r.Annex {
		w(fmt.Sprint(a.IP, "|", a.Port, "|", a.Time.UnixNano(), "|", a.ObservationID, "|", a.Reason))
		w(fmt.Sprint("annex-claim|", a.Transport, "|", a.Method, "|", a.Level))
		if len(a.Marks) > 0 {
			w("annex-marks|" + strings.Join(a.Marks, " "))
		}
	}
	return "ISP-" + strings.ToUpper(hex.EncodeToString(h.Sum(nil)[:6]))
}

// FormatOffset prints a clock offset in milliseconds with three decimals
// and a sign: "+0.512ms", "-12.000ms".
func FormatOffset(d time.Duration) string {
	return formatMS(d, true)
}

// FormatUncertainty writes an uncertainty in milliseconds with three
// decimals, truncated, no sign: "0.250ms".
func FormatUncertainty(d time.Duration) string { return formatMS(d, false) }

// OffsetText is a row's offset and uncertainty as a letter or a reader
// shows them, "+0.512ms ± 0.250ms", or unknown (the language's word) when
// it was not measured or no measurement could be trusted.
func (r *Row) OffsetText(unknown string) string {
	if !r.ClockKnown {
		return unknown
	}
	return FormatOffset(r.ClockOffset) + " ± " + FormatUncertainty(r.ClockUncertainty)
}

func formatMS(d time.Duration, signed bool) string {
	sign := "+"
	u := int64(d)
	if u < 0 {
		sign = "-"
	}
	// Work in unsigned microseconds, truncating toward zero, so that the
	// most negative duration does not overflow.
	us := uint64(u)
	if u < 0 {
		us = uint64(-(u + 1)) + 1
	}
	us /= 1000
	if !signed {
		sign = ""
	}
	return fmt.Sprintf("%s%d.%03dms", sign, us/1000, us%1000)
}
