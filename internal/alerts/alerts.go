// Package alerts tells an agency, by its live feed and overview, by e-mail
// and by webhook, when something it asked to watch happens: a watched list
// or category seen in its jurisdiction, a target passing a score, a
// flagged target active again, a target it holds seen at a new address.
//
// It keeps the rules, evaluates them against what the store holds after a
// watermark, records each alert once per (rule, event) — a unique key in
// the store, so that a replay, a restart or two processes evaluating at
// once never make a second alert of one event — limits how many a rule
// sends an hour (the surplus is kept, counted and summarised), and queues
// one delivery per alert and channel, retried with backoff, each attempt's
// outcome logged.
//
// It must never put into an alert what the rule's agency may not read
// (the rule reads through its agency's scope, never a wider one, whatever
// its parameters say), send an alert whose audit record was not written,
// or drop an alert silently. It does no I/O of its own: a store keeps the
// rules, alerts and deliveries (Store, checked by alertstest), and
// notify's senders carry the messages.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
)

// Scope is agency.Scope: the targets a reader may see.
type Scope = agency.Scope

// ErrNotFound is agency.ErrNotFound: a rule that does not exist or is
// another agency's.
var ErrNotFound = agency.ErrNotFound

// Errors a caller tests with errors.Is.
var (
	ErrRule   = errors.New("alerts: bad rule")
	ErrScope  = errors.New("alerts: a rule cannot reach beyond its agency's scope")
	ErrExists = errors.New("alerts: a rule with this id exists")
)

// Rule kinds.
const (
	// KindListSeen: an observation of a file of a watched list (or list
	// category) routed to the rule's agency.
	KindListSeen = "list_seen"
	// KindScorePassed: a target in the agency's scope at or above a score.
	KindScorePassed = "score_passed"
	// KindFlaggedActive: a target in the agency's scope carrying an
	// analyst's flag (known_offender by default) seen on a new day after
	// the rule was made.
	KindFlaggedActive = "flagged_active"
	// KindHeldNewAddress: a target the agency holds (a claim) seen at an
	// address first seen after its claim began.
	KindHeldNewAddress = "held_new_address"
)

// Kinds lists the rule kinds.
var Kinds = []string{KindListSeen, KindScorePassed, KindFlaggedActive, KindHeldNewAddress}

// Params are a rule's parameters. They can only narrow what the rule's
// agency sees, never widen it.
type Params struct {
	List     string `json:"list,omitempty"`     // list_seen: a watch-list name
	Category string `json:"category,omitempty"` // list_seen: a list category
	// Jurisdiction (list_seen): only observations routed to this agency;
	// it must be the rule's own agency (ErrScope otherwise).
	Jurisdiction string  `json:"jurisdiction,omitempty"`
	Score        float64 `json:"score,omitempty"` // score_passed: the threshold
	Flag         string  `json:"flag,omitempty"`  // flagged_active: the analyst's flag (default known_offender)
}

// Rule is what an agency asked to be told about.
type Rule struct {
	ID         string    `json:"id"`
	Agency     string    `json:"agency"` // the owner: alerts are for it alone, read through its scope
	Kind       string    `json:"kind"`
	Params     Params    `json:"params"`
	Emails     []string  `json:"emails,omitempty"`   // e-mail recipients (the feed always gets the alert)
	Webhooks   []string  `json:"webhooks,omitempty"` // ids of webhooks configured in vigil serve
	MaxPerHour int       `json:"max_per_hour"`       // alerts sent in any hour at most; the surplus is held and summarised
	By         string    `json:"by"`
	Created    time.Time `json:"created"`
	// FromSeq: the store's highest observation seq when the rule was made;
	// a list_seen rule looks only at later observations.
	FromSeq int64 `json:"from_seq"`
}

// DefaultMaxPerHour is a rule's rate limit when none is given.
const DefaultMaxPerHour = 20

// Scope is the rule's scope: its agency's targets (routed, assigned or
// shared with it). No parameter changes it.
func (r Rule) Scope() Scope { return Scope{Agencies: []string{r.Agency}} }

var ruleIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate says what is wrong with r, naming the field.
func (r Rule) Validate() error {
	if !ruleIDRE.MatchString(r.ID) {
		return fmt.Errorf("%w: id %q: want 1 to 64 of a-z, 0-9, '_', '-'", ErrRule, r.ID)
	}
	if err := agency.CheckID(r.Agency); err != nil {
		return fmt.Errorf("%w: rule %s: agency: %v", ErrRule, r.ID, err)
	}
	if r.MaxPerHour < 1 {
		return fmt.Errorf("%w: rule %s: max per hour %d: want at least 1", ErrRule, r.ID, r.MaxPerHour)
	}
	p := r.Params
	switch r.Kind {
	case KindListSeen:
		if p.List == "" && p.Category == "" {
			return fmt.Errorf("%w: rule %s: list_seen wants a list or a category", ErrRule, r.ID)
		}
		if p.Jurisdiction != "" && p.Jurisdiction != r.Agency {
			return fmt.Errorf("%w: rule %s: jurisdiction %s is not agency %s's", ErrScope, r.ID, p.Jurisdiction, r.Agency)
		}
	case KindScorePassed:
		if p.Score <= 0 {
			return fmt.Errorf("%w: rule %s: score_passed wants a score above 0", ErrRule, r.ID)
		}
	case KindFlaggedActive:
		if p.Flag != "" && !slices.Contains(flags, p.Flag) {
			return fmt.Errorf("%w: rule %s: flag %q: want one of %s", ErrRule, r.ID, p.Flag, strings.Join(flags, ", "))
		}
	case KindHeldNewAddress:
	default:
		return fmt.Errorf("%w: rule %s: kind %q: want one of %s", ErrRule, r.ID, r.Kind, strings.Join(Kinds, ", "))
	}
	if (p.List != "" || p.Category != "" || p.Jurisdiction != "") && r.Kind != KindListSeen ||
		p.Score != 0 && r.Kind != KindScorePassed || p.Flag != "" && r.Kind != KindFlaggedActive {
		return fmt.Errorf("%w: rule %s: a parameter that kind %s does not take", ErrRule, r.ID, r.Kind)
	}
	for _, e := range r.Emails {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			return fmt.Errorf("%w: rule %s: e-mail %q: want a bare address such as alerts@agency.example", ErrRule, r.ID, e)
		}
	}
	for _, w := range r.Webhooks {
		if !ruleIDRE.MatchString(w) {
			return fmt.Errorf("%w: rule %s: webhook %q: want the id of a webhook configured in vigil serve", ErrRule, r.ID, w)
		}
	}
	return nil
}

// flags are the analyst flags a flagged_active rule may watch
// (analysis.Flags; kept here so that rules validate without the analysis).
var flags = []string{"known_offender", "access_to_children"}

// Channels of a rule, as delivery rows name them.
const (
	ChannelEmail   = "email:"   // + address
	ChannelWebhook = "webhook:" // + webhook id
)

// Channels lists r's outbound channels ("email:ADDR", "webhook:ID"). The
// live feed and the overview are not channels: they read the alerts.
func (r Rule) Channels() []string {
	var out []string
	for _, e := range r.Emails {
		out = append(out, ChannelEmail+e)
	}
	for _, w := range r.Webhooks {
		out = append(out, ChannelWebhook+w)
	}
	return out
}

// Alert is one event a rule fired on, recorded once.
type Alert struct {
	ID      string    `json:"id"` // derived from (rule, event): the same event always has the same id
	Rule    string    `json:"rule"`
	Agency  string    `json:"agency"`
	Kind    string    `json:"kind"`
	Event   string    `json:"event"`            // the event's key, unique per rule
	Target  string    `json:"target,omitempty"` // the target it is about, if any
	At      time.Time `json:"at"`               // when the event happened
	Created time.Time `json:"created"`          // when it was recorded
	Subject string    `json:"subject"`
	Content Content   `json:"content"`
	// Held: over its rule's rate limit when recorded: kept and shown,
	// not sent; a later summary alert counts it (SummaryOf).
	Held      bool   `json:"held,omitempty"`
	SummaryOf int    `json:"summary_of,omitempty"` // a summary: how many held alerts it counts
	Summary   string `json:"summary,omitempty"`    // the summary that counted this held alert
}

// Content is what an alert says, taken only from what its rule's agency
// may read. Level and Marks travel with it: an alert never overstates.
type Content struct {
	List        string   `json:"list,omitempty"`
	Category    string   `json:"category,omitempty"`
	Network     string   `json:"network,omitempty"`
	Level       string   `json:"level,omitempty"` // possession level (announced ... verified)
	Marks       []string `json:"marks,omitempty"`
	Country     string   `json:"country,omitempty"`
	Subdivision string   `json:"subdivision,omitempty"`
	Score       float64  `json:"score,omitempty"`
	Flags       []string `json:"flags,omitempty"`
	Address     string   `json:"address,omitempty"` // held_new_address: the new IP (the agency holds the target)
	Held        int      `json:"held,omitempty"`    // a summary: held alerts it counts
	From        string   `json:"from,omitempty"`    // a summary: the first and last held alert's time
	To          string   `json:"to,omitempty"`
}

// Delivery outcomes.
const (
	Pending   = "pending"
	Delivered = "delivered"
	Failed    = "failed"  // permanently: retrying cannot mend it
	GaveUp    = "gave_up" // after Config.MaxAttempts
)

// Delivery is one alert on one channel: its attempts and outcome.
type Delivery struct {
	ID        string    `json:"id"` // alert id + "." + channel hash: receivers deduplicate on it
	Alert     string    `json:"alert"`
	Rule      string    `json:"rule"`
	Agency    string    `json:"agency"`
	Channel   string    `json:"channel"`
	Attempts  int       `json:"attempts"`
	NextTry   time.Time `json:"next_try"`
	LastError string    `json:"last_error,omitempty"`
	Outcome   string    `json:"outcome"`
	Updated   time.Time `json:"updated"`
}

// Query selects alerts for a reader.
type Query struct {
	Agency string    // required: alerts are read by their agency only
	Since  time.Time // created at or after
	Limit  int       // default 20
}

// Held is a target an agency holds, and since when.
type Held struct {
	Target string
	Since  time.Time
	Active time.Time // the claim's last activity: it lapses casework.DefaultConfig().LapseAfter later
}

// Store keeps rules, alerts and deliveries (alertstest checks it).
type Store interface {
	// AddAlertRule stores r (validated by the caller), or ErrExists: a
	// rule has the id, or alerts carry it (a removed rule's, kept).
	AddAlertRule(ctx context.Context, r Rule) error
	// AlertRules returns the rules of agency ("": every agency's), by id.
	AlertRules(ctx context.Context, agency string) ([]Rule, error)
	// RemoveAlertRule removes agency's rule id, or returns ErrNotFound
	// (also for another agency's rule). Its alerts are kept.
	RemoveAlertRule(ctx context.Context, agency, id string) error
	// AlertWatermark is the last observation seq evaluated.
	AlertWatermark(ctx context.Context) (int64, error)
	// AdvanceAlertWatermark raises the watermark to seq (never lowers it).
	AdvanceAlertWatermark(ctx context.Context, seq int64) error
	// AlertsRecorded returns which of rule's event keys have an alert.
	AlertsRecorded(ctx context.Context, rule string, events []string) (map[string]bool, error)
	// RecordAlert inserts a unless its (rule, event) has one (then it
	// returns false and changes nothing). In the same transaction,
	// serialised per rule: when the rule's alerts not held created after
	// a.Created-window number limit or more, a is stored held and gets no
	// delivery; else one pending delivery per channel, due at a.Created.
	RecordAlert(ctx context.Context, a Alert, channels []string, limit int, window time.Duration) (inserted, held bool, err error)
	// SummariseHeld, when rule has held alerts no summary counts yet and
	// fewer than limit alerts not held since now-window, stores the alert
	// build makes of them (oldest first) with its deliveries, and marks
	// them counted, in one transaction serialised per rule. It returns
	// the summary, or nil.
	SummariseHeld(ctx context.Context, rule string, now time.Time, limit int, window time.Duration, channels []string,
		build func(held []Alert) Alert) (*Alert, error)
	// AgencyAlerts returns q.Agency's alerts, newest first.
	AgencyAlerts(ctx context.Context, q Query) ([]Alert, error)
	// AlertByID returns one alert by id, or ErrNotFound.
	AlertByID(ctx context.Context, id string) (Alert, error)
	// DueDeliveries takes up to limit pending deliveries due at now,
	// oldest first, and moves their next try to leaseUntil so that no
	// other worker takes them meanwhile.
	DueDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Delivery, error)
	// FinishDelivery stores d's attempts, next try, error and outcome.
	FinishDelivery(ctx context.Context, d Delivery) error
	// Deliveries returns agency's deliveries ("": all), newest first.
	Deliveries(ctx context.Context, agency string, limit int) ([]Delivery, error)
	// AlertHeldTargets returns the targets whose claim is agency's, live
	// or lapsed (the rule skips an address first seen after the lapse).
	AlertHeldTargets(ctx context.Context, agency string) ([]Held, error)
}

// ActionAlertView is the audit action of alerts shown (overview, CLI):
// a read like any other, naming each alert and target shown.
const ActionAlertView = "view_alerts"

// ViewDetail is the audit detail of alerts shown: every alert and target.
func ViewDetail(as []Alert) map[string]any {
	ids, targets := []string{}, []string{}
	for _, a := range as {
		ids = append(ids, a.ID)
		if a.Target != "" && !slices.Contains(targets, a.Target) {
			targets = append(targets, a.Target)
		}
	}
	return map[string]any{"alerts": ids, "targets": targets}
}
