package ingest

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// Earliest is the earliest time an observation may carry: 1 January
// 1999 UTC, before Napster (June 1999), the first peer-to-peer
// file-sharing network; BitTorrent (2001) and eDonkey2000 (2000), the
// networks Vigil watches, came later. A time before it was read on a
// clock that was wrong (or lied), not at a conversation with a peer.
var Earliest = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultTimeAhead is how far past ingest's own clock an observation's
// time may lie (Config.TimeAhead): a sensor's clock, or ingest's, a few
// minutes off. Observations queued on a sensor arrive late, never early.
const DefaultTimeAhead = 10 * time.Minute

// implausibleTime says why o's time cannot be when a sensor saw its peer
// ("" when it can): before Earliest, or later than now + ahead. When the
// sensor measured its clock's offset, the reference time it gives (time −
// offset) is what is judged, not the time read on the sensor's clock: a
// measured offset explains a sensor's clock that is fast, and a hostile
// sensor cannot move the reference time anywhere with the offset alone.
func implausibleTime(o *observe.Observation, now time.Time, ahead time.Duration) string {
	check := func(what string, t time.Time) string {
		switch {
		case t.Before(Earliest):
			return fmt.Sprintf("%s %s is before %s, before any peer-to-peer network", what, t.UTC().Format(time.RFC3339Nano), Earliest.Format(time.DateOnly))
		case t.After(now.Add(ahead)):
			return fmt.Sprintf("%s %s is %v ahead of ingest's clock (%s), past the %v allowed", what, t.UTC().Format(time.RFC3339Nano),
				t.Sub(now).Round(time.Second), now.UTC().Format(time.RFC3339), ahead)
		}
		return ""
	}
	if o.ClockKnown {
		return check("reference time (time − clock_offset_ms)", o.Time.Add(-o.ClockOffset))
	}
	return check("time", o.Time)
}

// markImplausible marks each observation of obs whose time is
// implausible (implausibleTime) time_implausible, and keeps it: it is
// stored, acknowledged and exported like any other, its time as the
// sensor read it, and no reader places it in time (the analysis skips
// it, the figures leave it out, it is not first-hand). Refusing it would
// destroy evidence: an ingest whose clock is set back would refuse every
// observation, and a signed batch would lack its position for good. The
// mark is an ingest mark (observe.IngestMarks): a sensor's hash leaves it
// out, so a signed observation stays verifiable. Each one marked is
// counted (Metrics.TimeImplausible, Stats.TimeImplausible) and logged
// with its id, sensor, and chain position when signed, never its peer's
// address or name (to slog's default logger when Config.Log is nil:
// never silently). One that arrives already marked is judged again,
// its mark removed first and counted (Metrics.IngestMarksRemoved): no
// sensor sets an ingest mark and no sensor's signature covers one, so
// one set on the way would hide a genuine signed observation from the
// analysis while it still verified; with Config.KeepIngestMarks (a file
// imported, whose marks are its store's) it is kept and not counted
// again.
func markImplausible(obs []observe.Observation, cfg Config, m *Metrics, stats *Stats) {
	now, ahead := time.Now(), cfg.TimeAhead
	if cfg.Now != nil {
		now = cfg.Now()
	}
	if ahead <= 0 {
		ahead = DefaultTimeAhead
	}
	for i := range obs {
		o := &obs[i]
		if o.HasMark(observe.MarkTimeImplausible) {
			if cfg.KeepIngestMarks {
				continue
			}
			unmarkIngest(o, cfg, m)
		}
		why := implausibleTime(o, now, ahead)
		if why == "" {
			continue
		}
		// Its marks may share an array with a copy (the bus's, the
		// gate's): mark a slice of its own.
		o.Marks = slices.Clone(o.Marks)
		o.Mark(observe.MarkTimeImplausible)
		m.TimeImplausible.Inc()
		stats.TimeImplausible++
		log := cfg.Log
		if log == nil {
			log = slog.Default()
		}
		attrs := []any{"id", o.ID, "sensor", o.Sensor.ID, "why", why}
		if o.Signed() {
			attrs = append(attrs, "chain", o.Chain.ID, "seq", o.Chain.Seq)
		}
		log.Error("ingest: observation's time cannot be true: stored marked time_implausible, never placed in time", attrs...)
	}
}

// unmarkIngest removes the ingest marks o arrived with (on a slice of its
// own), counts it and logs it with its id and sensor, never its peer's
// address.
func unmarkIngest(o *observe.Observation, cfg Config, m *Metrics) {
	o.Marks = slices.DeleteFunc(slices.Clone(o.Marks), observe.IsIngestMark)
	if len(o.Marks) == 0 {
		o.Marks = nil
	}
	m.IngestMarksRemoved.Inc()
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	log.Warn("ingest: an observation arrived with an ingest's mark, which no sensor sets and no signature covers: removed, its time judged here", "id", o.ID, "sensor", o.Sensor.ID)
}
