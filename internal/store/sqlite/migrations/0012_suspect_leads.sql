-- Suspect leads: files an analyst's keyword searches returned (eD2K
-- servers, Kad) that are on no list. They come from no torrent and are
-- seen at no endpoint: torrent_kind is '' and torrent empty for them.
-- keywords: JSON array of the keywords whose searches returned the file;
-- networks: JSON array of the networks that returned it; sources: the
-- most clients a server or Kad node said had it (-1: none said).
ALTER TABLE leads ADD COLUMN keywords TEXT NOT NULL DEFAULT '[]';
ALTER TABLE leads ADD COLUMN networks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE leads ADD COLUMN sources INTEGER NOT NULL DEFAULT -1;
