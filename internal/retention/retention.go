// Package retention is how long Vigil keeps what it records, and the legal
// holds that stop a purge: per-kind periods (Config), the holds a national
// office analyst or a supervisor places on a target (Holds), and the purge
// job (Runner) that writes to the audit trail what it is about to remove
// before it removes anything.
//
// It must never remove a leaf of the evidence log (the signed checkpoints
// commit to every leaf: a purge removes an observation's content, never its
// leaf), never purge the audit trail (its hash chain and signed checkpoints
// would break: Config.Audit is a documented floor, not a purge), and never
// remove anything a hold protects or that no audit record announced.
package retention

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind is one kind of record with its own retention period.
type Kind string

// The kinds a purge removes, in the order a run takes them: transcripts
// first (the bulk of a row, kept shorter), then whole observations, then
// the associated-file leads.
const (
	KindTranscripts  Kind = "transcripts"
	KindObservations Kind = "observations"
	KindLeads        Kind = "leads"
	// KindAudit has a period that is checked and shown, never purged.
	KindAudit Kind = "audit"
)

// Kinds are the purged kinds, in the order a run purges them.
var Kinds = []Kind{KindTranscripts, KindObservations, KindLeads}

// ErrConfig is wrapped by every error about a retention setting.
var ErrConfig = errors.New("bad retention setting")

// Period is a calendar period, as retention laws count: years, months,
// days. A year back from 1 March 2027 is 1 March 2026, whatever the leap
// days (time.Time.AddDate, which normalises 29 February to 1 March).
type Period struct{ Years, Months, Days int }

// Cutoff is now minus the period: what is older is due.
func (p Period) Cutoff(now time.Time) time.Time {
	return now.UTC().AddDate(-p.Years, -p.Months, -p.Days)
}

// IsZero reports whether the period is empty.
func (p Period) IsZero() bool { return p == Period{} }

// approxDays orders periods: years of 366 days, months of 31 (so that a
// check "a is at least b" never passes wrongly by a leap day).
func (p Period) approxDays() int { return p.Years*366 + p.Months*31 + p.Days }

// String prints the period as ParsePeriod reads it: "2y", "6mo", "1y6mo15d".
func (p Period) String() string {
	var b strings.Builder
	if p.Years != 0 {
		fmt.Fprintf(&b, "%dy", p.Years)
	}
	if p.Months != 0 {
		fmt.Fprintf(&b, "%dmo", p.Months)
	}
	if p.Days != 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%dd", p.Days)
	}
	return b.String()
}

// Set and the String above make *Period a flag.Value.
func (p *Period) Set(s string) error {
	v, err := ParsePeriod(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

var periodRE = regexp.MustCompile(`^(?:(\d{1,4})y)?(?:(\d{1,5})mo)?(?:(\d{1,6})d)?$`)

// ParsePeriod reads "2y", "6mo", "90d" or a combination in that order
// ("1y6mo"). A period must not be empty, nor longer than 100 years.
func ParsePeriod(s string) (Period, error) {
	in := s
	s = strings.TrimSpace(s)
	m := periodRE.FindStringSubmatch(s)
	if s == "" || m == nil {
		return Period{}, fmt.Errorf("%w: period %q: want a number and a unit, y, mo or d, in that order (e.g. 2y, 6mo, 90d, 1y6mo)", ErrConfig, in)
	}
	var n [3]int
	for i := range n {
		if m[i+1] != "" {
			n[i], _ = strconv.Atoi(m[i+1])
		}
	}
	p := Period{Years: n[0], Months: n[1], Days: n[2]}
	if p.approxDays() > 100*366 {
		return Period{}, fmt.Errorf("%w: period %q: longer than 100 years", ErrConfig, in)
	}
	return p, nil
}

// Config is how long each kind is kept, and how the job runs.
type Config struct {
	// Transcripts is how long an observation keeps its transcript (the raw
	// bytes exchanged, the bulk of a row). Default 1 year. At most
	// Observations.
	Transcripts Period
	// Observations is how long an observation is kept; its evidence-log
	// leaf stays. Default 2 years.
	Observations Period
	// Leads is how long an associated-file lead last seen is kept, unless
	// an analyst confirmed it. Default 1 year.
	Leads Period
	// Audit is how long the audit trail must be kept: the longest period,
	// at least every other. Default 10 years. Checked and shown; this
	// version never purges the audit trail (docs/deployment.md,
	// "Retention and legal holds").
	Audit Period
	// Interval is how often 'vigil serve' runs the job. Default 1 hour;
	// zero: serve never runs it.
	Interval time.Duration
	// Chunk is how many rows one transaction removes. Default 500.
	Chunk int
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Transcripts:  Period{Years: 1},
		Observations: Period{Years: 2},
		Leads:        Period{Years: 1},
		Audit:        Period{Years: 10},
		Interval:     time.Hour,
		Chunk:        500,
	}
}

// Validate checks the settings, naming the one at fault by its flag.
func (c Config) Validate() error {
	for _, p := range []struct {
		name string
		v    Period
	}{{"keep-transcripts", c.Transcripts}, {"keep-observations", c.Observations}, {"keep-leads", c.Leads}, {"keep-audit", c.Audit}} {
		if p.v.IsZero() {
			return fmt.Errorf("%w: --%s: a period of zero would purge everything at once; want e.g. 1y", ErrConfig, p.name)
		}
	}
	if c.Transcripts.approxDays() > c.Observations.approxDays() {
		return fmt.Errorf("%w: --keep-transcripts %s is longer than --keep-observations %s: a transcript goes with its observation", ErrConfig, c.Transcripts, c.Observations)
	}
	for _, p := range []struct {
		name string
		v    Period
	}{{"keep-transcripts", c.Transcripts}, {"keep-observations", c.Observations}, {"keep-leads", c.Leads}} {
		if p.v.approxDays() > c.Audit.approxDays() {
			return fmt.Errorf("%w: --keep-audit %s is shorter than --%s %s: the audit trail must outlive what it records", ErrConfig, c.Audit, p.name, p.v)
		}
	}
	if c.Interval < 0 {
		return fmt.Errorf("%w: --retention-interval %s: negative", ErrConfig, c.Interval)
	}
	if c.Chunk < 1 || c.Chunk > 100000 {
		return fmt.Errorf("%w: --retention-chunk %d: want 1 to 100000 rows a transaction", ErrConfig, c.Chunk)
	}
	return nil
}

// Period returns the period of kind k.
func (c Config) Period(k Kind) Period {
	switch k {
	case KindTranscripts:
		return c.Transcripts
	case KindObservations:
		return c.Observations
	case KindLeads:
		return c.Leads
	case KindAudit:
		return c.Audit
	}
	return Period{}
}
