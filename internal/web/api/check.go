package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// The platforms' check (POST /api/v1/check): a platform's trust-and-safety
// team (role platform) asks whether addresses of its own users' sessions,
// each with a time and perhaps a port, were seen sharing watched material,
// so that it can report them to the police service with jurisdiction. It
// learns, per address, seen or not; and when seen only how: first-hand
// (a sensor's own conversation with that address: peer_probe or
// dht_announce, never what a tracker, a DHT node or a peer said of it),
// within CheckConfig.Tolerance of the time, at which possession level,
// whether the port matched or only the address did, an opaque reference
// and the service to report to. Never a target id, a file name, a hash,
// another address, a score or a second-hand sighting. "Not seen" is one
// answer for never seen, seen only second-hand, seen only in an exchange
// whose peer named another info-hash, seen only as one of the
// deployment's own addresses (Config.Own), seen only sharing an item the
// analysis quarantined, seen outside the tolerance, an address or time outside the store's retention, and a time
// in the future.

// Default bounds of the check (CheckConfig).
const (
	DefaultCheckTolerance = time.Hour
	DefaultCheckMax       = 10
	DefaultCheckPerMinute = 6
	DefaultCheckPerDay    = 500
	DefaultCheckMaxBody   = 16 << 10
)

// CheckConfig bounds the platforms' check. Zero fields take the defaults.
type CheckConfig struct {
	// Tolerance is how far from the time asked a sighting may be, either
	// side, and still answer "seen" (DefaultCheckTolerance: ±1 h).
	Tolerance time.Duration
	// MaxChecks is the most addresses one request may ask
	// (DefaultCheckMax).
	MaxChecks int
	// PerMinute is the most requests one user may make in any minute
	// (DefaultCheckPerMinute); every request counts, refused ones too.
	PerMinute int
	// PerDay is the most addresses one user may ask in any 24 hours
	// (DefaultCheckPerDay).
	PerDay int
	// PlatformPerDay is the most addresses all the accounts of one
	// platform (the users of one agency) may ask together in any 24
	// hours (zero: PerDay), so that more accounts buy no more checks.
	PlatformPerDay int
	// MaxBody is the most bytes a request's body may hold
	// (DefaultCheckMaxBody).
	MaxBody int64
	// InstantsPerAddress is the most distinct instants (a time and the
	// port given with it) all the accounts of one platform may ask about
	// one address in any 24 hours (DefaultCheckInstantsPerAddress): the
	// same time and port again count once, another port at the same time
	// counts as another instant.
	InstantsPerAddress int
	// RefusalRecords is the most refused requests of one account recorded
	// one by one in each minute (DefaultCheckRefusalRecords); the others
	// are counted, and one record says how many once the minute ends.
	RefusalRecords int
	// Retention is how long the store keeps observations (vigil serve's
	// --keep-observations; zero: no bound). A sighting older than
	// it never answers "seen", even while the purge has not yet removed
	// it or a legal hold keeps it for a case: what is kept for a case is
	// not kept for the platforms.
	Retention retention.Period
}

// withDefaults returns c with its zero fields set.
func (c CheckConfig) withDefaults() CheckConfig {
	if c.Tolerance <= 0 {
		c.Tolerance = DefaultCheckTolerance
	}
	if c.MaxChecks <= 0 {
		c.MaxChecks = DefaultCheckMax
	}
	if c.PerMinute <= 0 {
		c.PerMinute = DefaultCheckPerMinute
	}
	if c.PerDay <= 0 {
		c.PerDay = DefaultCheckPerDay
	}
	if c.PlatformPerDay <= 0 {
		c.PlatformPerDay = c.PerDay
	}
	if c.MaxBody <= 0 {
		c.MaxBody = DefaultCheckMaxBody
	}
	if c.InstantsPerAddress <= 0 {
		c.InstantsPerAddress = DefaultCheckInstantsPerAddress
	}
	if c.RefusalRecords <= 0 {
		c.RefusalRecords = DefaultCheckRefusalRecords
	}
	return c
}

// CheckRequest is the body of POST /api/v1/check.
type CheckRequest struct {
	// Purpose is the platform's own reference for the checks (a ticket,
	// a report number): written into the audit record.
	Purpose string  `json:"purpose"`
	Checks  []Check `json:"checks"`
}

// Check is one address to check: an IPv4 or IPv6 address (no prefix, no
// range, no zone), the port of the session if the platform holds it, and
// the time of the session (RFC 3339).
type Check struct {
	Address string `json:"address"`
	Port    *int   `json:"port,omitempty"`
	Time    string `json:"time"`
}

// CheckAnswer is the answer of POST /api/v1/check: one result per check,
// in the order asked.
type CheckAnswer struct {
	Results []CheckResult `json:"results"`
	// Tolerance is how far from each time asked a sighting was looked
	// for, either side (a Go duration, e.g. "1h0m0s").
	Tolerance string `json:"tolerance"`
	// Note says what "seen" and "not seen" mean, in the user's language.
	Note string `json:"note"`
}

// CheckResult answers one check. Everything but Seen is empty when the
// address was not seen.
type CheckResult struct {
	Address string `json:"address"`
	Port    int    `json:"port,omitempty"`
	Time    string `json:"time"`
	Seen    bool   `json:"seen"`
	// Match is "address_and_port" when a sighting had the port asked,
	// "address_only" when none did or no port was asked.
	Match string `json:"match,omitempty"`
	// Method is how the sensor met the address: peer_probe (it
	// exchanged with the peer) or dht_announce (the address announced
	// itself to the sensor's DHT node, proving it received its reply).
	Method string `json:"method,omitempty"`
	// Level is the possession level of the sighting, as observed and
	// counted (observe.CountedLevel: a complete that older sensors
	// recorded from a malformed bitfield is partial or acknowledged).
	Level string `json:"level,omitempty"`
	// Marks are the sighting's marks, as observed.
	Marks []string `json:"marks,omitempty"`
	// Reference is opaque: the police service finds the sighting by it
	// in Vigil's audit trail. Quote it in the report.
	Reference string `json:"reference,omitempty"`
	// ReportTo is the police service with jurisdiction.
	ReportTo *ReportTo `json:"report_to,omitempty"`
	// Warning says what the match does not prove (address only: another
	// subscriber behind a shared address).
	Warning string `json:"warning,omitempty"`
}

// ReportTo names the police service a platform reports a sighting to.
type ReportTo struct {
	Agency  string `json:"agency"`
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
	Country string `json:"country,omitempty"`
	// Note is set when no service is on record for the sighting.
	Note string `json:"note,omitempty"`
}

// Match values of CheckResult.
const (
	MatchAddressPort = "address_and_port"
	MatchAddressOnly = "address_only"
)

// checkError is a refused request: its status and what to tell the
// caller (and the audit record).
type checkError struct {
	status int
	msg    string
}

func (e *checkError) Error() string { return e.msg }

func refusedf(status int, format string, a ...any) *checkError {
	return &checkError{status: status, msg: fmt.Sprintf(format, a...)}
}

// asked is one check as parsed.
type asked struct {
	addr netip.Addr // unmapped
	port int        // 0: none asked
	at   time.Time
}

// parseCheckRequest reads and validates the body of POST /api/v1/check
// (at most max checks). Its errors say what is wrong and where.
func parseCheckRequest(body io.Reader, max int) (purpose string, checks []asked, err error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req CheckRequest
	if err := dec.Decode(&req); err != nil {
		return "", nil, fmt.Errorf("the body is not a check request (JSON {\"purpose\": ..., \"checks\": [{\"address\", \"port\", \"time\"}]}): %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", nil, errors.New("the body holds more than one JSON value")
	}
	purpose, err = audit.RequirePurpose(req.Purpose)
	if err != nil {
		return "", nil, fmt.Errorf("purpose: give your own reference for these checks (a ticket or report number): %w", err)
	}
	switch {
	case len(req.Checks) == 0:
		return "", nil, errors.New("checks: give at least one")
	case len(req.Checks) > max:
		return "", nil, fmt.Errorf("checks: %d asked, at most %d a request", len(req.Checks), max)
	}
	for i, c := range req.Checks {
		a, err := parseCheck(c)
		if err != nil {
			return "", nil, fmt.Errorf("checks[%d]: %w", i, err)
		}
		checks = append(checks, a)
	}
	return purpose, checks, nil
}

func parseCheck(c Check) (asked, error) {
	var a asked
	s := strings.TrimSpace(c.Address)
	if strings.ContainsAny(s, "/-*") {
		return a, fmt.Errorf("address %q: one address only, no prefix or range", c.Address)
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("address %q: want one IPv4 or IPv6 address", c.Address)
	}
	if addr.Zone() != "" {
		return a, fmt.Errorf("address %q: an address with a zone names no host on the Internet", c.Address)
	}
	addr = addr.Unmap()
	if addr.IsUnspecified() || addr.IsMulticast() {
		return a, fmt.Errorf("address %q: not the address of one host", c.Address)
	}
	a.addr = addr
	if c.Port != nil {
		if *c.Port < 1 || *c.Port > 65535 {
			return a, fmt.Errorf("port %d: want 1 to 65535, or leave it out when you do not hold it", *c.Port)
		}
		a.port = *c.Port
	}
	if a.at, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(c.Time)); err != nil {
		return a, fmt.Errorf("time %q: want an RFC 3339 time, e.g. 2026-12-01T21:04:05Z", c.Time)
	}
	return a, nil
}

// checkLimiter counts each user's requests (per minute) and each user's
// and each platform's checks (per 24 hours), keyed by userKey and
// platformKey. The counts live in this process; the checks of the last
// 24 hours are read back from the audit trail the first time a key is
// used (seed), so that a restart forgets no check, only the per-minute
// requests.
type checkLimiter struct {
	mu    sync.Mutex
	users map[string]*checkUsage
	// refusals counts each account's refusals of its current minute
	// (checkbounds.go); due holds the summaries of ended minutes not yet
	// written; timer, that one is armed to write them; stopped, the
	// server has flushed them (FlushRefusals): each refusal since is
	// recorded on its own, and no timer is armed.
	refusals map[string]*refusalTally
	due      []refusalSummary
	timer    bool
	stopped  bool
}

type checkUsage struct {
	requests []time.Time // in the last minute
	checks   []dayCount  // in the last 24 hours
	seeded   bool        // the trail's checks are counted
	// instants: a platform's, the instants asked of each address in the
	// last 24 hours (admitInstants).
	instants map[netip.Addr][]askedInstant
}

func userKey(p *access.Principal) string     { return "user:" + strconv.FormatInt(p.UserID, 10) }
func platformKey(p *access.Principal) string { return "platform:" + p.Agency }

type dayCount struct {
	at time.Time
	n  int
}

// request counts a request by user at now; false when it is one more
// than perMinute in the last minute (it is then not counted).
func (l *checkLimiter) request(user string, now time.Time, perMinute int) (ok bool, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.usage(user)
	u.requests = slices.DeleteFunc(u.requests, func(t time.Time) bool { return !t.After(now.Add(-time.Minute)) })
	if len(u.requests) >= perMinute {
		return false, u.requests[0].Add(time.Minute).Sub(now)
	}
	u.requests = append(u.requests, now)
	return true, 0
}

// spend counts n checks at now against each of bounds (a key and its
// bound); false when they would make more than a key's bound in the last
// 24 hours (they are then counted against none). left is what the
// tightest key has left.
func (l *checkLimiter) spend(now time.Time, n int, bounds map[string]int) (ok bool, left int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	left, ok = -1, true
	for k, perDay := range bounds {
		u := l.usage(k)
		u.checks = slices.DeleteFunc(u.checks, func(d dayCount) bool { return !d.at.After(now.Add(-24 * time.Hour)) })
		used := 0
		for _, d := range u.checks {
			used += d.n
		}
		if used+n > perDay {
			ok = false
		}
		if l := perDay - used; left < 0 || l < left {
			left = l
		}
	}
	if !ok {
		return false, left
	}
	for k := range bounds {
		u := l.usage(k)
		u.checks = append(u.checks, dayCount{now, n})
	}
	return true, left - n
}

// seeded says whether key's checks of the trail are counted.
func (l *checkLimiter) seeded(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.usage(key).seeded
}

// seed counts checks read from the trail for key, once.
func (l *checkLimiter) seed(key string, checks []dayCount) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := l.usage(key); !u.seeded {
		u.checks, u.seeded = append(u.checks, checks...), true
	}
}

func (l *checkLimiter) usage(user string) *checkUsage {
	if l.users == nil {
		l.users = map[string]*checkUsage{}
	}
	u := l.users[user]
	if u == nil {
		u = &checkUsage{}
		l.users[user] = u
	}
	return u
}

// addressStore is what the check reads: the observations of an address.
type addressStore interface {
	ObservationsOfAddress(ctx context.Context, addrs []netip.Addr, since, until time.Time, fn func(o *observe.Observation) error) error
}

// check is POST /api/v1/check.
func (h *handler) check(w http.ResponseWriter, r *http.Request) {
	p := access.PrincipalFrom(r.Context())
	cfg := h.cfg.Check
	now := h.cfg.Now()
	h.writeRefusalSummaries(r.Context(), now)
	if ok, retry := h.limits.request(userKey(p), now, cfg.PerMinute); !ok {
		h.checkRefused(w, r, refusedf(http.StatusTooManyRequests, "too many requests: at most %d a minute", cfg.PerMinute), retry, nil)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		h.checkRefused(w, r, refusedf(http.StatusUnsupportedMediaType, "Content-Type: want application/json"), 0, nil)
		return
	}
	purpose, checks, err := parseCheckRequest(http.MaxBytesReader(w, r.Body, cfg.MaxBody), cfg.MaxChecks)
	if err != nil {
		status := http.StatusBadRequest
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			err = fmt.Errorf("the body is larger than %d bytes: ask at most %d addresses a request", cfg.MaxBody, cfg.MaxChecks)
			status = http.StatusRequestEntityTooLarge
		}
		h.checkRefused(w, r, refusedf(status, "%v", err), 0, nil)
		return
	}
	if err := h.seedCheckLimits(r.Context(), p, now); err != nil {
		h.fail(w, r, err)
		return
	}
	if ok, addr := h.limits.admitInstants(platformKey(p), now, checks, cfg.InstantsPerAddress); !ok {
		h.checkRefused(w, r, refusedf(http.StatusTooManyRequests, "too many instants: %s may be checked at most at %d distinct times in 24 hours (the same time with another port counting as another), by all of the platform's accounts together",
			addr, cfg.InstantsPerAddress), time.Hour, checks)
		return
	}
	bounds := map[string]int{userKey(p): cfg.PerDay, platformKey(p): cfg.PlatformPerDay}
	if ok, left := h.limits.spend(now, len(checks), bounds); !ok {
		h.checkRefused(w, r, refusedf(http.StatusTooManyRequests, "too many checks: at most %d addresses in 24 hours (%d left), and %d by all of the platform's accounts together",
			cfg.PerDay, max(left, 0), cfg.PlatformPerDay), time.Hour, checks)
		return
	}
	st, ok := h.cfg.Observations.(addressStore)
	if h.cfg.Observations == nil || !ok {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"no store to check against is configured"})
		return
	}
	lang := string(p.Lang)
	ans := CheckAnswer{Results: make([]CheckResult, len(checks)), Tolerance: cfg.Tolerance.String(),
		Note: i18n.T(lang, "check.note", cfg.Tolerance.String())}
	records := make([]map[string]any, len(checks))
	held, err := h.heldItems(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for i, c := range checks {
		res, rec, err := h.checkOne(r.Context(), st, held, c, lang)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		ans.Results[i], records[i] = res, rec
	}
	if !h.audited(w, r, audit.ActionPlatformCheck, "check", purpose, map[string]any{"checks": records, "tolerance": cfg.Tolerance.String()}) {
		return // no answer without its record
	}
	writeJSON(w, http.StatusOK, ans)
}

// auditReader reads the trail (store.Store's AuditRecords).
type auditReader interface {
	AuditRecords(ctx context.Context, f audit.Filter, fn func(audit.Record) error) error
}

// seedCheckLimits counts, the first time this process sees p's account
// or platform, the checks the trail holds of them in the 24 hours before
// now: a restart must not give a platform a fresh day.
func (h *handler) seedCheckLimits(ctx context.Context, p *access.Principal, now time.Time) error {
	ar, _ := any(h.cfg.Observations).(auditReader)
	for key, f := range map[string]audit.Filter{userKey(p): {Actor: p.Name}, platformKey(p): {ActorAgency: p.Agency}} {
		if h.limits.seeded(key) {
			continue
		}
		var got []dayCount
		instants := map[netip.Addr][]askedInstant{}
		if ar != nil {
			f.Action, f.Since = audit.ActionPlatformCheck, now.Add(-24*time.Hour)
			err := ar.AuditRecords(ctx, f, func(r audit.Record) error {
				var d struct {
					Checks []struct {
						Address, Time string
						Port          int
					} `json:"checks"`
				}
				if json.Unmarshal(r.Detail, &d) == nil && len(d.Checks) > 0 {
					got = append(got, dayCount{r.Time, len(d.Checks)})
				}
				for _, c := range d.Checks {
					a, errA := netip.ParseAddr(c.Address)
					at, errT := time.Parse(time.RFC3339Nano, c.Time)
					if errA == nil && errT == nil {
						instants[a.Unmap()] = append(instants[a.Unmap()], askedInstant{r.Time, at, c.Port})
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("check: the trail's checks of %s: %w", key, err)
			}
		}
		if key == platformKey(p) && !h.limits.seeded(key) {
			h.limits.seedInstants(key, instants)
		}
		h.limits.seed(key, got)
	}
	return nil
}

// checkRefused answers a refused check with its status and reason, after
// recording the refusal (with the addresses asked, when they were read);
// a refusal whose record cannot be written answers 503.
func (h *handler) checkRefused(w http.ResponseWriter, r *http.Request, e *checkError, retry time.Duration, checks []asked) {
	detail := map[string]any{"reason": auditText(e.msg), "status": e.status}
	if checks != nil {
		detail["checks"] = askedRecords(checks)
	}
	p := access.PrincipalFrom(r.Context())
	if h.countRefusal(r, userKey(p), h.cfg.Now(), e.status) && !h.audited(w, r, audit.ActionDenied, "check", "", detail) {
		return
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Round(time.Second)/time.Second)+1))
	}
	writeJSON(w, e.status, apiError{e.msg})
}

func askedRecords(checks []asked) []map[string]any {
	out := make([]map[string]any, len(checks))
	for i, c := range checks {
		out[i] = map[string]any{"address": c.addr.String(), "port": c.port, "time": c.at.UTC().Format(time.RFC3339Nano)}
	}
	return out
}

// firstHandMethods are the sightings a check may answer from: a sensor's
// own conversation with the address.
var firstHandMethods = []string{observe.MethodPeerProbe, observe.MethodDHTAnnounce}

// countsForCheck says whether o may answer a check "seen": the endpoint
// itself talked to the sensor (observe's first-hand rule, and a method
// that is a conversation), about the item asked (not marked
// infohash_mismatch: the peer named another info-hash, and the exchange
// proves nothing of a watched item).
func countsForCheck(o *observe.Observation) bool {
	return slices.Contains(firstHandMethods, o.Method) && o.FirstHand() && !o.HasMark(observe.MarkInfohashMismatch)
}

// quarantineStore is the analysis's quarantine (store.Store's backends).
type quarantineStore interface {
	Quarantined(ctx context.Context) ([]analysis.QuarantineRecord, error)
}

// heldItems are the hashes the analysis keeps out of every score: held
// for review (a burst of peers, as a benign file wrongly listed gives)
// or disabled as benign. A sighting of one never answers "seen".
func (h *handler) heldItems(ctx context.Context) (map[hashkind.Hash]bool, error) {
	qs, ok := any(h.cfg.Observations).(quarantineStore)
	if !ok {
		return nil, nil
	}
	recs, err := qs.Quarantined(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: quarantine: %w", err)
	}
	held := map[hashkind.Hash]bool{}
	for _, q := range recs {
		if q.State == analysis.QuarantineHeld || q.State == analysis.QuarantineDisabled {
			held[q.Hash] = true
		}
	}
	return held, nil
}

// checkOne looks for c's first-hand sightings within the tolerance and
// answers from the best: one with the port asked before one without,
// then the highest level, then the nearest in time. The record for the
// audit trail names what was asked and, when seen, the sighting the
// answer rests on and the reference given.
func (h *handler) checkOne(ctx context.Context, st addressStore, held map[hashkind.Hash]bool, c asked, lang string) (CheckResult, map[string]any, error) {
	tol := h.cfg.Check.Tolerance
	res := CheckResult{Address: c.addr.String(), Port: c.port, Time: c.at.UTC().Format(time.RFC3339Nano)}
	rec := map[string]any{"address": res.Address, "port": c.port, "time": res.Time, "seen": false}
	addrs := []netip.Addr{c.addr}
	if c.addr.Is4() {
		addrs = append(addrs, netip.AddrFrom16(c.addr.As16())) // as a dual-stack socket reports it
	}
	if c.at.Year() < 1970 || c.at.Year() > 2200 {
		return res, rec, nil // no sensor ran then: not seen, as any other
	}
	type cand struct {
		o    observe.Observation
		port bool // on the port asked
	}
	var cands []cand
	var kept time.Time // what is older is beyond retention
	if r := h.cfg.Check.Retention; !r.IsZero() {
		kept = r.Cutoff(h.cfg.Now())
	}
	// A sensor's clock may be off: read checkClockSlack further either
	// side, and keep what its measured offset puts within the tolerance.
	err := st.ObservationsOfAddress(ctx, addrs, c.at.Add(-tol-checkClockSlack), c.at.Add(tol+checkClockSlack+1), func(o *observe.Observation) error {
		if !countsForCheck(o) || h.cfg.Own.Contains(netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)) {
			return nil // second-hand, about no watched item, or a fellow sensor of the deployment
		}
		if o.Time.Before(kept) {
			return nil // beyond retention: kept, if at all, for a case, not for the platforms
		}
		if held[o.Item.Hash] {
			return nil // a hash held for review or found benign: kept out of every score, and of the check
		}
		if absDur(referenceTime(o).Sub(c.at))+o.ClockUncertainty > tol {
			return nil // not surely within the tolerance
		}
		cands = append(cands, cand{*o, c.port != 0 && int(o.Endpoint.Port) == c.port})
		return nil
	})
	if err != nil {
		return res, rec, err
	}
	// The best first: on the port asked, then the highest level, then
	// the nearest in time.
	slices.SortStableFunc(cands, func(a, b cand) int {
		switch {
		case a.port != b.port:
			if a.port {
				return -1
			}
			return 1
		case counted(&a.o) != counted(&b.o):
			return int(counted(&b.o)) - int(counted(&a.o))
		}
		return int(absDur(referenceTime(&a.o).Sub(c.at)) - absDur(referenceTime(&b.o).Sub(c.at)))
	})
	// The answer rests on a sighting as it was logged: a row changed
	// since (its leaf in the evidence log disagrees) is passed over, and
	// named in the audit record.
	var best *observe.Observation
	var bestPort bool
	var changed []string
	for i := range cands {
		ok, err := h.asLogged(ctx, &cands[i].o)
		if err != nil {
			return res, rec, err
		}
		if !ok {
			changed = append(changed, cands[i].o.ID)
			h.cfg.Log.Error("check: a stored observation was changed after it was logged: not answered", "observation", cands[i].o.ID)
			continue
		}
		best, bestPort = &cands[i].o, cands[i].port
		break
	}
	if changed != nil {
		rec["changed_after_logging"] = changed
	}
	if best == nil {
		return res, rec, nil
	}
	ref, err := checkReference()
	if err != nil {
		return res, rec, err
	}
	res.Seen, res.Method, res.Level, res.Marks, res.Reference = true, best.Method, counted(best).String(), best.Marks, ref
	res.Match = MatchAddressOnly
	switch {
	case bestPort:
		res.Match = MatchAddressPort
	case c.port == 0:
		res.Warning = i18n.T(lang, "check.address_only.noport")
	default:
		res.Warning = i18n.T(lang, "check.address_only.otherport")
	}
	if !best.ClockKnown {
		res.Warning = strings.TrimSpace(res.Warning + " " + i18n.T(lang, "check.clock_unknown"))
	}
	res.ReportTo, err = h.reportTo(ctx, best.Jurisdiction.Agency, lang)
	if err != nil {
		return res, rec, err
	}
	rec["seen"], rec["reference"], rec["observation"], rec["match"], rec["level"], rec["agency"] =
		true, ref, best.ID, res.Match, res.Level, best.Jurisdiction.Agency
	return res, rec, nil
}

// reportTo names the service with jurisdiction over a sighting routed to
// agency id, from the store's agencies when it keeps them.
func (h *handler) reportTo(ctx context.Context, id, lang string) (*ReportTo, error) {
	if id == "" {
		return &ReportTo{Note: i18n.T(lang, "check.unrouted")}, nil
	}
	to := &ReportTo{Agency: id}
	as, ok := any(h.cfg.Observations).(agencyStore)
	if !ok {
		return to, nil
	}
	ag, err := as.Agency(ctx, id)
	switch {
	case errors.Is(err, access.ErrNotFound):
		return to, nil
	case err != nil:
		return nil, fmt.Errorf("check: agency %s: %w", id, err)
	}
	to.Name, to.Address, to.Country = ag.Name, ag.Address, ag.Country
	return to, nil
}

// asLogged says whether o is as the evidence log holds it (its leaf
// hash), when the store keeps the log: the check's rule of
// CheckISPRows. A row stored before the log, and one of evidence form 1
// whose transcript a retention purge removed (its leaf commits to the
// bytes), cannot be checked and pass.
func (h *handler) asLogged(ctx context.Context, o *observe.Observation) (bool, error) {
	ls, ok := any(h.cfg.Observations).(store.LogStore)
	if !ok {
		return true, nil
	}
	idx, err := ls.LogIndexes(ctx, []string{o.ID})
	if err != nil {
		return false, err
	}
	i, logged := idx[o.ID]
	if !logged {
		return true, nil
	}
	if o.Chain.Form != observe.Form2 && len(o.Transcript.Bytes) == 0 {
		if pr, ok := any(h.cfg.Observations).(purgeRecords); ok {
			p, err := pr.PurgedObservations(ctx, []string{o.ID})
			if err != nil {
				return false, err
			}
			if _, purged := p[o.ID]; purged {
				return true, nil
			}
		}
	}
	sum, err := o.LeafHash()
	if err != nil {
		return false, err
	}
	var leaf []byte
	if err := ls.LogLeaves(ctx, i, i+1, func(_ uint64, l []byte) error { leaf = l; return nil }); err != nil {
		return false, err
	}
	return bytes.Equal(sum[:], leaf), nil
}

// checkReference is a fresh opaque reference: 80 random bits. It says
// nothing of the sighting; the audit record of the check ties it to the
// observation.
func checkReference() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "VC-" + base32.StdEncoding.EncodeToString(b), nil
}

// checkClockSlack is how far beyond the tolerance the check reads
// sightings, for a sensor clock's measured offset to bring back within
// it (a clock off by more is missed: "not seen", never an overstatement).
const checkClockSlack = time.Hour

// referenceTime is when o was made on the reference clock, as far as is
// known: the sensor's time less its measured offset (docs/evidence.md,
// "Clock"); the sensor's own time when the offset was not measured.
func referenceTime(o *observe.Observation) time.Time {
	if !o.ClockKnown {
		return o.Time
	}
	return o.Time.Add(-o.ClockOffset)
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// counted is the level the answer gives of a sighting and ranks it by
// (observe.CountedLevel), as the analysis and the ISP rows count it.
func counted(o *observe.Observation) observe.Level {
	return observe.CountedLevel(o.Possession, o.Marks)
}
