-- Alerts (issue 15, internal/alerts): the agencies' rules, each alert
-- recorded once per (rule, event) — the unique key that makes a replay, a
-- restart or two evaluating processes fire once — and one delivery per
-- alert and channel with its attempts and outcome. Not derived: the
-- analysis never writes them, and a reset of the analysis keeps them.
CREATE TABLE alert_rules (
	id           TEXT PRIMARY KEY,
	agency       TEXT NOT NULL,
	kind         TEXT NOT NULL,
	params       TEXT NOT NULL, -- JSON (alerts.Params)
	emails       TEXT NOT NULL, -- JSON array
	webhooks     TEXT NOT NULL, -- JSON array
	max_per_hour INTEGER NOT NULL,
	by_whom      TEXT NOT NULL,
	created_ns   INTEGER NOT NULL,
	from_seq     INTEGER NOT NULL
) WITHOUT ROWID;

-- The last observation seq the evaluator read (name 'observations').
CREATE TABLE alert_state (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE alerts (
	id         TEXT PRIMARY KEY, -- alerts.AlertID(rule, event)
	rule       TEXT NOT NULL,
	agency     TEXT NOT NULL,
	kind       TEXT NOT NULL,
	event      TEXT NOT NULL,
	target     TEXT NOT NULL,
	at_ns      INTEGER NOT NULL,
	created_ns INTEGER NOT NULL,
	subject    TEXT NOT NULL,
	content    TEXT NOT NULL, -- JSON (alerts.Content)
	held       INTEGER NOT NULL, -- 1: over the rule's rate limit, not sent
	summary_of INTEGER NOT NULL, -- a summary: how many held alerts it counts
	summary    TEXT NOT NULL,    -- a held alert: the summary that counted it
	UNIQUE (rule, event)
) WITHOUT ROWID;
CREATE INDEX alerts_agency ON alerts (agency, created_ns);
CREATE INDEX alerts_rule ON alerts (rule, held, created_ns);

CREATE TABLE alert_deliveries (
	id         TEXT PRIMARY KEY, -- alerts.DeliveryID(alert, channel)
	alert      TEXT NOT NULL,
	rule       TEXT NOT NULL,
	agency     TEXT NOT NULL,
	channel    TEXT NOT NULL,
	attempts   INTEGER NOT NULL,
	next_ns    INTEGER NOT NULL,
	last_error TEXT NOT NULL,
	outcome    TEXT NOT NULL, -- pending, delivered, failed, gave_up
	updated_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX alert_deliveries_due ON alert_deliveries (outcome, next_ns);
CREATE INDEX alert_deliveries_agency ON alert_deliveries (agency, updated_ns);
