package postgres

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

// timelineUpsert appends each (endpoint, day)'s run to its row, making
// the row if there is none: one statement a save. A save run again after
// a failed commit was rolled back with it; an observation processed twice
// leaves a repeat, which the readers drop.
const timelineUpsert = `INSERT INTO analysis_timeline_days (endpoint, day, packed)
	SELECT * FROM unnest(?::bigint[], ?::integer[], ?::bytea[])
	ON CONFLICT (endpoint, day) DO UPDATE SET packed = analysis_timeline_days.packed || excluded.packed`

// packTimeline groups refs by endpoint and UTC day, in that order, each
// group's sightings as one run (ascending, repeats dropped).
func packTimeline(refs []analysis.TimelineRef) (eps []int64, days []int32, packed [][]byte) {
	type key struct {
		ep  int64
		day int64
	}
	type ref struct {
		k key
		s sighting
	}
	rs := make([]ref, len(refs))
	for i, t := range refs {
		rs[i] = ref{key{t.Endpoint, dayOf(t.TimeNS)}, sighting{t.TimeNS, t.Seq}}
	}
	slices.SortFunc(rs, func(a, b ref) int {
		switch {
		case a.k.ep != b.k.ep:
			return cmpInt(a.k.ep, b.k.ep)
		case a.k.day != b.k.day:
			return cmpInt(a.k.day, b.k.day)
		case a.s.timeNS != b.s.timeNS:
			return cmpInt(a.s.timeNS, b.s.timeNS)
		}
		return cmpInt(a.s.seq, b.s.seq)
	})
	rs = slices.Compact(rs)
	buf := make([]byte, 0, 4*len(rs))
	var run []sighting
	for i := 0; i < len(rs); {
		j := i
		run = run[:0]
		for ; j < len(rs) && rs[j].k == rs[i].k; j++ {
			run = append(run, rs[j].s)
		}
		start := len(buf)
		buf = appendRun(buf, rs[i].k.day, run)
		eps, days, packed = append(eps, rs[i].k.ep), append(days, int32(rs[i].k.day)), append(packed, buf[start:len(buf):len(buf)])
		i = j
	}
	return eps, days, packed
}

func cmpInt(a, b int64) int {
	if a < b {
		return -1
	}
	return 1
}

// saveTimeline appends the save's sightings to their endpoints' days.
func (x *saveTx) saveTimeline(c *analysis.Changes) error {
	if len(c.Timeline) == 0 {
		return nil
	}
	eps, days, packed := packTimeline(c.Timeline)
	n := len(c.Timeline)
	x.exec(func(err error) error { return fmt.Errorf("timeline of %d observations: %w", n, err) }, timelineUpsert, eps, days, packed)
	return nil
}

// timelineDaysPage is how many of an endpoint's days one read takes.
const timelineDaysPage = 32

// timelinePageBytes bounds the packed bytes one page of days holds (at
// least one day is read): with maxPackedBytes a row, a read holds at most
// 24 MiB of them, not timelineDaysPage times maxPackedBytes.
const timelinePageBytes = 16 << 20

// errPageFull stops the read of a page of days at timelinePageBytes.
var errPageFull = errors.New("page full")

// timelineFetchChunk is how many observations one read of them asks for.
const timelineFetchChunk = 5000

// endpointSightings calls fetch with endpoint ep's sightings, newest
// first, whole days at a time, until fetch has found limit observations
// (it returns how many of those it was given still exist: a purged one
// keeps its sighting, for PurgedOfTarget) or none are left. Whole days:
// every sighting of a later call is older than every one of an earlier
// call, so the newest limit found are the endpoint's newest limit.
func (s *Store) endpointSightings(ctx context.Context, ep int64, limit int, fetch func([]sighting) (int, error)) error {
	before := int64(1) << 31 // past any day an integer holds
	found := 0
	var pending []sighting
	for {
		type row struct {
			day    int64
			packed []byte
		}
		var page []row
		held := 0 // bytes of page
		if err := eachRow(ctx, s.db(), `SELECT day, CASE WHEN octet_length(packed) <= ? THEN packed END, octet_length(packed)
			FROM analysis_timeline_days WHERE endpoint = ? AND day < ?::bigint ORDER BY day DESC LIMIT ?`, func(r pgx.Rows) error {
			var w row
			var size int64
			if err := r.Scan(&w.day, &w.packed, &size); err != nil {
				return err
			}
			if w.packed == nil {
				return fmt.Errorf("endpoint %d day %d: %w: %d bytes, more than the %d a day's row may hold", ep, w.day, errSightings, size, maxPackedBytes)
			}
			if held >= timelinePageBytes {
				return errPageFull // the rest in the next page
			}
			page, held = append(page, w), held+len(w.packed)
			return nil
		}, maxPackedBytes, ep, before, timelineDaysPage); err != nil && !errors.Is(err, errPageFull) {
			return err
		}
		for _, w := range page {
			start := len(pending)
			var err error
			if pending, err = decodeSightings(pending, w.day, w.packed); err != nil {
				return fmt.Errorf("endpoint %d day %d: %w", ep, w.day, err)
			}
			pending = append(pending[:start], newestFirst(pending[start:])...)
			before = w.day
			if found+len(pending) < limit {
				continue
			}
			n, err := fetch(pending)
			if err != nil {
				return err
			}
			if found += n; found >= limit {
				return nil
			}
			pending = pending[:0]
		}
		if len(page) < timelineDaysPage && held < timelinePageBytes {
			if len(pending) > 0 {
				_, err := fetch(pending)
				return err
			}
			return nil
		}
	}
}

// timelineQuery reads the observations of the sightings given (seqs,
// then their times), each with its sighting's time and its address, which
// scanTimelineEntry checks: a seq alone is unique to no row (the primary
// key is (seq, time_ns), migration 0015), and a sighting must not show
// another endpoint's observation under this one's address.
const timelineQuery = `SELECT o.seq, ` + obsIDCol + `, o.time_ns, f.network, f.method, f.possession, f.transport, i.kind, i.hash, m.matched,
	` + obsPlaceSQL + `, p.agency, f.sensor, ck.offset_ns, f.clock_source, f.marks, COALESCE(o.sensor_address, ''),
	o.transcript_sha256, o.port, f.client, f.client_version, ` + obsPiecesSQL + `,
	o.clock_uncertainty_ns, f.sensor_version, f.build_commit, f.build_modified, t.time_ns, ` + obsIPSQL + `
	FROM unnest(?::bigint[], ?::bigint[]) AS t(seq, time_ns) JOIN observations o ON o.seq = t.seq` + obsJoins

// timelineEntry is one observation of a target's timeline and its seq.
type timelineEntry struct {
	seq int64
	t   analysis.TimelineEntry
}

// timeline reads the newest limit observations at the target's
// endpoints, most recent first: each endpoint's sightings from
// analysis_timeline_days (migration 0022, written by the analysis),
// newest endpoint first, stopping once limit entries are held and the
// next endpoint was last seen before the oldest of them; then the
// observations by their seqs. epIDs are the ids of d.Endpoints, in the
// same order.
func (s *Store) timeline(ctx context.Context, d *analysis.TargetDetail, epIDs []int64, limit int) error {
	if limit <= 0 || len(d.Endpoints) == 0 {
		return nil
	}
	hexes := map[string]string{} // hash bytes -> hex, once a file
	var got []timelineEntry
	trim := func() {
		sort.Slice(got, func(i, j int) bool { return newerEntry(&got[i], &got[j]) })
		if len(got) > limit {
			got = got[:limit]
		}
	}
	for i := range d.Endpoints {
		ep := &d.Endpoints[i]
		if len(got) >= limit {
			trim()
			if ep.LastSeen.Before(got[len(got)-1].t.Time) {
				break // endpoints come newest first
			}
		}
		epName := netip.AddrPortFrom(ep.IP.Unmap(), ep.Port).String()
		err := s.endpointSightings(ctx, epIDs[i], limit, func(ss []sighting) (int, error) {
			n := 0
			for len(ss) > 0 {
				k := min(len(ss), timelineFetchChunk)
				seqs, times := make([]int64, k), make([]int64, k)
				for j := range seqs {
					seqs[j], times[j] = ss[j].seq, ss[j].timeNS
				}
				hot := make(map[int64]bool, k)
				// The hot rows and the blocks in one snapshot: a row
				// compacted (or a block thawed) between two reads would
				// be in neither.
				err := s.snapshotRead(ctx, func(q pgQuerier) error {
					if err := eachRow(ctx, sqlDB{q}, timelineQuery, func(r pgx.Rows) error {
						e, err := scanTimelineEntry(r, ep, hexes)
						if err != nil {
							return err
						}
						got = append(got, e)
						hot[e.seq] = true
						n++
						return nil
					}, seqs, times); err != nil {
						return err
					}
					cold, err := s.timelineFromBlocks(ctx, q, seqs, times, hot, ep, hexes)
					got = append(got, cold...)
					n += len(cold)
					return err
				})
				if err != nil {
					return 0, err
				}
				ss = ss[k:]
			}
			return n, nil
		})
		if err != nil {
			return fmt.Errorf("timeline of %s at %s: %w", d.ID, epName, err)
		}
	}
	trim()
	for i := range got {
		d.Timeline = append(d.Timeline, got[i].t)
	}
	return nil
}

// newerEntry orders a timeline newest first: by time, then seq.
func newerEntry(a, b *timelineEntry) bool {
	if !a.t.Time.Equal(b.t.Time) {
		return a.t.Time.After(b.t.Time)
	}
	return a.seq > b.seq
}

// scanTimelineEntry reads one row of timelineQuery, an observation at ep:
// one of another time than its sighting's, or of another address than
// ep's, is an error (a damaged or forged sighting).
func scanTimelineEntry(r pgx.Rows, ep *analysis.EndpointInfo, hexes map[string]string) (timelineEntry, error) {
	var (
		e                     timelineEntry
		ns, offset, seen      int64
		ip                    string
		unc                   *int64
		level                 string
		matched, place        []byte
		hash, tsum            []byte
		client, clientVersion []byte
		marks                 string
		port                  int64
	)
	t := &e.t
	if err := r.Scan(&e.seq, &t.ID, &ns, &t.Network, &t.Method, &level, &t.Transport, &t.Kind, &hash, &matched, &place, &t.Agency,
		&t.Sensor, &offset, &t.ClockSource, &marks, &t.SensorAddress, &tsum, &port,
		&client, &clientVersion, &t.PiecesHave, &t.PiecesTotal,
		&unc, &t.Build.Version, &t.Build.Commit, &t.Build.Modified, &seen, &ip); err != nil {
		return e, err
	}
	if addr, err := netip.ParseAddr(ip); err != nil || ns != seen || addr.Unmap().WithZone("") != ep.IP.Unmap().WithZone("") {
		return e, fmt.Errorf("the sighting of seq %d at %s is observation %s of %s at %s: %w",
			e.seq, nsTime(seen).Format(time.RFC3339Nano), t.ID, ip, nsTime(ns).Format(time.RFC3339Nano), errSightings)
	}
	t.Client, t.ClientVersion = string(client), string(clientVersion)
	var err error
	if marks != "" {
		if t.Marks, err = rowcodec.ParseMarks(marks); err != nil {
			return e, fmt.Errorf("observation seq %d: %w", e.seq, err)
		}
	}
	if len(tsum) > 0 {
		t.TranscriptSHA256 = hex.EncodeToString(tsum)
	}
	hx, ok := hexes[string(hash)]
	if !ok {
		hx = hex.EncodeToString(hash)
		hexes[string(hash)] = hx
	}
	// The observation's own port: a DHT announce is grouped under
	// the port it declared but was sent from another, and an ISP
	// row needs the port of the conversation.
	t.Time, t.Endpoint, t.Hash = nsTime(ns), netip.AddrPortFrom(ep.IP.Unmap(), uint16(port)).String(), hx
	// NULL uncertainty: the offset is unknown (0 means nothing).
	if unc != nil {
		t.ClockKnown, t.ClockOffset, t.ClockUncertainty = true, time.Duration(offset), time.Duration(*unc)
	}
	if t.Level, err = observe.ParseLevel(level); err != nil {
		return e, err
	}
	if string(matched) != "[]" {
		if err := json.Unmarshal(matched, &t.Matched); err != nil {
			return e, err
		}
	}
	if place != nil {
		if err := parsePlace(place, &t.Place); err != nil {
			return e, err
		}
	}
	o := observe.Observation{Method: t.Method, Endpoint: observe.Endpoint{Transport: t.Transport}, Possession: observe.Possession{Level: t.Level}, Marks: t.Marks}
	t.Intent = analysis.Intent(&o).String()
	t.FirstHand = o.FirstHand()
	return e, nil
}

// timelineFromBlocks reads from the blocks (migration 0030) the
// observations of the sightings (seqs, times) not among the hot rows,
// with the same checks as scanTimelineEntry: an observation of another
// time than its sighting's, or of another address than ep's, is an
// error.
func (s *Store) timelineFromBlocks(ctx context.Context, db pgQuerier, seqs, times []int64, hot map[int64]bool, ep *analysis.EndpointInfo,
	hexes map[string]string) ([]timelineEntry, error) {
	want := map[int64]int64{} // seq: its sighting's time
	var rest []int64
	for j, q := range seqs {
		if !hot[q] {
			want[q] = times[j]
			rest = append(rest, q)
		}
	}
	if len(rest) == 0 {
		return nil, nil
	}
	only := make(map[int64]bool, len(rest))
	for _, q := range rest {
		only[q] = true
	}
	cold, err := coldObservations(ctx, db, blocksOfSeqsSQL, []any{rest}, only, nil)
	if err != nil {
		return nil, err
	}
	out := make([]timelineEntry, 0, len(cold))
	for i := range cold {
		e, err := timelineEntryOf(cold[i].seq, &cold[i].o, want[cold[i].seq], ep, hexes)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// blocksOfSeqsSQL selects the blocks b that hold one of the seqs in $1.
const blocksOfSeqsSQL = `(b.time_lo, b.seq_lo) IN (SELECT x.time_lo, x.seq_lo FROM unnest($1::bigint[]) AS q(seq)
	JOIN observation_blocks x ON int8range(x.seq_lo, x.seq_hi, '[]') @> q.seq)`

// timelineEntryOf is scanTimelineEntry for an observation o read from a
// block, the sighting of seq at seen.
func timelineEntryOf(seq int64, o *observe.Observation, seen int64, ep *analysis.EndpointInfo, hexes map[string]string) (timelineEntry, error) {
	ns := o.Time.UnixNano()
	if ns != seen || o.Endpoint.IP.Unmap().WithZone("") != ep.IP.Unmap().WithZone("") {
		return timelineEntry{}, fmt.Errorf("the sighting of seq %d at %s is observation %s of %s at %s: %w",
			seq, nsTime(seen).Format(time.RFC3339Nano), o.ID, o.Endpoint.IP, nsTime(ns).Format(time.RFC3339Nano), errSightings)
	}
	e := timelineEntry{seq: seq}
	t := &e.t
	t.ID, t.Network, t.Method, t.Level, t.Transport = o.ID, o.Network, o.Method, o.Possession.Level, o.Endpoint.Transport
	t.Kind = o.Item.Hash.Kind().String()
	sum := o.Item.Hash.Bytes()
	hx, ok := hexes[string(sum)]
	if !ok {
		hx = hex.EncodeToString(sum)
		hexes[string(sum)] = hx
	}
	t.Hash, t.Matched, t.Place, t.Agency, t.Sensor = hx, o.Item.Matched, o.Place, o.Jurisdiction.Agency, o.Sensor.ID
	t.ClockSource, t.Build, t.Marks = o.ClockSource, o.Sensor.Build(), o.Marks
	if o.Endpoint.Local.IsValid() {
		t.SensorAddress = o.Endpoint.Local.String()
	}
	if len(o.Transcript.SHA256) > 0 {
		t.TranscriptSHA256 = hex.EncodeToString(o.Transcript.SHA256)
	}
	t.Client, t.ClientVersion, t.PiecesHave, t.PiecesTotal = o.Client.Name, o.Client.Version, o.Possession.PiecesHave, o.Possession.PiecesTotal
	t.Time, t.Endpoint = nsTime(ns), netip.AddrPortFrom(ep.IP.Unmap(), o.Endpoint.Port).String()
	if o.ClockKnown {
		t.ClockKnown, t.ClockOffset, t.ClockUncertainty = true, o.ClockOffset, o.ClockUncertainty
	}
	x := observe.Observation{Method: t.Method, Endpoint: observe.Endpoint{Transport: t.Transport}, Possession: observe.Possession{Level: t.Level}, Marks: t.Marks}
	t.Intent = analysis.Intent(&x).String()
	t.FirstHand = x.FirstHand()
	return e, nil
}
