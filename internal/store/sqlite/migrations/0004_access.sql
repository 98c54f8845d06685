-- Agencies, users, OpenID Connect identities, sessions, API tokens and the
-- audit trail (internal/access, internal/audit). Times are Unix
-- nanoseconds, UTC; 0 means "never" / "not set". Secrets are stored only
-- as SHA-256 hashes (sessions, tokens) or argon2id PHC strings (passwords).

CREATE TABLE agencies (
	id            TEXT PRIMARY KEY,  -- the id in the jurisdiction rules file
	name          TEXT NOT NULL,
	country       TEXT NOT NULL DEFAULT '',
	jurisdictions TEXT NOT NULL DEFAULT '[]', -- JSON array of what it covers, e.g. ["FR-69"]
	created_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
	id               INTEGER PRIMARY KEY,
	name             TEXT NOT NULL UNIQUE,
	agency           TEXT NOT NULL REFERENCES agencies (id),
	role             TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'supervisor', 'investigator', 'auditor')),
	password_hash    TEXT NOT NULL DEFAULT '', -- '' : OpenID Connect only
	password_set_at  INTEGER NOT NULL DEFAULT 0,
	disabled         INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	disabled_reason  TEXT NOT NULL DEFAULT '',
	failed_count     INTEGER NOT NULL DEFAULT 0,
	first_failure_at INTEGER NOT NULL DEFAULT 0,
	locked_until     INTEGER NOT NULL DEFAULT 0,
	lang             TEXT NOT NULL DEFAULT 'fr' CHECK (lang IN ('fr', 'en')),
	time_zone        TEXT NOT NULL DEFAULT 'Europe/Paris',
	created_at       INTEGER NOT NULL
);
CREATE INDEX users_agency ON users (agency);

CREATE TABLE oidc_identities (
	issuer  TEXT NOT NULL,
	subject TEXT NOT NULL, -- the value of the configured claim
	user_id INTEGER NOT NULL REFERENCES users (id),
	PRIMARY KEY (issuer, subject)
) WITHOUT ROWID;

CREATE TABLE sessions (
	hash       BLOB PRIMARY KEY, -- SHA-256 of the cookie's session id
	user_id    INTEGER NOT NULL REFERENCES users (id),
	csrf       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	remote     TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
	id         INTEGER PRIMARY KEY,
	hash       BLOB NOT NULL UNIQUE, -- SHA-256 of the token
	user_id    INTEGER NOT NULL REFERENCES users (id),
	label      TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL DEFAULT 0,
	last_used  INTEGER NOT NULL DEFAULT 0,
	revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- The audit trail: append-only and hash-chained (see internal/audit).
-- hash = SHA-256 over every other column, length-prefixed, and prev_hash.
CREATE TABLE audit (
	seq          INTEGER PRIMARY KEY, -- 1, 2, 3, ... without gaps
	at           INTEGER NOT NULL,
	actor        TEXT NOT NULL,
	actor_agency TEXT NOT NULL DEFAULT '',
	role         TEXT NOT NULL DEFAULT '',
	remote       TEXT NOT NULL DEFAULT '',
	action       TEXT NOT NULL,
	object       TEXT NOT NULL DEFAULT '',
	purpose      TEXT NOT NULL DEFAULT '',
	detail       TEXT,  -- JSON, or NULL
	prev_hash    BLOB NOT NULL,
	hash         BLOB NOT NULL
);
CREATE INDEX audit_actor ON audit (actor, seq);
CREATE INDEX audit_action ON audit (action, seq);
CREATE INDEX audit_object ON audit (object, seq);
CREATE INDEX audit_at ON audit (at);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'the audit trail is append-only');
END;

-- Signed checkpoints of the audit chain's head (ed25519, key held outside
-- the store): they make cutting off the tail detectable.
CREATE TABLE audit_checkpoints (
	seq    INTEGER NOT NULL,
	hash   BLOB NOT NULL,
	at     INTEGER NOT NULL,
	key_id TEXT NOT NULL,
	sig    BLOB NOT NULL,
	PRIMARY KEY (seq, key_id)
) WITHOUT ROWID;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;
