package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// TestAPurgedRowOfEvidenceForm2IsStillChecked: in evidence form 2 (what
// every sensor signs today) an observation's leaf commits to its
// transcript's digest, not to the transcript's bytes. A row whose
// transcript retention purged can then still be checked against its
// leaf, and must be: someone who edits a probe's time in the database
// (at a shared address, another subscriber's hour) after the purge, or
// who writes a purge record beside the edit, must not send the ISP the
// edited time. A row of form 1, whose leaf commits to the bytes, cannot be
// checked against its leaf once they are gone, but its purge record holds
// its seq and time: an edited time contradicts it, and is refused. A
// purge record written beside a row whose transcript is still stored is a
// lie: the request is refused (rowcodec.PurgedLive).
func TestAPurgedRowOfEvidenceForm2IsStillChecked(t *testing.T) {
	for _, c := range []struct {
		form   uint8
		forged bool // a purge record written in the database, the transcript left
	}{{observe.Form2, false}, {0, false}, {0, true}} {
		form := c.form
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "v.db")
		st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		r := rand.New(rand.NewPCG(5, 6))
		at := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Millisecond)
		var obs []observe.Observation
		for i := range 2 {
			o := storetest.Observation(r, at.Add(time.Duration(i)*time.Hour), i)
			o.Method, o.Marks = observe.MethodPeerProbe, nil
			o.Endpoint = observe.Endpoint{IP: netip.MustParseAddr("81.2.69.160"), Port: 51413, Transport: "tcp", Local: netip.MustParseAddrPort("81.2.69.1:6881")}
			o.Transcript.Bytes = []byte{byte(i), 1, 2, 3}
			sum := sha256.Sum256(o.Transcript.Bytes)
			o.Transcript.SHA256 = sum[:]
			o.Chain = observe.Chain{Key: bytes.Repeat([]byte{3}, 32), ID: "c0ffee", Seq: uint64(i + 1), Prev: make([]byte, 32), Form: form}
			obs = append(obs, o)
		}
		if err := st.InsertObservations(ctx, obs); err != nil {
			t.Fatal(err)
		}
		e, err := analysis.New(ctx, st, analysis.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		if err := e.CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		raw, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if c.forged {
			if _, err := raw.Exec(`INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns)
				SELECT id, seq, 'transcripts', time_ns, 1 FROM observations`); err != nil {
				t.Fatal(err)
			}
		} else if got, err := st.PurgeChunk(ctx, retention.KindTranscripts, at.Add(2*time.Hour), 10, time.Now().UTC()); err != nil || got.N != 2 {
			t.Fatalf("form %d: purge of both transcripts: %+v, %v", form, got, err)
		}
		build := func() isp.Request {
			var s []isp.Sighting
			if err := st.ObservationsByID(ctx, []string{obs[0].ID, obs[1].ID}, func(o *observe.Observation) error {
				s = append(s, isp.FromObservation(o))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return isp.Build(isp.Target{ID: "T-1"}, s, time.Now(), isp.DefaultRetention())
		}
		req := build()
		err = CheckISPRows(ctx, st, &req)
		if c.forged {
			// The record says the transcript was purged; the row still
			// holds it: the request is refused, not sent with the row
			// marked purged.
			if err == nil || !strings.Contains(err.Error(), "contradicts") {
				t.Errorf("form %d: a purge record beside the transcript it says was purged: %v, want it refused", form, err)
			}
			continue
		}
		if err != nil || req.Kept != 2 {
			t.Fatalf("form %d: before the edit: %d rows, %v", form, req.Kept, err)
		}
		if n, _, _ := req.TranscriptsPurged(); n != 2 {
			t.Fatalf("form %d: %d rows say their transcript was purged, want 2", form, n)
		}
		if _, err := raw.Exec(`UPDATE observations SET time_ns = time_ns + 3600000000000`); err != nil {
			t.Fatal(err)
		}
		req = build()
		err = CheckISPRows(ctx, st, &req)
		// Refused in either form: the purge record holds the row's time
		// (and in form 2 the leaf covers the transcript's digest, which
		// stays).
		if !errors.Is(err, ErrRowChanged) && (err == nil || !strings.Contains(err.Error(), "contradicts")) {
			t.Errorf("form %d: a row edited after its transcript was purged: %v, want it refused", form, err)
		}
	}
}
