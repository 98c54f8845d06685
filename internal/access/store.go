package access

import (
	"context"
	"time"
)

// Session is a logged-in browser. Only the SHA-256 of its id is stored.
type Session struct {
	Hash     []byte // SHA-256 of the id in the cookie
	UserID   int64
	CSRF     []byte // the session's synchronizer token
	Created  time.Time
	LastSeen time.Time
	Expires  time.Time // absolute end, whatever the activity
	Remote   string    // where it logged in from
}

// Token is an API token. Only the SHA-256 of the token is stored; the
// token itself is shown once, when created.
type Token struct {
	ID       int64
	Hash     []byte
	UserID   int64
	Label    string
	Created  time.Time
	Expires  time.Time // zero: never
	LastUsed time.Time // zero: never used
	Revoked  time.Time // zero: valid
}

// Identity links an identity at an OpenID provider to a local user.
type Identity struct {
	Issuer  string
	Subject string // the value of the configured claim (OIDCConfig.Claim)
	UserID  int64
}

// Store keeps accounts. The SQLite store implements it; methods return
// ErrNotFound and ErrExists (wrapped) where they say so.
type Store interface {
	AddAgency(ctx context.Context, a Agency) error // ErrExists
	Agency(ctx context.Context, id string) (Agency, error)
	Agencies(ctx context.Context) ([]Agency, error)

	AddUser(ctx context.Context, u User) (User, error) // sets ID; ErrExists, ErrNotFound (agency)
	UserByName(ctx context.Context, name string) (User, error)
	UserByID(ctx context.Context, id int64) (User, error)
	Users(ctx context.Context) ([]User, error)
	// UpdateUser applies fn to the stored user and writes the result, in
	// one transaction (lockout counting must not lose a failure).
	UpdateUser(ctx context.Context, id int64, fn func(u *User) error) (User, error)

	AddSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	TouchSession(ctx context.Context, hash []byte, at time.Time) error
	DeleteSession(ctx context.Context, hash []byte) error
	DeleteUserSessions(ctx context.Context, userID int64) (int, error)

	AddToken(ctx context.Context, t Token) (Token, error) // sets ID
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	TouchToken(ctx context.Context, id int64, at time.Time) error
	RevokeToken(ctx context.Context, id int64, at time.Time) error // ErrNotFound
	Tokens(ctx context.Context, userID int64) ([]Token, error)     // userID 0: every user's

	LinkIdentity(ctx context.Context, id Identity) error // ErrExists
	IdentityUser(ctx context.Context, issuer, subject string) (int64, error)
}
