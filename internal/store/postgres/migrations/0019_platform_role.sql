-- The platform role (internal/access RolePlatform): a platform's
-- trust-and-safety team that may only check addresses it holds through
-- POST /api/v1/check. The role's CHECK constraint admits it.
ALTER TABLE users DROP CONSTRAINT users_role_check,
	ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'analyst', 'supervisor', 'investigator', 'auditor', 'platform'));
