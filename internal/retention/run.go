package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
)

// Span is a count of rows and the times they cover (an observation's
// time; a lead's last sighting).
type Span struct {
	N              int64
	Oldest, Newest time.Time
}

// Add folds o into s.
func (s *Span) Add(o Span) {
	if o.N == 0 {
		return
	}
	if s.N == 0 || o.Oldest.Before(s.Oldest) {
		s.Oldest = o.Oldest
	}
	if s.N == 0 || o.Newest.After(s.Newest) {
		s.Newest = o.Newest
	}
	s.N += o.N
}

// Due is what a purge of one kind would remove, and how many rows past
// their period the active holds keep.
type Due struct {
	Span
	Held int64
}

// Purged is the record a store keeps of an observation whose content was
// purged: its evidence-log leaf stays, and a bundle says why the content
// is gone.
type Purged struct {
	ObservationID string
	What          Kind      // KindTranscripts (the row stays, without its transcript) or KindObservations (the row is gone)
	Time          time.Time // the observation's time
	At            time.Time // when it was purged
}

// PurgeStore is a store's part of the purge. Both calls spare what an
// active hold protects (the observations at the endpoints of a held
// target, following merges, their transcripts, the leads seen there) and
// every observation the analysis has not read yet (above its watermark).
type PurgeStore interface {
	// PurgePlan counts, for each kind, the rows older than its cutoff.
	PurgePlan(ctx context.Context, cutoffs map[Kind]time.Time) (map[Kind]Due, error)
	// PurgeChunk removes at most n rows of kind k older than cutoff, in
	// one transaction (with their Purged records), oldest first, and
	// says what it removed; zero rows: nothing is left to remove.
	PurgeChunk(ctx context.Context, k Kind, cutoff time.Time, n int, at time.Time) (Span, error)
	// PurgedObservations returns the Purged records of these ids (those
	// that have one).
	PurgedObservations(ctx context.Context, ids []string) (map[string]Purged, error)
	// PurgedOfTarget returns the Purged records of the observations whose
	// rows are gone that were at target's endpoints (following merges),
	// oldest first.
	PurgedOfTarget(ctx context.Context, target string) ([]Purged, error)
}

// Partitioner is a store that keeps observations in time partitions
// (PostgreSQL): the job has the coming months' made before it purges.
type Partitioner interface {
	PreparePartitions(ctx context.Context, now time.Time, ahead int) error
}

// PartitionsAhead is how many months ahead a run makes partitions.
const PartitionsAhead = 3

// Store is what the retention keeps in a store.
type Store interface {
	HoldStore
	PurgeStore
}

// Runner is the purge job.
type Runner struct {
	Store  Store
	Trail  Appender
	Config Config
	Now    func() time.Time
	// Actor is who runs it ("cli:<os user>", or the server).
	Actor Actor
	// Progress, if set, is told after each chunk.
	Progress func(k Kind, done Span, due Due)
}

// Report is what a run found and did.
type Report struct {
	At      time.Time
	DryRun  bool
	Periods map[Kind]Period
	Cutoffs map[Kind]time.Time
	Due     map[Kind]Due
	Holds   []Hold // the active holds honoured: those active at its start, then those added while it ran
	// Added is how many of Holds (the last ones) were added while it ran:
	// each chunk that began after one was added honoured it, and the run's
	// done record names it.
	Added  int
	Purged map[Kind]Span
}

// addHolds adds to rep.Holds the active holds not listed yet (added
// since the run began, or since the last look).
func (r *Runner) addHolds(ctx context.Context, rep *Report) error {
	active, err := r.Store.Holds(ctx, true)
	if err != nil {
		return err
	}
	seen := make(map[int64]bool, len(rep.Holds))
	for _, h := range rep.Holds {
		seen[h.ID] = true
	}
	for _, h := range active {
		if !seen[h.ID] {
			rep.Holds = append(rep.Holds, h)
			rep.Added++
		}
	}
	return nil
}

// Total is the number of rows due.
func (r *Report) Total() int64 {
	var n int64
	for _, d := range r.Due {
		n += d.N
	}
	return n
}

// Run computes what is due and, unless dryRun, writes the audit record of
// it, then purges chunk by chunk, then records what was removed. A run
// that stops half way (a crash, a cancelled context) leaves whole chunks
// removed, each with its Purged records, under the first record; the next
// run removes the rest under its own. With nothing due, nothing is
// written. A dry run writes nothing at all.
func (r *Runner) Run(ctx context.Context, dryRun bool) (*Report, error) {
	if err := r.Config.Validate(); err != nil {
		return nil, err
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	rep := &Report{At: now().UTC(), DryRun: dryRun, Periods: map[Kind]Period{}, Cutoffs: map[Kind]time.Time{}, Purged: map[Kind]Span{}}
	for _, k := range append(Kinds, KindAudit) {
		rep.Periods[k] = r.Config.Period(k)
	}
	for _, k := range Kinds {
		rep.Cutoffs[k] = r.Config.Period(k).Cutoff(rep.At)
	}
	var err error
	if rep.Holds, err = r.Store.Holds(ctx, true); err != nil {
		return nil, err
	}
	if rep.Due, err = r.Store.PurgePlan(ctx, rep.Cutoffs); err != nil {
		return nil, err
	}
	if dryRun {
		return rep, nil
	}
	if p, ok := r.Store.(Partitioner); ok {
		if err := p.PreparePartitions(ctx, rep.At, PartitionsAhead); err != nil {
			return rep, err
		}
	}
	if rep.Total() == 0 {
		return rep, nil
	}
	if err := r.record(ctx, ActionPurgePlan, rep.detail(false)); err != nil {
		return rep, err
	}
	for _, k := range Kinds {
		if err := r.purgeKind(ctx, rep, k); err != nil {
			return rep, fmt.Errorf("retention purge of %s, after %d removed: %w", k, rep.Purged[k].N, err)
		}
	}
	// A hold added during the last chunk is named too.
	if err := r.addHolds(ctx, rep); err != nil {
		return rep, err
	}
	return rep, r.record(ctx, ActionPurgeDone, rep.detail(true))
}

func (r *Runner) purgeKind(ctx context.Context, rep *Report, k Kind) error {
	if rep.Due[k].N == 0 {
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A hold added since the last chunk stops part of this one (the
		// store reads the active holds in the chunk's transaction): the
		// done record names it.
		if err := r.addHolds(ctx, rep); err != nil {
			return err
		}
		got, err := r.Store.PurgeChunk(ctx, k, rep.Cutoffs[k], r.Config.Chunk, rep.At)
		if err != nil {
			return err
		}
		if got.N == 0 {
			return nil
		}
		s := rep.Purged[k]
		s.Add(got)
		rep.Purged[k] = s
		if r.Progress != nil {
			r.Progress(k, s, rep.Due[k])
		}
	}
}

func (r *Runner) record(ctx context.Context, action string, detail map[string]any) error {
	rec := audit.Record{Actor: r.Actor.Name, ActorAgency: r.Actor.Agency, Role: string(r.Actor.Role), Remote: r.Actor.Remote,
		Action: action, Object: "retention", Detail: audit.Detail(detail)}
	if _, err := r.Trail.Append(ctx, rec); err != nil {
		return fmt.Errorf("the audit trail was not written (%s), so nothing more is purged: %w", action, err)
	}
	return nil
}

// maxHoldsListed bounds the holds a record names (the count is always
// given).
const maxHoldsListed = 1000

func span(s Span) map[string]any {
	m := map[string]any{"count": s.N}
	if s.N > 0 {
		m["oldest"], m["newest"] = s.Oldest.UTC().Format(time.RFC3339Nano), s.Newest.UTC().Format(time.RFC3339Nano)
	}
	return m
}

// detail is the audit record's detail: the periods, the cutoffs, what is
// due (or, done, what was removed) per kind with its time range, the rows
// held back (as planned) and the holds honoured, those added while the run
// went on marked added_during_run.
func (rep *Report) detail(done bool) map[string]any {
	periods, kinds := map[string]any{}, map[string]any{}
	for k, p := range rep.Periods {
		periods[string(k)] = p.String()
	}
	for _, k := range Kinds {
		m := span(rep.Due[k].Span)
		if done {
			m = span(rep.Purged[k])
		}
		m["cutoff"] = rep.Cutoffs[k].UTC().Format(time.RFC3339Nano)
		m["held_back"] = rep.Due[k].Held
		kinds[string(k)] = m
	}
	var holds []map[string]any
	first := len(rep.Holds) - rep.Added
	for i, h := range rep.Holds {
		if len(holds) == maxHoldsListed && i < first {
			continue // the holds added while it ran are always named
		}
		m := map[string]any{"id": h.ID, "target": h.Target, "case": h.Case}
		if i >= first {
			m["added_during_run"] = true
			m["added"] = h.At.UTC().Format(time.RFC3339Nano)
		}
		holds = append(holds, m)
	}
	key := "due"
	if done {
		key = "purged"
	}
	d := map[string]any{key: kinds, "periods": periods, "audit_purged": false,
		"holds_honoured": len(rep.Holds), "holds": holds}
	if rep.Added > 0 {
		d["holds_added_during_run"] = rep.Added
	}
	return d
}
