-- Migration 0025 (h-pgcost; 0027 in the merge plan): less index upkeep
-- in the analysis's saves during ingest.
--
-- Each save rewrites the endpoints that the observations since the last
-- save touched: their times and counts, no indexed column. With room
-- left in its pages such an update is HOT (the new row version goes in
-- the same page and no index gets an entry); with full pages (the
-- default fillfactor, 100) almost none was (20 of 2,623 endpoint updates
-- in 40,000 observations of issue 13's benchmark), and each added an
-- entry to each of the table's three indexes. The setting applies to
-- pages filled from now on. (analysis_timeline_days is left full: the
-- same room there made its rows a third larger on disk, 8.6 -> 11.4
-- bytes an observation in BenchmarkDiskPerObservation, for little.)
ALTER TABLE analysis_endpoints SET (fillfactor = 70);

-- targets_agency_rank (migration 0004) is read by no query: no reader
-- filters or orders targets on agency (an agency's targets are read
-- through target_access, and the routes of the web views through
-- "CASE WHEN assigned ... ELSE agency END", which the index does not
-- hold). Every target row written (a new version at each rescore: its
-- score is indexed) added an entry to it.
DROP INDEX targets_agency_rank;
