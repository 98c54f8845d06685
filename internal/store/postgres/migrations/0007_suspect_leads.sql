-- Suspect leads: files an analyst's keyword searches returned (eD2K
-- servers, Kad) that are on no list, as the SQLite store keeps them (its
-- migration 0012). They come from no torrent and are seen at no endpoint:
-- torrent_kind is '' and torrent empty for them.
-- keywords: JSON array of the keywords whose searches returned the file;
-- networks: JSON array of the networks that returned it; sources: the
-- most clients a server or Kad node said had it (-1: none said).
ALTER TABLE leads ADD COLUMN keywords text NOT NULL DEFAULT '[]';
ALTER TABLE leads ADD COLUMN networks text NOT NULL DEFAULT '[]';
ALTER TABLE leads ADD COLUMN sources integer NOT NULL DEFAULT -1;
