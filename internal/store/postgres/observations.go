package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

// obsColumnList is the observation columns a writer fills, in the order
// obsRow gives their values.
var obsColumnList = []string{"uid", "id_text", "time_ns", "item_id", "facet_id", "place_id", "matched_id",
	"clock_id", "clock_uncertainty_ns", "ip", "ip_zone", "port", "listen_port", "peer_id", "node_id", "user_hash", "guid",
	"pieces_have", "pieces_total", "transcript", "transcript_ref", "transcript_sha256", "sensor_address",
	"chain_ref", "chain_seq", "chain_prev", "batch_sig"}

var obsColumns = strings.Join(obsColumnList, ", ")

const (
	obsArgs  = 27
	maxChunk = 65535 / obsArgs // PostgreSQL's bind message holds at most 65,535 parameters
)

// obsJoins joins an observation o with its item (i), its dictionaries'
// rows (f, p, m: migration 0017; ck: 0023) and its chain (c). LEFT JOIN: a join
// whose columns a query does not read is left out by the planner (every
// row has its dictionaries' rows).
const obsJoins = ` JOIN items i ON i.id = o.item_id
	LEFT JOIN observation_facets f ON f.id = o.facet_id
	LEFT JOIN observation_places p ON p.id = o.place_id
	LEFT JOIN observation_matches m ON m.id = o.matched_id
	LEFT JOIN observation_clocks ck ON ck.id = o.clock_id`

// The columns that hold NULL for the value that says "none" (migration
// 0023), read back as that value.
const (
	obsListenPortSQL    = `COALESCE(o.listen_port, 0)`
	obsPiecesSQL        = `COALESCE(o.pieces_have, -1), COALESCE(o.pieces_total, -1)`
	obsTranscriptRefSQL = `COALESCE(o.transcript_ref, '')`
)

// obsIPSQL is o's address as text, exactly as netip prints it.
const obsIPSQL = `vigil_ip_text(o.ip, o.ip_zone)`

// obsPlaceSQL is o's place JSON, NULL when nothing was known.
const obsPlaceSQL = `NULLIF(p.place, '')`

// obsSelect reads an observation back (obsJoins).
const obsSelect = `o.uid, o.id_text, o.time_ns, f.sensor, f.sensor_version, f.vantage, f.network, f.method, ck.offset_ns,
	f.clock_source, i.kind, i.hash, m.matched, ` + obsIPSQL + `, o.port, f.transport, o.peer_id, f.client, f.client_version,
	` + obsListenPortSQL + `, o.node_id, o.user_hash, o.guid, f.possession, ` + obsPiecesSQL + `, o.transcript,
	` + obsTranscriptRefSQL + `, o.transcript_sha256, ` + obsPlaceSQL + `, p.agency, p.agency_rule, f.marks, COALESCE(o.sensor_address, ''),
	o.clock_uncertainty_ns, f.build_commit, f.build_modified, f.sensor_config,
	c.chain, o.chain_seq, c.chain_key, o.chain_prev, o.batch_sig, c.form`

// stageTable is the per-connection staging table COPY writes into; its
// rows go at commit. It is created in each writing transaction if missing
// (not once per connection), so that a pooler in transaction mode, which
// hands each transaction any server connection, does not break it. Its
// name changes with its columns (vigil_obs_stage before migration 0016's
// chain columns, vigil_obs_stage16 before 0017's dictionaries): a pooler
// may hand a session that an older binary left its own table in
// (vigil_obs_stage17b before 0023's clocks, vigil_obs_stage23 before
// 0027's id_ns).
const stageTable = `CREATE TEMP TABLE IF NOT EXISTS vigil_obs_stage27 (
	ord                  integer NOT NULL,
	uid                  uuid,
	id_text              text,
	time_ns              bigint NOT NULL,
	item_id              bigint NOT NULL,
	facet_id             bigint NOT NULL,
	place_id             integer NOT NULL,
	matched_id           integer NOT NULL,
	clock_id             integer NOT NULL,
	clock_uncertainty_ns bigint,
	ip                   inet NOT NULL,
	ip_zone              text,
	port                 integer NOT NULL,
	listen_port          integer,
	peer_id              bytea,
	node_id              bytea,
	user_hash            bytea,
	guid                 bytea,
	pieces_have          integer,
	pieces_total         integer,
	transcript           bytea,
	transcript_ref       text,
	transcript_sha256    bytea,
	sensor_address       text,
	chain_ref            bigint,
	chain_seq            bigint,
	chain_prev           bytea,
	batch_sig            bytea,
	id_ns                bigint -- idNS of uid: the id's time, NULL when it has none
) ON COMMIT DELETE ROWS`

const stageName = "vigil_obs_stage27"

// idValues is how an observation id is stored: a canonical UUID in uid,
// anything else as the text given in id_text (the SQLite store's idValue,
// in two columns).
func idValues(id string) (uid pgtype.UUID, text any) {
	if b, ok := parseUUID(id); ok {
		return pgtype.UUID{Bytes: b, Valid: true}, nil
	}
	return pgtype.UUID{}, id
}

// idWindowNS is the half-width of an id's window (migration 0027): a row
// whose UUIDv7 id's time is within it of the row's time_ns is found by
// the id's time, in one partition.
const idWindowNS = int64(time.Second)

// maxIDMillis bounds the id times idNS gives, so that a window fits in
// an int64 (year 2255; vigil_uuid7_ns's bound).
const maxIDMillis = 9_000_000_000_000

// idNS is the Unix time in ns that a UUIDv7 id carries (its first 48
// bits, in ms), and false for any other id: the same as migration 0027's
// vigil_uuid7_ns.
func idNS(uid pgtype.UUID) (int64, bool) {
	b := uid.Bytes
	if !uid.Valid || b[6]>>4 != 7 || b[8]>>6 != 2 {
		return 0, false
	}
	ms := int64(b[0])<<40 | int64(b[1])<<32 | int64(b[2])<<24 | int64(b[3])<<16 | int64(b[4])<<8 | int64(b[5])
	if ms >= maxIDMillis {
		return 0, false
	}
	return ms * 1e6, true
}

// inIDWindow reports whether an observation stored with id uid at timeNS
// lies in its id's window; every other row's id goes in
// observation_ids_elsewhere (migration 0027).
func inIDWindow(uid pgtype.UUID, timeNS int64) bool {
	t, ok := idNS(uid)
	return ok && timeNS >= t-idWindowNS && timeNS < t+idWindowNS
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// rawText is a string stored as bytea, exactly as received: never NULL.
func rawText(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

// checkObservation validates o for this store: observe's rules, and text
// PostgreSQL can hold in the columns that are text (the peer's own client
// strings are bytea and take anything).
func checkObservation(o *observe.Observation) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := checkText("id", o.ID, "sensor", o.Sensor.ID, "sensor version", o.Sensor.Version, "vantage", o.Sensor.Vantage,
		"network", o.Network, "method", o.Method, "clock source", o.ClockSource, "transport", o.Endpoint.Transport,
		"build commit", o.Sensor.Commit,
		"transcript ref", o.Transcript.Ref, "agency", o.Jurisdiction.Agency, "agency rule", o.Jurisdiction.Rule,
		"address", o.Endpoint.IP.String(), "chain", o.Chain.ID, "sensor address", o.Endpoint.Local.String()); err != nil {
		return fmt.Errorf("%w: %w", observe.ErrInvalid, err)
	}
	return nil
}

// obsRefs is what an observation's row refers to: its items row, its
// sensor_chains row (0: unsigned) and its dictionaries' rows.
type obsRefs struct {
	item, chain int64
	dict        [numDicts]int64
}

// obsRow fills dst (obsArgs long) with o's column values in obsColumnList
// order. listen_port 0, pieces -1 and an empty transcript_ref go as NULL
// (migration 0023).
func obsRow(dst []any, o *observe.Observation, ref *obsRefs) {
	uid, text := idValues(o.ID)
	dst[0], dst[1], dst[2], dst[3] = uid, text, o.Time.UnixNano(), ref.item
	dst[4], dst[5], dst[6] = ref.dict[dictFacets], ref.dict[dictPlaces], ref.dict[dictMatches]
	dst[7], dst[8] = ref.dict[dictClocks], nil // nil: unknown offset
	if o.ClockKnown {
		dst[8] = int64(o.ClockUncertainty)
	}
	dst[9], dst[10] = o.Endpoint.IP.WithZone(""), nil
	if z := o.Endpoint.IP.Zone(); z != "" {
		dst[10] = z
	}
	dst[11], dst[12] = int32(o.Endpoint.Port), nilIf(int64(o.Client.ListenPort), 0)
	dst[13], dst[14], dst[15], dst[16] = nilIfEmpty(o.Client.PeerID), nilIfEmpty(o.Client.NodeID), nilIfEmpty(o.Client.UserHash), nilIfEmpty(o.Client.GUID)
	dst[17], dst[18] = nilIf(int64(max(o.Possession.PiecesHave, -1)), -1), nilIf(int64(max(o.Possession.PiecesTotal, -1)), -1)
	dst[19], dst[20], dst[21] = nilIfEmpty(o.Transcript.Bytes), nil, nilIfEmpty(o.Transcript.SHA256)
	if o.Transcript.Ref != "" {
		dst[20] = o.Transcript.Ref
	}
	dst[22] = rowcodec.AddrPortColumn(o.Endpoint.Local)
	dst[23], dst[24], dst[25], dst[26] = nil, nil, nil, nil
	if ref.chain != 0 {
		dst[23], dst[24], dst[25] = ref.chain, int64(o.Chain.Seq), o.Chain.Prev
		dst[26] = nilIfEmpty(o.Chain.BatchSig)
	}
}

// nilIf is v, or nil (NULL) when it is none, the value NULL stands for in
// its column (migration 0023).
func nilIf(v, none int64) any {
	if v == none {
		return nil
	}
	return v
}

// maxCachedItems bounds the item id cache; past it the cache starts over.
const maxCachedItems = 1 << 20

// hashKey identifies a hash as a comparable value (the items cache's key).
type hashKey struct {
	kind hashkind.Kind
	sum  [32]byte
}

func keyOf(h hashkind.Hash) hashKey {
	k := hashKey{kind: h.Kind()}
	copy(k.sum[:], h.Bytes())
	return k
}

// itemIDs returns the items row of every observation's hash, adding rows
// for new hashes, and the ids it added or read (fresh) for the cache once
// the transaction commits: an id added by a transaction that rolls back
// must not be reused.
func (s *Store) itemIDs(ctx context.Context, tx pgx.Tx, obs []observe.Observation) ([]int64, map[hashKey]int64, error) {
	ids := make([]int64, len(obs))
	var missing map[hashKey]hashkind.Hash
	s.mu.Lock()
	for i := range obs {
		id, ok := s.items[keyOf(obs[i].Item.Hash)]
		if !ok {
			if missing == nil {
				missing = map[hashKey]hashkind.Hash{}
			}
			missing[keyOf(obs[i].Item.Hash)] = obs[i].Item.Hash
		}
		ids[i] = id
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return ids, nil, nil
	}
	fresh := make(map[hashKey]int64, len(missing))
	// A hash another transaction is adding at the same moment is neither
	// inserted by this statement (ON CONFLICT waits for it, then skips it)
	// nor seen by its snapshot: the next round, a new statement, sees it.
	for round := 0; len(missing) > 0; round++ {
		if round == 3 {
			return nil, nil, fmt.Errorf("items: %d hashes neither added nor found after %d rounds", len(missing), round)
		}
		kinds := make([]string, 0, len(missing))
		sums := make([][]byte, 0, len(missing))
		for _, h := range missing {
			kinds, sums = append(kinds, h.Kind().String()), append(sums, h.Bytes())
		}
		// Rows are added in (hash, kind) order, the same in every writer,
		// so that two batches sharing new items cannot deadlock.
		r, err := tx.Query(ctx, `WITH input (kind, hash) AS (SELECT * FROM unnest($1::text[], $2::bytea[])),
			added AS (INSERT INTO items (kind, hash) SELECT kind, hash FROM input ORDER BY hash, kind ON CONFLICT DO NOTHING RETURNING id, kind, hash)
			SELECT id, kind, hash FROM added
			UNION ALL
			SELECT i.id, i.kind, i.hash FROM items i JOIN input ON i.hash = input.hash AND i.kind = input.kind`, kinds, sums)
		if err != nil {
			return nil, nil, fmt.Errorf("items: %w", err)
		}
		for r.Next() {
			var id int64
			var kind string
			var sum []byte
			if err := r.Scan(&id, &kind, &sum); err != nil {
				r.Close()
				return nil, nil, fmt.Errorf("items: %w", err)
			}
			k, err := hashkind.ParseKind(kind)
			if err != nil {
				r.Close()
				return nil, nil, fmt.Errorf("items row %d: %w", id, err)
			}
			h, err := hashkind.New(k, sum)
			if err != nil {
				r.Close()
				return nil, nil, fmt.Errorf("items row %d: %w", id, err)
			}
			fresh[keyOf(h)] = id
			delete(missing, keyOf(h))
		}
		r.Close()
		if err := r.Err(); err != nil {
			return nil, nil, fmt.Errorf("items: %w", err)
		}
	}
	for i := range obs {
		if ids[i] == 0 {
			ids[i] = fresh[keyOf(obs[i].Item.Hash)]
		}
	}
	return ids, fresh, nil
}

func (s *Store) commitItems(fresh map[hashKey]int64) {
	if len(fresh) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.items)+len(fresh) > maxCachedItems {
		clear(s.items)
	}
	for k, v := range fresh {
		s.items[k] = v
	}
}

// uniqueViolation reports whether a transaction failed on a unique index
// (SQLSTATE 23505).
func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// retryable reports whether a transaction failed only because of another
// one (a deadlock or serialisation failure), and may simply run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// InsertObservations stores obs in one transaction: all of them or, on any
// error, none. An observation with an empty ID is given one (written back
// into obs); one whose ID is already stored is skipped.
func (s *Store) InsertObservations(ctx context.Context, obs []observe.Observation) error {
	_, err := s.InsertObservationsCounted(ctx, obs)
	return err
}

// InsertObservationsCounted implements store.NewCounter: the rows the
// INSERTs added, from their command tags.
func (s *Store) InsertObservationsCounted(ctx context.Context, obs []observe.Observation) (int, error) {
	if len(obs) == 0 {
		return 0, nil
	}
	for i := range obs {
		o := &obs[i]
		if err := checkObservation(o); err != nil {
			return 0, &store.RefusedError{Index: i, Err: fmt.Errorf("observation %d (%s): %w", i, o.ID, err)}
		}
		if o.ID == "" {
			o.ID = observe.NewID(o.Time)
		}
	}
	// An id twice in the batch (a replay inside it) is stored once, the
	// first time: its second row would be dropped by the INSERT, in an
	// order COPY does not keep, and would append a second leaf.
	// And with two times it would be two rows: the unique indexes hold
	// time_ns since the partitions (migration 0015).
	given := obs
	obs = firstOfEachID(obs)
	// fallback: the staged INSERT ran into a unique index (a row of the
	// batch's id and time stored but neither in its window nor listed:
	// written by an older Vigil or by hand, against migration 0027's
	// invariant); the batch runs again with the check of every partition
	// and ON CONFLICT (fallbackInsertSQL), rather than fail at every
	// redelivery and stop ingest for good.
	fallback := false
	write := func(ctx context.Context, tx pgx.Tx, obs []observe.Observation, refs []obsRefs) (inserted, error) {
		return s.insertCopy(ctx, tx, obs, refs, fallback)
	}
	if s.cfg.InsertMethod == InsertValues {
		write = s.insertValues
	}
	leaves := s.hashLeaves(obs) // on a goroutine, beside the writes
	defer leaves.wait()         // obs is the caller's again on return
	for attempt := 1; ; attempt++ {
		var fresh map[hashKey]int64
		var freshChains map[string]int64
		var freshDicts [numDicts]map[string]int64
		var added inserted
		err := s.writeTx(ctx, func(tx pgx.Tx) error {
			refs, err := s.rowRefs(ctx, tx, obs, &fresh, &freshChains, &freshDicts)
			if err != nil {
				return err
			}
			if added, err = write(ctx, tx, obs, refs); err != nil {
				return err
			}
			return s.appendLeaves(ctx, tx, obs, leaves, added)
		})
		if err == nil {
			s.commitItems(fresh)
			s.commitChains(freshChains)
			s.commitDicts(freshDicts)
			if len(obs) == len(given) { // else obs is a copy
				leaves.remember(given)
			}
			if s.afterInsert != nil {
				if err := s.afterInsert(ctx); err != nil {
					return int(added.n), fmt.Errorf("observations stored, then: %w", err)
				}
			}
			return int(added.n), nil
		}
		if !fallback && uniqueViolation(err) {
			fallback = true
			continue
		}
		if attempt >= 3 || !retryable(err) {
			return 0, fmt.Errorf("observations: %w", err)
		}
	}
}

// rowRefs returns what each observation's row refers to (obsRefs),
// adding the items, chains and dictionary rows missing; the ids read or
// added go in the fresh maps, for the caches once tx commits.
func (s *Store) rowRefs(ctx context.Context, tx pgx.Tx, obs []observe.Observation, fresh *map[hashKey]int64,
	freshChains *map[string]int64, freshDicts *[numDicts]map[string]int64) ([]obsRefs, error) {
	ids, f, err := s.itemIDs(ctx, tx, obs)
	if err != nil {
		return nil, err
	}
	*fresh = f
	chains, fc, err := s.chainRefs(ctx, tx, obs)
	if err != nil {
		return nil, err
	}
	*freshChains = fc
	dicts, fd, err := s.dictRefs(ctx, tx, obs)
	if err != nil {
		return nil, err
	}
	*freshDicts = fd
	refs := make([]obsRefs, len(obs))
	for i := range refs {
		refs[i].item = ids[i]
		if chains != nil {
			refs[i].chain = chains[i]
		}
		for k := range dicts {
			refs[i].dict[k] = dicts[k][i]
		}
	}
	return refs, nil
}

// firstOfEachID returns obs without the observations whose id came
// before in it (obs itself when every id is new).
func firstOfEachID(obs []observe.Observation) []observe.Observation {
	seen := make(map[string]struct{}, len(obs))
	for i := range obs {
		if _, dup := seen[obs[i].ID]; dup {
			out := slices.Clone(obs[:i])
			for j := i + 1; j < len(obs); j++ {
				if _, dup := seen[obs[j].ID]; !dup {
					seen[obs[j].ID] = struct{}{}
					out = append(out, obs[j])
				}
			}
			return out
		}
		seen[obs[i].ID] = struct{}{}
	}
	return obs
}

// windowSQL is the condition that stage row s lies in its id's window
// (inIDWindow; NULL when its id has no time).
var windowSQL = `s.time_ns >= s.id_ns - ` + strconv.FormatInt(idWindowNS, 10) + ` AND s.time_ns < s.id_ns + ` + strconv.FormatInt(idWindowNS, 10)

// storedProbeSQL joins each stage row s with d.stored, 1 when a row of
// its id lies in its id's window (migration 0027): one index descent in
// the one partition (two at a month's edge) that run-time pruning keeps
// of the window. LATERAL with LIMIT: a probe of each row the planner
// cannot turn into a hash of the whole table, as it did NOT EXISTS on
// tables it had no statistics of (an unanalysed store, a cached plan).
var storedProbeSQL = ` LEFT JOIN LATERAL (SELECT 1 AS stored FROM observations o WHERE o.uid = s.uid
	AND o.time_ns >= s.id_ns - ` + strconv.FormatInt(idWindowNS, 10) + ` AND o.time_ns < s.id_ns + ` + strconv.FormatInt(idWindowNS, 10) + ` LIMIT 1) d ON true`

// notStoredSQL is the condition, on a row s of the batch joined by
// storedProbeSQL, that its id is stored under no time: not in its
// window, not elsewhere (observation_ids_elsewhere lists every stored id
// outside its window: migration 0027). The unique indexes hold (id,
// time_ns) since the partitions (migration 0015), so they alone would
// store a replayed id with another time twice. Checked under seqOrder's
// lock, which every INSERT into observations takes: no batch adds an id
// between the check and the INSERT.
// An id purged under retention (migration 0015) is not stored again
// either: a replay must not undo a purge.
const notStoredSQL = `d.stored IS NULL
	AND NOT EXISTS (SELECT 1 FROM observation_ids_elsewhere e WHERE e.id = COALESCE(s.uid::text, s.id_text))
	AND NOT EXISTS (SELECT 1 FROM purged_observations p WHERE p.observation_id = COALESCE(s.uid::text, s.id_text))`

// elsewhereCTE lists, in the INSERT's own statement, the ids of the
// batch's rows outside their windows (migration 0027's invariant), with
// the seq the INSERT (ins, returning seq, uid and id_text) gave each
// (migration 0030; NULL for a row it refused). Every such id is stored
// once the statement ends, by it or before it, or purged: the INSERT
// stores every row its checks pass (it has no ON CONFLICT to skip one),
// and a row they refuse has its id stored or purged. The statement's
// checks read the table as it was before it (one snapshot for the whole
// statement). The batch's ids are distinct (firstOfEachID): the join
// finds at most one row of ins for each.
var elsewhereCTE = `, elsewhere AS (INSERT INTO observation_ids_elsewhere (id, seq) SELECT COALESCE(s.uid::text, s.id_text), i.seq
	FROM pg_temp.` + stageName + ` s LEFT JOIN ins i ON COALESCE(i.uid::text, i.id_text) = COALESCE(s.uid::text, s.id_text)
	WHERE NOT COALESCE(` + windowSQL + `, false) ON CONFLICT DO NOTHING)`

// storedIDs returns the ids of obs already stored, under any time, or
// purged.
func storedIDs(ctx context.Context, tx pgx.Tx, obs []observe.Observation) (map[string]bool, error) {
	var uids []pgtype.UUID
	var texts, all []string
	for i := range obs {
		all = append(all, obs[i].ID)
		uid, text := idValues(obs[i].ID)
		if uid.Valid {
			uids = append(uids, uid)
		} else if t, ok := text.(string); ok {
			texts = append(texts, t)
		}
	}
	r, err := tx.Query(ctx, `SELECT `+obsIDCol+` FROM observations o WHERE o.uid = ANY($1::uuid[])
		UNION ALL SELECT `+obsIDCol+` FROM observations o WHERE o.id_text = ANY($2::text[])
		UNION ALL SELECT observation_id FROM purged_observations WHERE observation_id = ANY($3::text[])
		UNION ALL SELECT id FROM observation_ids_elsewhere WHERE id = ANY($3::text[])`, uids, texts, all)
	if err != nil {
		return nil, fmt.Errorf("stored ids: %w", err)
	}
	defer r.Close()
	out := map[string]bool{}
	for r.Next() {
		var id string
		if err := r.Scan(&id); err != nil {
			return nil, fmt.Errorf("stored ids: %w", err)
		}
		out[id] = true
	}
	return out, r.Err()
}

// seqOrder takes, for the rest of tx, the lock that makes the batches of
// every process commit in the order of their seqs: a batch's INSERT draws
// its seqs only once the batch before it has committed. The analysis
// reads observations by seq and never goes back below its watermark: a
// batch that drew lower seqs but committed later would be passed for
// good. Only the INSERT and what follows it wait; the COPY into the
// staging table and the items run beside other batches.
func (s *Store) seqOrder(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.seqLockKey()); err != nil {
		return fmt.Errorf("observations' seq lock: %w", err)
	}
	return nil
}

// seqLockKey is seqOrder's transaction-scoped advisory lock.
func (s *Store) seqLockKey() int64 { return lockKey(s.cfg.Schema + " observations") }

// copySource hands COPY one observation at a time, its row built in a
// reused slice (pgx encodes each row before asking for the next).
type copySource struct {
	obs  []observe.Observation
	refs []obsRefs
	i    int
	row  []any
}

func (c *copySource) Next() bool {
	c.i++
	return c.i <= len(c.obs)
}

func (c *copySource) Values() ([]any, error) {
	n := c.i - 1
	c.row[0] = int32(n)
	obsRow(c.row[1:obsArgs+1], &c.obs[n], &c.refs[n])
	c.row[obsArgs+1] = nil
	if t, ok := idNS(c.row[1].(pgtype.UUID)); ok {
		c.row[obsArgs+1] = t
	}
	return c.row, nil
}

func (c *copySource) Err() error { return nil }

var stageColumns = append(append([]string{"ord"}, obsColumnList...), "id_ns")

// insertCopy writes obs with COPY into the staging table and one INSERT
// from it; observations of the same time get their seq in the batch's
// order (arrival order).
func (s *Store) insertCopy(ctx context.Context, tx pgx.Tx, obs []observe.Observation, refs []obsRefs, fallback bool) (inserted, error) {
	// One round trip for both (simple protocol: no arguments). When the
	// move sorts the batch by ord (rows of a kilobyte), the default 4 MB
	// of work_mem would sort a batch of 10,000 on disk.
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '64MB'; `+stageTable); err != nil {
		return inserted{}, fmt.Errorf("staging table: %w", err)
	}
	src := &copySource{obs: obs, refs: refs, row: make([]any, obsArgs+2)}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", stageName}, stageColumns, src); err != nil {
		return inserted{}, fmt.Errorf("copy of %d: %w", len(obs), err)
	}
	if err := s.seqOrder(ctx, tx); err != nil {
		return inserted{}, err
	}
	// The ids a block holds (compacted rows: migration 0030) leave the
	// stage before the INSERT's checks, which see the hot rows only.
	inBlocks, err := blockStoredIDs(ctx, tx, obs)
	if err != nil {
		return inserted{}, err
	}
	if len(inBlocks) > 0 {
		var uids []pgtype.UUID
		for id := range inBlocks {
			uid, _ := idValues(id)
			uids = append(uids, uid)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pg_temp.`+stageName+` WHERE uid = ANY($1)`, uids); err != nil {
			return inserted{}, fmt.Errorf("ids in blocks: %w", err)
		}
	}
	// seq only breaks ties on time (Observations orders by time_ns, seq):
	// when no two observations of the batch share a time, the order they
	// get their seq in cannot show, and the sort (a tenth of the server's
	// work) is skipped.
	order := ` ORDER BY ord`
	if distinctTimes(obs) {
		order = ``
	}
	// No ON CONFLICT: notStoredSQL, under seqOrder's lock, leaves no row
	// whose id is stored, and firstOfEachID none twice in the batch (the
	// arbiters' checks were a fifth of the statement). A row that
	// conflicted all the same (one stored against migration 0027's
	// invariant) fails this statement, and the batch runs again with
	// fallbackInsertSQL.
	insert := stagedInsertSQL(order)
	if fallback {
		insert = fallbackInsertSQL(order)
	}
	var in inserted
	err = tx.QueryRow(ctx, insertReturning(insert, elsewhereCTE, signedRefs(refs))).Scan(&in.n, &in.firstSeq)
	if err != nil {
		return inserted{}, fmt.Errorf("insert of %d: %w", len(obs), err)
	}
	return in, nil
}

// stagedInsertSQL is the INSERT of the staging table's rows whose ids
// are not stored (notStoredSQL), in order (empty, or an ORDER BY).
func stagedInsertSQL(order string) string {
	return `INSERT INTO observations (` + obsColumns + `) SELECT ` + obsColumns +
		` FROM pg_temp.` + stageName + ` s` + storedProbeSQL + ` WHERE ` + notStoredSQL + order
}

// fallbackInsertSQL is stagedInsertSQL that also looks each id up in
// every partition and skips a row that conflicts all the same (ON
// CONFLICT), as before migration 0027: for a batch the staged INSERT
// failed on a unique index. The statement's elsewhereCTE lists the
// conflicting row's id (its replay has its time, so lies outside its
// window as it does), which mends the invariant for that id.
func fallbackInsertSQL(order string) string {
	return `INSERT INTO observations (` + obsColumns + `) SELECT ` + obsColumns +
		` FROM pg_temp.` + stageName + ` s` + storedProbeSQL + ` WHERE ` + notStoredSQL +
		` AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.uid = s.uid)
	AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.id_text = s.id_text)` + order + ` ON CONFLICT DO NOTHING`
}

// chainRunsSQL records, from the rows an INSERT returned (ins: seq,
// chain_ref, chain_seq), where the commit put each chain's rows: one
// observation_chain_runs row for each chain and block of chainBlock
// positions (migration 0026), which the readers of a chain's rows look up
// in place of an index of every signed row.
const chainRunsSQL = `, runs AS (INSERT INTO observation_chain_runs (chain_ref, block, first_seq, last_seq)
	SELECT chain_ref, chain_seq >> 6, min(seq), max(seq) FROM ins WHERE chain_ref IS NOT NULL GROUP BY 1, 2)`

// chainBlockShift is chain_seq >> chainBlockShift, a run's block
// (chainRunsSQL's 6).
const chainBlockShift = 6

// insertReturning is insert (an INSERT INTO observations) that returns
// the rows it added and the least seq among them, and records the chain
// runs of its signed rows when runs; ctes (", name AS (...)", or empty)
// go after it in the statement's WITH, and may read ins (the rows added:
// seq, uid, id_text, chain_ref, chain_seq).
func insertReturning(insert, ctes string, runs bool) string {
	if !runs {
		return `WITH ins AS (` + insert + ` RETURNING seq, uid, id_text)` + ctes + ` SELECT count(*), COALESCE(min(seq), 0) FROM ins`
	}
	return `WITH ins AS (` + insert + ` RETURNING seq, uid, id_text, chain_ref, chain_seq)` + chainRunsSQL + ctes +
		` SELECT count(*), COALESCE(min(seq), 0) FROM ins`
}

// signedRefs says whether one of refs is a signed observation's (refers
// to a sensor_chains row).
func signedRefs(refs []obsRefs) bool {
	for i := range refs {
		if refs[i].chain != 0 {
			return true
		}
	}
	return false
}

// inserted is what a batch's INSERTs added: n rows, the least seq
// firstSeq (0 when none).
type inserted struct{ n, firstSeq int64 }

func (in *inserted) add(n, firstSeq int64) {
	if n > 0 && (in.n == 0 || firstSeq < in.firstSeq) {
		in.firstSeq = firstSeq
	}
	in.n += n
}

// distinctTimes reports whether no two observations of obs have the same
// time (to the nanosecond, as stored).
func distinctTimes(obs []observe.Observation) bool {
	increasing := true
	for i := 1; i < len(obs) && increasing; i++ {
		increasing = obs[i-1].Time.UnixNano() < obs[i].Time.UnixNano()
	}
	if increasing {
		return true
	}
	seen := make(map[int64]struct{}, len(obs))
	for i := range obs {
		t := obs[i].Time.UnixNano()
		if _, dup := seen[t]; dup {
			return false
		}
		seen[t] = struct{}{}
	}
	return true
}

// valuesSQL is the INSERT of n observations in one statement, that
// records their chain runs when runs (chainRunsSQL).
func valuesSQL(n int, runs bool) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO observations (` + obsColumns + `) VALUES `)
	p := 1
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for j := 0; j < obsArgs; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(p))
			p++
		}
		b.WriteByte(')')
	}
	// An observation already stored (same id, in either column) is
	// skipped, so that a bus that redelivers after a crash cannot
	// duplicate evidence.
	b.WriteString(` ON CONFLICT DO NOTHING`)
	return insertReturning(b.String(), ``, runs)
}

// insertValues writes obs in multi-row INSERTs of ValuesChunk rows, the
// rest in power-of-two pieces so that few statements are prepared.
func (s *Store) insertValues(ctx context.Context, tx pgx.Tx, obs []observe.Observation, refs []obsRefs) (inserted, error) {
	if err := s.seqOrder(ctx, tx); err != nil {
		return inserted{}, err
	}
	// storedIDs asks every partition; the rows of the batch outside their
	// ids' windows are listed for the staged INSERT's check all the same
	// (migration 0027), those whose ids are stored too, as elsewhereCTE
	// does: a stored row of the id with the replay's time, that its
	// writer did not list (an older Vigil), is listed then. Listed once
	// the rows are in, with their seqs (migration 0030).
	elsewhere := elsewhereIDs(obs)
	stored, err := storedIDs(ctx, tx, obs)
	if err != nil {
		return inserted{}, err
	}
	inBlocks, err := blockStoredIDs(ctx, tx, obs)
	if err != nil {
		return inserted{}, err
	}
	for id := range inBlocks {
		stored[id] = true
	}
	if len(stored) > 0 {
		var fobs []observe.Observation
		var frefs []obsRefs
		for i := range obs {
			if !stored[obs[i].ID] {
				fobs, frefs = append(fobs, obs[i]), append(frefs, refs[i])
			}
		}
		obs, refs = fobs, frefs
	}
	var added inserted
	chunk := s.cfg.ValuesChunk
	args := make([]any, min(chunk, len(obs))*obsArgs)
	for start := 0; start < len(obs); {
		n := chunk
		if rest := len(obs) - start; rest < chunk {
			n = 1 << (bits.Len(uint(rest)) - 1)
		}
		a := args[:n*obsArgs]
		for i := 0; i < n; i++ {
			obsRow(a[i*obsArgs:(i+1)*obsArgs], &obs[start+i], &refs[start+i])
		}
		var n1, first int64
		if err := tx.QueryRow(ctx, valuesSQL(n, signedRefs(refs[start:start+n])), a...).Scan(&n1, &first); err != nil {
			return inserted{}, fmt.Errorf("observations %d..%d: %w", start, start+n-1, err)
		}
		added.add(n1, first)
		start += n
	}
	if err := listElsewhere(ctx, tx, elsewhere); err != nil {
		return inserted{}, err
	}
	return added, nil
}

// elsewhereIDs returns the ids of obs outside their windows (inIDWindow):
// as UUIDs and as text.
func elsewhereIDs(obs []observe.Observation) (ids [2][]string) {
	for i := range obs {
		uid, _ := idValues(obs[i].ID)
		if inIDWindow(uid, obs[i].Time.UnixNano()) {
			continue
		}
		if uid.Valid {
			ids[0] = append(ids[0], obs[i].ID)
		} else {
			ids[1] = append(ids[1], obs[i].ID)
		}
	}
	return ids
}

// listElsewhere lists ids (elsewhereIDs) in observation_ids_elsewhere
// with the seq of their stored rows (NULL for an id whose row is not
// among the rows: purged), after the batch's INSERTs in the same
// transaction, under seqOrder's lock.
func listElsewhere(ctx context.Context, tx pgx.Tx, ids [2][]string) error {
	if len(ids[0])+len(ids[1]) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO observation_ids_elsewhere (id, seq)
		SELECT u::text, (SELECT o.seq FROM observations o WHERE o.uid = u LIMIT 1) FROM unnest($1::uuid[]) u
		UNION ALL SELECT x, (SELECT o.seq FROM observations o WHERE o.id_text = x LIMIT 1) FROM unnest($2::text[]) x
		ON CONFLICT DO NOTHING`, ids[0], ids[1])
	if err != nil {
		return fmt.Errorf("observations' ids elsewhere: %w", err)
	}
	return nil
}

// Observations calls fn for each observation in f's time range, oldest
// first (ties in the order they were stored).
func (s *Store) Observations(ctx context.Context, f store.ObservationFilter, fn func(o *observe.Observation) error) error {
	lo := int64(-1 << 63)
	if !f.Since.IsZero() {
		lo = f.Since.UnixNano()
	}
	where := `o.time_ns >= $1`
	args := []any{lo}
	hi := int64(math.MaxInt64)
	if !f.Until.IsZero() {
		where += ` AND o.time_ns < $2`
		args = append(args, f.Until.UnixNano())
		hi = f.Until.UnixNano()
	}
	if lo >= hi {
		return nil
	}
	// The blocks meeting the range, then the hot rows, merged (blocks.go),
	// in one snapshot.
	return s.snapshotRead(ctx, func(q pgQuerier) error {
		cold, err := coldObservations(ctx, q, `int8range(b.time_lo, b.time_hi, '[]') && int8range($1, $2)`, []any{lo, hi}, nil,
			func(_ int64, o *observe.Observation) bool { ns := o.Time.UnixNano(); return ns >= lo && ns < hi })
		if err != nil {
			return err
		}
		return mergeHot(cold, byTimeSeq, func(fn func(int64, *observe.Observation) error) error {
			return s.rowsWhereOn(ctx, q, where, `o.time_ns, o.seq`, args, fn)
		}, func(_ int64, o *observe.Observation) error { return fn(o) })
	})
}

// ObservationsOfAddress calls fn for each observation of one of addrs
// (exactly as stored: inet keeps an IPv4 address and its IPv4-mapped form
// apart, and an address with a zone has ip_zone set) with since <= time <
// until, in time order. The time range prunes the partitions and walks
// the (time_ns, seq) key.
func (s *Store) ObservationsOfAddress(ctx context.Context, addrs []netip.Addr, since, until time.Time, fn func(o *observe.Observation) error) error {
	if len(addrs) == 0 || !since.Before(until) {
		return nil
	}
	ips := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if a.Zone() != "" {
			return fmt.Errorf("observations of address %s: an address with a zone is never asked", a)
		}
		ips = append(ips, a.String())
	}
	lo, hi := since.UnixNano(), until.UnixNano()
	// The blocks' endpoints are compared in Go: an address equal as netip
	// compares it is equal as inet does (an IPv4 address and its
	// IPv4-mapped form apart), and a zone never matches (none is asked).
	// In one snapshot: a row compaction moves between the two reads is
	// in one of them.
	return s.snapshotRead(ctx, func(q pgQuerier) error {
		cold, err := coldObservations(ctx, q, `int8range(b.time_lo, b.time_hi, '[]') && int8range($1, $2)`, []any{lo, hi}, nil,
			func(_ int64, o *observe.Observation) bool {
				ns := o.Time.UnixNano()
				return ns >= lo && ns < hi && o.Endpoint.IP.Zone() == "" && slices.Contains(addrs, o.Endpoint.IP)
			})
		if err != nil {
			return err
		}
		return mergeHot(cold, byTimeSeq, func(fn func(int64, *observe.Observation) error) error {
			return s.rowsWhereOn(ctx, q, `o.time_ns >= $1 AND o.time_ns < $2 AND o.ip = ANY($3::text[]::inet[]) AND o.ip_zone IS NULL`,
				`o.time_ns, o.seq`, []any{lo, hi, ips}, fn)
		}, func(_ int64, o *observe.Observation) error { return fn(o) })
	})
}

// observationsWhere calls fn for each observation that where selects, in
// the order orderBy says.
func (s *Store) observationsWhere(ctx context.Context, where, orderBy string, args []any, fn func(o *observe.Observation) error) error {
	return s.observationsWhereOn(ctx, s.pool, where, orderBy, args, fn)
}

// observationsWhereOn is observationsWhere read through db (a
// transaction's, or the pool).
func (s *Store) observationsWhereOn(ctx context.Context, db pgQuerier, where, orderBy string, args []any, fn func(o *observe.Observation) error) error {
	return s.rowsWhereOn(ctx, db, where, orderBy, args, func(_ int64, o *observe.Observation) error { return fn(o) })
}

// rowsWhereOn is observationsWhereOn that hands fn each row's seq too.
func (s *Store) rowsWhereOn(ctx context.Context, db pgQuerier, where, orderBy string, args []any, fn func(seq int64, o *observe.Observation) error) error {
	q := `SELECT o.seq, ` + obsSelect + ` FROM observations o` + obsJoins + `
		LEFT JOIN sensor_chains c ON c.id = o.chain_ref WHERE ` + where
	r, err := db.Query(ctx, q+` ORDER BY `+orderBy, args...)
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() {
		var (
			seq                   int64
			o                     observe.Observation
			uid                   pgtype.UUID
			idText                *string
			timeNS, offset        int64
			uncertainty           *int64
			kind, ip, level       string
			sum, matched, place   []byte
			client, clientVersion []byte
			port, listenPort      int32
			have, total           int64
			marks, local          string
			chain                 *string
			chainSeq              *int64
			chainKey, prev, sig   []byte
			form                  *int16 // sensor_chains.form
		)
		if err := r.Scan(&seq, &uid, &idText, &timeNS, &o.Sensor.ID, &o.Sensor.Version, &o.Sensor.Vantage, &o.Network, &o.Method,
			&offset, &o.ClockSource, &kind, &sum, &matched, &ip, &port, &o.Endpoint.Transport,
			&o.Client.PeerID, &client, &clientVersion, &listenPort, &o.Client.NodeID, &o.Client.UserHash, &o.Client.GUID,
			&level, &have, &total, &o.Transcript.Bytes, &o.Transcript.Ref, &o.Transcript.SHA256,
			&place, &o.Jurisdiction.Agency, &o.Jurisdiction.Rule, &marks, &local,
			&uncertainty, &o.Sensor.Commit, &o.Sensor.Modified, &o.Sensor.Config,
			&chain, &chainSeq, &chainKey, &prev, &sig, &form); err != nil {
			return err
		}
		switch {
		case uid.Valid:
			o.ID = formatUUID(uid.Bytes)
		case idText != nil:
			o.ID = *idText
		}
		o.Time = time.Unix(0, timeNS).UTC()
		if uncertainty != nil { // NULL: unknown, whatever offset_ns holds
			o.ClockKnown, o.ClockOffset, o.ClockUncertainty = true, time.Duration(offset), time.Duration(*uncertainty)
		}
		o.Endpoint.Port, o.Client.ListenPort = uint16(port), uint16(listenPort)
		o.Client.Name, o.Client.Version = string(client), string(clientVersion)
		o.Possession.PiecesHave, o.Possession.PiecesTotal = int(have), int(total)
		k, err := hashkind.ParseKind(kind)
		if err == nil {
			o.Item.Hash, err = hashkind.New(k, sum)
		}
		if err == nil {
			o.Endpoint.IP, err = netip.ParseAddr(ip)
		}
		if err == nil {
			o.Possession.Level, err = observe.ParseLevel(level)
		}
		if err == nil && string(matched) != "[]" {
			err = json.Unmarshal(matched, &o.Item.Matched)
		}
		if err == nil && place != nil {
			err = parsePlace(place, &o.Place)
		}
		if err == nil {
			o.Marks, err = rowcodec.ParseMarks(marks)
		}
		if err == nil {
			o.Endpoint.Local, err = rowcodec.ParseAddrPort(local)
		}
		if chain != nil && chainSeq != nil {
			o.Chain = observe.Chain{Key: chainKey, ID: *chain, Seq: uint64(*chainSeq), Prev: prev, BatchSig: sig}
			if form != nil && *form == observe.Form2 {
				o.Chain.Form = observe.Form2
			}
		}
		if err != nil {
			return fmt.Errorf("observation %s: %w", o.ID, err)
		}
		if err := fn(seq, &o); err != nil {
			return err
		}
	}
	return r.Err()
}
