-- Agencies, users, sessions, tokens and the audit trail (internal/access,
-- internal/audit). Filled in by the access work.
SELECT 1;
