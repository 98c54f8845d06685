package sqlite

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

func auditFixture(t *testing.T, n int) (*Store, *audit.Log) {
	t.Helper()
	st, _ := openTemp(t, DefaultConfig())
	clock := time.Date(2026, 11, 3, 9, 0, 0, 123456789, time.UTC)
	log := &audit.Log{Store: st, Now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	for i := range n {
		if _, err := log.Append(context.Background(), audit.Record{Actor: fmt.Sprintf("user%d", i%3), ActorAgency: "fr-a", Role: "investigator",
			Remote: "127.0.0.1:5000", Action: audit.ActionViewTarget, Object: fmt.Sprintf("target:%d", i), Purpose: "PV 2026/1",
			Detail: audit.Detail(map[string]int{"i": i})}); err != nil {
			t.Fatal(err)
		}
	}
	return st, log
}

func verify(t *testing.T, st *Store, pub ed25519.PublicKey) audit.Report {
	t.Helper()
	cps, err := st.AuditCheckpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(context.Background(), st, cps, pub)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func dropTriggers(t *testing.T, st *Store) {
	t.Helper()
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`} {
		if _, err := st.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditChainVerifiesAndRoundTrips(t *testing.T) {
	st, _ := auditFixture(t, 10)
	rep := verify(t, st, nil)
	if rep.Broken != nil || rep.Records != 10 || rep.HeadSeq != 10 {
		t.Fatalf("report %+v", rep)
	}
	var got []audit.Record
	if err := st.AuditRecords(context.Background(), audit.Filter{Actor: "user1"}, func(r audit.Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 2 || got[0].Time.Nanosecond() != 123456789 || string(got[0].Detail) != `{"i":1}` {
		t.Fatalf("filter by actor: %+v", got)
	}
}

func TestAuditIsAppendOnly(t *testing.T) {
	st, _ := auditFixture(t, 3)
	for _, q := range []string{`UPDATE audit SET actor = 'x' WHERE seq = 2`, `DELETE FROM audit WHERE seq = 3`} {
		if _, err := st.db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err %v, want the append-only refusal", q, err)
		}
	}
	if rep := verify(t, st, nil); rep.Broken != nil || rep.Records != 3 {
		t.Fatalf("after refused changes: %+v", rep)
	}
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	cases := []struct {
		name     string
		sql      []string
		wantSeq  int64
		wantKind string
	}{
		{"field changed", []string{`UPDATE audit SET purpose = 'PV 2026/2' WHERE seq = 4`}, 4, audit.BreakChanged},
		{"detail changed", []string{`UPDATE audit SET detail = '{"i":99}' WHERE seq = 6`}, 6, audit.BreakChanged},
		{"time changed", []string{`UPDATE audit SET at = at + 1 WHERE seq = 2`}, 2, audit.BreakChanged},
		{"middle row deleted", []string{`DELETE FROM audit WHERE seq = 5`}, 5, audit.BreakDeleted},
		{"row deleted and later renumbered", []string{`DELETE FROM audit WHERE seq = 5`,
			`UPDATE audit SET seq = seq - 1 WHERE seq > 5`}, 5, audit.BreakChanged},
		{"row inserted with a forged hash", []string{`INSERT INTO audit (seq, at, actor, action, prev_hash, hash)
			SELECT 11, at + 1, 'mallory', 'login', hash, randomblob(32) FROM audit WHERE seq = 10`}, 11, audit.BreakChanged},
		{"first row's prev_hash set", []string{`UPDATE audit SET prev_hash = randomblob(32) WHERE seq = 1`}, 1, audit.BreakChanged},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, _ := auditFixture(t, 10)
			dropTriggers(t, st)
			for _, q := range c.sql {
				if _, err := st.db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			rep := verify(t, st, nil)
			if rep.Broken == nil || rep.Broken.Seq != c.wantSeq || rep.Broken.Kind != c.wantKind {
				t.Fatalf("report %+v broken %+v, want seq %d %s", rep, rep.Broken, c.wantSeq, c.wantKind)
			}
		})
	}
}

// A record rewritten with a recomputed hash still breaks the chain at the
// next record.
func TestAuditVerifyFindsRehashedRecord(t *testing.T) {
	st, _ := auditFixture(t, 5)
	dropTriggers(t, st)
	var r audit.Record
	_ = st.AuditRecords(context.Background(), audit.Filter{AfterSeq: 2, Limit: 1}, func(x audit.Record) error { r = x; return nil })
	r.Actor = "someone else"
	audit.Seal(&r)
	if _, err := st.db.Exec(`UPDATE audit SET actor = ?, hash = ? WHERE seq = ?`, r.Actor, r.Hash, r.Seq); err != nil {
		t.Fatal(err)
	}
	rep := verify(t, st, nil)
	if rep.Broken == nil || rep.Broken.Seq != 4 || rep.Broken.Kind != audit.BreakUnchained {
		t.Fatalf("broken %+v, want seq 4 unchained", rep.Broken)
	}
}

func TestAuditCheckpointsDetectTruncationAndRewrite(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	st, log := auditFixture(t, 6)
	if _, err := audit.MakeCheckpoint(ctx, st, st, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := log.Append(ctx, audit.Record{Actor: "a", Action: audit.ActionSearch}); err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, st, pub); rep.Broken != nil || rep.Checkpoints != 1 || rep.Records != 7 {
		t.Fatalf("clean: %+v", rep)
	}
	// Without the key the store's checkpoint still shows the cut
	// (unauthenticated: Signed is false); with it, signed.
	dropTriggers(t, st)
	if _, err := st.db.Exec(`DELETE FROM audit WHERE seq >= 5`); err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, st, nil); rep.Broken == nil || rep.Broken.Kind != audit.BreakTruncated || rep.Signed {
		t.Fatalf("without a key: %+v", rep)
	}
	rep := verify(t, st, pub)
	if rep.Broken == nil || rep.Broken.Kind != audit.BreakTruncated || rep.Broken.Seq != 5 {
		t.Fatalf("truncated: %+v", rep.Broken)
	}
	// A wrong key's checkpoint does not verify.
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if rep := verify(t, st, other); rep.Broken == nil || rep.Broken.Kind != audit.BreakCheckpoint {
		t.Fatalf("other key: %+v", rep.Broken)
	}
}

func TestAuditRewrittenChainDisagreesWithCheckpoint(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	st, _ := auditFixture(t, 4)
	if _, err := audit.MakeCheckpoint(ctx, st, st, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	dropTriggers(t, st)
	// Rewrite record 2 and re-chain every later one: the bare chain holds.
	var recs []audit.Record
	_ = st.AuditRecords(ctx, audit.Filter{}, func(r audit.Record) error { recs = append(recs, r); return nil })
	recs[1].Purpose = "forged"
	for i := 1; i < len(recs); i++ {
		recs[i].PrevHash = recs[i-1].Hash
		audit.Seal(&recs[i])
		if _, err := st.db.Exec(`UPDATE audit SET purpose = ?, prev_hash = ?, hash = ? WHERE seq = ?`, recs[i].Purpose, recs[i].PrevHash, recs[i].Hash, recs[i].Seq); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := audit.Verify(ctx, st, nil, nil); err != nil || rep.Broken != nil {
		t.Fatalf("a fully re-chained trail passes the bare chain check: %+v %v", rep.Broken, err)
	}
	if rep := verify(t, st, pub); rep.Broken == nil || rep.Broken.Kind != audit.BreakCheckpoint || rep.Broken.Seq != 4 {
		t.Fatalf("with the key: %+v", rep.Broken)
	}
}

func TestAuditConcurrentAppendsChain(t *testing.T) {
	st, log := auditFixture(t, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := log.Append(context.Background(), audit.Record{Actor: fmt.Sprint(g), Action: audit.ActionSearch, Object: fmt.Sprint(i)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if rep := verify(t, st, nil); rep.Broken != nil || rep.Records != 160 {
		t.Fatalf("%+v %+v", rep, rep.Broken)
	}
}

func TestAuditFilterPagesNewestFirst(t *testing.T) {
	st, _ := auditFixture(t, 10)
	var seqs []int64
	f := audit.Filter{Desc: true, Limit: 3, AfterSeq: 8}
	_ = st.AuditRecords(context.Background(), f, func(r audit.Record) error { seqs = append(seqs, r.Seq); return nil })
	if fmt.Sprint(seqs) != "[7 6 5]" {
		t.Fatalf("page: %v", seqs)
	}
	seqs = nil
	since := time.Date(2026, 11, 3, 9, 0, 5, 0, time.UTC)
	_ = st.AuditRecords(context.Background(), audit.Filter{Since: since, Until: since.Add(3 * time.Second)}, func(r audit.Record) error { seqs = append(seqs, r.Seq); return nil })
	if fmt.Sprint(seqs) != "[5 6 7]" {
		t.Fatalf("time range: %v", seqs)
	}
}

func TestAccountsRoundTrip(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
	now := time.Date(2026, 11, 3, 9, 0, 0, 1, time.UTC)
	if err := st.AddAgency(ctx, access.Agency{ID: "fr-a", Name: "A", Country: "FR", Jurisdictions: []string{"FR-69"},
		Address: "1 rue X\n69001 Lyon", Created: now}); err != nil {
		t.Fatal(err)
	}
	// The address comes back, for the head of the ISP requests the web
	// makes (migration 0011; before it only the rules file had it).
	if ag, err := st.Agency(ctx, "fr-a"); err != nil || ag.Address != "1 rue X\n69001 Lyon" || ag.Name != "A" {
		t.Fatalf("agency %+v, %v", ag, err)
	}
	if err := st.AddAgency(ctx, access.Agency{ID: "fr-a", Name: "again"}); !errors.Is(err, access.ErrExists) {
		t.Fatalf("duplicate agency: %v", err)
	}
	if _, err := st.AddUser(ctx, access.User{Name: "x", Agency: "nope", Role: access.RoleAnalyst, Lang: "fr", TimeZone: "UTC"}); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("user of unknown agency: %v", err)
	}
	u, err := st.AddUser(ctx, access.User{Name: "alice", Agency: "fr-a", Role: access.RoleInvestigator, PasswordHash: "h",
		Lang: "en", TimeZone: "Europe/Paris", Created: now, LockedUntil: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddUser(ctx, access.User{Name: "alice", Agency: "fr-a", Role: access.RoleAnalyst, Lang: "fr", TimeZone: "UTC"}); !errors.Is(err, access.ErrExists) {
		t.Fatalf("duplicate user: %v", err)
	}
	got, err := st.UserByName(ctx, "alice")
	if err != nil || got.ID != u.ID || got.Lang != "en" || !got.LockedUntil.Equal(now.Add(time.Hour)) || !got.Created.Equal(now) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, err := st.UpdateUser(ctx, u.ID, func(u *access.User) error { u.Disabled = true; u.DisabledReason = "left"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.UserByID(ctx, u.ID); !got.Disabled || got.DisabledReason != "left" {
		t.Fatalf("after update %+v", got)
	}
	a, err := st.Agency(ctx, "fr-a")
	if err != nil || len(a.Jurisdictions) != 1 || a.Jurisdictions[0] != "FR-69" {
		t.Fatalf("agency %+v %v", a, err)
	}
	tok, err := st.AddToken(ctx, access.Token{Hash: []byte("h1"), UserID: u.ID, Created: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, tok.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, 999, now); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if got, _ := st.TokenByHash(ctx, []byte("h1")); !got.Revoked.Equal(now) {
		t.Fatalf("token %+v", got)
	}
	// TokenUser answers what TokenByHash and UserByID answer.
	wantT, _ := st.TokenByHash(ctx, []byte("h1"))
	wantU, _ := st.UserByID(ctx, u.ID)
	if gotT, gotU, err := st.TokenUser(ctx, []byte("h1")); err != nil || !reflect.DeepEqual(gotT, wantT) || !reflect.DeepEqual(gotU, wantU) {
		t.Fatalf("TokenUser: %+v %+v %v; want %+v %+v", gotT, gotU, err, wantT, wantU)
	}
	if _, _, err := st.TokenUser(ctx, []byte("h2")); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("TokenUser of an unknown hash: %v", err)
	}
	if err := st.AddSession(ctx, access.Session{Hash: []byte("s1"), UserID: u.ID, CSRF: []byte("c"), Created: now, LastSeen: now, Expires: now}); err != nil {
		t.Fatal(err)
	}
	if n, err := st.DeleteUserSessions(ctx, u.ID); n != 1 || err != nil {
		t.Fatalf("delete sessions: %d %v", n, err)
	}
	if _, err := st.SessionByHash(ctx, []byte("s1")); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
}

// A batch is chained onto the trail and onto itself, in order, in one
// transaction; the chain verifies after it and after more single appends.
func TestAuditBatchChains(t *testing.T) {
	st, log := auditFixture(t, 3)
	ctx := context.Background()
	var in []audit.Record
	for i := range 4 {
		in = append(in, audit.Record{Time: time.Date(2026, 11, 4, 0, 0, i, 0, time.UTC), Actor: "b", Action: audit.ActionSearch, Object: fmt.Sprint("batch", i)})
	}
	out, err := st.AppendAuditBatch(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range out {
		if r.Seq != int64(4+i) || r.Object != in[i].Object || len(r.Hash) != audit.HashSize {
			t.Fatalf("record %d: %+v", i, r)
		}
		if i > 0 && string(r.PrevHash) != string(out[i-1].Hash) {
			t.Fatalf("record %d does not chain onto %d", i, i-1)
		}
	}
	if _, err := log.Append(ctx, audit.Record{Action: audit.ActionSearch, Object: "after"}); err != nil {
		t.Fatal(err)
	}
	if rep := verify(t, st, nil); rep.Broken != nil || rep.Records != 8 {
		t.Fatalf("%+v %+v", rep, rep.Broken)
	}
	// An empty batch writes nothing.
	if out, err := st.AppendAuditBatch(ctx, nil); err != nil || len(out) != 0 {
		t.Fatalf("empty batch: %v %v", out, err)
	}
	if rep := verify(t, st, nil); rep.Records != 8 {
		t.Fatalf("%+v", rep)
	}
}
