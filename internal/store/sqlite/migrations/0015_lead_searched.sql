-- searched: how many keyword search results named a lead's file. They
-- were counted in count, which says how often the file was seen with
-- watched items (at endpoints, in torrents), and a search result names
-- no one. Of the leads stored before: one seen in no torrent (a keyword
-- search's only) has its count moved to searched; one seen both ways
-- keeps a count that mixes the two (it cannot be split).
ALTER TABLE leads ADD COLUMN searched INTEGER NOT NULL DEFAULT 0;
UPDATE leads SET searched = count, count = 0 WHERE torrent_kind = '' AND keywords <> '[]';
