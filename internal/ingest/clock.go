package ingest

import (
	"errors"
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
// ("" when it can): before Earliest, or later than now + ahead; both the
// time read on the sensor's clock and, when the sensor measured its
// clock's offset, the reference time it gives (time − offset), which a
// hostile sensor could otherwise move anywhere with the offset alone.
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
	if why := check("time", o.Time); why != "" {
		return why
	}
	if o.ClockKnown {
		return check("reference time (time − clock_offset_ms)", o.Time.Add(-o.ClockOffset))
	}
	return ""
}

// ErrImplausibleTime is an observation whose time cannot be true, in a
// batch that Config.AllOrNothing makes fail whole.
var ErrImplausibleTime = errors.New("observation time cannot be true")

// refuseImplausible returns obs without the observations whose time is
// implausible (implausibleTime), each counted (Metrics.TimeRefused,
// Stats.TimeRefused) and logged with its id, sensor, and chain position
// when signed, never its peer's address or name (to slog's default
// logger when Config.Log is nil: never silently). obs is copied before
// one is left out (it may be the bus's). With Config.AllOrNothing it
// leaves nothing out and returns the first as an error.
func refuseImplausible(obs []observe.Observation, cfg Config, m *Metrics, stats *Stats) ([]observe.Observation, error) {
	now, ahead := time.Now(), cfg.TimeAhead
	if cfg.Now != nil {
		now = cfg.Now()
	}
	if ahead <= 0 {
		ahead = DefaultTimeAhead
	}
	copied := false
	for i := 0; i < len(obs); {
		why := implausibleTime(&obs[i], now, ahead)
		if why == "" {
			i++
			continue
		}
		o := &obs[i]
		if cfg.AllOrNothing {
			return obs, fmt.Errorf("%w: observation %s of sensor %q: %s", ErrImplausibleTime, o.ID, o.Sensor.ID, why)
		}
		m.TimeRefused.Inc()
		stats.TimeRefused++
		log := cfg.Log
		if log == nil {
			log = slog.Default()
		}
		attrs := []any{"id", o.ID, "sensor", o.Sensor.ID, "why", why}
		if o.Signed() {
			attrs = append(attrs, "chain", o.Chain.ID, "seq", o.Chain.Seq)
		}
		log.Error("ingest: observation refused: its time cannot be true; left out of its batch", attrs...)
		if !copied {
			obs, copied = slices.Clone(obs), true
		}
		obs = slices.Delete(obs, i, i+1)
	}
	return obs, nil
}
