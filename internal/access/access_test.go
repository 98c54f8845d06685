package access_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// fastArgon keeps tests quick; the parameters are recorded in each hash.
var fastArgon = access.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	st    *sqlite.Store
	svc   *access.Service
	clk   *clock
	path  string
	admin *access.Principal
}

func newFixture(t *testing.T, mod func(*access.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)}
	cfg := access.DefaultConfig()
	cfg.Argon2, cfg.Now = fastArgon, clk.Now
	if mod != nil {
		mod(&cfg)
	}
	svc, err := access.New(st, &audit.Log{Store: st, Now: clk.Now}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, svc: svc, clk: clk, path: path, admin: access.CLIActor("tester")}
	for _, a := range []string{"fr-a", "fr-b", "fr-nat"} {
		if err := svc.AddAgency(ctx, f.admin, access.Agency{ID: a, Name: strings.ToUpper(a), Country: "FR"}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

const goodPW = "correct horse battery"

func (f *fixture) user(t *testing.T, name, agency string, role access.Role) access.User {
	t.Helper()
	u, err := f.svc.AddUser(context.Background(), f.admin, access.User{Name: name, Agency: agency, Role: role}, goodPW)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) records(t *testing.T, flt audit.Filter) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := f.st.AuditRecords(context.Background(), flt, func(r audit.Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func reasons(rs []audit.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Action+":"+string(r.Detail))
	}
	return out
}

func TestPasswordHashRoundTrip(t *testing.T) {
	h, err := access.HashPassword(goodPW, fastArgon)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("PHC string %q", h)
	}
	ok, rehash, err := access.VerifyPassword(goodPW, h, fastArgon)
	if !ok || rehash || err != nil {
		t.Fatalf("right password: ok %v rehash %v err %v", ok, rehash, err)
	}
	if ok, _, _ := access.VerifyPassword(goodPW+"x", h, fastArgon); ok {
		t.Fatal("wrong password accepted")
	}
	stronger := fastArgon
	stronger.Memory *= 2
	if _, rehash, _ := access.VerifyPassword(goodPW, h, stronger); !rehash {
		t.Fatal("a hash under weaker parameters should be flagged for rehash")
	}
	h2, _ := access.HashPassword(goodPW, fastArgon)
	if h == h2 {
		t.Fatal("two hashes of one password share a salt")
	}
}

func TestParsePHCRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=1,p=1,x=2$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=1,p=1$!!!$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
	} {
		if _, _, _, err := access.ParsePHC(s); !errors.Is(err, access.ErrBadHash) {
			t.Errorf("ParsePHC(%q) = %v, want ErrBadHash", s, err)
		}
	}
}

func FuzzParsePHC(f *testing.F) {
	h, _ := access.HashPassword("seed password", fastArgon)
	f.Add(h)
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := access.ParsePHC(s)
		if err != nil {
			return
		}
		// What parses stays within the limits, and re-verifies without
		// panicking.
		if p.Memory > 4<<20 || p.Time > 64 || len(salt) > 128 || len(key) > 128 {
			t.Fatalf("%q parsed beyond the limits: %+v", s, p)
		}
		if p.Memory <= 1<<10 {
			_, _, _ = access.VerifyPassword("x", s, fastArgon)
		}
	})
}

func TestCheckPassword(t *testing.T) {
	for pw, ok := range map[string]bool{"short": false, "elevenchars": false, "twelve chars": true, "évènementiel!": true, "\xff\xfe" + strings.Repeat("a", 20): false, strings.Repeat("a", 1025): false} {
		if err := access.CheckPassword(pw); (err == nil) != ok {
			t.Errorf("CheckPassword(%q) = %v", pw, err)
		}
	}
}

func TestLockoutAfterRepeatedFailures(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *access.Config) { c.MaxFailures, c.FailureWindow, c.LockFor = 3, 10*time.Minute, 15*time.Minute })
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	for range 3 {
		if _, _, err := f.svc.Login(ctx, "alice", "wrong password!", "127.0.0.1:1"); !errors.Is(err, access.ErrLoginFailed) {
			t.Fatalf("wrong password: %v", err)
		}
		f.clk.Add(time.Minute)
	}
	// Locked: the right password is refused too.
	if _, _, err := f.svc.Login(ctx, "alice", goodPW, "127.0.0.1:1"); !errors.Is(err, access.ErrLoginFailed) {
		t.Fatalf("locked account accepted the right password: %v", err)
	}
	if n := len(f.records(t, audit.Filter{Action: audit.ActionLocked})); n != 1 {
		t.Fatalf("%d lock records, want 1", n)
	}
	fails := f.records(t, audit.Filter{Action: audit.ActionLoginFailed})
	if len(fails) != 4 || !strings.Contains(string(fails[3].Detail), `"locked"`) || fails[0].Remote != "127.0.0.1:1" || fails[0].ActorAgency != "fr-a" {
		t.Fatalf("failure records: %v", reasons(fails))
	}
	f.clk.Add(15 * time.Minute)
	if _, p, err := f.svc.Login(ctx, "alice", goodPW, "127.0.0.1:1"); err != nil || p.Name != "alice" {
		t.Fatalf("after the lock: %v", err)
	}
}

func TestFailuresOutsideTheWindowDoNotLock(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *access.Config) { c.MaxFailures, c.FailureWindow = 3, 10*time.Minute })
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	for range 6 {
		_, _, _ = f.svc.Login(ctx, "alice", "wrong password!", "")
		f.clk.Add(6 * time.Minute) // two failures per window at most
	}
	if _, _, err := f.svc.Login(ctx, "alice", goodPW, ""); err != nil {
		t.Fatalf("spread-out failures locked the account: %v", err)
	}
	// A success resets the count.
	u, _ := f.st.UserByName(ctx, "alice")
	if u.FailedCount != 0 || !u.LockedUntil.IsZero() {
		t.Fatalf("after success: %+v", u)
	}
}

func TestLoginRefusalsLookAlike(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	f.user(t, "bob", "fr-a", access.RoleInvestigator)
	if err := f.svc.DisableUser(ctx, f.admin, "bob", "left the service"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, pw, reason string }{
		{"nobody", goodPW, "unknown user"}, {"bob", goodPW, "disabled"}, {"alice", "not the password", "wrong password"},
	} {
		_, _, err := f.svc.Login(ctx, c.name, c.pw, "")
		if !errors.Is(err, access.ErrLoginFailed) || err.Error() != "login refused" {
			t.Errorf("%s: %v", c.name, err)
		}
		rs := f.records(t, audit.Filter{Action: audit.ActionLoginFailed, Object: "user:" + c.name})
		if len(rs) != 1 || !strings.Contains(string(rs[0].Detail), c.reason) {
			t.Errorf("%s: audit %v, want reason %q", c.name, reasons(rs), c.reason)
		}
	}
}

func TestRehashOnLoginUnderStrongerParameters(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user(t, "alice", "fr-a", access.RoleAnalyst)
	stronger := fastArgon
	stronger.Time = 2
	svc2, err := access.New(f.st, &audit.Log{Store: f.st}, func() access.Config {
		c := access.DefaultConfig()
		c.Argon2 = stronger
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc2.Login(ctx, "alice", goodPW, ""); err != nil {
		t.Fatal(err)
	}
	u, _ := f.st.UserByName(ctx, "alice")
	if !strings.Contains(u.PasswordHash, "t=2,") {
		t.Fatalf("not rehashed: %s", u.PasswordHash)
	}
}

func TestSessionsExpireAndAreRevoked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *access.Config) { c.IdleTimeout, c.SessionTTL = 30*time.Minute, 2*time.Hour })
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	login := func() string {
		id, _, err := f.svc.Login(ctx, "alice", goodPW, "")
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	ok := func(id string) bool {
		_, _, err := f.svc.SessionPrincipal(ctx, id, "")
		if err != nil && !errors.Is(err, access.ErrUnauthenticated) {
			t.Fatal(err)
		}
		return err == nil
	}
	id := login()
	// Activity keeps it alive up to the absolute limit.
	for range 4 {
		f.clk.Add(25 * time.Minute)
		if !ok(id) {
			t.Fatal("an active session ended early")
		}
	}
	f.clk.Add(25 * time.Minute) // 2h05 after login, 25 min after its last use
	if ok(id) {
		t.Fatal("session outlived its absolute lifetime")
	}
	id = login()
	f.clk.Add(31 * time.Minute)
	if ok(id) {
		t.Fatal("idle session still valid")
	}
	id = login()
	if err := f.svc.SetPassword(ctx, f.admin, "alice", "another good password"); err != nil {
		t.Fatal(err)
	}
	if ok(id) {
		t.Fatal("session survived a password change")
	}
	id, _, _ = f.svc.Login(ctx, "alice", "another good password", "")
	if err := f.svc.DisableUser(ctx, f.admin, "alice", "test"); err != nil {
		t.Fatal(err)
	}
	if ok(id) {
		t.Fatal("session survived disabling the account")
	}
	if ok("") || ok(strings.Repeat("A", 43)) {
		t.Fatal("made-up session id accepted")
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	f.user(t, "svc", "fr-nat", access.RoleAnalyst)
	tok, rec, err := f.svc.CreateToken(ctx, f.admin, "svc", "ci", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, access.TokenPrefix) || len(tok) < 40 {
		t.Fatalf("token %q", tok)
	}
	if got, _ := f.st.TokenByHash(ctx, []byte(tok)); got.ID != 0 {
		t.Fatal("the token is stored in clear")
	}
	p, err := f.svc.TokenPrincipal(ctx, tok, "")
	if err != nil || p.Name != "svc" || p.Via != "token" {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := f.svc.TokenPrincipal(ctx, tok+"x", ""); !errors.Is(err, access.ErrUnauthenticated) {
		t.Fatalf("altered token: %v", err)
	}
	f.clk.Add(25 * time.Hour)
	if _, err := f.svc.TokenPrincipal(ctx, tok, ""); !errors.Is(err, access.ErrUnauthenticated) {
		t.Fatalf("expired token: %v", err)
	}
	tok2, rec2, _ := f.svc.CreateToken(ctx, f.admin, "svc", "", time.Hour)
	if _, err := f.svc.TokenPrincipal(ctx, tok2, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeToken(ctx, f.admin, rec2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TokenPrincipal(ctx, tok2, ""); !errors.Is(err, access.ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	tok3, _, _ := f.svc.CreateToken(ctx, f.admin, "svc", "", time.Hour)
	_ = f.svc.DisableUser(ctx, f.admin, "svc", "")
	if _, err := f.svc.TokenPrincipal(ctx, tok3, ""); !errors.Is(err, access.ErrUnauthenticated) {
		t.Fatalf("disabled user's token: %v", err)
	}
	if rs := f.records(t, audit.Filter{Action: audit.ActionTokenCreate}); len(rs) != 3 || rs[0].Object != fmt.Sprintf("token:%d", rec.ID) || rs[0].Actor != "cli:tester" || rs[0].Role != "cli" {
		t.Fatalf("token audit %+v", rs)
	}
}

func TestRolePermissionsMatchTheTable(t *testing.T) {
	want := map[access.Role][]access.Permission{
		access.RoleAdmin:        {access.PermManageLists, access.PermManageUsers},
		access.RoleAnalyst:      {access.PermViewTargets, access.PermExport, access.PermShareTargets, access.PermConfirmAssociated, access.PermManageLists},
		access.RoleSupervisor:   {access.PermViewTargets, access.PermExport, access.PermClaimTargets, access.PermShareTargets, access.PermConfirmAssociated, access.PermReadAudit},
		access.RoleInvestigator: {access.PermViewTargets, access.PermExport, access.PermClaimTargets},
		access.RoleAuditor:      {access.PermReadAudit},
		access.RolePlatform:     {access.PermCheckAddresses},
	}
	all := []access.Permission{access.PermViewTargets, access.PermExport, access.PermClaimTargets, access.PermShareTargets,
		access.PermConfirmAssociated, access.PermManageLists, access.PermManageUsers, access.PermReadAudit, access.PermCheckAddresses}
	for _, r := range access.Roles {
		for _, p := range all {
			if got := access.RoleCan(r, p); got != slices.Contains(want[r], p) {
				t.Errorf("%s can %s = %v", r, p, got)
			}
		}
	}
	if access.RoleCan("root", access.PermManageUsers) {
		t.Error("an unknown role has a permission")
	}
}

func TestScopeByRole(t *testing.T) {
	for _, c := range []struct {
		role access.Role
		want string
	}{
		{access.RoleAnalyst, "{true []}"}, {access.RoleInvestigator, "{false [fr-a]}"}, {access.RoleSupervisor, "{false [fr-a]}"},
		{access.RoleAdmin, "{false []}"}, {access.RoleAuditor, "{false []}"}, {access.RolePlatform, "{false []}"},
	} {
		p := &access.Principal{Name: "x", Agency: "fr-a", Role: c.role}
		if got := fmt.Sprint(p.Scope()); got != c.want {
			t.Errorf("%s: scope %s, want %s", c.role, got, c.want)
		}
	}
	var nilP *access.Principal
	if !nilP.Scope().Empty() {
		t.Error("anonymous has a scope")
	}
	if !(&access.Principal{Role: access.RoleInvestigator}).Scope().Empty() {
		t.Error("an investigator without agency has a scope")
	}
}

func TestScopeSQLFragments(t *testing.T) {
	cases := []struct {
		s        access.Scope
		col      string
		frag     string
		args     string
		withShrd string
	}{
		{access.Scope{All: true}, "t.agency", "1", "[]", "1"},
		{access.Scope{Agencies: []string{"a", "b"}}, "t.agency", "t.agency IN (?,?)", "[a b]",
			"(t.agency IN (?,?) OR t.id IN (SELECT target_id FROM target_shares WHERE agency IN (?,?)))"},
		{access.Scope{}, "t.agency", "0", "[]", "0"},
		{access.Scope{Agencies: []string{"a"}}, "agency; DROP TABLE x", "0", "[]", "0"},
	}
	for _, c := range cases {
		frag, args := c.s.SQL(c.col)
		if frag != c.frag || fmt.Sprint(args) != c.args && !(len(args) == 0 && c.args == "[]") {
			t.Errorf("%+v.SQL(%q) = %q %v", c.s, c.col, frag, args)
		}
		if f2, _ := c.s.SQLWithShares(c.col, "t.id", "target_shares"); f2 != c.withShrd {
			t.Errorf("%+v.SQLWithShares = %q", c.s, f2)
		}
	}
}

// The fragments select the right rows from a real table.
func TestScopeSQLSelectsOnlyTheScope(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE targets (id INTEGER PRIMARY KEY, agency TEXT)`,
		`CREATE TABLE target_shares (target_id INTEGER, agency TEXT)`,
		`INSERT INTO targets VALUES (1,'fr-a'),(2,'fr-b'),(3,'fr-b'),(4,''),(5,'fr-c')`,
		`INSERT INTO target_shares VALUES (3,'fr-a'),(5,'fr-b')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(frag string, args []any) string {
		rows, err := db.Query(`SELECT t.id FROM targets t WHERE `+frag+` ORDER BY t.id`, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []int
		for rows.Next() {
			var id int
			_ = rows.Scan(&id)
			out = append(out, id)
		}
		return fmt.Sprint(out)
	}
	inv := (&access.Principal{Agency: "fr-a", Role: access.RoleInvestigator}).Scope()
	if got := ids(inv.SQL("t.agency")); got != "[1]" {
		t.Errorf("own agency: %s", got)
	}
	if got := ids(inv.SQLWithShares("t.agency", "t.id", "target_shares")); got != "[1 3]" {
		t.Errorf("own agency and shared: %s", got)
	}
	if got := ids((&access.Principal{Role: access.RoleAnalyst}).Scope().SQLWithShares("t.agency", "t.id", "target_shares")); got != "[1 2 3 4 5]" {
		t.Errorf("analyst: %s", got)
	}
	if got := ids((&access.Principal{Agency: "fr-a", Role: access.RoleAuditor}).Scope().SQL("t.agency")); got != "[]" {
		t.Errorf("auditor: %s", got)
	}
	if !inv.Allows("fr-b", "fr-a") || inv.Allows("fr-b") || inv.Allows("") {
		t.Error("Allows disagrees with the SQL")
	}
}

func TestAuditScope(t *testing.T) {
	for _, c := range []struct {
		role   access.Role
		all    bool
		agency string
		ok     bool
	}{
		{access.RoleAuditor, true, "", true}, {access.RoleSupervisor, false, "fr-a", true},
		{access.RoleAdmin, false, "", false}, {access.RoleInvestigator, false, "", false}, {access.RoleAnalyst, false, "", false},
		{access.RolePlatform, false, "", false},
	} {
		all, ag, ok := (&access.Principal{Agency: "fr-a", Role: c.role}).AuditScope()
		if all != c.all || ag != c.agency || ok != c.ok {
			t.Errorf("%s: %v %q %v", c.role, all, ag, ok)
		}
	}
}

func TestUserValidation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	for _, c := range []struct {
		u    access.User
		pw   string
		want string
	}{
		{access.User{Name: "a b", Agency: "fr-a", Role: "analyst"}, goodPW, "user name"},
		{access.User{Name: "ab", Agency: "fr-a", Role: "chief"}, goodPW, "role"},
		{access.User{Name: "ab", Agency: "fr-a", Role: "analyst", Lang: "de"}, goodPW, "language"},
		{access.User{Name: "ab", Agency: "fr-a", Role: "analyst", TimeZone: "Mars/Olympus"}, goodPW, "time zone"},
		{access.User{Name: "ab", Agency: "fr-zz", Role: "analyst"}, goodPW, "agency fr-zz"},
		{access.User{Name: "ab", Agency: "fr-a", Role: "analyst"}, "short", "password refused"},
	} {
		if _, err := f.svc.AddUser(ctx, f.admin, c.u, c.pw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.u, err, c.want)
		}
	}
}
