// Package isp prepares the requests that ask internet service providers to
// identify the subscribers behind a target's addresses: for one target, the
// (IP, port, transport, UTC time to the millisecond, clock offset) rows,
// grouped by ISP, exported as CSV, JSON and a printable PDF carrying a
// request text in French and English for a magistrate to sign.
//
// The package works on plain data (Sighting, Target, Retention) and imports
// neither the store nor the analysis code; the caller reads and authorises.
// It never overstates and never points at the wrong household:
//
//   - every row keeps its source port and transport: behind carrier-grade NAT
//     an address and a time alone cannot name a subscriber;
//   - times are the sensor clock's reading in UTC, printed to the millisecond
//     (truncated, RFC 3339), always with the clock offset measured for that
//     sighting and its source (reference time = listed time − offset);
//   - an address seen at only one instant in the whole request is marked
//     "seen once" and every output warns about it: addresses are reassigned;
//   - sightings older than the ISP's retention period (Retention, per
//     country) are left out, and the group says how many and from which
//     cut-off, so that nobody asks for data the law lets the ISP delete;
//   - VPN and hosting addresses are flagged: the subscriber there is the
//     provider's customer at best, not a household;
//   - the possession level of each sighting travels with its row.
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
//	target              {id, case, jurisdiction, agency, score}: internal, never printed in a letter
//	sightings           how many sightings were given
//	kept, dropped       how many became rows, how many were left out (retention or no address)
//	addresses_seen_once how many distinct addresses were seen at a single instant
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
//	  notes             [{code, en, fr}]; codes: retention, unknown-asn, seen-once, vpn, hosting, no-port
//	  rows              [{line, ip, port, transport, time, clock_offset, clock_offset_ns,
//	                      clock_source, seen_once, sightings_of_ip, vpn, hosting, level,
//	                      network, method, item, observation_id}]
//
// Row fields: time is RFC 3339 UTC with milliseconds as read on the sensor
// clock; clock_offset is that clock minus the reference, in milliseconds with
// three decimals and a sign ("+0.512ms"), clock_offset_ns the exact value;
// sightings_of_ip counts the distinct instants at which the row's address
// appears in the whole request; level is the possession level.
//
// # CSV
//
// WriteCSV writes a header line, then one line per row with the columns
// request_id, group_id, line, asn, isp, country, ip, port, transport,
// time_utc, clock_offset_ms (three decimals, e.g. -2.500), clock_source,
// seen_once, instants_of_ip, vpn, hosting, level, network, method, item,
// observation_id. Notes are only in the JSON and the PDF. Cells of text
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
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// TimeLayout is how every time is printed: RFC 3339, UTC, milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Sighting is one observation of the target's endpoint, reduced to what an
// ISP request needs.
type Sighting struct {
	IP            netip.Addr
	Port          uint16        // source or listen port; 0 when unknown
	Transport     string        // "tcp", "utp", "udp"
	Time          time.Time     // as read on the sensor clock, UTC
	ClockOffset   time.Duration // sensor clock minus reference clock, as measured
	ClockSource   string        // how the offset was measured ("ntp:...", "none")
	ObservationID string
	Network       string // observe.NetBitTorrent, ...
	Method        string // observe.MethodDHTAnnounce, ...
	Level         observe.Level
	Item          string // the item's hash as "kind:value", e.g. "btih:…"
	ASN           uint32 // 0 when unknown
	Org           string // the AS organisation
	Country       string // ISO 3166-1 alpha-2, where the address was placed
	VPN           bool   // the ASN is a VPN provider's
	Hosting       bool   // the ASN is a hosting provider's
}

// FromObservation reduces an observation, with the Place filled at ingest,
// to a Sighting.
func FromObservation(o *observe.Observation) Sighting {
	item := ""
	if !o.Item.Hash.IsZero() {
		item = o.Item.Hash.Kind().String() + ":" + o.Item.Hash.String()
	}
	return Sighting{
		IP:            o.Endpoint.IP,
		Port:          o.Endpoint.Port,
		Transport:     o.Endpoint.Transport,
		Time:          o.Time.UTC(),
		ClockOffset:   o.ClockOffset,
		ClockSource:   o.ClockSource,
		ObservationID: o.ID,
		Network:       o.Network,
		Method:        o.Method,
		Level:         o.Possession.Level,
		Item:          item,
		ASN:           o.Place.ASN,
		Org:           o.Place.Org,
		Country:       o.Place.Country,
		VPN:           o.Place.VPN,
		Hosting:       o.Place.Hosting,
	}
}

// Target is the descriptive header of a request. Only Case and Agency are
// printed in the letters; the rest stays on the internal summary page.
type Target struct {
	ID           string  // target id
	Case         string  // procedure or case reference; "" prints a placeholder
	Jurisdiction string  // agency id the target is routed to
	Agency       string  // name of the requesting service
	Score        float64 // analysis score; internal
}

// Note is a remark in both languages, with a code callers can test.
type Note struct {
	Code string `json:"code"`
	EN   string `json:"en"`
	FR   string `json:"fr"`
}

// Note codes.
const (
	NoteRetention  = "retention"   // sightings left out: older than the ISP's retention
	NoteUnknownASN = "unknown-asn" // the ISP is not known
	NoteSeenOnce   = "seen-once"   // some addresses were seen at one instant only
	NoteVPN        = "vpn"         // some addresses are a VPN provider's
	NoteHosting    = "hosting"     // some addresses are a hosting provider's
	NoteNoPort     = "no-port"     // some rows have no port
	NoteNoAddress  = "no-address"  // sightings without an address were left out
	NoteNothing    = "nothing"     // no row is left to request
)

// Row is one line of a request.
type Row struct {
	Line          int // 1-based, within its group
	IP            netip.Addr
	Port          uint16
	Transport     string
	Time          time.Time // UTC
	ClockOffset   time.Duration
	ClockSource   string
	ObservationID string
	Network       string
	Method        string
	Level         observe.Level
	Item          string
	VPN           bool
	Hosting       bool
	// Instants is how many distinct instants (to the millisecond) the
	// row's address appears at in the whole request.
	Instants int
	// SeenOnce is Instants == 1: the address must be checked with care.
	SeenOnce bool
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
	Dropped   int // left out: retention or no address
	SeenOnce  int // distinct addresses seen at a single instant
	Notes     []Note
	Groups    []Group
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

// Build groups the sightings of a target into a request made at now. It
// keeps the input slice untouched. A sighting is kept when its time is at
// or after the cut-off of its country's retention period (now minus the
// period, in calendar terms); one exactly at the cut-off is kept.
func Build(t Target, s []Sighting, now time.Time, r Retention) Request {
	now = now.UTC().Truncate(time.Millisecond)
	req := Request{Created: now, Target: t, Sightings: len(s)}

	groups := map[groupKey]*Group{}
	var noAddr int
	for i := range s {
		x := &s[i]
		if !x.IP.IsValid() {
			noAddr++
			continue
		}
		k := groupKey{asn: x.ASN, country: strings.ToUpper(strings.TrimSpace(x.Country))}
		if x.ASN != 0 {
			k.org = strings.TrimSpace(x.Org)
		}
		g := groups[k]
		if g == nil {
			p := r.For(k.country)
			g = &Group{ASN: k.asn, Org: k.org, Country: k.country, Retention: p, Cutoff: p.Cutoff(now)}
			groups[k] = g
		}
		tm := x.Time.UTC()
		if tm.Before(g.Cutoff) {
			g.Dropped++
			continue
		}
		g.Rows = append(g.Rows, Row{
			IP: x.IP.Unmap().WithZone(""), Port: x.Port, Transport: x.Transport, Time: tm,
			ClockOffset: x.ClockOffset, ClockSource: x.ClockSource, ObservationID: x.ObservationID,
			Network: x.Network, Method: x.Method, Level: x.Level, Item: x.Item,
			VPN: x.VPN, Hosting: x.Hosting,
		})
	}

	// Distinct instants per address over the whole request.
	instants := map[netip.Addr]map[int64]struct{}{}
	for _, g := range groups {
		for _, row := range g.Rows {
			m := instants[row.IP]
			if m == nil {
				m = map[int64]struct{}{}
				instants[row.IP] = m
			}
			m[row.Time.UnixMilli()] = struct{}{}
		}
	}
	for _, m := range instants {
		if len(m) == 1 {
			req.SeenOnce++
		}
	}

	for _, g := range groups {
		if g.Dropped == 0 && len(g.Rows) == 0 {
			continue
		}
		slices.SortFunc(g.Rows, func(a, b Row) int {
			return cmp.Or(a.Time.Compare(b.Time), a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port),
				strings.Compare(a.Transport, b.Transport), strings.Compare(a.ObservationID, b.ObservationID))
		})
		var once, vpn, hosting, noPort int
		for i := range g.Rows {
			row := &g.Rows[i]
			row.Line = i + 1
			row.Instants = len(instants[row.IP])
			row.SeenOnce = row.Instants == 1
			if row.SeenOnce {
				once++
			}
			if row.VPN {
				vpn++
			}
			if row.Hosting {
				hosting++
			}
			if row.Port == 0 {
				noPort++
			}
		}
		req.Kept += len(g.Rows)
		req.Dropped += g.Dropped
		g.Notes = groupNotes(g, once, vpn, hosting, noPort)
		req.Groups = append(req.Groups, *g)
	}
	req.Dropped += noAddr

	slices.SortFunc(req.Groups, func(a, b Group) int {
		// Unknown ASN last: ASN-1 wraps 0 to the largest value.
		return cmp.Or(cmp.Compare(a.ASN-1, b.ASN-1),
			strings.Compare(a.Org, b.Org), strings.Compare(a.Country, b.Country))
	})

	if noAddr > 0 {
		req.Notes = append(req.Notes, Note{Code: NoteNoAddress,
			EN: fmt.Sprintf("%d sighting(s) without an address were left out.", noAddr),
			FR: fmt.Sprintf("%d observation(s) sans adresse ont été écartée(s).", noAddr)})
	}
	if req.SeenOnce > 0 {
		req.Notes = append(req.Notes, seenOnceNote(req.SeenOnce))
	}
	if req.Kept == 0 {
		req.Notes = append(req.Notes, Note{Code: NoteNothing,
			EN: "No sighting is left to request: there is nothing to send.",
			FR: "Aucune observation ne reste à demander : il n'y a rien à envoyer."})
	}

	req.ID = requestID(&req)
	for i := range req.Groups {
		req.Groups[i].ID = fmt.Sprintf("%s-%02d", req.ID, i+1)
	}
	return req
}

func seenOnceNote(n int) Note {
	return Note{Code: NoteSeenOnce,
		EN: fmt.Sprintf("%d address(es) were seen at a single instant (marked 1×). Addresses are reassigned: "+
			"check such a row with particular care before any measure, so that the wrong household is never searched.", n),
		FR: fmt.Sprintf("%d adresse(s) n'ont été observée(s) qu'à un seul instant (marquée(s) 1×). Les adresses sont "+
			"réattribuées : une telle ligne doit être vérifiée avec un soin particulier avant toute mesure, afin "+
			"qu'aucun domicile ne soit visé à tort.", n)}
}

func groupNotes(g *Group, once, vpn, hosting, noPort int) []Note {
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
	if once > 0 {
		notes = append(notes, Note{Code: NoteSeenOnce,
			EN: fmt.Sprintf("%d row(s) are an address seen at a single instant (1×): check with particular care, addresses are reassigned.", once),
			FR: fmt.Sprintf("%d ligne(s) portent sur une adresse observée à un seul instant (1×) : à vérifier avec un soin particulier, les adresses sont réattribuées.", once)})
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
	if noPort > 0 {
		notes = append(notes, Note{Code: NoteNoPort,
			EN: fmt.Sprintf("%d row(s) have no port: behind carrier-grade NAT the ISP may be unable to name a subscriber.", noPort),
			FR: fmt.Sprintf("%d ligne(s) sans port : derrière un CGNAT, le fournisseur peut ne pas pouvoir identifier l'abonné.", noPort)})
	}
	return notes
}

func countryName(c string) string {
	if c == "" {
		return "country unknown"
	}
	return c
}

// requestID is a digest of what the request asks, so that the same rows
// asked at the same time give the same id and any change gives another.
func requestID(r *Request) string {
	h := sha256.New()
	var b [8]byte
	w := func(s string) {
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	w(r.Target.ID)
	w(r.Target.Case)
	w(r.Created.Format(time.RFC3339Nano))
	for _, g := range r.Groups {
		w(fmt.Sprint(g.ASN, "|", g.Org, "|", g.Country, "|", g.Dropped))
		for _, row := range g.Rows {
			w(fmt.Sprint(row.IP, "|", row.Port, "|", row.Transport, "|", row.Time.UnixNano(), "|", int64(row.ClockOffset), "|", row.ObservationID))
		}
	}
	return "ISP-" + strings.ToUpper(hex.EncodeToString(h.Sum(nil)[:6]))
}

// FormatOffset prints a clock offset in milliseconds with three decimals
// and a sign: "+0.512ms", "-12.000ms".
func FormatOffset(d time.Duration) string {
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
	return fmt.Sprintf("%s%d.%03dms", sign, us/1000, us%1000)
}
