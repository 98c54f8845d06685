package isp

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// csvHeader names the CSV columns, in order.
var csvHeader = []string{
	"request_id", "group_id", "line", "asn", "isp", "country",
	"ip", "source_port", "transport", "direction", "sensor_address", "time_utc", "clock_offset_ms", "clock_uncertainty_ms",
	"clock_source",
	"instants_of_ip", "vpn", "hosting",
	"level", "network", "method", "item", "observation_id", "transcript_sha256",
	"subscriber_prefix", "prefix_note", "non_public", "transcript_purged", "marks",
}

// WriteCSV writes one line per row of the request, after a header line.
// Notes (retention, warnings), the annex and the links are not in the CSV:
// they are in the JSON and the PDF.
func WriteCSV(w io.Writer, req *Request) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("isp request %s: csv: %w", req.ID, err)
	}
	for gi := range req.Groups {
		g := &req.Groups[gi]
		for _, r := range g.Rows {
			rec := []string{
				req.ID, g.ID, strconv.Itoa(r.Line), strconv.FormatUint(uint64(g.ASN), 10), safeCell(g.ISP()), safeCell(g.Country),
				r.IP.String(), strconv.Itoa(int(r.Port)), r.Transport, r.Direction, r.SensorAddress.String(), r.Time.Format(TimeLayout),
				csvOffset(&r), csvUncertainty(&r), safeCell(r.ClockSource),
				strconv.Itoa(r.Instants), strconv.FormatBool(r.VPN), strconv.FormatBool(r.Hosting),
				r.Level.String(), safeCell(r.Network), safeCell(r.Method), safeCell(r.Item), safeCell(r.ObservationID), r.TranscriptSHA256,
				prefixString(r.SubscriberPrefix), safeCell(r.PrefixNote.EN), safeCell(r.NonPublic), purgedAt(r.TranscriptPurged),
				safeCell(strings.Join(r.Marks, " ")),
			}
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("isp request %s: csv: %w", req.ID, err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("isp request %s: csv: %w", req.ID, err)
	}
	return nil
}

// csvOffset is the offset in milliseconds, three decimals ("-2.500"); an
// unknown offset is an empty cell, never 0.
func csvOffset(r *Row) string {
	if !r.ClockKnown {
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(FormatOffset(r.ClockOffset), "+"), "ms")
}

// csvUncertainty is the uncertainty as csvOffset writes the offset.
func csvUncertainty(r *Row) string {
	if !r.ClockKnown {
		return ""
	}
	return strings.TrimSuffix(FormatUncertainty(r.ClockUncertainty), "ms")
}

// prefixString is a subscriber prefix as written, "" when there is none.
func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// safeCell keeps a spreadsheet from reading free text as a formula.
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

type jsonRequest struct {
	ID        string      `json:"id"`
	Created   string      `json:"created"`
	Target    jsonTarget  `json:"target"`
	Sightings int         `json:"sightings"`
	Kept      int         `json:"kept"`
	Dropped   int         `json:"dropped"`
	SeenOnce  int         `json:"addresses_seen_once"`
	Notes     []Note      `json:"notes"`
	Groups    []jsonGroup `json:"groups"`
	Annex     []jsonAnnex `json:"annex"`
	Links     jsonLinks   `json:"links"`
}

type jsonAnnex struct {
	IP            string `json:"ip"`
	Port          uint16 `json:"port"`
	Transport     string `json:"transport"`
	Time          string `json:"time"`
	Method        string `json:"method"`
	ObservationID string `json:"observation_id"`
	Level         string `json:"level"`
	// Marks: the observation's marks, [] when none applies.
	Marks  []string `json:"marks"`
	Reason string   `json:"reason"`
	EN     string   `json:"en"`
	FR     string   `json:"fr"`
}

type jsonLinks struct {
	Warning Note       `json:"warning"`
	Links   []jsonLink `json:"links"`
}

type jsonLink struct {
	A          string  `json:"a"`
	B          string  `json:"b"`
	Rule       string  `json:"rule"`
	Evidence   string  `json:"evidence"`
	Reason     string  `json:"reason"`
	Confidence float64 `json:"confidence"`
	State      string  `json:"state"`
}

type jsonTarget struct {
	ID           string  `json:"id"`
	Case         string  `json:"case"`
	Jurisdiction string  `json:"jurisdiction"`
	Agency       string  `json:"agency"`
	Score        float64 `json:"score"`
	// Requester is the requesting service the letters name.
	Requester *jsonRequester `json:"requester,omitempty"`
}

type jsonRequester struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
	Contact string `json:"contact,omitempty"`
	Country string `json:"country,omitempty"`
}

type jsonGroup struct {
	ID        string    `json:"id"`
	ASN       uint32    `json:"asn"`
	Org       string    `json:"org"`
	ISP       string    `json:"isp"`
	Country   string    `json:"country"`
	Retention string    `json:"retention"`
	Cutoff    string    `json:"cutoff"`
	Dropped   int       `json:"dropped"`
	Notes     []Note    `json:"notes"`
	Rows      []jsonRow `json:"rows"`
}

type jsonRow struct {
	Line             int          `json:"line"`
	IP               string       `json:"ip"`
	SourcePort       uint16       `json:"source_port"`
	Transport        string       `json:"transport"`
	Direction        string       `json:"direction"`
	SensorAddress    string       `json:"sensor_address"`
	Time             string       `json:"time"`
	ClockOffset      string       `json:"clock_offset"`
	ClockOffsetNS    *int64       `json:"clock_offset_ns"`
	ClockOffsetMS    *json.Number `json:"clock_offset_ms"`
	ClockUncertainty *json.Number `json:"clock_uncertainty_ms"`
	ClockSource      string       `json:"clock_source"`
	Instants         int          `json:"instants_of_ip"`
	VPN              bool         `json:"vpn"`
	Hosting          bool         `json:"hosting"`
	Level            string       `json:"level"`
	Network          string       `json:"network"`
	Method           string       `json:"method"`
	Item             string       `json:"item"`
	ObservationID    string       `json:"observation_id"`
	TranscriptSHA256 string       `json:"transcript_sha256"`
	// TranscriptPurged: when a retention purge removed the raw exchange.
	TranscriptPurged string `json:"transcript_purged,omitempty"`
	// IPv6 rows only.
	SubscriberPrefix string `json:"subscriber_prefix,omitempty"`
	PrefixNote       *Note  `json:"prefix_note,omitempty"`
	// NonPublic: the class of an address that is not publicly routable.
	NonPublic string `json:"non_public,omitempty"`
	// Marks: the observation's marks, [] when none applies.
	Marks []string `json:"marks"`
}

// WriteJSON writes the request as one indented JSON object (the fields are
// listed in the package documentation). Empty lists are written as [].
func WriteJSON(w io.Writer, req *Request) error {
	out := jsonRequest{
		ID: req.ID, Created: req.Created.Format(TimeLayout),
		Target: jsonTarget{ID: req.Target.ID, Case: req.Target.Case, Jurisdiction: req.Target.Jurisdiction,
			Agency: req.Target.DisplayName(), Score: req.Target.Score},
		Sightings: req.Sightings, Kept: req.Kept, Dropped: req.Dropped, SeenOnce: req.SeenOnce,
		Notes: orEmpty(req.Notes), Groups: []jsonGroup{}, Annex: []jsonAnnex{},
		Links: jsonLinks{Warning: LinksWarning(), Links: []jsonLink{}},
	}
	if r := req.Target.Requester; r != (Requester{}) {
		out.Target.Requester = &jsonRequester{ID: r.ID, Name: r.Name, Address: r.Address, Contact: r.Contact, Country: r.Country}
	}
	for _, a := range req.Annex {
		ip := ""
		if a.IP.IsValid() {
			ip = a.IP.String()
		}
		out.Annex = append(out.Annex, jsonAnnex{IP: ip, Port: a.Port, Transport: a.Transport, Time: a.Time.Format(TimeLayout),
			Method: a.Method, ObservationID: a.ObservationID, Level: a.Level.String(), Marks: orEmpty(a.Marks), Reason: a.Reason, EN: a.EN, FR: a.FR})
	}
	for _, l := range req.Target.Links {
		out.Links.Links = append(out.Links.Links, jsonLink{A: l.A, B: l.B, Rule: l.Rule, Evidence: l.Evidence, Reason: l.Reason,
			Confidence: l.Confidence, State: l.State})
	}
	for _, g := range req.Groups {
		jg := jsonGroup{ID: g.ID, ASN: g.ASN, Org: g.Org, ISP: g.ISP(), Country: g.Country,
			Retention: g.Retention.String(), Cutoff: g.Cutoff.Format(TimeLayout), Dropped: g.Dropped,
			Notes: orEmpty(g.Notes), Rows: []jsonRow{}}
		for _, r := range g.Rows {
			var pn *Note
			if r.PrefixNote.Code != "" {
				pn = &r.PrefixNote
			}
			jg.Rows = append(jg.Rows, jsonRow{
				SubscriberPrefix: prefixString(r.SubscriberPrefix), PrefixNote: pn,
				Line: r.Line, IP: r.IP.String(), SourcePort: r.Port, Transport: r.Transport,
				Direction: r.Direction, SensorAddress: r.SensorAddress.String(),
				Time: r.Time.Format(TimeLayout), ClockOffset: r.OffsetText("unknown"), ClockSource: r.ClockSource,
				Instants: r.Instants, VPN: r.VPN, Hosting: r.Hosting,
				Level: r.Level.String(), Network: r.Network, Method: r.Method, Item: r.Item,
				ObservationID: r.ObservationID, TranscriptSHA256: r.TranscriptSHA256, TranscriptPurged: purgedAt(r.TranscriptPurged),
				NonPublic: r.NonPublic, Marks: orEmpty(r.Marks),
			})
			if r.ClockKnown {
				jr := &jg.Rows[len(jg.Rows)-1]
				ns := int64(r.ClockOffset)
				jr.ClockOffset, jr.ClockOffsetNS = FormatOffset(r.ClockOffset), &ns
				jr.ClockOffsetMS, jr.ClockUncertainty = observe.Millis(r.ClockOffset), observe.Millis(r.ClockUncertainty)
			}
		}
		out.Groups = append(out.Groups, jg)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("isp request %s: json: %w", req.ID, err)
	}
	return nil
}

// purgedAt prints when a row's raw exchange was purged, "" while kept.
func purgedAt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeLayout)
}

func orEmpty[T any](n []T) []T {
	if n == nil {
		return []T{}
	}
	return n
}
