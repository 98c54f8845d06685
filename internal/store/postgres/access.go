package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

// The store keeps accounts (access.Store) and the audit trail
// (audit.Store, audit.CheckpointStore).
var (
	_ access.Store          = (*Store)(nil)
	_ audit.Store           = (*Store)(nil)
	_ audit.CheckpointStore = (*Store)(nil)
)

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// isUnique reports a unique or primary key violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// AddAgency stores a new agency.
func (s *Store) AddAgency(ctx context.Context, a access.Agency) error {
	j, err := json.Marshal(append([]string{}, a.Jurisdictions...))
	if err != nil {
		return err
	}
	return s.sqlTx(ctx, func(tx sqlDB) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO agencies (id, name, country, jurisdictions, address, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			a.ID, a.Name, a.Country, string(j), a.Address, ns(a.Created))
		if isUnique(err) {
			return fmt.Errorf("agency %s: %w", a.ID, access.ErrExists)
		}
		return err
	})
}

func scanAgency(sc interface{ Scan(...any) error }) (access.Agency, error) {
	var a access.Agency
	var j string
	var created int64
	if err := sc.Scan(&a.ID, &a.Name, &a.Country, &j, &created, &a.Address); err != nil {
		return a, err
	}
	a.Created = fromNS(created)
	if err := json.Unmarshal([]byte(j), &a.Jurisdictions); err != nil {
		return a, fmt.Errorf("agency %s: jurisdictions: %w", a.ID, err)
	}
	return a, nil
}

// Agency returns one agency.
func (s *Store) Agency(ctx context.Context, id string) (access.Agency, error) {
	a, err := scanAgency(s.db().QueryRowContext(ctx, `SELECT id, name, country, jurisdictions, created_at, address FROM agencies WHERE id = ?`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("agency %s: %w", id, access.ErrNotFound)
	}
	return a, err
}

// Agencies returns every agency by id.
func (s *Store) Agencies(ctx context.Context) ([]access.Agency, error) {
	rows, err := s.db().QueryContext(ctx, `SELECT id, name, country, jurisdictions, created_at, address FROM agencies ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []access.Agency
	for rows.Next() {
		a, err := scanAgency(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

const userCols = `id, name, agency, role, password_hash, password_set_at, disabled, disabled_reason,
	failed_count, first_failure_at, locked_until, lang, time_zone, created_at`

func scanUser(sc interface{ Scan(...any) error }) (access.User, error) {
	var u access.User
	var role, lang string
	var pwSet, first, locked, created int64
	if err := sc.Scan(&u.ID, &u.Name, &u.Agency, &role, &u.PasswordHash, &pwSet, &u.Disabled, &u.DisabledReason,
		&u.FailedCount, &first, &locked, &lang, &u.TimeZone, &created); err != nil {
		return u, err
	}
	u.Role, u.Lang = access.Role(role), access.Lang(lang)
	u.PasswordSet, u.FirstFailure, u.LockedUntil, u.Created = fromNS(pwSet), fromNS(first), fromNS(locked), fromNS(created)
	return u, nil
}

// AddUser stores a new user and returns it with its id.
func (s *Store) AddUser(ctx context.Context, u access.User) (access.User, error) {
	err := s.sqlTx(ctx, func(tx sqlDB) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM agencies WHERE id = ?`, u.Agency).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("agency %s: %w (add it first: vigil agency add)", u.Agency, access.ErrNotFound)
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO users (name, agency, role, password_hash, password_set_at, disabled, disabled_reason,
			failed_count, first_failure_at, locked_until, lang, time_zone, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`,
			u.Name, u.Agency, string(u.Role), u.PasswordHash, ns(u.PasswordSet), u.Disabled, u.DisabledReason,
			u.FailedCount, ns(u.FirstFailure), ns(u.LockedUntil), string(u.Lang), u.TimeZone, ns(u.Created)).Scan(&u.ID)
		if isUnique(err) {
			return fmt.Errorf("user %s: %w", u.Name, access.ErrExists)
		}
		return err
	})
	return u, err
}

func (s *Store) userWhere(ctx context.Context, q sqlDB, where string, arg any, what string) (access.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", what, access.ErrNotFound)
	}
	return u, err
}

// UserByName returns the user called name.
func (s *Store) UserByName(ctx context.Context, name string) (access.User, error) {
	return s.userWhere(ctx, s.db(), `name = ?`, name, name)
}

// UserByID returns user id.
func (s *Store) UserByID(ctx context.Context, id int64) (access.User, error) {
	return s.userWhere(ctx, s.db(), `id = ?`, id, fmt.Sprint("#", id))
}

// Users returns every user by name.
func (s *Store) Users(ctx context.Context) ([]access.User, error) {
	rows, err := s.db().QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []access.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UpdateUser applies fn to user id and writes the result in one
// transaction. The id and name do not change.
func (s *Store) UpdateUser(ctx context.Context, id int64, fn func(u *access.User) error) (access.User, error) {
	var u access.User
	err := s.sqlTx(ctx, func(tx sqlDB) error {
		var err error
		// FOR UPDATE: a concurrent UpdateUser waits for this one to
		// commit, then reads what it wrote (read committed would otherwise
		// let the second overwrite the first's change).
		if u, err = s.userWhere(ctx, tx, `id = ? FOR UPDATE`, id, fmt.Sprint("#", id)); err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET agency = ?, role = ?, password_hash = ?, password_set_at = ?, disabled = ?,
			disabled_reason = ?, failed_count = ?, first_failure_at = ?, locked_until = ?, lang = ?, time_zone = ? WHERE id = ?`,
			u.Agency, string(u.Role), u.PasswordHash, ns(u.PasswordSet), u.Disabled, u.DisabledReason, u.FailedCount,
			ns(u.FirstFailure), ns(u.LockedUntil), string(u.Lang), u.TimeZone, id)
		return err
	})
	return u, err
}

// AddSession stores a session.
func (s *Store) AddSession(ctx context.Context, se access.Session) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (hash, user_id, csrf, created_at, last_seen, expires_at, remote) VALUES (?,?,?,?,?,?,?)`,
			se.Hash, se.UserID, se.CSRF, ns(se.Created), ns(se.LastSeen), ns(se.Expires), se.Remote)
		return err
	})
}

// SessionByHash returns the session whose id hashes to hash.
func (s *Store) SessionByHash(ctx context.Context, hash []byte) (access.Session, error) {
	var se access.Session
	var c, l, e int64
	err := s.db().QueryRowContext(ctx, `SELECT hash, user_id, csrf, created_at, last_seen, expires_at, remote FROM sessions WHERE hash = ?`, hash).
		Scan(&se.Hash, &se.UserID, &se.CSRF, &c, &l, &e, &se.Remote)
	if errors.Is(err, pgx.ErrNoRows) {
		return se, fmt.Errorf("session: %w", access.ErrNotFound)
	}
	se.Created, se.LastSeen, se.Expires = fromNS(c), fromNS(l), fromNS(e)
	return se, err
}

// TouchSession records the session's last use.
func (s *Store) TouchSession(ctx context.Context, hash []byte, at time.Time) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		_, err := tx.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE hash = ?`, ns(at), hash)
		return err
	})
}

// DeleteSession ends one session.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
		return err
	})
}

// DeleteUserSessions ends every session of a user and says how many.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64) (int, error) {
	var n int64
	err := s.sqlTx(ctx, func(tx sqlDB) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
		if err != nil {
			return err
		}
		n = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// AddToken stores an API token and returns it with its id.
func (s *Store) AddToken(ctx context.Context, t access.Token) (access.Token, error) {
	err := s.sqlTx(ctx, func(tx sqlDB) error {
		return tx.QueryRowContext(ctx, `INSERT INTO api_tokens (hash, user_id, label, created_at, expires_at, last_used, revoked_at)
			VALUES (?,?,?,?,?,?,?) RETURNING id`,
			t.Hash, t.UserID, t.Label, ns(t.Created), ns(t.Expires), ns(t.LastUsed), ns(t.Revoked)).Scan(&t.ID)
	})
	return t, err
}

const tokenCols = `id, hash, user_id, label, created_at, expires_at, last_used, revoked_at`

func scanToken(sc interface{ Scan(...any) error }) (access.Token, error) {
	var t access.Token
	var c, e, l, r int64
	err := sc.Scan(&t.ID, &t.Hash, &t.UserID, &t.Label, &c, &e, &l, &r)
	t.Created, t.Expires, t.LastUsed, t.Revoked = fromNS(c), fromNS(e), fromNS(l), fromNS(r)
	return t, err
}

// TokenByHash returns the token that hashes to hash.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (access.Token, error) {
	t, err := scanToken(s.db().QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, fmt.Errorf("token: %w", access.ErrNotFound)
	}
	return t, err
}

// TokenUser returns the token that hashes to hash and its user, in one
// query (one read transaction where TokenByHash and UserByID took two):
// what every request with a bearer token asks.
func (s *Store) TokenUser(ctx context.Context, hash []byte) (access.Token, access.User, error) {
	var u access.User
	var t access.Token
	var c, e, l, r int64
	var role, lang string
	var pwSet, first, locked, created int64
	err := s.db().QueryRowContext(ctx, `SELECT t.id, t.hash, t.user_id, t.label, t.created_at, t.expires_at, t.last_used, t.revoked_at,
		u.id, u.name, u.agency, u.role, u.password_hash, u.password_set_at, u.disabled, u.disabled_reason,
		u.failed_count, u.first_failure_at, u.locked_until, u.lang, u.time_zone, u.created_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?`, hash).Scan(
		&t.ID, &t.Hash, &t.UserID, &t.Label, &c, &e, &l, &r,
		&u.ID, &u.Name, &u.Agency, &role, &u.PasswordHash, &pwSet, &u.Disabled, &u.DisabledReason,
		&u.FailedCount, &first, &locked, &lang, &u.TimeZone, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, u, fmt.Errorf("token: %w", access.ErrNotFound)
	}
	if err != nil {
		return t, u, err
	}
	t.Created, t.Expires, t.LastUsed, t.Revoked = fromNS(c), fromNS(e), fromNS(l), fromNS(r)
	u.Role, u.Lang = access.Role(role), access.Lang(lang)
	u.PasswordSet, u.FirstFailure, u.LockedUntil, u.Created = fromNS(pwSet), fromNS(first), fromNS(locked), fromNS(created)
	return t, u, nil
}

// TouchToken records a token's last use.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, ns(at), id)
		return err
	})
}

// RevokeToken revokes token id (a revoked token stays revoked).
func (s *Store) RevokeToken(ctx context.Context, id int64, at time.Time) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ns(at), id)
		if err != nil {
			return err
		}
		if res.RowsAffected() == 0 {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM api_tokens WHERE id = ?`, id).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
				return access.ErrNotFound
			}
		}
		return nil
	})
}

// Tokens returns a user's tokens (userID 0: everyone's), by id.
func (s *Store) Tokens(ctx context.Context, userID int64) ([]access.Token, error) {
	q, args := `SELECT `+tokenCols+` FROM api_tokens ORDER BY id`, []any{}
	if userID != 0 {
		q, args = `SELECT `+tokenCols+` FROM api_tokens WHERE user_id = ? ORDER BY id`, []any{userID}
	}
	rows, err := s.db().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []access.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// LinkIdentity links an OpenID Connect identity to a user.
func (s *Store) LinkIdentity(ctx context.Context, id access.Identity) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oidc_identities (issuer, subject, user_id) VALUES (?,?,?)`, id.Issuer, id.Subject, id.UserID)
		if isUnique(err) {
			return access.ErrExists
		}
		return err
	})
}

// IdentityUser returns the user linked to an identity.
func (s *Store) IdentityUser(ctx context.Context, issuer, subject string) (int64, error) {
	var id int64
	err := s.db().QueryRowContext(ctx, `SELECT user_id FROM oidc_identities WHERE issuer = ? AND subject = ?`, issuer, subject).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, access.ErrNotFound
	}
	return id, err
}

// AppendAudit appends r to the trail: in one write transaction it reads
// the last record, chains r onto it and seals it.
func (s *Store) AppendAudit(ctx context.Context, r audit.Record) (audit.Record, error) {
	out, err := s.AppendAuditBatch(ctx, []audit.Record{r})
	if err != nil {
		return r, err
	}
	return out[0], nil
}

var _ audit.BatchStore = (*Store)(nil)

// auditLockKey is the transaction-scoped advisory lock that serialises
// appends to the schema's trail, across processes (a schema name holds
// no space: no migration lock has the same key).
func (s *Store) auditLockKey() int64 { return lockKey(s.cfg.Schema + " audit") }

// AppendAuditBatch appends rs to the trail in one write transaction: it
// reads the last record and chains each record onto the one before,
// sealing each (audit.BatchStore). All are stored or none.
func (s *Store) AppendAuditBatch(ctx context.Context, rs []audit.Record) ([]audit.Record, error) {
	out := make([]audit.Record, len(rs))
	copy(out, rs)
	if len(out) == 0 {
		return out, nil
	}
	err := s.sqlTx(ctx, func(tx sqlDB) error {
		var last int64
		prev := []byte{}
		// One appender at a time across every process: the lock is held
		// to the commit, so the next one reads this one's last record.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, s.auditLockKey()); err != nil {
			return fmt.Errorf("audit lock: %w", err)
		}
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		const ins = `INSERT INTO audit (seq, at, actor, actor_agency, role, remote, action, object, purpose, detail, prev_hash, hash)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`
		for i := range out {
			r := &out[i]
			r.Seq, r.PrevHash = last+1, prev
			r.Time = r.Time.UTC()
			audit.Seal(r)
			var detail any
			if len(r.Detail) > 0 {
				detail = string(r.Detail)
			}
			if _, err := tx.ExecContext(ctx, ins, r.Seq, r.Time.UnixNano(), r.Actor, r.ActorAgency, r.Role, r.Remote, r.Action,
				r.Object, r.Purpose, detail, r.PrevHash, r.Hash); err != nil {
				return err
			}
			last, prev = r.Seq, r.Hash
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AuditRecords calls fn for each record matching f, in seq order.
func (s *Store) AuditRecords(ctx context.Context, f audit.Filter, fn func(audit.Record) error) error {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.ActorAgency != "" {
		add("actor_agency = ?", f.ActorAgency)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Object != "" {
		add("object = ?", f.Object)
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until.UnixNano())
	}
	if f.AfterSeq > 0 {
		if f.Desc {
			add("seq < ?", f.AfterSeq)
		} else {
			add("seq > ?", f.AfterSeq)
		}
	}
	q := `SELECT seq, at, actor, actor_agency, role, remote, action, object, purpose, detail, prev_hash, hash FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	if f.Desc {
		q += " DESC"
	}
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.db().QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r audit.Record
		var at int64
		var detail *string
		if err := rows.Scan(&r.Seq, &at, &r.Actor, &r.ActorAgency, &r.Role, &r.Remote, &r.Action, &r.Object, &r.Purpose,
			&detail, &r.PrevHash, &r.Hash); err != nil {
			return err
		}
		r.Time = time.Unix(0, at).UTC()
		if detail != nil {
			r.Detail = json.RawMessage(*detail)
		}
		if r.PrevHash == nil {
			r.PrevHash = []byte{}
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AddAuditCheckpoint stores a signed checkpoint.
func (s *Store) AddAuditCheckpoint(ctx context.Context, c audit.Checkpoint) error {
	return s.sqlTx(ctx, func(tx sqlDB) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (seq, hash, at, key_id, sig) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING`,
			c.Seq, c.Hash, c.Time.UnixNano(), c.KeyID, c.Sig)
		return err
	})
}

// AuditCheckpoints returns every checkpoint by seq.
func (s *Store) AuditCheckpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	rows, err := s.db().QueryContext(ctx, `SELECT seq, hash, at, key_id, sig FROM audit_checkpoints ORDER BY seq, key_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []audit.Checkpoint
	for rows.Next() {
		var c audit.Checkpoint
		var at int64
		if err := rows.Scan(&c.Seq, &c.Hash, &at, &c.KeyID, &c.Sig); err != nil {
			return nil, err
		}
		c.Time = time.Unix(0, at).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}
