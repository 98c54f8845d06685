package pages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/observe"
)

// The pages ask their questions through the interfaces in this file.
// Every call that reads case data takes the viewer: the backend filters by
// the viewer's scope (need to know), never the template. The answers over
// a store are this package's Backend (store.go, storetargets.go,
// storelists.go, storeaudit.go); the ISP request is built by the API's
// builder, which internal/web hands in.

// Sentinel errors a backend returns; handlers test them with errors.Is.
var (
	// ErrNotFound: no such target, list or record (agency.ErrNotFound).
	ErrNotFound = agency.ErrNotFound
	// ErrDenied: the thing exists but is outside the viewer's scope or
	// role. Handlers answer exactly as for ErrNotFound (404, same page) and
	// append an audit record with ActionDenied.
	ErrDenied = errors.New("outside the viewer's scope")
	// ErrNoPurpose: an export was asked without a valid purpose.
	ErrNoPurpose = errors.New("a purpose (case number) is required")
)

// Roles: the access layer's, agency.Role.
const (
	RoleInvestigator = agency.RoleInvestigator // a local service: its targets only
	RoleAnalyst      = agency.RoleAnalyst      // national office: all targets, lists, sensors
	RoleSupervisor   = agency.RoleSupervisor   // sees its service's targets
	RoleAuditor      = agency.RoleAuditor      // reads the audit trail
	RoleAdmin        = agency.RoleAdmin        // lists and sensors
)

// User is the person behind a request, as the access layer authenticated
// them. It is never built from request input by this package.
type User struct {
	Name     string      // login name, written into audit records
	Agency   string      // agency id of the user's service
	Role     agency.Role // one of the Role constants
	Lang     string      // "en" or "fr"; "" picks the default
	TimeZone string      // IANA zone, e.g. "Europe/Paris"; "" is UTC
	Scope    Scope       // whose targets and events the user may see
}

// Scope is a user's need to know: the agencies whose targets they may see
// (agency.Scope).
type Scope = agency.Scope

// CanAudit reports whether u may read the audit trail.
func (u *User) CanAudit() bool { return u != nil && u.Role == RoleAuditor }

// CanManageLists reports whether u may import watch-lists.
func (u *User) CanManageLists() bool {
	return u != nil && (u.Role == RoleAnalyst || u.Role == RoleAdmin)
}

// Targets answers the questions about targets. Implementations run one or
// two indexed queries per call: no scan of the observations.
type Targets interface {
	// List returns one page of the targets in the viewer's scope that
	// match q, and how many match in all.
	List(ctx context.Context, viewer *User, q TargetQuery) (TargetPage, error)
	// Get returns one target. ErrNotFound if there is none, ErrDenied if it
	// is outside the viewer's scope.
	Get(ctx context.Context, viewer *User, id string) (*TargetDetail, error)
	// Overview returns the figures in the viewer's scope since the given
	// time (the page asks for the last seven days).
	Overview(ctx context.Context, viewer *User, since time.Time) (*Overview, error)
}

// AlertFeed answers the overview's Alerts block: the viewer's agency's
// recent alerts (internal/alerts), those about a target only while the
// target is in that agency's scope now. Another agency's alerts are never
// in it, whatever the viewer's scope (a national analyst sees their own
// agency's).
type AlertFeed interface {
	Recent(ctx context.Context, viewer *User, n int) ([]AlertRow, error)
}

// AlertRow is one alert as the overview shows it.
type AlertRow struct {
	ID        string
	Kind      string // the rule's kind (alerts.Kind*)
	Rule      string
	Target    string        // "" for an alert about no target
	Detail    string        // the list, the score, the address: data, not translated
	Level     observe.Level // possession level, when the alert has one (0: none)
	Created   time.Time
	Held      bool // over its rule's limit: shown, not sent
	SummaryOf int  // a summary: how many held alerts it counts
}

// Sort orders for TargetQuery.
const (
	SortScore = "score"
	SortLast  = "last"
	SortFirst = "first"
)

// TargetQuery selects targets. Zero fields do not filter.
type TargetQuery struct {
	Jurisdiction string        // agency id
	Network      string        // observe.NetBitTorrent, ...
	MinScore     float64       //
	MinLevel     observe.Level // the target's highest level at least this
	VPN          string        // "yes": seen behind a VPN; "no": never; "": either
	From, Until  time.Time     // last seen at or after From, first seen before Until (UTC)
	Search       string        // an address, a hash (hex) or a target id
	Sort         string        // SortScore (default), SortLast, SortFirst
	Asc          bool          // ascending; default descending
	Offset       int           //
	Limit        int           // page size, at most 200
}

// TargetPage is one page of targets.
type TargetPage struct {
	Targets []TargetSummary
	Total   int // matching targets, all pages
}

// TargetSummary is one row of the targets table.
type TargetSummary struct {
	ID           string
	Jurisdiction string // agency id the target is routed to; "" unrouted
	Score        float64
	Level        observe.Level // the highest level of any of its observations
	Files        int           // distinct files, not announcements
	Endpoints    int           // distinct (address, port) pairs
	Networks     []string
	Country      string // of the latest place
	Subdivision  string // département code of the latest place, e.g. "78"
	VPN          bool   // some observation came through a VPN exit
	FirstSeen    time.Time
	LastSeen     time.Time
}

// TargetDetail is everything the target page shows. Lists are bounded by
// the backend (newest first); the totals say how many there are.
type TargetDetail struct {
	TargetSummary
	Claim *ClaimInfo // the agency that holds it (vigil claim); nil when none
	// HandOff is the target's pending hand-off proposal, given only to
	// the agency it is from (the claim's holder), the agency it is
	// proposed to, and a national scope; nil otherwise.
	HandOff           *HandOffInfo
	Observations      []ObservationRow // timeline, newest first
	ObservationsTotal int
	Places            []PlaceCount  // where its addresses were placed, for the map
	Addresses         []EndpointRow // its (address, port) pairs with their ISP
	Devices           []DeviceLink
	FileRows          []FileRow
	ScoreParts        []ScorePart
	Associated        []AssociatedFile
}

// ClaimInfo is who holds a target (casework.Claim), as its page shows it
// to every agency that may see the target: whom to call before acting.
type ClaimInfo struct {
	Agency   string
	By       string
	Contact  string
	Since    time.Time
	LapsesAt time.Time // without activity before then
	Lapsing  bool      // within the warning before the lapse
}

// HandOffInfo is a pending hand-off proposal (casework.Proposal): the
// target's newest first-hand observations fall in another agency's
// jurisdiction than the claim's.
type HandOffInfo struct {
	From, To string
	Reason   string // as casework wrote it
	At       time.Time
}

// ObservationRow is one observation as a page shows it.
type ObservationRow struct {
	ID          string
	Time        time.Time // UTC
	Network     string
	Method      string
	Level       observe.Level
	PiecesHave  int    // -1 unknown
	PiecesTotal int    // -1 unknown
	Item        string // "kind:hex"
	Lists       []observe.Match
	Endpoint    netip.AddrPort
	Transport   string
	Client      string // decoded name and version
	Sensor      string
	Country     string
	Subdivision string
	VPN         bool
	Agency      string // jurisdiction
	Target      string // target id, if the observation belongs to one
	// Marks are the observation's marks (observe.Mark*, sorted), shown
	// beside it on every page with their meaning.
	Marks []string
	// FirstHand is observe.Observation.FirstHand: the endpoint itself
	// talked to the sensor. Pages show a third party's claim as such.
	FirstHand bool
}

// RowFromObservation builds an ObservationRow; adapters may use it.
func RowFromObservation(o *observe.Observation) ObservationRow {
	r := ObservationRow{
		ID: o.ID, Time: o.Time.UTC(), Network: o.Network, Method: o.Method,
		Level: o.Possession.Level, PiecesHave: o.Possession.PiecesHave, PiecesTotal: o.Possession.PiecesTotal,
		Item:     o.Item.Hash.Kind().String() + ":" + o.Item.Hash.String(),
		Lists:    o.Item.Matched,
		Endpoint: netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port), Transport: o.Endpoint.Transport,
		Sensor: o.Sensor.ID, Country: o.Place.Country, VPN: o.Place.VPN, Agency: o.Jurisdiction.Agency,
		Marks: o.Marks, FirstHand: o.FirstHand(),
	}
	r.Client = ClientName(o.Client.Name, o.Client.Version)
	if n := len(o.Place.Subdivisions); n > 0 {
		r.Subdivision = o.Place.Subdivisions[n-1]
	}
	return r
}

// ClientName is a client's name and version as a page shows them ("" when
// the peer named no client). The peer chose them (any bytes): each is
// written by observe.EscapeText, the rule the analysis writes them by in
// a link's evidence and reason (docs/evidence.md, "Peer text"), and cut
// as visibleText cuts.
func ClientName(name, version string) string {
	switch {
	case name == "":
		return ""
	case version == "":
		return visibleText(observe.EscapeText(name), maxShownName)
	}
	return visibleText(observe.EscapeText(name)+" "+observe.EscapeText(version), maxShownName)
}

// maxShownName and maxShownText bound, in runes, a client name and a
// longer text (a link's reason) a peer chose, as a page shows them.
const (
	maxShownName = 120
	maxShownText = 600
)

// visibleText is text a peer chose (a client name, an identifier in a
// link's reason, a lead's file name), as a page shows it: html/template
// escapes it as HTML; here it is cut at max runes ("…"), and what is not
// printable in it (a bidi override or isolate such as U+202E, which would
// turn the rest of its cell around on screen, an escape, a control, a
// byte that is not UTF-8) is written as observe.EscapeText writes it
// ("\u202e", "\xff"). Text the analysis wrote by that rule has nothing
// left to write so; a row stored before it did is shown so (its
// backslashes as they are: on a page only).
func visibleText(s string, max int) string {
	plain := len(s) <= max && utf8.ValidString(s)
	for _, r := range s {
		if !plain || (r != ' ' && !unicode.IsPrint(r)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		if n == max {
			b.WriteString("…")
			break
		}
		n++
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case (r == utf8.RuneError && size == 1) || (r != ' ' && !unicode.IsPrint(r)):
			b.WriteString(observe.EscapeText(s[i : i+size]))
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// EndpointRow is one address of a target, with its ISP.
type EndpointRow struct {
	Addr      netip.AddrPort
	Transport string
	ASN       uint32
	Org       string
	Country   string
	Place     string // subdivision or city, as placed at ingest
	VPN       bool
	Hosting   bool
	Level     observe.Level // highest level seen at this address
	Count     int
	FirstSeen time.Time
	LastSeen  time.Time
}

// DeviceLink says why two sightings are believed to be one device.
type DeviceLink struct {
	Device string // device id
	// Rule and Evidence are the analysis's rule (analysis.Rule*, named
	// in the viewer's language) and the identifier it rests on; either
	// may be empty.
	Rule     string
	Evidence string
	Reason   string // the analysis's sentence, e.g. "same DHT node id 3f…" (shown as written)
	Strength string // "strong", "medium", "weak", "withdrawn", "rejected" (translated), or the analysis's own word
	// Confidence is the link's confidence, 0 to 1 (0: not given).
	Confidence float64
	Seen       int // sightings of the device
	// Endpoints are the addresses the link names (its ends, and those its
	// reason names), for the view's audit record.
	Endpoints []netip.AddrPort
}

// FileRow is one file a target shared or looked for.
type FileRow struct {
	Item      string // "kind:hex"
	Name      string // as the list gives it, if any
	Lists     []observe.Match
	Level     observe.Level // the highest level for this file
	Count     int           // sightings
	FirstSeen time.Time
	LastSeen  time.Time
	// Quarantined: the hash is held in quarantine and not scored.
	Quarantined bool
	// LookedFor: the file was only looked for, never offered.
	LookedFor bool
	// At is each endpoint's own level for the file, when several showed
	// it (a link lends no level).
	At []LevelAt
	// Marks are those of the observations that gave the file its Level
	// (analysis.FileInfo.Marks); MarksComplete: of all of them, not
	// only of the timeline read.
	Marks         []string
	MarksComplete bool
}

// LevelAt is the level one endpoint itself showed, with the marks of the
// observations that gave it.
type LevelAt struct {
	Endpoint string // "ip:port", with "#n" from an endpoint's second generation on
	Level    observe.Level
	Marks    []string
}

// ScorePart is one term of a target's score, with its reason. A part the
// catalog knows (analysis.Part*: "part.NAME") is named and explained in
// the viewer's language; Why is the backend's explanation otherwise.
type ScorePart struct {
	Name  string
	Value float64
	Why   string
}

// AssociatedFile is a file often seen with the target's files: a lead.
type AssociatedFile struct {
	Item  string
	Name  string
	Peers int // peers seen sharing both
	// State is the lead's state ("open", "confirmed", "dismissed"); with
	// it the page writes its note in the viewer's language from Seen,
	// Watched and Torrents. Without it, Note is shown as written.
	State    string
	Seen     int // sightings of the file
	Watched  int // watched items it was seen with
	Torrents int // torrents it was seen in
	Note     string
}

// PlaceCount is one place with a count, and where to draw it.
type PlaceCount struct {
	Key      string  // département code ("78", "2A") or country code ("FR")
	Label    string  // e.g. "Yvelines"; "" shows the key
	Country  string  // ISO 3166-1 alpha-2
	Lat, Lon float64 // degrees; both zero when unknown (not drawn)
	Count    int
}

// Count is a named count.
type Count struct {
	Key   string
	Count int
}

// LevelCount counts observations at one level.
type LevelCount struct {
	Level observe.Level
	Count int
}

// DayCount is one day of the trend (UTC day).
type DayCount struct {
	Day          time.Time // 00:00 UTC
	Observations int
	Targets      int // targets first seen that day
}

// Overview is the figures of the overview page, in the viewer's scope.
type Overview struct {
	Since         time.Time
	Observations  int
	Targets       int
	Devices       int // targets of more than one endpoint (addresses joined by device links)
	ByAgency      []Count
	BySubdivision []PlaceCount // French départements
	ByCountry     []PlaceCount
	ByNetwork     []Count
	ByLevel       []LevelCount
	Trend         []DayCount       // one per day, oldest first
	NewestHigh    []TargetSummary  // the highest scores of the period, at least HighScore, by score
	HighScore     float64          // the threshold of NewestHigh
	Recent        []ObservationRow // newest first, a few dozen
}

// ISPFile is a rendered ISP request.
type ISPFile struct {
	ContentType string
	Filename    string
	Body        []byte
	Endpoints   []string // the addresses (ip:port) it names, for the audit record
}

// ISP formats.
var ISPFormats = []string{"pdf", "csv", "json"}

// ISPRequests renders the ISP request of a target. Errors as Targets.Get.
type ISPRequests interface {
	Render(ctx context.Context, viewer *User, targetID, format, purpose string) (ISPFile, error)
}

// ISPPurged is ISPRequests that also tells the form how many rows of a
// target's request rest on an exchange whose transcript a retention purge
// removed, and the first and last day of those purges: the form says so
// before anyone downloads it.
type ISPPurged interface {
	PurgedRows(ctx context.Context, viewer *User, targetID string) (n int, first, last time.Time, err error)
}

// Lists answers about watch-lists.
type Lists interface {
	Lists(ctx context.Context, viewer *User) ([]ListInfo, error)
	// Versions returns a list's versions, newest first. ErrNotFound.
	Versions(ctx context.Context, viewer *User, name string) ([]ListVersion, error)
	// Diff returns what changed from version from to version to.
	Diff(ctx context.Context, viewer *User, name string, from, to int) (ListDiff, error)
	// Import parses and stores a list file, calling progress as it goes
	// (done and total in bytes or entries; total -1 when unknown). It
	// runs after the request that started it has returned: ctx is not the
	// request's.
	Import(ctx context.Context, viewer *User, up ListUpload, progress func(done, total int64)) (ImportResult, error)
}

// ListInfo mirrors watchlist.List.
type ListInfo struct {
	Name     string
	Source   string
	Version  string
	Format   string
	Negative bool
	Imported time.Time
	Entries  int
	Disabled int
	SHA256   string
}

// ListVersion is one import of a list.
type ListVersion struct {
	Version  int
	Label    string // the publisher's label, if any
	Imported time.Time
	By       string
	SHA256   string
	Entries  int
	Added    int
	Removed  int
	Changed  int
}

// ListDiff is what changed between two versions.
type ListDiff struct {
	From, To                int
	Added, Removed, Changed []DiffEntry
	Truncated               bool // only the first entries of each kind are given
}

// DiffEntry is one hash in a diff.
type DiffEntry struct {
	Hash     string // "kind:hex"
	Category string
	Was      string // for a change: the old category/severity/note
}

// ListUpload is one uploaded list file.
type ListUpload struct {
	Name     string // list name
	Source   string
	Filename string
	Size     int64
	Body     io.Reader
}

// ImportResult mirrors store.ImportReport.
type ImportResult struct {
	List      string
	Version   int
	Unchanged bool
	Added     int
	Removed   int
	Changed   int
}

// MaxRejectedShown bounds the rejected lines an import page lists; the
// count says how many there were in all.
const MaxRejectedShown = 100

// RejectedLine is one line of an import file that was refused, and why.
type RejectedLine struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// ImportRejectedError is an import refused because lines of its file are
// invalid (nothing was imported): every such line up to MaxRejectedShown,
// and how many there were.
type ImportRejectedError struct {
	File  string
	Total int
	Lines []RejectedLine
}

func (e *ImportRejectedError) Error() string {
	s := fmt.Sprintf("%s: %d invalid entries, nothing imported", e.File, e.Total)
	if len(e.Lines) > 0 {
		s += fmt.Sprintf("; first: line %d: %s", e.Lines[0].Line, e.Lines[0].Reason)
	}
	return s
}

// Sensors reports the sensors' health and rates.
type Sensors interface {
	Sensors(ctx context.Context) ([]SensorStatus, error)
}

// SensorStatus is one sensor or part.
type SensorStatus struct {
	Name   string
	OK     bool
	State  string // why, or what it is doing
	Scope  string // "lab", "internet", or the scope guard's description
	Rates  []Rate
	Errors []Rate
}

// Rate is one counter with its rate since the previous reading.
type Rate struct {
	Name   string
	Total  float64
	PerSec float64 // -1 when there is no previous reading
}

// Audit actions written by this package (they match internal/audit's).
const (
	ActionLogin       = "login"
	ActionViewTarget  = "view_target"
	ActionListTargets = "list_targets"
	ActionSearch      = "search"
	ActionExport      = "export"
	ActionChange      = "change"
	ActionDenied      = "denied"
	ActionReadAudit   = "read_audit"
	// The live feed: a subscription, each batch delivered (naming every
	// target and endpoint in it, written before the batch is), and the
	// end of the stream with why.
	ActionLiveSubscribe = "live_subscribe"
	ActionLiveDeliver   = "live_deliver"
	ActionLiveEnd       = "live_end"
	// ActionViewList is a read of the watch-lists or of one list's
	// versions and changes.
	ActionViewList = "view_list"
)

// AuditRecord mirrors audit.Record without the chain fields.
type AuditRecord struct {
	Seq         int64
	Time        time.Time // set by the trail
	Actor       string
	ActorAgency string
	Role        agency.Role // the actor's role at the time
	Remote      string
	Action      string
	Object      string // "target:ID", "list:NAME", ...
	Purpose     string
	Detail      string // JSON
}

// AuditFilter mirrors audit.Filter.
type AuditFilter struct {
	Actor     string
	Action    string
	Object    string
	Since     time.Time
	Until     time.Time
	BeforeSeq int64 // paging, newest first: records with Seq < BeforeSeq (0: from the newest)
	Limit     int
}

// Audit is the audit trail as the audit page reads it. Records are
// written through Config.Trail.
type Audit interface {
	// List returns records newest first. The caller has checked CanAudit;
	// implementations may check again.
	List(ctx context.Context, viewer *User, f AuditFilter) ([]AuditRecord, error)
}
