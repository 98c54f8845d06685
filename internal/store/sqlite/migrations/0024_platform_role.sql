-- The platform role (internal/access RolePlatform): a platform's
-- trust-and-safety team that may only check addresses it holds through
-- POST /api/v1/check. SQLite cannot change a CHECK constraint in place:
-- users is rebuilt, its ids kept. Sessions, API tokens and single sign-on
-- identities reference users (id): the migration runs with foreign keys
-- off (the line below tells the store), and the store checks them all
-- before it commits.
-- vigil: foreign_keys off
CREATE TABLE users_0024 (
	id               INTEGER PRIMARY KEY,
	name             TEXT NOT NULL UNIQUE,
	agency           TEXT NOT NULL REFERENCES agencies (id),
	role             TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'supervisor', 'investigator', 'auditor', 'platform')),
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
INSERT INTO users_0024 (id, name, agency, role, password_hash, password_set_at, disabled, disabled_reason,
	failed_count, first_failure_at, locked_until, lang, time_zone, created_at)
SELECT id, name, agency, role, password_hash, password_set_at, disabled, disabled_reason,
	failed_count, first_failure_at, locked_until, lang, time_zone, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_0024 RENAME TO users;
CREATE INDEX users_agency ON users (agency);
