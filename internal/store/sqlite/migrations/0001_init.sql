-- Watch-lists, their versions and entries with history, confirmations, and
-- observations. Times are Unix nanoseconds, UTC. Hash kinds are stored by
-- name ("sha1"), never by their number in the Go code, so that the file
-- outlives any reordering there.

CREATE TABLE lists (
	id               INTEGER PRIMARY KEY,
	name             TEXT NOT NULL UNIQUE,
	source           TEXT NOT NULL DEFAULT '',
	negative         INTEGER NOT NULL DEFAULT 0 CHECK (negative IN (0, 1)),
	version          INTEGER NOT NULL DEFAULT 0, -- number of the current version
	active_entries   INTEGER NOT NULL DEFAULT 0, -- kept by imports: entries in the current version
	disabled_entries INTEGER NOT NULL DEFAULT 0  -- of those, disabled by an analyst
);

CREATE TABLE list_versions (
	list_id     INTEGER NOT NULL REFERENCES lists (id),
	number      INTEGER NOT NULL,
	label       TEXT NOT NULL,    -- the publisher's version label, or the number
	imported_at INTEGER NOT NULL,
	sha256      TEXT NOT NULL DEFAULT '',
	format      TEXT NOT NULL DEFAULT '',
	imported_by TEXT NOT NULL DEFAULT '',
	entries     INTEGER NOT NULL,
	added       INTEGER NOT NULL,
	removed     INTEGER NOT NULL,
	changed     INTEGER NOT NULL,
	PRIMARY KEY (list_id, number)
) WITHOUT ROWID;

CREATE TABLE entries (
	id                  INTEGER PRIMARY KEY,
	list_id             INTEGER NOT NULL REFERENCES lists (id),
	kind                TEXT NOT NULL,
	hash                BLOB NOT NULL,
	category            TEXT NOT NULL DEFAULT '',
	severity            INTEGER NOT NULL DEFAULT 0,
	note                TEXT NOT NULL DEFAULT '',
	name                TEXT NOT NULL DEFAULT '',
	size                INTEGER NOT NULL DEFAULT -1,
	series              TEXT NOT NULL DEFAULT '',
	victim_identified   INTEGER CHECK (victim_identified IN (0, 1)),   -- NULL: the list does not say
	offender_identified INTEGER CHECK (offender_identified IN (0, 1)),
	extra               TEXT,     -- JSON object of fields Vigil does not interpret; NULL if none
	first_version       INTEGER NOT NULL,
	last_version        INTEGER,  -- NULL while in the current version, else the last version that held it
	disabled            INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	disabled_reason     TEXT NOT NULL DEFAULT '',
	UNIQUE (list_id, kind, hash)
);
CREATE INDEX entries_hash ON entries (hash);

CREATE TABLE entry_events (
	id      INTEGER PRIMARY KEY,
	kind    TEXT NOT NULL,
	hash    BLOB NOT NULL,
	list_id INTEGER REFERENCES lists (id), -- NULL for a confirmation, which is of the hash
	version INTEGER NOT NULL DEFAULT 0,
	action  TEXT NOT NULL CHECK (action IN ('added', 'changed', 'removed', 'disabled', 'enabled', 'confirmed')),
	at      INTEGER NOT NULL,
	who     TEXT NOT NULL DEFAULT '',
	reason  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX entry_events_hash ON entry_events (hash);

CREATE TABLE confirmations (
	id   INTEGER PRIMARY KEY,
	kind TEXT NOT NULL,
	hash BLOB NOT NULL,
	who  TEXT NOT NULL,
	org  TEXT NOT NULL,
	note TEXT NOT NULL DEFAULT '',
	at   INTEGER NOT NULL
);
CREATE INDEX confirmations_hash ON confirmations (hash);

-- Every item (hash) observations name, once: observations refer to it by
-- a small integer, which keeps their item index small. Rows are never
-- deleted or renumbered (the store caches the ids).
CREATE TABLE items (
	id   INTEGER PRIMARY KEY,
	kind TEXT NOT NULL,
	hash BLOB NOT NULL,
	UNIQUE (hash, kind)
);

CREATE TABLE observations (
	seq               INTEGER PRIMARY KEY, -- arrival order; ties on time come out in it
	id                BLOB NOT NULL UNIQUE, -- 16 bytes for a canonical UUID, else the TEXT as given (BLOB: no type conversion)
	time_ns           INTEGER NOT NULL,
	sensor            TEXT NOT NULL,
	sensor_version    TEXT NOT NULL,
	vantage           TEXT NOT NULL,
	network           TEXT NOT NULL,
	method            TEXT NOT NULL,
	clock_offset_ns   INTEGER NOT NULL,
	clock_source      TEXT NOT NULL,
	item_id           INTEGER NOT NULL,   -- items (id); not declared, so that inserts skip the check: the store writes only ids it read from items
	matched           TEXT NOT NULL,      -- JSON: [{"list":"...","category":"..."}, ...]
	ip                TEXT NOT NULL,      -- as netip prints it: IPv4, IPv6, IPv4-mapped, zone
	port              INTEGER NOT NULL,
	transport         TEXT NOT NULL,
	peer_id           BLOB,
	client            TEXT NOT NULL,
	client_version    TEXT NOT NULL,
	listen_port       INTEGER NOT NULL,
	node_id           BLOB,
	user_hash         BLOB,
	guid              BLOB,
	possession        TEXT NOT NULL,      -- level name
	pieces_have       INTEGER NOT NULL,   -- -1: unknown
	pieces_total      INTEGER NOT NULL,   -- -1: unknown
	transcript        BLOB,
	transcript_ref    TEXT NOT NULL,
	transcript_sha256 BLOB
);
CREATE INDEX observations_time ON observations (time_ns);
CREATE INDEX observations_item ON observations (item_id);
