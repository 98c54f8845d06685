-- Evidence forms (issue 14, docs/evidence.md "Evidence forms"): a sensor
-- chain's observations are hashed in one evidence form, 1 (the line has
-- no evidence_form) or 2. The form is the chain row's, so that the
-- observation's own row does not grow: a chain met in two forms (a line
-- relabelled on the way) is two rows, one a form, and each observation's
-- row names the row of its own form, so that a bundle gives the line
-- back as ingest stored it.
ALTER TABLE sensor_chains ADD COLUMN form smallint NOT NULL DEFAULT 1;
ALTER TABLE sensor_chains DROP CONSTRAINT sensor_chains_chain_chain_key_key;
ALTER TABLE sensor_chains ADD CONSTRAINT sensor_chains_chain_key_form UNIQUE (chain, chain_key, form);
