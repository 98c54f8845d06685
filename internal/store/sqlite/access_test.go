package sqlite

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/access/accesstest"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/audit/audittest"
)

// The SQLite store keeps the contracts of the access and audit stores.
func TestAccessContract(t *testing.T) {
	accesstest.Run(t, func(t *testing.T) access.Store {
		st, _ := openTemp(t, DefaultConfig())
		return st
	})
}

func TestAuditContract(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Store {
		st, _ := openTemp(t, DefaultConfig())
		return st
	})
}

// Below: what only the SQLite store can show, its refusal to change a
// record and what verification finds when the refusal is taken away.

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

// Migration 0024 rebuilds users to admit the platform role: a store from
// before it keeps its users under their ids, with the tokens that
// reference them, and then takes a platform user.
func TestMigration0024KeepsUsersAndTheirTokens(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if err := st.AddAgency(ctx, access.Agency{ID: "fr-a", Name: "A", Created: now}); err != nil {
		t.Fatal(err)
	}
	u, err := st.AddUser(ctx, access.User{Name: "inv", Agency: "fr-a", Role: access.RoleInvestigator, PasswordHash: "h",
		Lang: access.LangFR, TimeZone: "Europe/Paris", Created: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddToken(ctx, access.Token{Hash: []byte("0123456789abcdef0123456789abcdef"), UserID: u.ID, Label: "t", Created: now}); err != nil {
		t.Fatal(err)
	}
	// Later migrations undone first: migrations apply from the highest
	// version recorded.
	for _, q := range append(append(append(laterUndo[26], laterUndo[25]...), laterUndo[24]...), `DELETE FROM schema_migrations WHERE version >= 24`) {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := st.AddUser(ctx, access.User{Name: "plat", Agency: "fr-a", Role: access.RolePlatform, PasswordHash: "h",
		Lang: access.LangFR, TimeZone: "Europe/Paris", Created: now}); err == nil {
		t.Fatal("the store before 0024 took a platform user: the undo did not undo")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	tok, err := again.TokenByHash(ctx, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil || tok.UserID != u.ID {
		t.Fatalf("token after 0024: %+v, %v; want user %d", tok, err, u.ID)
	}
	if got, err := again.UserByName(ctx, "inv"); err != nil || got.ID != u.ID || got.Role != access.RoleInvestigator {
		t.Fatalf("user after 0024: %+v, %v", got, err)
	}
	if _, err := again.AddUser(ctx, access.User{Name: "plat", Agency: "fr-a", Role: access.RolePlatform, PasswordHash: "h",
		Lang: access.LangFR, TimeZone: "Europe/Paris", Created: now}); err != nil {
		t.Fatalf("a platform user after 0024: %v", err)
	}
	var fk int
	if err := again.db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&fk); err != nil || fk != 0 {
		t.Fatalf("foreign key check after 0024: %d violations, %v", fk, err)
	}
}
