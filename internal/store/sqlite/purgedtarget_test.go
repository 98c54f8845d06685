package sqlite

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// A purge record is tied to a target by its seq, through the target's
// timeline; it carries its observation's address and port (migration
// 0026), and PurgedOfTarget checks them and its time against the
// sighting and endpoint that found it: a timeline row edited to point at
// another address's purged observation fails the read, naming the
// record, rather than listing that observation as the target's (its
// page, ISP request and evidence export). The PostgreSQL store's test of
// the same name checks its packed timeline.
func TestPurgedOfTargetChecksTheRecordAgainstItsSighting(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
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
	if err := e.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	var target string
	var ep int64
	if err := st.db.QueryRowContext(ctx, `SELECT target, id FROM analysis_endpoints WHERE ip = '10.0.0.5'`).Scan(&target, &ep); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PurgeChunk(ctx, retention.KindObservations, at.AddDate(0, 1, 0), 100, at.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	seqOf := map[string]int64{}
	for _, o := range []observe.Observation{a, b} {
		var ip string
		var port int
		var seq int64
		if err := st.db.QueryRowContext(ctx, `SELECT ip, port, seq FROM purged_observations WHERE observation_id = ?`, idValue(o.ID)).Scan(&ip, &port, &seq); err != nil {
			t.Fatal(err)
		}
		if ip != o.Endpoint.IP.String() || port != int(o.Endpoint.Port) {
			t.Errorf("the purge record of %s holds %s port %d, want %s port %d", o.ID, ip, port, o.Endpoint.IP, o.Endpoint.Port)
		}
		seqOf[o.ID] = seq
	}
	got, err := st.PurgedOfTarget(ctx, target)
	if err != nil || len(got) != 1 || got[0].ObservationID != a.ID {
		t.Fatalf("untampered: PurgedOfTarget = %+v, %v; want a's record", got, err)
	}
	for _, tamper := range []struct {
		name    string
		ns, seq int64
	}{
		{"another address's observation, at its time", b.Time.UnixNano(), seqOf[b.ID]},
		{"another address's observation, at another time", a.Time.UnixNano() + 1, seqOf[b.ID]},
		{"its own observation at another time", a.Time.UnixNano() + 1, seqOf[a.ID]},
	} {
		if _, err := st.db.ExecContext(ctx, `INSERT INTO analysis_timeline (endpoint, time_ns, seq) VALUES (?, ?, ?)`, ep, tamper.ns, tamper.seq); err != nil {
			t.Fatal(err)
		}
		got, err := st.PurgedOfTarget(ctx, target)
		if err == nil || !strings.Contains(err.Error(), "purge record") || !strings.Contains(err.Error(), target) {
			ids := []string{}
			for _, p := range got {
				ids = append(ids, p.ObservationID)
			}
			t.Errorf("a sighting of %s: PurgedOfTarget = %v, %v; want it refused, naming the target", tamper.name, ids, err)
		}
		if _, err := st.db.ExecContext(ctx, `DELETE FROM analysis_timeline WHERE endpoint = ? AND time_ns = ? AND seq = ?`, ep, tamper.ns, tamper.seq); err != nil {
			t.Fatal(err)
		}
	}
	// A second record of a's seq, of another observation id, with a's
	// time, address and port (INSERTed by hand: the trigger lets INSERT
	// through): a seq is one observation's, so two records of it are
	// not both the target's; the read is refused rather than listing an
	// observation that never was at the target.
	if _, err := st.db.ExecContext(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, ip, port)
		SELECT ?, seq, what, time_ns, purged_ns, ip, port FROM purged_observations WHERE seq = ?`,
		idValue("00000000-0000-4000-8000-00000000f0f0"), seqOf[a.ID]); err != nil {
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

// Retention's one update of a purge record keeps the address and port it
// holds; the append-only trigger refuses any other change of them.
func TestPurgeRecordKeepsItsAddress(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
	o := storetest.Observation(rand.New(rand.NewPCG(15, 16)), time.Date(2025, 1, 3, 12, 0, 0, 0, time.UTC), 1)
	o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr("10.0.0.7"), 6883
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.ExecContext(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, ip, port)
		SELECT id, seq, 'transcripts', time_ns, 1, ip, port FROM observations`); err != nil {
		t.Fatal(err)
	}
	// The analysis has read it (retention purges nothing it has not).
	if _, err := st.db.ExecContext(ctx, `INSERT INTO analysis_state (key, value) VALUES ('watermark', 1000000)`); err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{`ip = '10.0.0.8'`, `port = 1`, `ip = NULL`} {
		if _, err := st.db.ExecContext(ctx, `UPDATE purged_observations SET what = 'observations', purged_ns = 2, `+set); err == nil ||
			!strings.Contains(err.Error(), "append-only") {
			t.Errorf("retention's update with %s: %v, want it refused as append-only", set, err)
		}
	}
	if _, err := st.PurgeChunk(ctx, retention.KindObservations, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 10, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	var ip, what string
	var port int
	if err := st.db.QueryRowContext(ctx, `SELECT ip, port, what FROM purged_observations`).Scan(&ip, &port, &what); err != nil || ip != "10.0.0.7" || port != 6883 || what != "observations" {
		t.Fatalf("after retention's update: %s port %d %s (%v), want 10.0.0.7 port 6883 observations", ip, port, what, err)
	}
}

// A purge record of an observation whose row is still stored says what a
// purge removed of it: its transcript, never the row. PurgedObservations
// (which moves an observation out of a bundle's proven ones and marks an
// ISP request's row as purged) refuses a record that the row contradicts:
// one of the whole row, one of a transcript the row still holds (each
// INSERTed by hand: the trigger lets INSERT through), rather than hide
// the observation behind it.
func TestPurgedObservationsCheckedAgainstTheRow(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2025, 1, 3, 12, 0, 0, 0, time.UTC)
	for _, forged := range []struct{ name, what string }{
		{"of its transcript, which the row holds", "transcripts"},
		{"of the whole row", "observations"},
		{"", ""}, // none: retention's own purge of the transcript, listed
	} {
		st, _ := openTemp(t, DefaultConfig())
		o := storetest.Observation(rand.New(rand.NewPCG(17, 18)), at, 1)
		if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
			t.Fatal(err)
		}
		if forged.what == "" {
			if _, err := st.db.ExecContext(ctx, `INSERT INTO analysis_state (key, value) VALUES ('watermark', 1000000)`); err != nil {
				t.Fatal(err)
			}
			if _, err := st.PurgeChunk(ctx, retention.KindTranscripts, at.AddDate(0, 1, 0), 100, at.AddDate(1, 0, 0)); err != nil {
				t.Fatal(err)
			}
			got, err := st.PurgedObservations(ctx, []string{o.ID})
			if err != nil || got[o.ID].What != retention.KindTranscripts {
				t.Fatalf("after retention's purge of its transcript: PurgedObservations = %+v, %v; want its record", got, err)
			}
			continue
		}
		if _, err := st.db.ExecContext(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, ip, port)
			SELECT id, seq, ?, time_ns, 1, ip, port FROM observations`, forged.what); err != nil {
			t.Fatal(err)
		}
		got, err := st.PurgedObservations(ctx, []string{o.ID})
		if err == nil || !strings.Contains(err.Error(), o.ID) {
			t.Errorf("a record %s: PurgedObservations = %+v, %v; want it refused, naming the observation", forged.name, got, err)
		}
	}
}
