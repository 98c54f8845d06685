package postgres

import (
	"context"
	"crypto/ed25519"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// BenchmarkDiskPerObservation stores -bench-observations observations
// (the insert benchmark's rows: every field filled, a 256-byte transcript)
// with COPY in batches of 10,000, the evidence log on, as ingest stores
// them, and reports the disk each takes (pg_total_relation_size: heap,
// TOAST and indexes, after VACUUM ANALYZE): observations with and without
// their transcripts (the sum of pg_column_size of the transcript column)
// and their indexes alone (pg_indexes_size),
// items, the evidence log, and the analysis's timeline (the analysis's
// shape: 20 observations an endpoint, saved by its save 10,000 at a
// time; and, for comparison, migration 0004's rows of the same sightings,
// one an observation, by one INSERT over generate_series, not counted in
// the total), and the dictionaries the
// rows refer to (migration 0017: facets, places, matches; 0023: clocks;
// counted with the items). Docs/deployment.md sizes a year's store from these figures.
//
// Two shapes of observations. pool: the insert benchmark's (every
// identifier a peer can send filled with random bytes, peer id, DHT node
// id, eMule user hash and Gnutella GUID at once, as no real observation
// has them; a 256-byte transcript; 4,096 observations taken in turn).
// lab: storetest.LabObservations, what a live BitTorrent sensor emits
// (DHT replies naming up to 8 peers without a client, probes of 3,000
// peers seen again and again with their peer and node ids, signed, no
// transcript bytes in the row; the clock's uncertainty grown as a
// sensor grows it, growUncertainty); lab-signed: the same observations
// signed as a sensor signs them (signedAsASensor), their chain hashes
// following one from the other.
func BenchmarkDiskPerObservation(b *testing.B) {
	inBothShapes(b, diskPerObservation)
}

// inBothShapes runs measure over the -bench-observations observations of
// the disk benchmark's shapes, pool, lab and lab-signed, as
// sub-benchmarks.
func inBothShapes(b *testing.B, measure func(b *testing.B, n int, fill func(batch []observe.Observation))) {
	n := *benchObs
	b.Run("shape=pool", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			src := newBenchSource()
			measure(b, n, src.fill)
		}
	})
	for _, shape := range []string{"lab", "lab-signed"} {
		b.Run("shape="+shape, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				lab := storetest.LabObservations(n, 1)
				growUncertainty(lab)
				if shape == "lab-signed" {
					lab = signedAsASensor(b, lab)
				}
				measure(b, n, func(batch []observe.Observation) {
					copy(batch, lab)
					lab = lab[len(batch):]
				})
			}
		})
	}
}

// captured keeps what a signer publishes.
type captured struct{ obs []observe.Observation }

func (c *captured) Publish(_ context.Context, o observe.Observation) error {
	c.obs = append(c.obs, o)
	return nil
}

// signedAsASensor is obs as a sensor publishes them: signed by
// evidence.BatchSigner with its default batches, on a chain of its own,
// so that each chain hash follows from the row before it (the lab
// generator's chain hashes are random bytes, which no signer writes and
// obsblock's version 2 cannot derive).
func signedAsASensor(b *testing.B, obs []observe.Observation) []observe.Observation {
	b.Helper()
	c := &captured{}
	s := evidence.NewBatchSigner(c, ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), evidence.DefaultSignerConfig())
	for _, o := range obs {
		o.Chain = observe.Chain{}
		if err := s.Publish(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c.obs
}

// growUncertainty gives each observation of obs the clock uncertainty a
// sensor stamps (timesync.Current): the measurement's (250 µs here) grown
// by 15 ppm (timesync.PHI) of the time since the offset was measured,
// taken as the first observation with that offset. LabObservations keeps
// one uncertainty for every observation, which no sensor writes.
func growUncertainty(obs []observe.Observation) {
	const phi = 15e-6
	var measured time.Time
	for i := range obs {
		o := &obs[i]
		if i == 0 || o.ClockOffset != obs[i-1].ClockOffset {
			measured = o.Time
		}
		if o.ClockKnown {
			o.ClockUncertainty = 250*time.Microsecond + time.Duration(phi*float64(o.Time.Sub(measured)))
		}
	}
}

// diskPerObservation stores n observations that fill hands out, 10,000
// at a time, and reports the bytes each takes (BenchmarkDiskPerObservation).
func diskPerObservation(b *testing.B, n int, fill func(batch []observe.Observation)) {
	ctx := context.Background()
	{
		st := openTest(b, DefaultConfig())
		batch := make([]observe.Observation, 10000)
		for done := 0; done < n; done += len(batch) {
			k := min(len(batch), n-done)
			fill(batch[:k])
			if err := st.InsertObservations(ctx, batch[:k]); err != nil {
				b.Fatal(err)
			}
		}
		// The timeline before migration 0022 (a row an observation), for
		// the same run's comparison, and since (saved by the analysis's
		// save, 10,000 observations a save).
		if _, err := st.pool.Exec(ctx, oldTimelineDDL); err != nil {
			b.Fatal(err)
		}
		if _, err := st.pool.Exec(ctx, `INSERT INTO analysis_timeline_old (endpoint, time_ns, seq)
			SELECT g / 20, 1795000000000000000 + g * 37000, g FROM generate_series(1, $1::bigint) g`, n); err != nil {
			b.Fatal(err)
		}
		for g := int64(1); g <= int64(n); g += 10000 {
			var c analysis.Changes
			for k := g; k < g+10000 && k <= int64(n); k++ {
				c.Timeline = append(c.Timeline, analysis.TimelineRef{Endpoint: k / 20, TimeNS: 1795000000000000000 + k*37000, Seq: k})
			}
			c.Version = (g - 1) / 10000
			if err := st.AnalysisSave(ctx, &c); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := st.pool.Exec(ctx, `VACUUM ANALYZE observations, items, evidence_log, evidence_blocks, evidence_tiles, analysis_timeline_old, analysis_timeline_days,
			observation_facets, observation_places, observation_matches, observation_clocks, observation_chain_runs`); err != nil {
			b.Fatal(err)
		}
		var obs, obsIndexes, transcripts, items, dicts, evlog, timeline, oldTimeline, runs int64
		if err := st.pool.QueryRow(ctx, `SELECT
			(SELECT SUM(pg_total_relation_size(relid)) FROM pg_partition_tree('observations')),
			(SELECT SUM(pg_indexes_size(relid)) FROM pg_partition_tree('observations')),
			(SELECT COALESCE(SUM(pg_column_size(transcript)), 0) FROM observations),
			pg_total_relation_size('items'),
			pg_total_relation_size('observation_facets') + pg_total_relation_size('observation_places') + pg_total_relation_size('observation_matches')
				+ pg_total_relation_size('observation_clocks'),
			pg_total_relation_size('evidence_log') + pg_total_relation_size('evidence_blocks') + pg_total_relation_size('evidence_tiles'),
			pg_total_relation_size('analysis_timeline_days'), pg_total_relation_size('analysis_timeline_old'),
			pg_total_relation_size('observation_chain_runs')`).Scan(&obs, &obsIndexes, &transcripts, &items, &dicts, &evlog, &timeline, &oldTimeline, &runs); err != nil {
			b.Fatal(err)
		}
		per := func(v int64) float64 { return float64(v) / float64(n) }
		b.ReportMetric(per(obs), "obs-bytes/obs")
		b.ReportMetric(per(obsIndexes), "obs-index-bytes/obs")
		b.ReportMetric(per(transcripts), "transcript-bytes/obs")
		b.ReportMetric(per(obs-transcripts), "obs-without-transcript-bytes/obs")
		b.ReportMetric(per(items), "items-bytes/obs")
		b.ReportMetric(per(dicts), "dictionary-bytes/obs")
		b.ReportMetric(per(evlog), "evidence-log-bytes/obs")
		b.ReportMetric(per(timeline), "timeline-bytes/obs")
		b.ReportMetric(per(oldTimeline), "old-timeline-bytes/obs")
		// Where each commit put each chain's rows (migration 0026), in
		// place of an index of every signed row.
		b.ReportMetric(per(runs), "chain-runs-bytes/obs")
		b.ReportMetric(per(obs+items+dicts+evlog+timeline+runs), "total-bytes/obs")
		b.ReportMetric(per(obs-transcripts+items+dicts+evlog+timeline+runs), "total-without-transcript-bytes/obs")
		compactedDisk(b, st, n, items+dicts+evlog+timeline+runs)
	}
}

// compactedDisk moves every row of st into blocks with the store's own
// compaction (CompactObservations, the watermark set to the last seq, a
// settle time of 0) and reports the bytes an observation then takes, in
// the same run as the rows' figures: the blocks (heap, TOAST, indexes,
// every partition; the transcripts' bytes apart), the heads of their
// signed batches, the ids listed elsewhere, and the rows' emptied table
// after VACUUM FULL (what a month wholly compacted leaves once its
// partition is rewritten or dropped); others is the other tables' bytes
// (items, dictionaries, evidence log, timeline, chain runs), counted
// again in the total. The blocks are then checked against the rows: a
// sample of ids read back through the store equals what was stored.
func compactedDisk(b *testing.B, st *Store, n int, others int64) {
	ctx := context.Background()
	if _, err := st.pool.Exec(ctx, `INSERT INTO analysis_state (key, value) VALUES ('watermark', (SELECT max(seq) FROM observations))
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`); err != nil {
		b.Fatal(err)
	}
	var sample []observe.Observation
	if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		if len(sample) < 1000 && len(sample)*n/1000 <= int(o.Time.UnixNano()%int64(n+1)) {
			sample = append(sample, *o)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	opt := DefaultCompactOptions()
	opt.Settle, opt.Now = 0, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	res, err := st.CompactObservations(ctx, opt)
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	if res.Rows != n {
		b.Fatalf("compacted %d of %d rows", res.Rows, n)
	}
	if _, err := st.pool.Exec(ctx, `VACUUM FULL observations`); err != nil {
		b.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, `VACUUM ANALYZE observations, observation_blocks, observation_chain_heads, observation_ids_elsewhere`); err != nil {
		b.Fatal(err)
	}
	var blocks, transcripts, heads, elsewhere, rows int64
	if err := st.pool.QueryRow(ctx, `SELECT
		(SELECT SUM(pg_total_relation_size(relid)) FROM pg_partition_tree('observation_blocks')),
		(SELECT COALESCE(SUM(pg_column_size(transcript)), 0) FROM observation_blocks),
		pg_total_relation_size('observation_chain_heads'), pg_total_relation_size('observation_ids_elsewhere'),
		(SELECT SUM(pg_total_relation_size(relid)) FROM pg_partition_tree('observations'))`).Scan(&blocks, &transcripts, &heads, &elsewhere, &rows); err != nil {
		b.Fatal(err)
	}
	var left string // what the rows' emptied table still takes, by relation
	if err := st.pool.QueryRow(ctx, `SELECT string_agg(format('%s %s (%s of indexes)', c.relname, pg_total_relation_size(c.oid), pg_indexes_size(c.oid)), ', ' ORDER BY c.relname)
		FROM pg_partition_tree('observations') t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf`).Scan(&left); err != nil {
		b.Fatal(err)
	}
	b.Logf("the rows' partitions after compaction and VACUUM FULL: %s", left)
	ids := make([]string, len(sample))
	for i := range sample {
		ids[i] = sample[i].ID
	}
	k := 0
	if err := st.ObservationsByID(ctx, ids, func(o *observe.Observation) error {
		if !reflect.DeepEqual(*o, sample[k]) {
			b.Fatalf("observation %s reads back from its block otherwise than it was stored", o.ID)
		}
		k++
		return nil
	}); err != nil || k != len(sample) {
		b.Fatalf("%d of %d sampled observations read back from blocks: %v", k, len(sample), err)
	}
	per := func(v int64) float64 { return float64(v) / float64(n) }
	b.ReportMetric(per(blocks), "blocks-bytes/obs")
	b.ReportMetric(per(blocks-transcripts), "blocks-without-transcript-bytes/obs")
	b.ReportMetric(per(heads), "blocks-heads-bytes/obs")
	b.ReportMetric(per(elsewhere), "ids-elsewhere-bytes/obs")
	b.ReportMetric(per(rows), "rows-left-bytes/obs")
	b.ReportMetric(per(blocks-transcripts+heads+elsewhere+rows+others), "compacted-total-without-transcript-bytes/obs")
	b.ReportMetric(float64(took.Nanoseconds())/float64(n), "compact-ns/obs")
}
