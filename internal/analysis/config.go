package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/own"
)

// Config sets the Engine's rules. docs/scoring.md documents every default.
type Config struct {
	// Weights are the score's constants.
	Weights Weights
	// Severity gives a match's severity (0..5) from its list and category.
	// Default: DefaultSeverity (watchlist.CategorySeverity). The lead may
	// pass a table built from the lists' entries.
	Severity func(list, category string) int
	// Watched reports whether a hash is on a list (for associated files:
	// a watched file is never a lead). Nil: no file is known watched.
	Watched func(h hashkind.Hash) bool
	// EndpointWindow bounds an endpoint in time: an IP:port silent for
	// longer than this is a new endpoint when seen again (addresses and
	// ports are reassigned). Default 24 h.
	EndpointWindow time.Duration
	// Links are the device-linking thresholds.
	Links LinkConfig
	// IPv6 says how large a prefix each ISP gives one subscriber, for the
	// subscriber_prefix rule.
	IPv6 IPv6Config
	// Quarantine sets when a hash is held for review.
	Quarantine QuarantineConfig
	// Now is the clock (recency, decision and alert times).
	Now func() time.Time
	// OnAlert, if set, is called (with the Engine's lock held: do not call
	// back into the Engine) for every alert raised, after it is stored.
	OnAlert func(Alert)
	// OnDisable, if set, is called when an analyst confirms that a
	// quarantined hash is benign: wire it to store.SetDisabled for each
	// list that holds the hash.
	OnDisable func(ctx context.Context, h hashkind.Hash, by, why string) error
	// OnLeadConfirmed, if set, is called when an analyst confirms a lead
	// (before the decision is stored; an error stops it): wire it to add
	// the file to the local list (store.AddToList).
	OnLeadConfirmed func(ctx context.Context, l Lead, by, why string) error
	// MaxSuspectLeads bounds the leads that keyword searches alone made
	// (files on no list, seen in no torrent): a hostile server or Kad node
	// answers every search with new files. Past it, a new one is left out
	// and counted (Dropped: suspect_leads_full). Default 10,000.
	MaxSuspectLeads int
	// SaveInterval: Add writes its changes at most this often (and Flush
	// at once). Nothing is lost in between: the watermark is written with
	// the changes, and a restart replays what came after it. Zero writes
	// after every Add.
	SaveInterval time.Duration
	// SaveEvery bounds how many observations CatchUp (and Add while
	// Behind) processes between two writes of its changes. A backlog's
	// observations touch the same endpoints and targets again and again,
	// and every save rewrites each row its observations changed: a
	// backlog in the order sensors deliver it (every endpoint's sightings
	// spread over days) wrote 0.79 rows of targets an observation (and as
	// many of target_access and analysis_endpoints) saved every 20,000,
	// 0.14 with the defaults here (docs/benchmarks.md, "The analysis's
	// catch-up in PostgreSQL"). The analysis is the same whatever it is
	// (TestCatchUpSameWhateverTheSaveSpan); a crash redoes at most this
	// many from the watermark saved. Default 1,000,000.
	SaveEvery int
	// SaveRows bounds the rows one save of a backlog writes: CatchUp (and
	// Add while Behind) saves once this many endpoints wait to be
	// written, before SaveEvery observations. With SaveEvery it bounds
	// what the changes between two saves hold in memory besides the
	// engine's view of every endpoint (held anyway): each observation's
	// timeline reference and figures' entry (40 bytes), and at save
	// the rows of every waiting endpoint, its target and files, as
	// values and as the statements' encoded arguments. Measured at 1M
	// observations: a heap peak of 1.1-1.2 GB where saving every 20,000
	// peaked at 0.4-0.5 GB (the view after it: 0.15-0.23 GB).
	// Default 100,000.
	SaveRows int
	// Behind, if set, says whether Add is being given a backlog: the
	// process that calls Add has more observations waiting for it (its
	// bus holds more than the batch in hand). While it does, Add saves
	// as CatchUp does, once SaveEvery observations have come since the
	// last save, or after BehindInterval, whichever is first, rather than
	// every SaveInterval: each save rewrites every target, endpoint and
	// file its observations changed (an observation changes at least its
	// endpoint's and target's counts and times), and a backlog's
	// observations touch the same ones again and again. The analysis is the same; what the
	// screens show lags by at most that much more while the backlog lasts.
	Behind func() bool
	// BehindInterval is the longest Add goes without saving while Behind
	// (10 s if 0; never less than SaveInterval).
	BehindInterval time.Duration
	// FiguresInterval: the figures' roll-ups are written with the changes
	// at most this often (and by Flush, and by a CatchUp that read
	// observations, at once), each write
	// reading and rewriting every roll-up the observations since touched
	// (docs/benchmarks.md). Nothing is lost in between: the roll-ups keep
	// the seq they count up to, and a restart replays what came after it
	// into them. Zero writes them with every save.
	FiguresInterval time.Duration
	// Log receives a line per catch-up and per quarantine.
	Log *slog.Logger
	// Own are the deployment's own addresses (package own,
	// --own-addresses): an observation whose endpoint is one (a fellow
	// sensor a sensor recorded before it was told) makes no endpoint,
	// device, target or ISP row; it is left out and counted (Dropped:
	// deployment_address). Only the endpoint is judged, never what an
	// observation says of its sensor (sensor_address, vantage) nor a peer
	// id: those a hostile peer or hub can write. Every process that runs
	// the analysis over one store must be given the same file, or their
	// views differ. nil: none.
	Own *own.Set
}

// LinkConfig holds the device-linking thresholds (docs/scoring.md,
// "Devices").
type LinkConfig struct {
	// MaxIPsPerHour: an identifier seen from more distinct IP addresses
	// than this within one clock hour is shared or forged, and makes no
	// link at all (existing ones are withdrawn).
	MaxIPsPerHour int
	// MaxEndpoints: an identifier seen at more endpoints than this, ever,
	// is likewise withdrawn.
	MaxEndpoints int
	// SessionWindow: a BitTorrent peer id (with its random suffix) joins
	// two endpoints only when seen at both within this time of each other;
	// clients draw a new one per session.
	SessionWindow time.Duration
	// ReassignWindow: the listen-port rule joins an endpoint that stopped
	// to one that started on another address within this time.
	ReassignWindow time.Duration
	// IdentifierWindow: a DHT node id, eMule user hash or Gnutella GUID
	// joins two endpoints only when seen at both within this time of each
	// other.
	IdentifierWindow time.Duration
	// AnnounceWindow: a DHT announce joins the endpoint probed at the
	// listen port it declared (announce_listen_port) only when a probe
	// there answered within this time of the announces; two announce
	// endpoints declaring the same IP:port within it make that IP:port
	// link nothing.
	AnnounceWindow time.Duration
	// ConcurrentSlack: an identifier (a peer id, a listen-port identity,
	// a subscriber prefix and port, an eMule user hash, a DHT node id, a
	// Gnutella GUID) seen at two different addresses within this time of
	// each other is taken as active at both at once (a replay, or two
	// machines): it is withdrawn and links nothing.
	ConcurrentSlack time.Duration
	// CommonPorts are client default ports, never evidence of one device.
	CommonPorts []uint16
	// Overlap rule: two endpoints of the same AS, never active at the same
	// time and within ReassignWindow of each other, sharing at least OverlapMinFiles watched files with a Jaccard
	// index of at least OverlapMinJaccard; files seen at more than
	// OverlapMaxPeers endpoints are not looked at.
	OverlapMinFiles   int
	OverlapMinJaccard float64
	OverlapMaxPeers   int
	// Confidence of each rule's links (0..1).
	Confidence map[string]float64
}

// IPv6Config says how large a prefix an ISP delegates to one subscriber.
// The subscriber_prefix rule joins the IPv6 endpoints of one subscriber's
// prefix, within the endpoint window (docs/scoring.md, "IPv6"): a machine
// draws a new temporary address in its /64 every day (RFC 8981), and the
// ISP records the prefix it delegated, not each address. Set on the
// command line by --ipv6-prefixes (ParseIPv6Config).
type IPv6Config struct {
	// DefaultPrefix is the prefix length assumed for an ISP that Prefixes
	// does not name. Default 64: an ISP gives an end site at least a /64
	// (RFC 6177, RFC 7934, RIPE-690), a mobile network each device its
	// own /64 (RFC 6459). 128 turns the rule off for such ISPs.
	DefaultPrefix int
	// Prefixes is the length per ISP, by AS number, where the allocation
	// is known: 56 for an ISP that gives every subscriber a /56, 128 for
	// one that hands single addresses out of a /64 shared by several
	// subscribers (nothing is then joined). Lengths run from 48 to 128.
	// A length shorter than 64 joins the /64s of one subscriber's
	// networks: set it only when every subscriber of the AS gets that much
	// (an AS with mobile customers, one /64 each, must keep 64).
	Prefixes map[uint32]int
}

// Prefix returns the subscriber prefix length for an AS and whether the
// table names the AS (false: the default applies).
func (c IPv6Config) Prefix(asn uint32) (bits int, known bool) {
	if b, ok := c.Prefixes[asn]; ok {
		return b, true
	}
	if c.DefaultPrefix == 0 {
		return DefaultConfig().IPv6.DefaultPrefix, false
	}
	return c.DefaultPrefix, false
}

// String formats c as ParseIPv6Config reads it: "64,AS3215=56,AS64500=128"
// (the default, then the table in AS order).
func (c IPv6Config) String() string {
	d := c.DefaultPrefix
	if d == 0 {
		d = DefaultConfig().IPv6.DefaultPrefix
	}
	parts := []string{strconv.Itoa(d)}
	for _, asn := range slices.Sorted(maps.Keys(c.Prefixes)) {
		parts = append(parts, fmt.Sprintf("AS%d=%d", asn, c.Prefixes[asn]))
	}
	return strings.Join(parts, ",")
}

// ParseIPv6Config reads the --ipv6-prefixes form: a comma-separated list of
// the default length ("64" or "default=64") and per-AS lengths
// ("AS3215=56", "as3215=56" or "3215=56"), e.g. "64,AS64500=128". An empty
// string is DefaultConfig's. Errors name the item.
func ParseIPv6Config(s string) (IPv6Config, error) {
	c := DefaultConfig().IPv6
	if strings.TrimSpace(s) == "" {
		return c, nil
	}
	sawDefault := false
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		key, val, hasKey := strings.Cut(item, "=")
		if !hasKey {
			key, val = "default", item
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		bits, err := strconv.Atoi(strings.TrimPrefix(val, "/"))
		if err != nil {
			return IPv6Config{}, fmt.Errorf("ipv6 prefixes %q: length %q is not a number", item, val)
		}
		if strings.EqualFold(key, "default") {
			if sawDefault {
				return IPv6Config{}, fmt.Errorf("ipv6 prefixes %q: the default given twice", item)
			}
			sawDefault = true
			c.DefaultPrefix = bits
			continue
		}
		num := key
		if len(num) > 2 && strings.EqualFold(num[:2], "AS") {
			num = num[2:]
		}
		asn, err := strconv.ParseUint(num, 10, 32)
		if err != nil || asn == 0 {
			return IPv6Config{}, fmt.Errorf("ipv6 prefixes %q: %q is not an AS number (AS3215=56)", item, key)
		}
		if _, dup := c.Prefixes[uint32(asn)]; dup {
			return IPv6Config{}, fmt.Errorf("ipv6 prefixes %q: AS%d given twice", item, asn)
		}
		if c.Prefixes == nil {
			c.Prefixes = map[uint32]int{}
		}
		c.Prefixes[uint32(asn)] = bits
	}
	if err := c.validate(); err != nil {
		return IPv6Config{}, fmt.Errorf("ipv6 prefixes %q: %w", s, err)
	}
	return c, nil
}

// Shortest and longest subscriber prefixes: a /48 is the most an ISP
// gives an end site (RFC 6177); 128 is one address (no grouping).
const (
	minSubscriberPrefix = 48
	maxSubscriberPrefix = 128
)

func (c *IPv6Config) validate() error {
	if c.DefaultPrefix == 0 {
		c.DefaultPrefix = DefaultConfig().IPv6.DefaultPrefix
	}
	var errs []error
	if c.DefaultPrefix < minSubscriberPrefix || c.DefaultPrefix > maxSubscriberPrefix {
		errs = append(errs, fmt.Errorf("IPv6.DefaultPrefix %d: want %d to %d", c.DefaultPrefix, minSubscriberPrefix, maxSubscriberPrefix))
	}
	for _, asn := range slices.Sorted(maps.Keys(c.Prefixes)) {
		if b := c.Prefixes[asn]; b < minSubscriberPrefix || b > maxSubscriberPrefix {
			errs = append(errs, fmt.Errorf("IPv6.Prefixes AS%d: /%d, want %d to %d", asn, b, minSubscriberPrefix, maxSubscriberPrefix))
		}
	}
	return errors.Join(errs...)
}

// QuarantineConfig sets when a hash is held.
type QuarantineConfig struct {
	// MinPeers: never hold a hash seen at fewer distinct endpoints in one
	// clock hour.
	MinPeers int
	// Factor: hold when the hour's distinct endpoints reach Factor times
	// the hash's mean per hour over the Baseline before it (at least 1).
	Factor float64
	// Baseline is the trailing window of the mean.
	Baseline time.Duration
}

// commonPorts are the client default ports of DefaultConfig: BitTorrent's
// 6881-6889 and aria2's whole default range up to 6999 (it takes a port of
// 6881-6999), 6969 (trackers), 51413 (Transmission), 8999 (qBittorrent's
// old default); eD2K's 4662 and 4672; Gnutella's 6346 and 6347.
func commonPorts() []uint16 {
	var out []uint16
	for p := uint16(6881); p <= 6999; p++ {
		out = append(out, p)
	}
	return append(out, 8999, 51413, 4662, 4672, 6346, 6347)
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Weights:        DefaultWeights(),
		Severity:       DefaultSeverity,
		EndpointWindow: 24 * time.Hour,
		IPv6:           IPv6Config{DefaultPrefix: 64},
		Links: LinkConfig{
			IdentifierWindow:  7 * 24 * time.Hour,
			ConcurrentSlack:   2 * time.Minute,
			AnnounceWindow:    10 * time.Minute,
			MaxIPsPerHour:     3,
			MaxEndpoints:      64,
			SessionWindow:     2 * time.Hour,
			ReassignWindow:    48 * time.Hour,
			CommonPorts:       commonPorts(),
			OverlapMinFiles:   5,
			OverlapMinJaccard: 0.6,
			OverlapMaxPeers:   50,
			Confidence: map[string]float64{
				RuleUserHash:         0.9,
				RuleGUID:             0.9,
				RuleNodeID:           0.8,
				RulePeerID:           0.7,
				RuleSubscriberPrefix: 0.6,
				RuleListenPort:       0.5,
				RuleOverlap:          0.3,
				RuleAnnounceListen:   0.3,
			},
		},
		Quarantine:      QuarantineConfig{MinPeers: 50, Factor: 10, Baseline: 7 * 24 * time.Hour},
		Now:             time.Now,
		SaveEvery:       1_000_000,
		SaveRows:        100_000,
		SaveInterval:    time.Second,
		FiguresInterval: 30 * time.Second,
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Severity == nil {
		c.Severity = DefaultSeverity
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SaveEvery <= 0 {
		c.SaveEvery = 1_000_000
	}
	if c.SaveRows <= 0 {
		c.SaveRows = 100_000
	}
	if c.BehindInterval <= 0 {
		c.BehindInterval = 10 * time.Second
	}
	if c.MaxSuspectLeads <= 0 {
		c.MaxSuspectLeads = 10000
	}
	if c.Weights.FlagPoints == nil {
		c.Weights.FlagPoints = DefaultWeights().FlagPoints
	}
	l := &c.Links
	if l.MaxIPsPerHour < 1 || l.MaxEndpoints < 2 {
		errs = append(errs, fmt.Errorf("Links.MaxIPsPerHour must be at least 1 and MaxEndpoints at least 2"))
	}
	if c.EndpointWindow == 0 {
		c.EndpointWindow = DefaultConfig().EndpointWindow
	}
	if c.EndpointWindow < 0 {
		errs = append(errs, fmt.Errorf("EndpointWindow %v: must be positive", c.EndpointWindow))
	}
	if l.AnnounceWindow == 0 {
		l.AnnounceWindow = DefaultConfig().Links.AnnounceWindow
	}
	if l.SessionWindow < 0 || l.ReassignWindow < 0 || l.IdentifierWindow < 0 || l.ConcurrentSlack < 0 || l.AnnounceWindow < 0 {
		errs = append(errs, fmt.Errorf("Links windows must not be negative"))
	}
	if l.OverlapMinFiles < 2 {
		errs = append(errs, fmt.Errorf("Links.OverlapMinFiles %d: at least 2 (one common file never links)", l.OverlapMinFiles))
	}
	if l.Confidence == nil {
		l.Confidence = DefaultConfig().Links.Confidence
	} else {
		// A rule the caller's table lacks keeps its default: a confidence
		// of 0 would read as 1 in the score.
		conf := maps.Clone(l.Confidence)
		for r, v := range DefaultConfig().Links.Confidence {
			if _, ok := conf[r]; !ok {
				conf[r] = v
			}
		}
		l.Confidence = conf
	}
	for _, r := range slices.Sorted(maps.Keys(l.Confidence)) {
		// A link's files count at its confidence: 0 or less is read as
		// 1 (full weight) where a confidence reaches the score, and above
		// 1 a linked endpoint would outweigh the target's anchor.
		if v := l.Confidence[r]; !(v > 0 && v <= 1) {
			errs = append(errs, fmt.Errorf("Links.Confidence[%q] = %v: must be above 0 and at most 1", r, v))
		}
	}
	if err := c.IPv6.validate(); err != nil {
		errs = append(errs, err)
	}
	q := &c.Quarantine
	if q.MinPeers < 1 || q.Factor < 1 || q.Baseline <= 0 {
		errs = append(errs, fmt.Errorf("Quarantine: MinPeers and Factor must be at least 1, Baseline positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("analysis config: %w", err)
	}
	return nil
}
