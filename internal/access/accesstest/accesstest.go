// Package accesstest is the contract every access.Store must keep: one
// suite that a store runs in its own tests (the SQLite store against a
// file in a temp directory), so that accounts, sessions, tokens and
// identities behave alike whatever keeps them.
//
// It uses synthetic accounts only and must never hold a real one.
package accesstest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
)

// Run runs the contract. open must return a new, empty store for t and
// close it when t ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) access.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st access.Store)
	}{
		{"AccountsRoundTrip", testAccountsRoundTrip},
		{"AgenciesRoundTripInIDOrder", testAgenciesRoundTripInIDOrder},
		{"UnknownIsNotFound", testUnknownIsNotFound},
		{"UpdateUserKeepsNothingOfAFailedChange", testUpdateUserKeepsNothingOfAFailedChange},
		{"UpdateUserLosesNoConcurrentChange", testUpdateUserLosesNoConcurrentChange},
		{"SessionsTouchAndEnd", testSessionsTouchAndEnd},
		{"TokensListTouchAndRevoke", testTokensListTouchAndRevoke},
		{"IdentitiesLinkOnce", testIdentitiesLinkOnce},
		{"EveryRoleIsStored", testEveryRoleIsStored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// now is the suite's clock: times come back to the nanosecond.
var now = time.Date(2026, 11, 3, 9, 0, 0, 1, time.UTC)

func addAgency(t *testing.T, st access.Store, id string) {
	t.Helper()
	if err := st.AddAgency(context.Background(), access.Agency{ID: id, Name: "Agency " + id, Country: "FR", Created: now}); err != nil {
		t.Fatal(err)
	}
}

func addUser(t *testing.T, st access.Store, name, agency string) access.User {
	t.Helper()
	u, err := st.AddUser(context.Background(), access.User{Name: name, Agency: agency, Role: access.RoleInvestigator,
		PasswordHash: "synthetic-hash", Lang: access.LangFR, TimeZone: "Europe/Paris", Created: now})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testAccountsRoundTrip(t *testing.T, st access.Store) {
	ctx := context.Background()
	if err := st.AddAgency(ctx, access.Agency{ID: "fr-a", Name: "A", Country: "FR", Jurisdictions: []string{"FR-69"},
		Address: "1 rue X\n69001 Lyon", Created: now}); err != nil {
		t.Fatal(err)
	}
	// The address comes back, for the head of the ISP requests the web
	// makes.
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
	if err := st.RevokeToken(ctx, tok.ID+999, now); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if got, _ := st.TokenByHash(ctx, []byte("h1")); !got.Revoked.Equal(now) {
		t.Fatalf("token %+v", got)
	}
	// A store may answer a bearer token and its user in one read
	// (access.Service asks for it when the store has it): the same answers
	// as TokenByHash and UserByID.
	if tu, ok := st.(interface {
		TokenUser(ctx context.Context, hash []byte) (access.Token, access.User, error)
	}); ok {
		wantT, _ := st.TokenByHash(ctx, []byte("h1"))
		wantU, _ := st.UserByID(ctx, u.ID)
		if gotT, gotU, err := tu.TokenUser(ctx, []byte("h1")); err != nil || !reflect.DeepEqual(gotT, wantT) || !reflect.DeepEqual(gotU, wantU) {
			t.Fatalf("TokenUser: %+v %+v %v; want %+v %+v", gotT, gotU, err, wantT, wantU)
		}
		if _, _, err := tu.TokenUser(ctx, []byte("h2")); !errors.Is(err, access.ErrNotFound) {
			t.Fatalf("TokenUser of an unknown hash: %v", err)
		}
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

func testAgenciesRoundTripInIDOrder(t *testing.T, st access.Store) {
	ctx := context.Background()
	for _, id := range []string{"fr-c", "fr-a", "fr-b"} {
		if err := st.AddAgency(ctx, access.Agency{ID: id, Name: "Agency " + id, Country: "FR", Jurisdictions: []string{"FR-" + id[3:], "FR"},
			Address: "line 1\nline 2", Created: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddAgency(ctx, access.Agency{ID: "xx", Created: now}); err != nil {
		t.Fatal(err)
	}
	as, err := st.Agencies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	if fmt.Sprint(ids) != "[fr-a fr-b fr-c xx]" {
		t.Fatalf("agencies %v, want them by id", ids)
	}
	want := access.Agency{ID: "fr-b", Name: "Agency fr-b", Country: "FR", Jurisdictions: []string{"FR-b", "FR"}, Address: "line 1\nline 2", Created: now}
	if got := as[1]; !reflect.DeepEqual(got, want) {
		t.Fatalf("agency %+v\nwant   %+v", got, want)
	}
	if got := as[3]; got.Name != "" || got.Country != "" || got.Address != "" || len(got.Jurisdictions) != 0 {
		t.Fatalf("an agency with nothing but an id came back as %+v", got)
	}
}

func testUnknownIsNotFound(t *testing.T, st access.Store) {
	ctx := context.Background()
	for what, err := range map[string]error{
		"agency":       func() error { _, err := st.Agency(ctx, "nope"); return err }(),
		"user by name": func() error { _, err := st.UserByName(ctx, "nobody"); return err }(),
		"user by id":   func() error { _, err := st.UserByID(ctx, 424242); return err }(),
		"update user": func() error {
			_, err := st.UpdateUser(ctx, 424242, func(*access.User) error { return nil })
			return err
		}(),
		"session":  func() error { _, err := st.SessionByHash(ctx, []byte("none")); return err }(),
		"token":    func() error { _, err := st.TokenByHash(ctx, []byte("none")); return err }(),
		"revoke":   st.RevokeToken(ctx, 424242, now),
		"identity": func() error { _, err := st.IdentityUser(ctx, "https://idp.lab.invalid", "nobody"); return err }(),
	} {
		if !errors.Is(err, access.ErrNotFound) {
			t.Errorf("%s: %v, want access.ErrNotFound", what, err)
		}
	}
}

// A change fn refuses writes nothing: lockout counting reads and writes
// a user in one transaction.
func testUpdateUserKeepsNothingOfAFailedChange(t *testing.T, st access.Store) {
	ctx := context.Background()
	addAgency(t, st, "fr-a")
	u := addUser(t, st, "bob", "fr-a")
	refused := errors.New("refused")
	_, err := st.UpdateUser(ctx, u.ID, func(x *access.User) error {
		x.Disabled, x.FailedCount = true, 3
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("UpdateUser returned %v, want fn's error", err)
	}
	if got, err := st.UserByID(ctx, u.ID); err != nil || got.Disabled || got.FailedCount != 0 {
		t.Fatalf("after a refused change: %+v %v", got, err)
	}
	// Every field an update may change comes back.
	got, err := st.UpdateUser(ctx, u.ID, func(x *access.User) error {
		x.Role, x.PasswordHash, x.PasswordSet = access.RoleSupervisor, "other-hash", now.Add(time.Minute)
		x.FailedCount, x.FirstFailure, x.LockedUntil = 2, now.Add(2*time.Minute), now.Add(time.Hour)
		x.Lang, x.TimeZone = access.LangEN, "UTC"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	read, err := st.UserByID(ctx, u.ID)
	if err != nil || !reflect.DeepEqual(read, got) {
		t.Fatalf("read back %+v (%v)\nwant      %+v", read, err, got)
	}
	if read.Name != "bob" || read.Role != access.RoleSupervisor || !read.PasswordSet.Equal(now.Add(time.Minute)) || read.FailedCount != 2 {
		t.Fatalf("updated user %+v", read)
	}
}

func testUpdateUserLosesNoConcurrentChange(t *testing.T, st access.Store) {
	ctx := context.Background()
	addAgency(t, st, "fr-a")
	u := addUser(t, st, "carol", "fr-a")
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.UpdateUser(ctx, u.ID, func(x *access.User) error { x.FailedCount++; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, _ := st.UserByID(ctx, u.ID); got.FailedCount != n {
		t.Fatalf("failed count %d after %d concurrent increments", got.FailedCount, n)
	}
}

func testSessionsTouchAndEnd(t *testing.T, st access.Store) {
	ctx := context.Background()
	addAgency(t, st, "fr-a")
	u, v := addUser(t, st, "dave", "fr-a"), addUser(t, st, "erin", "fr-a")
	s1 := access.Session{Hash: []byte("session-1"), UserID: u.ID, CSRF: []byte("csrf-1"), Created: now, LastSeen: now,
		Expires: now.Add(8 * time.Hour), Remote: "127.0.0.1:50000"}
	for _, s := range []access.Session{s1,
		{Hash: []byte("session-2"), UserID: u.ID, CSRF: []byte("csrf-2"), Created: now, LastSeen: now, Expires: now},
		{Hash: []byte("session-3"), UserID: v.ID, CSRF: []byte("csrf-3"), Created: now, LastSeen: now, Expires: now}} {
		if err := st.AddSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := st.SessionByHash(ctx, s1.Hash); err != nil || !reflect.DeepEqual(got, s1) {
		t.Fatalf("session %+v (%v)\nwant    %+v", got, err, s1)
	}
	if err := st.TouchSession(ctx, s1.Hash, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.SessionByHash(ctx, s1.Hash); !got.LastSeen.Equal(now.Add(time.Minute)) || !got.Created.Equal(now) {
		t.Fatalf("touched session %+v", got)
	}
	if err := st.DeleteSession(ctx, s1.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SessionByHash(ctx, s1.Hash); !errors.Is(err, access.ErrNotFound) {
		t.Fatalf("ended session: %v", err)
	}
	if n, err := st.DeleteUserSessions(ctx, u.ID); err != nil || n != 1 {
		t.Fatalf("DeleteUserSessions = %d, %v; want the one left", n, err)
	}
	if _, err := st.SessionByHash(ctx, []byte("session-3")); err != nil {
		t.Fatalf("another user's session went too: %v", err)
	}
}

func testTokensListTouchAndRevoke(t *testing.T, st access.Store) {
	ctx := context.Background()
	addAgency(t, st, "fr-a")
	u, v := addUser(t, st, "frank", "fr-a"), addUser(t, st, "grace", "fr-a")
	var made []access.Token
	for i, owner := range []int64{u.ID, v.ID, u.ID} {
		tok, err := st.AddToken(ctx, access.Token{Hash: []byte(fmt.Sprint("token-", i)), UserID: owner, Label: fmt.Sprint("label ", i),
			Created: now, Expires: now.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if tok.ID == 0 || (i > 0 && tok.ID <= made[i-1].ID) {
			t.Fatalf("token %d has id %d, want a new, increasing one", i, tok.ID)
		}
		made = append(made, tok)
	}
	ids := func(ts []access.Token, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		var s []int64
		for _, x := range ts {
			s = append(s, x.ID)
		}
		return fmt.Sprint(s)
	}
	if got, want := ids(st.Tokens(ctx, u.ID)), fmt.Sprint([]int64{made[0].ID, made[2].ID}); got != want {
		t.Fatalf("user's tokens %s, want %s", got, want)
	}
	if got, want := ids(st.Tokens(ctx, 0)), fmt.Sprint([]int64{made[0].ID, made[1].ID, made[2].ID}); got != want {
		t.Fatalf("every token %s, want %s", got, want)
	}
	if got, err := st.TokenByHash(ctx, []byte("token-1")); err != nil || !reflect.DeepEqual(got, made[1]) {
		t.Fatalf("token %+v (%v)\nwant  %+v", got, err, made[1])
	}
	if err := st.TouchToken(ctx, made[1].ID, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, made[1].ID, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A revoked token stays revoked at its first revocation.
	if err := st.RevokeToken(ctx, made[1].ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ := st.TokenByHash(ctx, []byte("token-1"))
	if !got.LastUsed.Equal(now.Add(time.Minute)) || !got.Revoked.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("token after use and revocation %+v", got)
	}
	if other, _ := st.TokenByHash(ctx, []byte("token-0")); !other.Revoked.IsZero() || !other.LastUsed.IsZero() {
		t.Fatalf("another token changed: %+v", other)
	}
}

func testIdentitiesLinkOnce(t *testing.T, st access.Store) {
	ctx := context.Background()
	addAgency(t, st, "fr-a")
	u, v := addUser(t, st, "heidi", "fr-a"), addUser(t, st, "ivan", "fr-a")
	const idp = "https://idp.lab.invalid"
	if err := st.LinkIdentity(ctx, access.Identity{Issuer: idp, Subject: "s-1", UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	if err := st.LinkIdentity(ctx, access.Identity{Issuer: idp, Subject: "s-1", UserID: v.ID}); !errors.Is(err, access.ErrExists) {
		t.Fatalf("linking a linked identity again: %v, want access.ErrExists", err)
	}
	// The same subject at another issuer is another identity.
	if err := st.LinkIdentity(ctx, access.Identity{Issuer: idp + "/other", Subject: "s-1", UserID: v.ID}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		issuer string
		want   int64
	}{{idp, u.ID}, {idp + "/other", v.ID}} {
		if got, err := st.IdentityUser(ctx, c.issuer, "s-1"); err != nil || got != c.want {
			t.Fatalf("IdentityUser(%s) = %d, %v; want %d", c.issuer, got, err, c.want)
		}
	}
}

// Every role of access.Roles, the platform's included, is stored and read
// back, with a token of its own (the table's CHECK constraint follows the
// roles).
func testEveryRoleIsStored(t *testing.T, st access.Store) {
	ctx := context.Background()
	addAgency(t, st, "fr-a")
	for _, r := range access.Roles {
		u, err := st.AddUser(ctx, access.User{Name: "u-" + string(r), Agency: "fr-a", Role: r,
			PasswordHash: "synthetic-hash", Lang: access.LangEN, TimeZone: "Europe/Paris", Created: now})
		if err != nil {
			t.Fatalf("role %s: %v", r, err)
		}
		got, err := st.UserByName(ctx, u.Name)
		if err != nil {
			t.Fatalf("role %s: %v", r, err)
		}
		if got.Role != r {
			t.Fatalf("role %s came back as %s", r, got.Role)
		}
	}
}
