package analysis

import (
	"fmt"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// HashKey is how a hash is named in decisions, alerts and leads:
// "<kind>:<hex>".
func HashKey(h hashkind.Hash) string { return h.Kind().String() + ":" + h.Hex() }

// held reports whether a hash's matches are kept out of every score.
func (e *Engine) held(h hashkind.Hash) bool {
	q := e.quarantine[h]
	return q != nil && (q.State == QuarantineHeld || q.State == QuarantineDisabled)
}

// countHour counts an endpoint in the clock hour of t for the hash's
// rate, and holds the hash when the hour is a burst against its history.
// The caller counts each endpoint once in each hour it showed the file
// first-hand, whatever the order observations arrive in.
func (e *Engine) countHour(it *item, t time.Time) {
	h := t.UnixNano() / int64(time.Hour)
	it.hours[h]++
	c := it.hours[h]
	qc := &e.cfg.Quarantine
	base := int64(qc.Baseline / time.Hour)
	if len(it.hours) > int(2*base)+8 {
		for k := range it.hours {
			if k < h-2*base {
				delete(it.hours, k)
			}
		}
	}
	if c < qc.MinPeers {
		return
	}
	if q := e.quarantine[it.hash]; q != nil {
		// Held or disabled already; released: only a burst after the release.
		if q.State != QuarantineReleased || h <= q.DecidedAt.UnixNano()/int64(time.Hour) {
			return
		}
	}
	// Mean distinct endpoints an hour over the trailing window (from the
	// hash's first sighting when younger).
	from := max(h-base, it.first)
	hours := h - from
	var sum int
	for k := from; k < h; k++ {
		sum += it.hours[k]
	}
	var mean float64
	if hours > 0 {
		mean = float64(sum) / float64(hours)
	}
	if float64(c) < qc.Factor*max(mean, 1) {
		return
	}
	now := t.UTC()
	q := &QuarantineRecord{
		Hash: it.hash, Kind: it.hash.Kind().String(), Hex: it.hash.Hex(), State: QuarantineHeld,
		Detected: now, Peers: c, Baseline: mean,
		Reason: fmt.Sprintf("%d distinct endpoints in the hour from %s against a mean of %.2f an hour over the %s before: held for review (a common file listed by mistake?)",
			c, time.Unix(0, h*int64(time.Hour)).UTC().Format("2006-01-02 15:00"), mean, time.Duration(hours)*time.Hour),
	}
	e.quarantine[it.hash] = q
	e.changes.Quarantine = append(e.changes.Quarantine, *q)
	e.changes.Alerts = append(e.changes.Alerts, Alert{Time: now, Kind: "quarantine", Subject: HashKey(it.hash), Message: q.Reason})
	e.alertSeqs = append(e.alertSeqs, e.seq)
	e.rescoreItem(it)
	if e.cfg.Log != nil {
		e.cfg.Log.Warn("analysis: hash quarantined", "hash", HashKey(it.hash), "peers", c, "baseline", mean)
	}
}

// rescoreItem marks every target holding the item for rescoring.
func (e *Engine) rescoreItem(it *item) {
	for id := range it.eps {
		e.markEp(id)
		if !e.loading {
			e.dirtyFiles[fileKey{id, it.idx}] = true
		}
	}
}
