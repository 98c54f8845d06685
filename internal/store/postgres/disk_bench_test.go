package postgres

import (
	"context"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// BenchmarkDiskPerObservation stores -bench-observations observations
// (the insert benchmark's rows: every field filled, a 256-byte transcript)
// with COPY in batches of 10,000, the evidence log on, as ingest stores
// them, and reports the disk each takes (pg_total_relation_size: heap,
// TOAST and indexes, after VACUUM ANALYZE): observations with and without
// their transcripts (the sum of pg_column_size of the transcript column)
// and their indexes alone (pg_indexes_size),
// items, the evidence log, and the analysis's timeline (one row an
// observation, written here by one INSERT over generate_series with the
// analysis's shape: 20 observations an endpoint), and the dictionaries the
// rows refer to (migration 0017: facets, places, matches; counted with
// the items). Docs/deployment.md sizes a year's store from these figures.
func BenchmarkDiskPerObservation(b *testing.B) {
	ctx := context.Background()
	n := *benchObs
	for i := 0; i < b.N; i++ {
		st := openTest(b, DefaultConfig())
		src := newBenchSource()
		batch := make([]observe.Observation, 10000)
		for done := 0; done < n; done += len(batch) {
			k := min(len(batch), n-done)
			src.fill(batch[:k])
			if err := st.InsertObservations(ctx, batch[:k]); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := st.pool.Exec(ctx, `INSERT INTO analysis_timeline (endpoint, time_ns, seq)
			SELECT g / 20, 1795000000000000000 + g * 37000, g FROM generate_series(1, $1::bigint) g`, n); err != nil {
			b.Fatal(err)
		}
		if _, err := st.pool.Exec(ctx, `VACUUM ANALYZE observations, items, evidence_log, evidence_blocks, evidence_tiles, analysis_timeline,
			observation_facets, observation_places, observation_matches`); err != nil {
			b.Fatal(err)
		}
		var obs, obsIndexes, transcripts, items, dicts, evlog, timeline int64
		if err := st.pool.QueryRow(ctx, `SELECT
			(SELECT SUM(pg_total_relation_size(relid)) FROM pg_partition_tree('observations')),
			(SELECT SUM(pg_indexes_size(relid)) FROM pg_partition_tree('observations')),
			(SELECT COALESCE(SUM(pg_column_size(transcript)), 0) FROM observations),
			pg_total_relation_size('items'),
			pg_total_relation_size('observation_facets') + pg_total_relation_size('observation_places') + pg_total_relation_size('observation_matches'),
			pg_total_relation_size('evidence_log') + pg_total_relation_size('evidence_blocks') + pg_total_relation_size('evidence_tiles'),
			pg_total_relation_size('analysis_timeline')`).Scan(&obs, &obsIndexes, &transcripts, &items, &dicts, &evlog, &timeline); err != nil {
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
		b.ReportMetric(per(obs+items+dicts+evlog+timeline), "total-bytes/obs")
		b.ReportMetric(per(obs-transcripts+items+dicts+evlog+timeline), "total-without-transcript-bytes/obs")
	}
}
