-- An agency's postal address, for the head of the ISP requests it makes
-- (the rules file's `address`, 'vigil agency import'); '' when unknown,
-- and the letter then says it is to be completed.
ALTER TABLE agencies ADD COLUMN address TEXT NOT NULL DEFAULT '';
