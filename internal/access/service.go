package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
)

// Config sets the account rules.
type Config struct {
	// Argon2 are the parameters of new password hashes. A login whose hash
	// was made under lower parameters rehashes the password.
	Argon2 Argon2Params
	// MaxFailures failed logins within FailureWindow lock the account for
	// LockFor. While locked, even the right password is refused.
	MaxFailures   int
	FailureWindow time.Duration
	LockFor       time.Duration
	// SessionTTL is a session's absolute lifetime; IdleTimeout ends it
	// sooner when it is not used.
	SessionTTL  time.Duration
	IdleTimeout time.Duration
	// TouchEvery bounds how often a session's or token's last use is
	// written: at most once per period per session.
	TouchEvery time.Duration
	// SecureCookies marks cookies Secure and names the session cookie
	// __Host-vigil_session. Turn it off only to serve plain HTTP on a
	// non-loopback address, which you should not do; browsers and Go's
	// cookie jar send Secure cookies to http://127.0.0.1 and
	// http://localhost (see CookieSecureFor).
	SecureCookies bool
	// LoginPath is where RequireLogin sends a browser without a session.
	LoginPath string
	// MaxTokenTTL is the longest lifetime of an API token; a token
	// without an expiry is refused.
	MaxTokenTTL time.Duration
	// Key signs the login form's token and the OpenID Connect state
	// cookie. Empty: 32 random bytes per process (a restart then refuses
	// forms and logins in flight; several instances behind one address
	// need a shared key).
	Key []byte
	// Now is the clock.
	Now func() time.Time
}

// DefaultConfig returns the defaults: argon2id 64 MiB/3 passes, 5 failures
// in 15 minutes lock for 15 minutes, sessions of 12 hours ending after 30
// idle minutes, Secure cookies.
func DefaultConfig() Config {
	return Config{
		Argon2:        DefaultArgon2,
		MaxFailures:   5,
		FailureWindow: 15 * time.Minute,
		LockFor:       15 * time.Minute,
		SessionTTL:    12 * time.Hour,
		IdleTimeout:   30 * time.Minute,
		TouchEvery:    time.Minute,
		SecureCookies: true,
		LoginPath:     "/login",
		MaxTokenTTL:   DefaultMaxTokenTTL,
		Now:           time.Now,
	}
}

func (c *Config) validate() error {
	if c.Argon2.Memory < 8 || c.Argon2.Time < 1 || c.Argon2.Threads < 1 || c.Argon2.SaltLen < 8 || c.Argon2.KeyLen < 16 {
		return errors.New("access: Argon2 parameters too low (memory >= 8 KiB, time >= 1, threads >= 1, salt >= 8, key >= 16 bytes)")
	}
	if c.MaxFailures < 1 || c.FailureWindow <= 0 || c.LockFor <= 0 {
		return errors.New("access: MaxFailures, FailureWindow and LockFor must be positive")
	}
	if c.MaxTokenTTL <= 0 {
		c.MaxTokenTTL = DefaultMaxTokenTTL
	}
	if c.SessionTTL <= 0 || c.IdleTimeout <= 0 || c.TouchEvery < 0 {
		return errors.New("access: SessionTTL and IdleTimeout must be positive")
	}
	if c.LoginPath == "" || !strings.HasPrefix(c.LoginPath, "/") {
		return fmt.Errorf("access: LoginPath %q: want an absolute path", c.LoginPath)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.Key) == 0 {
		c.Key = make([]byte, 32)
		if _, err := rand.Read(c.Key); err != nil {
			return err
		}
	} else if len(c.Key) < 16 {
		return errors.New("access: Key must be at least 16 bytes")
	}
	return nil
}

// Service runs accounts, logins, sessions and tokens over a Store, and
// writes every login, refusal and change to the audit trail.
type Service struct {
	st    Store
	audit *audit.Log
	cfg   Config
	oidc  *oidcState // nil: no OpenID Connect

	dummyOnce sync.Once
	dummy     string // a hash to check against when the user is unknown
}

// New returns a Service.
func New(st Store, log *audit.Log, cfg Config) (*Service, error) {
	if st == nil || log == nil {
		return nil, errors.New("access: a Store and an audit Log are required")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Service{st: st, audit: log, cfg: cfg}, nil
}

// Store returns the service's store.
func (s *Service) Store() Store { return s.st }

// AuditLog returns the service's audit log.
func (s *Service) AuditLog() *audit.Log { return s.audit }

// Config returns the service's settings (after defaults were applied).
func (s *Service) Config() Config { return s.cfg }

// CLIActor is the principal for changes made from the command line, as
// "cli:<os user>".
func CLIActor(osUser string) *Principal {
	if osUser == "" {
		osUser = "unknown"
	}
	return &Principal{Name: "cli:" + osUser, Via: "cli", Remote: "cli"}
}

// Audit appends a record with p as the actor. A nil p is "anonymous".
func (s *Service) Audit(ctx context.Context, p *Principal, action, object, purpose string, detail any) error {
	r := audit.Record{Actor: "anonymous", Action: action, Object: object, Purpose: purpose}
	if p != nil {
		r.Actor, r.ActorAgency, r.Role, r.Remote = p.Name, p.Agency, string(p.Role), p.Remote
		if p.Via == "cli" {
			r.Role = "cli"
		}
	}
	if detail != nil {
		r.Detail = audit.Detail(detail)
	}
	_, err := s.audit.Append(ctx, r)
	return err
}

// Errors of logins and account changes.
var (
	// ErrLoginFailed is the only thing a client learns about a refused
	// login; the audit trail records why (unknown user, bad password,
	// locked, disabled).
	ErrLoginFailed = errors.New("login refused")
	// ErrUnauthenticated: no valid session or token.
	ErrUnauthenticated = errors.New("not authenticated")
)

// AddAgency stores an agency.
func (s *Service) AddAgency(ctx context.Context, actor *Principal, a Agency) error {
	if err := CheckAgency(a); err != nil {
		return err
	}
	a.Created = s.cfg.Now().UTC()
	if err := s.st.AddAgency(ctx, a); err != nil {
		return fmt.Errorf("agency %s: %w", a.ID, err)
	}
	return s.Audit(ctx, actor, audit.ActionAgencyAdd, "agency:"+a.ID, "",
		map[string]any{"name": a.Name, "country": a.Country, "jurisdictions": a.Jurisdictions})
}

// AddUser creates an account. An empty password makes an account that
// can log in only through OpenID Connect.
func (s *Service) AddUser(ctx context.Context, actor *Principal, u User, password string) (User, error) {
	if u.Lang == "" {
		u.Lang = LangFR
	}
	if u.TimeZone == "" {
		u.TimeZone = "Europe/Paris"
	}
	if err := CheckUser(u); err != nil {
		return User{}, err
	}
	now := s.cfg.Now().UTC()
	u.ID, u.Created, u.Disabled, u.FailedCount, u.FirstFailure, u.LockedUntil = 0, now, false, 0, time.Time{}, time.Time{}
	u.PasswordHash = ""
	if password != "" {
		if err := CheckPassword(password); err != nil {
			return User{}, fmt.Errorf("user %s: %w", u.Name, err)
		}
		h, err := HashPassword(password, s.cfg.Argon2)
		if err != nil {
			return User{}, err
		}
		u.PasswordHash, u.PasswordSet = h, now
	}
	out, err := s.st.AddUser(ctx, u)
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", u.Name, err)
	}
	return out, s.Audit(ctx, actor, audit.ActionUserAdd, "user:"+u.Name, "",
		map[string]any{"agency": u.Agency, "role": u.Role, "lang": u.Lang, "time_zone": u.TimeZone, "password": password != ""})
}

// DefaultMaxTokenTTL is Config.MaxTokenTTL's default: 90 days.
const DefaultMaxTokenTTL = 90 * 24 * time.Hour

// ErrTokenLifetime is returned by CreateToken for a lifetime that is not
// positive or exceeds Config.MaxTokenTTL.
var ErrTokenLifetime = errors.New("token lifetime refused")

// SetPassword replaces a user's password, unlocks the account, ends its
// sessions and revokes its API tokens (a token is a credential derived
// from the old password's trust: whoever changed the password because it
// leaked must not leave a working token behind).
func (s *Service) SetPassword(ctx context.Context, actor *Principal, name, password string) error {
	if err := CheckPassword(password); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	u, err := s.st.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	h, err := HashPassword(password, s.cfg.Argon2)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	if _, err := s.st.UpdateUser(ctx, u.ID, func(u *User) error {
		u.PasswordHash, u.PasswordSet = h, now
		u.FailedCount, u.FirstFailure, u.LockedUntil = 0, time.Time{}, time.Time{}
		return nil
	}); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	n, err := s.st.DeleteUserSessions(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("user %s: ending sessions: %w", name, err)
	}
	revoked, err := s.revokeUserTokens(ctx, u.ID, now)
	if err != nil {
		return fmt.Errorf("user %s: revoking tokens: %w", name, err)
	}
	return s.Audit(ctx, actor, audit.ActionUserPasswd, "user:"+name, "", map[string]any{"sessions_ended": n, "tokens_revoked": revoked})
}

// DisableUser disables an account and ends its sessions; its tokens stop
// working (a token of a disabled user is refused).
func (s *Service) DisableUser(ctx context.Context, actor *Principal, name, reason string) error {
	u, err := s.st.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	if _, err := s.st.UpdateUser(ctx, u.ID, func(u *User) error {
		u.Disabled, u.DisabledReason = true, reason
		return nil
	}); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	n, err := s.st.DeleteUserSessions(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("user %s: ending sessions: %w", name, err)
	}
	return s.Audit(ctx, actor, audit.ActionUserDisable, "user:"+name, "", map[string]any{"reason": reason, "sessions_ended": n})
}

// LinkIdentity links the value of the OpenID Connect claim at issuer to
// a local user.
func (s *Service) LinkIdentity(ctx context.Context, actor *Principal, name, issuer, subject string) error {
	u, err := s.st.UserByName(ctx, name)
	if err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	if issuer == "" || subject == "" {
		return errors.New("an issuer and a subject are required")
	}
	if err := s.st.LinkIdentity(ctx, Identity{Issuer: issuer, Subject: subject, UserID: u.ID}); err != nil {
		return fmt.Errorf("identity %s at %s: %w", subject, issuer, err)
	}
	return s.Audit(ctx, actor, audit.ActionUserLink, "user:"+name, "", map[string]any{"issuer": issuer, "subject": subject})
}

func principalOf(u User, via, remote string) *Principal {
	return &Principal{UserID: u.ID, Name: u.Name, Agency: u.Agency, Role: u.Role, Lang: u.Lang, TimeZone: u.TimeZone, Via: via, Remote: remote}
}

// burn spends the time a password check takes, so that an unknown or
// disabled account answers as slowly as a wrong password.
func (s *Service) burn(password string) {
	s.dummyOnce.Do(func() {
		s.dummy, _ = HashPassword("not a password of anyone", s.cfg.Argon2)
	})
	_, _, _ = VerifyPassword(password, s.dummy, s.cfg.Argon2)
}

// Login checks a local password and opens a session. It returns the
// session id for the cookie (shown once; only its hash is stored). Every
// outcome is audited; a client learns only ErrLoginFailed.
func (s *Service) Login(ctx context.Context, name, password, remote string) (string, *Principal, error) {
	now := s.cfg.Now().UTC()
	fail := func(p *Principal, reason string, extra map[string]any) (string, *Principal, error) {
		d := map[string]any{"reason": reason}
		for k, v := range extra {
			d[k] = v
		}
		if p == nil {
			p = &Principal{Name: name, Remote: remote}
		}
		if err := s.Audit(ctx, p, audit.ActionLoginFailed, "user:"+name, "", d); err != nil {
			return "", nil, err
		}
		return "", nil, ErrLoginFailed
	}
	u, err := s.st.UserByName(ctx, name)
	if errors.Is(err, ErrNotFound) {
		s.burn(password)
		return fail(nil, "unknown user", nil)
	}
	if err != nil {
		return "", nil, err
	}
	p := principalOf(u, "session", remote)
	switch {
	case u.Disabled:
		s.burn(password)
		return fail(p, "disabled", nil)
	case now.Before(u.LockedUntil):
		s.burn(password)
		return fail(p, "locked", map[string]any{"locked_until": u.LockedUntil})
	case u.PasswordHash == "":
		s.burn(password)
		return fail(p, "no local password (OpenID Connect only)", nil)
	}
	ok, rehash, err := VerifyPassword(password, u.PasswordHash, s.cfg.Argon2)
	if err != nil {
		return fail(p, "stored hash unreadable: "+err.Error(), nil)
	}
	if !ok {
		var locked bool
		var count int
		if _, err := s.st.UpdateUser(ctx, u.ID, func(u *User) error {
			if u.FirstFailure.IsZero() || now.Sub(u.FirstFailure) > s.cfg.FailureWindow {
				u.FailedCount, u.FirstFailure = 0, now
			}
			u.FailedCount++
			count = u.FailedCount
			if u.FailedCount >= s.cfg.MaxFailures {
				u.LockedUntil = now.Add(s.cfg.LockFor)
				u.FailedCount, u.FirstFailure = 0, time.Time{}
				locked = true
			}
			return nil
		}); err != nil {
			return "", nil, err
		}
		if _, _, err := fail(p, "wrong password", map[string]any{"failures": count}); !errors.Is(err, ErrLoginFailed) {
			return "", nil, err
		}
		if locked {
			if err := s.Audit(ctx, p, audit.ActionLocked, "user:"+name, "",
				map[string]any{"failures": count, "window": s.cfg.FailureWindow.String(), "until": now.Add(s.cfg.LockFor)}); err != nil {
				return "", nil, err
			}
		}
		return "", nil, ErrLoginFailed
	}
	var newHash string
	if rehash {
		if newHash, err = HashPassword(password, s.cfg.Argon2); err != nil {
			return "", nil, err
		}
	}
	if _, err := s.st.UpdateUser(ctx, u.ID, func(u *User) error {
		u.FailedCount, u.FirstFailure, u.LockedUntil = 0, time.Time{}, time.Time{}
		if newHash != "" {
			u.PasswordHash = newHash
		}
		return nil
	}); err != nil {
		return "", nil, err
	}
	id, err := s.openSession(ctx, u, remote)
	if err != nil {
		return "", nil, err
	}
	return id, p, s.Audit(ctx, p, audit.ActionLogin, "user:"+name, "", map[string]any{"method": "password", "rehashed": rehash})
}

func randomID() ([]byte, string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	return b, base64.RawURLEncoding.EncodeToString(b), nil
}

func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func (s *Service) openSession(ctx context.Context, u User, remote string) (string, error) {
	_, id, err := randomID()
	if err != nil {
		return "", err
	}
	csrf, _, err := randomID()
	if err != nil {
		return "", err
	}
	now := s.cfg.Now().UTC()
	if err := s.st.AddSession(ctx, Session{Hash: hashSecret(id), UserID: u.ID, CSRF: csrf, Created: now, LastSeen: now,
		Expires: now.Add(s.cfg.SessionTTL), Remote: remote}); err != nil {
		return "", fmt.Errorf("opening a session for %s: %w", u.Name, err)
	}
	return id, nil
}

// SessionPrincipal returns who holds session id, and the session. An
// expired, idle, unknown session or a disabled user's is ErrUnauthenticated.
func (s *Service) SessionPrincipal(ctx context.Context, id, remote string) (*Principal, Session, error) {
	if id == "" || len(id) > 64 {
		return nil, Session{}, ErrUnauthenticated
	}
	h := hashSecret(id)
	ses, err := s.st.SessionByHash(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, Session{}, ErrUnauthenticated
	}
	if err != nil {
		return nil, Session{}, err
	}
	now := s.cfg.Now().UTC()
	if !now.Before(ses.Expires) || now.Sub(ses.LastSeen) >= s.cfg.IdleTimeout {
		_ = s.st.DeleteSession(ctx, h)
		return nil, Session{}, ErrUnauthenticated
	}
	u, err := s.st.UserByID(ctx, ses.UserID)
	if err != nil || u.Disabled {
		_ = s.st.DeleteSession(ctx, h)
		return nil, Session{}, ErrUnauthenticated
	}
	if now.Sub(ses.LastSeen) >= s.cfg.TouchEvery {
		if err := s.st.TouchSession(ctx, h, now); err != nil {
			return nil, Session{}, err
		}
		ses.LastSeen = now
	}
	return principalOf(u, "session", remote), ses, nil
}

// Logout ends session id and audits it.
func (s *Service) Logout(ctx context.Context, id string, p *Principal) error {
	if err := s.st.DeleteSession(ctx, hashSecret(id)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return s.Audit(ctx, p, audit.ActionLogout, "", "", nil)
}

// TokenPrefix starts every API token, so that a leaked one is easy to
// recognise (secret scanners) and to tell from a session id.
const TokenPrefix = "vgt_"

// revokeUserTokens revokes every valid token of a user and returns their ids.
func (s *Service) revokeUserTokens(ctx context.Context, userID int64, now time.Time) ([]int64, error) {
	toks, err := s.st.Tokens(ctx, userID)
	if err != nil {
		return nil, err
	}
	ids := []int64{}
	for _, t := range toks {
		if t.UserID != userID || !t.Revoked.IsZero() {
			continue
		}
		if err := s.st.RevokeToken(ctx, t.ID, now); err != nil && !errors.Is(err, ErrNotFound) {
			return ids, fmt.Errorf("token %d: %w", t.ID, err)
		}
		ids = append(ids, t.ID)
	}
	return ids, nil
}

// CreateToken makes an API token for user name, valid for ttl: more
// than zero and at most Config.MaxTokenTTL (ErrTokenLifetime). The token
// is returned once; only its hash is stored.
func (s *Service) CreateToken(ctx context.Context, actor *Principal, name, label string, ttl time.Duration) (string, Token, error) {
	if ttl <= 0 || ttl > s.cfg.MaxTokenTTL {
		return "", Token{}, fmt.Errorf("%w: %s; want more than 0 and at most %s (a token that never expires is not allowed)",
			ErrTokenLifetime, ttl, s.cfg.MaxTokenTTL)
	}
	u, err := s.st.UserByName(ctx, name)
	if err != nil {
		return "", Token{}, fmt.Errorf("user %s: %w", name, err)
	}
	if u.Disabled {
		return "", Token{}, fmt.Errorf("user %s is disabled", name)
	}
	_, raw, err := randomID()
	if err != nil {
		return "", Token{}, err
	}
	tok := TokenPrefix + raw
	now := s.cfg.Now().UTC()
	t := Token{Hash: hashSecret(tok), UserID: u.ID, Label: label, Created: now, Expires: now.Add(ttl)}
	if t, err = s.st.AddToken(ctx, t); err != nil {
		return "", Token{}, err
	}
	return tok, t, s.Audit(ctx, actor, audit.ActionTokenCreate, fmt.Sprintf("token:%d", t.ID), "",
		map[string]any{"user": name, "label": label, "expires": t.Expires})
}

// RevokeToken revokes token id.
func (s *Service) RevokeToken(ctx context.Context, actor *Principal, id int64) error {
	if err := s.st.RevokeToken(ctx, id, s.cfg.Now().UTC()); err != nil {
		return fmt.Errorf("token %d: %w", id, err)
	}
	return s.Audit(ctx, actor, audit.ActionTokenRevoke, fmt.Sprintf("token:%d", id), "", nil)
}

// tokenUserStore is a Store that reads a token and its user in one query
// (the SQLite store): TokenByHash then UserByID, with the same answers.
type tokenUserStore interface {
	TokenUser(ctx context.Context, hash []byte) (Token, User, error)
}

// TokenPrincipal returns who holds API token tok.
func (s *Service) TokenPrincipal(ctx context.Context, tok, remote string) (*Principal, error) {
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) > 128 {
		return nil, ErrUnauthenticated
	}
	var t Token
	var u User
	var uerr error
	var err error
	if tu, ok := s.st.(tokenUserStore); ok {
		t, u, err = tu.TokenUser(ctx, hashSecret(tok))
	} else {
		t, err = s.st.TokenByHash(ctx, hashSecret(tok))
	}
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	if !t.Revoked.IsZero() || (!t.Expires.IsZero() && !now.Before(t.Expires)) {
		return nil, ErrUnauthenticated
	}
	// The maximum lifetime holds at use too: a token stored without an
	// expiry, or with a longer one (by an older Vigil, or written into
	// the store), dies MaxTokenTTL after it was made.
	if !now.Before(t.Created.Add(s.cfg.MaxTokenTTL)) {
		return nil, ErrUnauthenticated
	}
	if _, ok := s.st.(tokenUserStore); !ok {
		u, uerr = s.st.UserByID(ctx, t.UserID)
	}
	if uerr != nil || u.Disabled {
		return nil, ErrUnauthenticated
	}
	// A token made before the last password change is dead even if its
	// revocation was lost (SetPassword revokes them too).
	if !u.PasswordSet.IsZero() && t.Created.Before(u.PasswordSet) {
		return nil, ErrUnauthenticated
	}
	if now.Sub(t.LastUsed) >= s.cfg.TouchEvery {
		if err := s.st.TouchToken(ctx, t.ID, now); err != nil {
			return nil, err
		}
	}
	return principalOf(u, "token", remote), nil
}
