package observe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// The reference canonical form: the record mirrored in key order with
// encoding/json's omitempty. appendCanonical must write the same bytes
// (TestCanonicalFormIsCanonOfTheLine checks both against canon.Form).

// canonRecord is the canonical form (package canon) of a record, written
// directly: its fields in key order, every empty string, list and null
// left out (omitempty), numbers and booleans kept. Ingest's numbers and
// booleans are pointers so that a sensor's form (SensorHash) leaves them
// out. TestCanonicalFormIsCanonOfTheLine holds it to canon.Form of the
// line; a key added to record must be added here.
type canonRecord struct {
	Agency            string       `json:"agency,omitempty"`
	AgencyRule        string       `json:"agency_rule,omitempty"`
	ASN               *uint32      `json:"asn,omitempty"`
	BatchSig          string       `json:"batch_sig,omitempty"`
	Build             canonBuild   `json:"build"`
	Chain             string       `json:"chain,omitempty"`
	ChainPrev         string       `json:"chain_prev,omitempty"`
	ChainSeq          *uint64      `json:"chain_seq,omitempty"`
	City              string       `json:"city,omitempty"`
	Client            string       `json:"client,omitempty"`
	ClientVersion     string       `json:"client_version,omitempty"`
	ClockOffsetMS     *json.Number `json:"clock_offset_ms,omitempty"`
	ClockSource       string       `json:"clock_source,omitempty"`
	ClockUncertainty  *json.Number `json:"clock_uncertainty_ms,omitempty"`
	Country           string       `json:"country,omitempty"`
	EvidenceForm      *uint8       `json:"evidence_form,omitempty"`
	GeoDB             string       `json:"geo_db,omitempty"`
	GeoDBBuild        string       `json:"geo_db_build,omitempty"`
	GUID              string       `json:"guid,omitempty"`
	Hosting           *bool        `json:"hosting,omitempty"`
	ID                string       `json:"id,omitempty"`
	IP                string       `json:"ip,omitempty"`
	Item              string       `json:"item,omitempty"`
	ItemKind          string       `json:"item_kind,omitempty"`
	Latitude          *float64     `json:"latitude,omitempty"`
	ListenPort        uint16       `json:"listen_port"`
	Longitude         *float64     `json:"longitude,omitempty"`
	Marks             []string     `json:"marks,omitempty"`
	Matched           []string     `json:"matched,omitempty"`
	MatchedCategories []string     `json:"matched_categories,omitempty"`
	Method            string       `json:"method,omitempty"`
	Network           string       `json:"network,omitempty"`
	NodeID            string       `json:"node_id,omitempty"`
	Org               string       `json:"org,omitempty"`
	PeerID            string       `json:"peer_id,omitempty"`
	PiecesHave        *int         `json:"pieces_have,omitempty"`
	PiecesTotal       *int         `json:"pieces_total,omitempty"`
	Port              uint16       `json:"port"`
	Possession        string       `json:"possession,omitempty"`
	Sensor            string       `json:"sensor,omitempty"`
	SensorAddress     string       `json:"sensor_address,omitempty"`
	SensorConfig      string       `json:"sensor_config,omitempty"`
	SensorKey         string       `json:"sensor_key,omitempty"`
	SensorVersion     string       `json:"sensor_version,omitempty"`
	Subdivisions      []string     `json:"subdivisions,omitempty"`
	Time              string       `json:"time,omitempty"`
	Transcript        string       `json:"transcript,omitempty"`
	TranscriptRef     string       `json:"transcript_ref,omitempty"`
	TranscriptSHA256  string       `json:"transcript_sha256,omitempty"`
	Transport         string       `json:"transport,omitempty"`
	UserHash          string       `json:"user_hash,omitempty"`
	Vantage           string       `json:"vantage,omitempty"`
	VPN               *bool        `json:"vpn,omitempty"`
}

// valid replaces each byte that is not UTF-8 with U+FFFD, as the JSON
// line does (one \ufffd a byte) and as canon writes it back.
func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b []byte
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

func validAll(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := ss
	for i, s := range ss {
		if v := valid(s); v != s {
			if &out[0] == &ss[0] {
				out = append([]string(nil), ss...)
			}
			out[i] = v
		}
	}
	return out
}

// canonBuild is the build object's canonical form: "modified" is always
// there, so the object is never empty.
type canonBuild struct {
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified"`
	Version  string `json:"version,omitempty"`
}

func canonOf(r *record, sensor bool) canonRecord {
	c := canonRecord{
		Agency: r.Agency, AgencyRule: valid(r.AgencyRule), BatchSig: r.BatchSig, Chain: valid(r.Chain),
		ChainPrev: r.ChainPrev, ChainSeq: r.ChainSeq, City: valid(r.City), Client: valid(r.Client),
		ClientVersion: valid(r.ClientVersion), ClockOffsetMS: r.ClockOffsetMS, ClockSource: valid(r.ClockSource), ClockUncertainty: r.ClockUncertainty,
		Build:        canonBuild{Commit: valid(r.Build.Commit), Modified: r.Build.Modified, Version: valid(r.Build.Version)},
		SensorConfig: valid(r.SensorConfig),
		Country:      valid(r.Country), GeoDB: valid(r.GeoDB), GeoDBBuild: r.GeoDBBuild, GUID: r.GUID,
		ID: valid(r.ID), IP: r.IP, Item: r.Item, ItemKind: r.ItemKind, ListenPort: r.ListenPort,
		Marks: validAll(r.Marks), Matched: validAll(r.Matched), MatchedCategories: validAll(r.MatchedCategories),
		Method: valid(r.Method), Network: valid(r.Network), NodeID: r.NodeID, Org: valid(r.Org), PeerID: r.PeerID,
		PiecesHave: r.PiecesHave, PiecesTotal: r.PiecesTotal, Port: r.Port, Possession: r.Possession,
		Sensor: valid(r.Sensor), SensorAddress: r.SensorAddress, SensorKey: r.SensorKey,
		SensorVersion: valid(r.SensorVersion), Subdivisions: validAll(r.Subdivisions), Time: r.Time,
		Transcript: r.Transcript, TranscriptRef: valid(r.TranscriptRef), TranscriptSHA256: r.TranscriptSHA256,
		Transport: valid(r.Transport), UserHash: r.UserHash, Vantage: valid(r.Vantage),
		ASN: &r.ASN, Hosting: &r.Hosting, Latitude: &r.Latitude, Longitude: &r.Longitude, VPN: &r.VPN,
		EvidenceForm: r.EvidenceForm,
	}
	if sensor && r.EvidenceForm != nil && *r.EvidenceForm == Form2 { // canon.SensorDrop
		c.Transcript = ""
	}
	if sensor { // canon.IngestKeys
		c.Agency, c.AgencyRule, c.City, c.Country, c.GeoDB, c.GeoDBBuild, c.Org, c.Subdivisions = "", "", "", "", "", "", "", nil
		c.ASN, c.Hosting, c.Latitude, c.Longitude, c.VPN, c.BatchSig = nil, nil, nil, nil, nil, ""
	}
	return c
}

// canonical returns o's canonical form, or its sensor's form (without
// canon.IngestKeys), written directly (canonRecord).
func (o *Observation) canonical(sensor bool, fn func([]byte)) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("observation %s: %w", o.ID, err)
	}
	r := toRecord(o)
	c := canonOf(&r, sensor)
	b := new(bytes.Buffer)
	e := json.NewEncoder(b)
	e.SetEscapeHTML(false)
	if err := e.Encode(&c); err != nil {
		return fmt.Errorf("observation %s: %w", o.ID, err)
	}
	fn(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return nil
}
