package analysis

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// ErrNotFound is returned for a target, link, lead or hash that does not
// exist or that the reader's scope does not cover: the two are never told
// apart. It is agency.ErrNotFound.
var ErrNotFound = agency.ErrNotFound

// ErrStale is what AnalysisSave returns (as a *StaleError) when another
// process saved the analysis since the writer's view last matched the
// store: the writer must bring its view up to the store's first
// (Engine does, and saves again), never overwrite a newer one.
var ErrStale = errors.New("analysis: the store's analysis moved on since this view was loaded")

// StaleError is ErrStale with the store's analysis version and watermark.
type StaleError struct {
	Version          int64 // the version the store holds
	Watermark        int64 // the watermark the store holds
	FiguresWatermark int64 // the last seq the stored roll-ups count
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("%v (version %d, watermark %d)", ErrStale, e.Version, e.Watermark)
}

func (e *StaleError) Unwrap() error { return ErrStale }

// Scope is what a reader may see: every agency (a national office), or the
// targets routed to one of Agencies or shared with one of them. It is
// agency.Scope; the zero Scope sees nothing.
type Scope = agency.Scope

// AllAgencies is the scope of a national office.
var AllAgencies = Scope{All: true}

// TargetQuery selects a page of targets. Zero fields do not filter.
type TargetQuery struct {
	Scope        Scope
	Jurisdiction string        // only targets routed to this agency
	Network      string        // only targets seen on this network
	MinScore     float64       //
	MinLevel     observe.Level // only targets with a file at this level or above
	VPN          *bool         // only targets seen (or never seen) through a VPN
	Since, Until time.Time     // last seen at or after Since, first seen before Until
	Category     string        // only targets with a file of this list category
	MinSeverity  int           // only targets with a file of this severity or graver
	MinFiles     int           // only targets with at least this many distinct watched files (volume)
	Flags        []string      // only targets an analyst flagged with every one of these (FlagKnownOffender, FlagChildAccess)
	Sort         string        // "score" (default), "last_seen", "first_seen", "files", "endpoints"
	Limit        int           // default 50, at most 1000
	Offset       int
}

// LevelCount is how many distinct files reached a level: a count is never
// shown without its level.
type LevelCount struct {
	Level observe.Level `json:"level"`
	Files int           `json:"files"`
}

// TargetSummary is one row of the ranked list.
type TargetSummary struct {
	ID           string        `json:"id"`
	Score        float64       `json:"score"`
	Parts        Parts         `json:"parts"`
	Jurisdiction string        `json:"jurisdiction"`       // the agency it is routed to
	Agencies     []string      `json:"agencies"`           // every agency its observations were routed to
	Assigned     string        `json:"assigned,omitempty"` // agency it was handed off to, overriding Jurisdiction
	Investigator string        `json:"investigator,omitempty"`
	Endpoints    int           `json:"endpoints"`
	Files        int           `json:"files"`     // distinct watched files, quarantined ones left out
	Levels       []LevelCount  `json:"levels"`    // files by their highest level
	MaxLevel     observe.Level `json:"max_level"` //
	Observations int           `json:"observations"`
	FirstSeen    time.Time     `json:"first_seen"`
	LastSeen     time.Time     `json:"last_seen"`
	Networks     []string      `json:"networks"`
	VPN          bool          `json:"vpn"`     // at least one observation came through a VPN exit
	Hosting      bool          `json:"hosting"` // ... or a hosting provider
	Categories   []string      `json:"categories"`
	MaxSeverity  int           `json:"max_severity"`
	Looking      bool          `json:"looking_only"` // every file only looked for
	Country      string        `json:"country,omitempty"`
	Subdivision  string        `json:"subdivision,omitempty"`
	Label        string        `json:"label"` // its most recent endpoint, e.g. "10.1.2.3:6881"
	Flags        []string      `json:"flags,omitempty"`
}

// EndpointInfo is one endpoint of a target.
type EndpointInfo struct {
	IP   netip.Addr `json:"ip"`
	Port uint16     `json:"port"`
	// Gen numbers the endpoints of one IP:port: each silence longer than
	// the analysis's EndpointWindow starts a new one (0 first).
	Gen int `json:"generation"`
	// Confidence is how surely this endpoint is the target's device: 1
	// for the anchor (the endpoint with the highest score of its own),
	// the product of the link confidences on the best path for the others.
	Confidence float64 `json:"confidence"`
	// FirstHand: the endpoint itself talked to the sensor at least once.
	FirstHand    bool      `json:"first_hand"`
	Transport    string    `json:"transport"`
	ASN          uint32    `json:"asn,omitempty"`
	Org          string    `json:"org,omitempty"`
	Country      string    `json:"country,omitempty"`
	Subdivision  string    `json:"subdivision,omitempty"`
	City         string    `json:"city,omitempty"`
	Agency       string    `json:"agency,omitempty"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	Observations int       `json:"observations"`
	VPN          bool      `json:"vpn"`
	Hosting      bool      `json:"hosting"`
}

// FileInfo is one distinct watched file of a target.
type FileInfo struct {
	Hash         hashkind.Hash   `json:"-"`
	Kind         string          `json:"kind"`
	Hex          string          `json:"hash"`
	Matched      []observe.Match `json:"matched"`
	Severity     int             `json:"severity"`
	MaxLevel     observe.Level   `json:"max_level"`
	Intent       string          `json:"intent"` // "sharing" or "looking"
	FirstSeen    time.Time       `json:"first_seen"`
	LastSeen     time.Time       `json:"last_seen"`
	Observations int             `json:"observations"`
	Quarantined  bool            `json:"quarantined"`
	// At is the level each endpoint itself reached for the file, highest
	// first: a link never lends one endpoint's level to another.
	At []FileAt `json:"at"`
	// Marks are the marks of the observations that gave the file its
	// MaxLevel: those, at an endpoint that reached it, credited with that
	// level (observe's CreditedLevel), sorted. A level is never shown
	// without what qualifies it (malformed_bitfield, transcript_cut,
	// third_party, ...). TargetDetail.AttachFileMarks fills them from the
	// timeline read with the detail.
	Marks []string `json:"marks"`
	// MarksComplete: every observation of the file was in that timeline,
	// so Marks (and each At's) are those of all of them; false when the
	// timeline was cut (TimelineLimit) or observations were purged under
	// retention: then only the marks of those read are known.
	MarksComplete bool `json:"marks_complete"`
}

// FileAt is the level one endpoint itself reached for a file.
type FileAt struct {
	Endpoint   string        `json:"endpoint"` // "ip:port", "ip:port#n" for a later generation (EndpointKey)
	Level      observe.Level `json:"level"`
	Confidence float64       `json:"confidence"` // the endpoint's (EndpointInfo.Confidence)
	// Marks are the marks of this endpoint's observations of the file
	// credited with Level (FileInfo.Marks).
	Marks []string `json:"marks"`
}

// Link joins two endpoints into one device.
type Link struct {
	ID         int64     `json:"id"`
	A, B       string    `json:"-"` // "ip:port" (netip.AddrPort form), "ip:port#n" for a later generation (EndpointKey)
	EndpointA  string    `json:"a"`
	EndpointB  string    `json:"b"`
	Rule       string    `json:"rule"`
	Evidence   string    `json:"evidence"` // the identifier or pair that made it
	Reason     string    `json:"reason"`   // for a human: what was seen where and when
	Confidence float64   `json:"confidence"`
	Obs        []string  `json:"observations"` // ids of the observations behind it
	At         time.Time `json:"at"`
	State      string    `json:"state"` // "active", "withdrawn" (evidence turned out shared), "rejected" (analyst)
	Note       string    `json:"note,omitempty"`
}

// Link rules.
const (
	RuleNodeID     = "dht_node_id"
	RuleUserHash   = "emule_user_hash"
	RuleGUID       = "gnutella_guid"
	RulePeerID     = "peer_id_session"
	RuleListenPort = "listen_port_client"
	RuleOverlap    = "file_overlap"
	// RuleAnnounceListen joins a DHT announce's own endpoint (its UDP
	// source) to the endpoint probed at the listen port it declared.
	RuleAnnounceListen = "announce_listen_port"
	// RuleSubscriberPrefix joins two IPv6 endpoints of one subscriber
	// prefix (IPv6Config), one AS and one port, one after the other within
	// the endpoint window, one client name and version. Its evidence is
	// "AS<asn>|<prefix>|<port>|<basis>|<client>|<version>", basis "table"
	// (IPv6Config.Prefixes names the AS) or "default" (links stored before
	// the client was part of it have the first four fields only).
	RuleSubscriberPrefix = "subscriber_prefix"
)

// TimelineEntry is one observation of a target.
type TimelineEntry struct {
	ID        string          `json:"id"`
	Time      time.Time       `json:"time"`
	Network   string          `json:"network"`
	Method    string          `json:"method"`
	Intent    string          `json:"intent"`
	Level     observe.Level   `json:"level"`
	Endpoint  string          `json:"endpoint"`
	Transport string          `json:"transport"`
	Kind      string          `json:"kind"`
	Hash      string          `json:"hash"`
	Matched   []observe.Match `json:"matched"`
	Place     observe.Place   `json:"place"`
	Agency    string          `json:"agency"`
	Sensor    string          `json:"sensor"`
	// ClockOffset is the sensor clock minus the reference clock when it
	// was seen, within ± ClockUncertainty, when ClockKnown; and
	// ClockSource how that was measured, or why it is unknown: an ISP
	// request states them beside the time. In JSON: clock_offset_ms and
	// clock_uncertainty_ms, numbers or null when unknown (MarshalJSON).
	ClockKnown       bool          `json:"-"`
	ClockOffset      time.Duration `json:"-"`
	ClockUncertainty time.Duration `json:"-"`
	ClockSource      string        `json:"clock_source"`
	// Build is the exact build of the sensor that made the observation.
	Build observe.Build `json:"build"`
	// Marks are the observation's marks (observe.Mark*): an ISP request
	// and the page lower their trust where a mark says so.
	Marks []string `json:"marks"`
	// SensorAddress is the sensor's own address:port in the conversation
	// (observe.Endpoint.Local), "" when the endpoint never talked to it.
	SensorAddress string `json:"sensor_address,omitempty"`
	// TranscriptSHA256 is the hex digest of the observation's transcript.
	TranscriptSHA256 string `json:"transcript_sha256,omitempty"`
	// FirstHand is observe.Observation.FirstHand: the endpoint itself
	// talked to the sensor.
	FirstHand bool `json:"first_hand"`
	// Client and ClientVersion are the client the peer named (decoded
	// from its peer id or handshake; "" when it named none), and
	// PiecesHave and PiecesTotal the pieces it showed of the item (-1
	// unknown): what the page's timeline shows beside the level.
	Client        string `json:"client,omitempty"`
	ClientVersion string `json:"client_version,omitempty"`
	PiecesHave    int    `json:"pieces_have"`
	PiecesTotal   int    `json:"pieces_total"`
}

// MarshalJSON writes the entry with its clock offset and uncertainty in
// milliseconds (observe.Millis), or null when the offset is unknown.
func (t TimelineEntry) MarshalJSON() ([]byte, error) {
	type plain TimelineEntry
	var off, unc *json.Number
	if t.ClockKnown {
		off, unc = observe.Millis(t.ClockOffset), observe.Millis(t.ClockUncertainty)
	}
	return json.Marshal(struct {
		plain
		ClockOffsetMS      *json.Number `json:"clock_offset_ms"`
		ClockUncertaintyMS *json.Number `json:"clock_uncertainty_ms"`
	}{plain(t), off, unc})
}

// Observation rebuilds the fields of the observation that the entry
// carries (what an ISP request needs), with Endpoint parsed from
// "ip:port" (left zero when it does not parse).
func (t *TimelineEntry) Observation() observe.Observation {
	o := observe.Observation{ID: t.ID, Network: t.Network, Method: t.Method, Time: t.Time,
		ClockKnown: t.ClockKnown, ClockOffset: t.ClockOffset, ClockUncertainty: t.ClockUncertainty, ClockSource: t.ClockSource,
		Sensor:     observe.Sensor{ID: t.Sensor, Version: t.Build.Version, Commit: t.Build.Commit, Modified: t.Build.Modified},
		Marks:      t.Marks,
		Endpoint:   observe.Endpoint{Transport: t.Transport},
		Client:     observe.Client{Name: t.Client, Version: t.ClientVersion},
		Possession: observe.Possession{Level: t.Level, PiecesHave: t.PiecesHave, PiecesTotal: t.PiecesTotal}, Place: t.Place}
	if ap, err := netip.ParseAddrPort(t.Endpoint); err == nil {
		o.Endpoint.IP, o.Endpoint.Port = ap.Addr(), ap.Port()
	}
	if ap, err := netip.ParseAddrPort(t.SensorAddress); err == nil {
		o.Endpoint.Local = ap
	}
	if b, err := hex.DecodeString(t.TranscriptSHA256); err == nil && len(b) > 0 {
		o.Transcript.SHA256 = b
	}
	return o
}

// Share is a target shared with (or handed to) another agency.
type Share struct {
	Agency string    `json:"agency"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Note   string    `json:"note"`
}

// TargetDetail is a target's page.
type TargetDetail struct {
	TargetSummary
	MergedFrom []string        `json:"merged_from,omitempty"` // older ids that now redirect here
	Endpoints  []EndpointInfo  `json:"endpoint_list"`
	Files      []FileInfo      `json:"file_list"`
	Links      []Link          `json:"links"`
	Timeline   []TimelineEntry `json:"timeline"` // most recent first, at most TimelineLimit
	Leads      []Lead          `json:"leads"`
	Shares     []Share         `json:"shares"`
}

// TimelineLimit bounds a detail's timeline.
const TimelineLimit = 500

// Associated is what a sensor learnt about the other files of a matched
// torrent (from its metadata), and where.
type Associated struct {
	Torrent  hashkind.Hash // the watched item
	Files    []AssocFile
	Endpoint observe.Endpoint
	Time     time.Time
}

// AssocFile is one file of a torrent. Hash is optional (a v2 piece root,
// or a hash the metadata gives); without it a lead is keyed by torrent and
// path.
type AssocFile struct {
	Path string
	Size int64
	Hash hashkind.Hash
}

// Suspect is a file an analyst's keyword search returned that is on no
// watch-list: what a server or a Kad node indexes (name, size, how many
// clients it says have it), not anyone's possession.
type Suspect struct {
	Hash    hashkind.Hash // the file's hash (ed2k)
	Name    string
	Size    int64 // -1 when not given
	Sources int   // -1 when not given
	Keyword string
	Network string
	Time    time.Time
}

// Lead states.
const (
	LeadOpen      = "open"
	LeadConfirmed = "confirmed"
	LeadDismissed = "dismissed"
)

// Lead is an unwatched file seen with watched ones (the other files of a
// watched torrent), or returned by an analyst's keyword search (a
// suspect lead: Keywords set): material for a human to review, never a
// match.
type Lead struct {
	Key       string        `json:"key"` // "<kind>:<hex>" or "<torrent kind>:<hex>/<path>"
	Hash      hashkind.Hash `json:"-"`
	Path      string        `json:"path"`
	Size      int64         `json:"size"`
	Count     int           `json:"count"` // sightings
	FirstSeen time.Time     `json:"first_seen"`
	LastSeen  time.Time     `json:"last_seen"`
	Torrents  []string      `json:"torrents"` // "<kind>:<hex>" of the torrents it was in
	Watched   []string      `json:"watched"`  // the watched items it was seen with
	// Keywords are the analyst's keywords whose searches returned the
	// file, Networks the networks that returned it (ed2k: a server's
	// search; kad), Searched how many search results named it, and
	// Sources the most clients a server or a Kad node said had it (their
	// word: -1 when none said). A search result names no endpoint: a
	// suspect lead is seen at none, and Count (sightings with watched
	// items) and Endpoints do not count searches.
	Keywords  []string  `json:"keywords,omitempty"`
	Networks  []string  `json:"networks,omitempty"`
	Searched  int       `json:"searched"`
	Sources   int       `json:"sources"`
	Endpoints int       `json:"endpoints"`
	State     string    `json:"state"`
	By        string    `json:"by,omitempty"`
	Why       string    `json:"why,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
}

// OnTarget is the lead as a target's page (and its API and exports)
// shows it: a lead is there for the torrents it was seen in at the
// target's endpoints, so what keyword searches said of it (the
// analyst's keywords, the networks, the results, the sources a server
// claimed) stays with the leads' review and is left out.
func (l Lead) OnTarget() Lead {
	l.Keywords, l.Networks, l.Searched, l.Sources = nil, nil, 0, -1
	return l
}

// LeadQuery selects leads.
type LeadQuery struct {
	State  string // "" for all
	Limit  int
	Offset int
}

// Quarantine states.
const (
	QuarantineHeld     = "held"
	QuarantineReleased = "released"
	QuarantineDisabled = "disabled"
)

// QuarantineRecord is one hash held for review.
type QuarantineRecord struct {
	Hash      hashkind.Hash `json:"-"`
	Kind      string        `json:"kind"`
	Hex       string        `json:"hash"`
	State     string        `json:"state"`
	Detected  time.Time     `json:"detected"`
	Peers     int           `json:"peers"`    // distinct endpoints in the burst hour
	Baseline  float64       `json:"baseline"` // mean distinct endpoints an hour before it
	Reason    string        `json:"reason"`
	By        string        `json:"by,omitempty"`
	Why       string        `json:"why,omitempty"`
	DecidedAt time.Time     `json:"decided_at,omitzero"`
}

// Alert is raised for an analyst.
type Alert struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`    // "quarantine"
	Subject string    `json:"subject"` // e.g. "btih:<hex>"
	Message string    `json:"message"`
}

// Stats are the figures of the overview, within a scope.
type Stats struct {
	Targets       int            `json:"targets"`
	Devices       int            `json:"devices"` // targets with more than one linked endpoint
	ByAgency      map[string]int `json:"by_agency"`
	ByCountry     map[string]int `json:"by_country"`
	BySubdivision map[string]int `json:"by_subdivision"`
	ByNetwork     map[string]int `json:"by_network"`
	// Daily counts observations per UTC day since the given time (the UI
	// sums weeks and months from it).
	Daily []DayCount `json:"daily"`
}

// DayCount is one day of the trend.
type DayCount struct {
	Day          string `json:"day"` // YYYY-MM-DD
	Observations int    `json:"observations"`
}

// Decision is one analyst decision, kept forever.
type Decision struct {
	ID      int64
	At      time.Time
	By      string
	Why     string
	Kind    string // one of the Decide* constants
	Subject string // what it is about (a target id, a link rule|evidence, a hash key, a lead key)
	Value   string // flag name, agency, investigator, ...
}

// Decision kinds.
const (
	DecideUnlink       = "unlink"       // Subject: rule "|" evidence
	DecideFlag         = "flag"         // Subject: target id; Value: flag
	DecideUnflag       = "unflag"       // Subject: target id; Value: flag
	DecideRelease      = "release"      // Subject: "<kind>:<hex>"
	DecideDisable      = "disable"      // Subject: "<kind>:<hex>"
	DecideConfirmLead  = "confirm_lead" // Subject: lead key
	DecideDismissLead  = "dismiss_lead" // Subject: lead key
	DecideShare        = "share"        // Subject: target id; Value: agency
	DecideUnshare      = "unshare"      // Subject: target id; Value: agency
	DecideAssign       = "assign"       // Subject: target id; Value: agency (hand-off), "" to undo
	DecideInvestigator = "investigator" // Subject: target id; Value: investigator
)

// Backend is what the Engine needs from a store: the SQLite store
// implements it (internal/store/sqlite/analysis.go).
type Backend interface {
	// AnalysisLoad returns what survives a restart.
	AnalysisLoad(ctx context.Context) (*Snapshot, error)
	// AnalysisObservations calls fn for each stored observation with seq
	// in (after, upTo], in seq order (upTo 0: no bound). Transcripts are
	// left out.
	AnalysisObservations(ctx context.Context, after, upTo int64, fn func(seq int64, o *observe.Observation) error) error
	// AnalysisDecisions returns the decisions numbered after after, in
	// order (those another process stored since this one last saved).
	AnalysisDecisions(ctx context.Context, after int64) ([]Decision, error)
	// AnalysisSeqs returns the seq of each stored observation id (0 for
	// one not stored), and the highest seq in the store.
	AnalysisSeqs(ctx context.Context, ids []string) (seqs []int64, maxSeq int64, err error)
	// AnalysisSave writes one batch of changes in one transaction, only
	// if the store's analysis version is c.Version (checked inside the
	// transaction, saves serialised), and leaves it at c.Version+1; else
	// it writes nothing and returns a *StaleError.
	AnalysisSave(ctx context.Context, c *Changes) error

	Targets(ctx context.Context, q TargetQuery) ([]TargetSummary, int, error)
	Target(ctx context.Context, id string, scope Scope) (*TargetDetail, error)
	Stats(ctx context.Context, scope Scope, since time.Time) (*Stats, error)
	Leads(ctx context.Context, q LeadQuery) ([]Lead, int, error)
	Quarantined(ctx context.Context) ([]QuarantineRecord, error)
	Alerts(ctx context.Context, since time.Time) ([]Alert, error)
	// TargetAgencies returns the routing agency and the shares of a live
	// target (resolving merged ids), or ErrNotFound.
	TargetAgencies(ctx context.Context, id string) (string, []string, error)
}

// Snapshot is the persisted state the Engine starts from.
type Snapshot struct {
	Watermark int64 // last observation seq reflected in the tables
	NextSeq   int64 // next target number
	Version   int64 // how many saves the tables have seen (Changes.Version)
	// Endpoints by "ip:port": their id and the target number they were born with.
	Endpoints map[string]EndpointID
	Decisions []Decision // in order
	// Quarantine records by "<kind>:<hex>".
	Quarantine map[string]QuarantineRecord
	Leads      []LeadState
	// LinkIDs: stored link ids by "aID|bID|rule|evidence".
	LinkIDs map[string]int64
	// MergedInto: the stored merged_into of every target row ("" when live).
	MergedInto map[string]string
	// FiguresWatermark: the last observation seq the figures' roll-ups
	// count (Changes.FiguresWatermark); observations replayed after it are
	// added to them.
	FiguresWatermark int64
}

// EndpointID is an endpoint's stored identity.
type EndpointID struct {
	ID   int64
	Home int64
}

// LeadState is a lead with the endpoints it was seen at.
type LeadState struct {
	Lead
	TorrentHash hashkind.Hash
	// Seen: sightings by endpoint "ip:port".
	Seen map[string]int
}

// Changes is one batch of writes from the Engine.
type Changes struct {
	// Version is the analysis version the writer's view rests on: the
	// store's version when it last loaded or saved (AnalysisSave).
	Version    int64
	Watermark  int64 // 0: unchanged
	NextSeq    int64
	Endpoints  []EndpointRow
	Files      []EndpointFileRow
	Targets    []TargetRow
	Merged     map[string]string // target id -> merged into ("" to revive)
	Links      []LinkRow
	Decisions  []Decision // appended; IDs filled in by the store
	Quarantine []QuarantineRecord
	Alerts     []Alert // appended; IDs filled in by the store
	Leads      []LeadState
	Daily      []DailyRow
	// Figures: the figures' roll-up deltas (the store adds each to the
	// roll-up it keeps under the same key), and the seq they count up to
	// (0: unchanged), kept as the snapshot's FiguresWatermark.
	Figures          []figures.Rollup
	FiguresWatermark int64
	// Timeline: every observation processed since the last save, by the
	// endpoint it was folded into, so that a target's page and its ISP
	// request read an endpoint's sightings without an index on the
	// observations themselves (which would slow every insert).
	Timeline []TimelineRef
}

// TimelineRef places one observation on its endpoint's timeline.
type TimelineRef struct {
	Endpoint int64 // EndpointRow.ID
	TimeNS   int64 // the observation's time, Unix ns UTC
	Seq      int64 // its arrival number in the store
}

// EndpointRow is the stored summary of one endpoint.
type EndpointRow struct {
	ID       int64
	Home     int64
	Target   string
	Info     EndpointInfo
	Networks []string
}

// EndpointFileRow is one file of one endpoint.
type EndpointFileRow struct {
	Endpoint int64
	File     FileInfo
	// New is a hint: as far as the engine knows, the store holds no row
	// of this endpoint and file (it was neither replayed at load nor
	// written by one of the engine's saves). A store may insert such rows
	// without first looking for a stored one, but must leave the row as
	// given when one was there after all (rows outlive the observations
	// retention purges, and another process may have written it).
	New bool
}

// TargetRow is a target's stored summary and its access rows.
type TargetRow struct {
	Seq     int64
	Summary TargetSummary
	Access  []string // agencies that may see it: its routing agency and shares
	Shares  []Share
	// SameAccess: Access is as last written (only the score and times of
	// the access rows may need updating); SameCategories:
	// Summary.Categories is.
	SameAccess, SameCategories bool
}

// LinkRow is a link as stored (keyed by A, B, Rule, Evidence).
type LinkRow struct {
	AID, BID int64
	Link
}

// DailyRow is the observations of one day, agency and network.
type DailyRow struct {
	Day          int64 // days since the Unix epoch
	Agency       string
	Network      string
	Observations int
}
