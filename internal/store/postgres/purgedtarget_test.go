package postgres

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// A purge record is tied to a target by its seq, through the sightings
// of the target's endpoints; it carries the address and port of its
// observation (migration 0024), and PurgedOfTarget checks them and its
// time against the sighting and endpoint that found it: a sighting of
// another address's purged observation added to the target's timeline
// (by hand, in the database) fails the read, naming the record, rather
// than listing another address's observation in the target's page, ISP
// request or evidence export.
func TestPurgedOfTargetChecksTheRecordAgainstItsSighting(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(13, 14))
	at := time.Date(2025, 1, 3, 12, 0, 0, 0, time.UTC)
	a, b := storetest.Observation(r, at, 1), storetest.Observation(r, at.Add(time.Minute), 2)
	a.Endpoint.IP, b.Endpoint.IP = netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.6")
	a.Endpoint.Port, b.Endpoint.Port = 6881, 6882
	if err := st.InsertObservations(ctx, []observe.Observation{a, b}); err != nil {
		t.Fatal(err)
	}
	acfg := analysis.DefaultConfig()
	acfg.Now = func() time.Time { return at.AddDate(0, 5, 0) }
	acfg.SaveInterval = 0
	e, err := analysis.New(ctx, st, acfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(ctx, []observe.Observation{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var target string
	var ep int64
	if err := st.pool.QueryRow(ctx, `SELECT target, id FROM analysis_endpoints WHERE ip = '10.0.0.5'`).Scan(&target, &ep); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PurgeChunk(ctx, retention.KindObservations, at.AddDate(0, 1, 0), 100, at.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	// Each record carries its observation's address and port.
	for _, o := range []observe.Observation{a, b} {
		var ip string
		var port int
		if err := st.pool.QueryRow(ctx, `SELECT ip, port FROM purged_observations WHERE observation_id = $1`, o.ID).Scan(&ip, &port); err != nil {
			t.Fatal(err)
		}
		if ip != o.Endpoint.IP.String() || port != int(o.Endpoint.Port) {
			t.Errorf("the purge record of %s holds %s port %d, want %s port %d", o.ID, ip, port, o.Endpoint.IP, o.Endpoint.Port)
		}
	}
	got, err := st.PurgedOfTarget(ctx, target)
	if err != nil || len(got) != 1 || got[0].ObservationID != a.ID {
		t.Fatalf("untampered: PurgedOfTarget = %+v, %v; want a's record", got, err)
	}
	var packed []byte
	var seqA, seqB int64
	if err := st.pool.QueryRow(ctx, `SELECT packed FROM analysis_timeline_days WHERE endpoint = $1`, ep).Scan(&packed); err != nil {
		t.Fatal(err)
	}
	if err := st.pool.QueryRow(ctx, `SELECT (SELECT seq FROM purged_observations WHERE observation_id = $1), (SELECT seq FROM purged_observations WHERE observation_id = $2)`,
		a.ID, b.ID).Scan(&seqA, &seqB); err != nil {
		t.Fatal(err)
	}
	day := dayOf(at.UnixNano())
	for _, tamper := range []struct {
		name string
		run  []sighting
	}{
		{"another address's observation, at its time", []sighting{{b.Time.UnixNano(), seqB}}},
		{"another address's observation, at another time", []sighting{{a.Time.UnixNano() + 1, seqB}}},
		{"its own observation at another time", []sighting{{a.Time.UnixNano() + 1, seqA}}},
	} {
		if _, err := st.pool.Exec(ctx, `UPDATE analysis_timeline_days SET packed = packed || $1 WHERE endpoint = $2`, appendRun(nil, day, tamper.run), ep); err != nil {
			t.Fatal(err)
		}
		got, err := st.PurgedOfTarget(ctx, target)
		if err == nil || !strings.Contains(err.Error(), "purge record") {
			ids := []string{}
			for _, p := range got {
				ids = append(ids, p.ObservationID)
			}
			t.Errorf("a sighting of %s: PurgedOfTarget = %v, %v; want it refused", tamper.name, ids, err)
		} else if !strings.Contains(err.Error(), target) {
			t.Errorf("a sighting of %s: %v, want the target named", tamper.name, err)
		}
		if _, err := st.pool.Exec(ctx, `UPDATE analysis_timeline_days SET packed = $1 WHERE endpoint = $2`, packed, ep); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := st.PurgedOfTarget(ctx, target); err != nil || len(got) != 1 || !slices.ContainsFunc(got, func(p retention.Purged) bool { return p.ObservationID == a.ID }) {
		t.Fatalf("put back: PurgedOfTarget = %+v, %v; want a's record", got, err)
	}
	// A second record of a's seq, of another observation id, with a's
	// time, address and port (INSERTed by hand: the trigger lets INSERT
	// through): a seq is one observation's, so two records of it are
	// not both the target's; the read is refused rather than listing an
	// observation that never was at the target.
	if _, err := st.pool.Exec(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, ip, port)
		SELECT '00000000-0000-4000-8000-00000000f0f0', seq, what, time_ns, purged_ns, ip, port FROM purged_observations WHERE seq = $1`, seqA); err != nil {
		t.Fatal(err)
	}
	if got, err := st.PurgedOfTarget(ctx, target); err == nil || !strings.Contains(err.Error(), "purge record") || !strings.Contains(err.Error(), target) {
		ids := []string{}
		for _, p := range got {
			ids = append(ids, p.ObservationID)
		}
		t.Errorf("two purge records of one seq: PurgedOfTarget = %v, %v; want it refused, naming the target", ids, err)
	}
}

// Retention's one update of a purge record (a transcript's record made
// the row's) keeps the address and port it holds, and the append-only
// trigger refuses any other change of them.
func TestPurgeRecordKeepsItsAddress(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(15, 16))
	at := time.Date(2025, 1, 3, 12, 0, 0, 0, time.UTC)
	o := storetest.Observation(r, at, 1)
	o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr("10.0.0.7"), 6883
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, ip, port)
		SELECT `+obsIDCol+`, o.seq, 'transcripts', o.time_ns, 1, `+obsIPSQL+`, o.port FROM observations o`); err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{`ip = '10.0.0.8'`, `port = 1`, `ip = NULL`} {
		if _, err := st.pool.Exec(ctx, `UPDATE purged_observations SET what = 'observations', purged_ns = 2, `+set); err == nil ||
			!strings.Contains(err.Error(), "append-only") {
			t.Errorf("retention's update with %s: %v, want it refused as append-only", set, err)
		}
	}
	if _, err := st.pool.Exec(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, ip, port)
		SELECT observation_id, seq, 'observations', time_ns, 3, '10.0.0.9', 2 FROM purged_observations
		ON CONFLICT (observation_id) DO UPDATE SET `+purgedConflictSet); err != nil {
		t.Fatal(err)
	}
	var ip string
	var port int
	if err := st.pool.QueryRow(ctx, `SELECT ip, port FROM purged_observations`).Scan(&ip, &port); err != nil || ip != "10.0.0.7" || port != 6883 {
		t.Fatalf("after retention's update: %s port %d (%v), want 10.0.0.7 port 6883 kept", ip, port, err)
	}
}

// A purge record of an observation whose row is still stored says what a
// purge removed of it: its transcript, never the row. PurgedObservations
// (which moves an observation out of a bundle's proven ones and marks an
// ISP request's row as purged) refuses a record that the row contradicts:
// one of the whole row, one of a transcript the row still holds, one of
// another seq or time (each INSERTed by hand: the trigger lets INSERT
// through), rather than hide the observation behind it.
func TestPurgedObservationsCheckedAgainstTheRow(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(17, 18))
	at := time.Date(2025, 1, 3, 12, 0, 0, 0, time.UTC)
	o := storetest.Observation(r, at, 1)
	// An id that is not a UUID is stored as text (id_text), read another way.
	text := storetest.Observation(r, at.Add(time.Second), 2)
	text.ID = "lab-observation-2"
	if err := st.InsertObservations(ctx, []observe.Observation{o, text}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns)
		SELECT id_text, seq, 'observations', time_ns, 1 FROM observations WHERE id_text IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if got, err := st.PurgedObservations(ctx, []string{text.ID}); err == nil || !strings.Contains(err.Error(), text.ID) {
		t.Errorf("a record of the whole row of %s: PurgedObservations = %+v, %v; want it refused, naming the observation", text.ID, got, err)
	}
	if _, err := st.pool.Exec(ctx, `ALTER TABLE purged_observations DISABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, `DELETE FROM purged_observations`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, `ALTER TABLE purged_observations ENABLE TRIGGER USER`); err != nil {
		t.Fatal(err)
	}
	for _, forged := range []struct{ name, what, seq, ns string }{
		{"of its transcript, which the row holds", "'transcripts'", "o.seq", "o.time_ns"},
		{"of the whole row", "'observations'", "o.seq", "o.time_ns"},
	} {
		tx, err := st.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, ip, port)
			SELECT `+obsIDCol+`, `+forged.seq+`, `+forged.what+`, `+forged.ns+`, 1, `+obsIPSQL+`, o.port FROM observations o WHERE o.uid IS NOT NULL`); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := st.PurgedObservations(ctx, []string{o.ID})
		if err == nil || !strings.Contains(err.Error(), o.ID) {
			t.Errorf("a record %s: PurgedObservations = %+v, %v; want it refused, naming the observation", forged.name, got, err)
		}
		// The trigger refuses DELETE: drop it in a schema of its own.
		if _, err := st.pool.Exec(ctx, `ALTER TABLE purged_observations DISABLE TRIGGER USER`); err != nil {
			t.Fatal(err)
		}
		if _, err := st.pool.Exec(ctx, `DELETE FROM purged_observations`); err != nil {
			t.Fatal(err)
		}
		if _, err := st.pool.Exec(ctx, `ALTER TABLE purged_observations ENABLE TRIGGER USER`); err != nil {
			t.Fatal(err)
		}
	}
	// Retention's own purge of the transcript: listed.
	if _, err := st.pool.Exec(ctx, `INSERT INTO analysis_state (key, value) VALUES ('watermark', 1000000) ON CONFLICT (key) DO UPDATE SET value = excluded.value`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PurgeChunk(ctx, retention.KindTranscripts, at.AddDate(0, 1, 0), 100, at.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	got, err := st.PurgedObservations(ctx, []string{o.ID})
	if err != nil || got[o.ID].What != retention.KindTranscripts {
		t.Fatalf("after retention's purge of its transcript: PurgedObservations = %+v, %v; want its record", got, err)
	}
}
