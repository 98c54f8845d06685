-- The evidence log (internal/evidence; the SQLite store's migration
-- 0014): a leaf per stored observation, the RFC 6962 leaf hash of its
-- canonical form, in the order stored. idx is the leaf index + 1, gapless:
-- an append takes the table's lock and numbers its rows after the last
-- (a sequence would leave gaps on rollback). A redelivered observation
-- appends nothing. chain ... batch_sig are where the sensor's signed hash
-- chain holds the observation (observe.Chain), NULL when unsigned.
CREATE TABLE evidence_log (
	idx        bigint PRIMARY KEY,
	obs_seq    bigint NOT NULL UNIQUE, -- observations (seq)
	leaf       bytea NOT NULL,
	chain      text,
	chain_seq  bigint,
	chain_key  bytea,
	chain_prev bytea,
	batch_sig  bytea
);
CREATE INDEX evidence_log_chain ON evidence_log (chain, chain_seq) WHERE chain IS NOT NULL;

-- Signed checkpoints of the log (a log that did not grow may be signed
-- again, at another time).
CREATE TABLE evidence_checkpoints (
	size    bigint NOT NULL,
	time_ns bigint NOT NULL,
	root    bytea NOT NULL,
	note    bytea NOT NULL,
	PRIMARY KEY (size, time_ns)
);

CREATE FUNCTION vigil_evidence_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER evidence_log_append_only BEFORE UPDATE OR DELETE ON evidence_log
	FOR EACH ROW EXECUTE FUNCTION vigil_evidence_append_only();
CREATE TRIGGER evidence_checkpoints_append_only BEFORE UPDATE OR DELETE ON evidence_checkpoints
	FOR EACH ROW EXECUTE FUNCTION vigil_evidence_append_only();
