package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/bits"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

// obsColumns are the columns an INSERT writes: an observation's facets
// and place by reference (facets, places: migration 0006); the old
// columns that held them get empty text (obsRow).
const obsColumns = `id, time_ns, facet_id, sensor, sensor_version, vantage, clock_source, network, method, transport, possession,
	client, client_version, agency_rule, clock_offset_ns, item_id, matched, ip, port, peer_id, listen_port,
	node_id, user_hash, guid, pieces_have, pieces_total, transcript, transcript_ref, transcript_sha256, place_id, agency, marks, sensor_address,
	clock_uncertainty_ns, chain_ref, chain_seq, chain_prev, batch_sig`

// obsRow is one row's VALUES for obsColumns: literals where nothing need be
// bound (each bound value costs the driver a conversion, a copy and a
// lock); signedRow binds the chain's four columns too (migration 0021),
// which obsRow leaves NULL.
const (
	obsRow    = `(?,?,?,'','','','','','','','','','','',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,NULL,NULL,NULL)`
	signedRow = `(?,?,?,'','','','','','','','','','','',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
)

// obsSelect reads an observation back from observation_rows (which
// resolves facets and places), its item from items.
const obsSelect = `o.id, o.time_ns, o.sensor, o.sensor_version, o.vantage, o.network, o.method, o.clock_offset_ns,
	o.clock_source, i.kind, i.hash, o.matched, o.ip, o.port, o.transport, o.peer_id, o.client, o.client_version,
	o.listen_port, o.node_id, o.user_hash, o.guid, o.possession, o.pieces_have, o.pieces_total, o.transcript,
	o.transcript_ref, o.transcript_sha256, o.place, o.agency, o.agency_rule, o.marks, o.sensor_address,
	o.clock_uncertainty_ns, o.build_commit, o.build_modified, o.sensor_config,
	o.chain, o.chain_seq, o.chain_key, o.chain_prev, o.batch_sig, o.chain_form`

const (
	obsArgs    = 23                 // the ? of obsRow
	signedArgs = obsArgs + 4        // the ? of signedRow
	maxChunk   = 32766 / signedArgs // SQLite's default SQLITE_MAX_VARIABLE_NUMBER
)

// insertSQL is the INSERT of n observations, with their chains' columns
// when signed.
func insertSQL(n int, signed bool) string {
	row := obsRow
	if signed {
		row = signedRow
	}
	var b strings.Builder
	// OR FAIL: a failing row stops the statement without undoing the rows
	// before it, so SQLite keeps no statement journal (a copy of every page
	// the statement touches, a third of the cost otherwise); the enclosing
	// transaction is rolled back on any error, which undoes them anyway.
	b.WriteString(`INSERT OR FAIL INTO observations (` + obsColumns + `) VALUES `)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	// An observation already stored (same id) is skipped, so that a bus
	// that redelivers after a crash cannot duplicate evidence.
	b.WriteString(` ON CONFLICT (id) DO NOTHING`)
	return b.String()
}

// obsWriter is the one connection observations are written on, used
// through the driver directly: database/sql would convert and copy every
// one of the 30 arguments of every row again, a fifth of the cost. Its
// statements are prepared once and kept. Guarded by Store.wmu.
type obsWriter struct {
	conn  *sql.Conn
	stmts map[string]driver.Stmt
	args  []driver.NamedValue
}

type driverConn interface {
	driver.ConnPrepareContext
	driver.ConnBeginTx
}

func (w *obsWriter) stmt(ctx context.Context, dc driverConn, q string) (driver.Stmt, error) {
	if st := w.stmts[q]; st != nil {
		return st, nil
	}
	st, err := dc.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = st
	return st, nil
}

func (w *obsWriter) close() error {
	conn := w.conn
	if conn == nil {
		return nil
	}
	w.conn = nil
	_ = conn.Raw(func(any) error {
		for _, st := range w.stmts {
			st.Close()
		}
		return nil
	})
	w.stmts = nil
	return conn.Close()
}

func (w *obsWriter) exec(ctx context.Context, st driver.Stmt, args ...any) (driver.Result, error) {
	w.args = w.args[:0]
	for i, a := range args {
		w.args = append(w.args, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	return st.(driver.StmtExecContext).ExecContext(ctx, w.args)
}

// idValue is how an observation id is stored: a canonical (lower-case
// 8-4-4-4-12) UUID as its 16 bytes, anything else as the text given. The
// two never collide: SQLite never equates a BLOB and a TEXT.
func idValue(id string) any {
	if b, ok := rowcodec.ParseUUID(id); ok {
		return b[:]
	}
	return id
}

func idString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		if len(v) == 16 {
			return rowcodec.FormatUUID([16]byte(v)), nil
		}
	}
	return "", fmt.Errorf("stored observation id of type %T", v)
}

// facetKey is what a facets row holds.
type facetKey struct {
	sensor, version, vantage, clock        string
	network, method, transport, possession string
	client, clientVersion, rule            string
	commit                                 string
	modified                               bool
	config                                 string
}

func facetOf(o *observe.Observation) facetKey {
	return facetKey{o.Sensor.ID, o.Sensor.Version, o.Sensor.Vantage, o.ClockSource, o.Network, o.Method, o.Endpoint.Transport,
		o.Possession.Level.String(), o.Client.Name, o.Client.Version, o.Jurisdiction.Rule,
		o.Sensor.Commit, o.Sensor.Modified, o.Sensor.Config}
}

const (
	findFacet = `SELECT id FROM facets WHERE sensor = ? AND sensor_version = ? AND vantage = ? AND clock_source = ? AND network = ?
		AND method = ? AND transport = ? AND possession = ? AND client = ? AND client_version = ? AND agency_rule = ?
		AND build_commit = ? AND build_modified = ? AND sensor_config = ?`
	addFacet = `INSERT INTO facets (sensor, sensor_version, vantage, clock_source, network, method, transport, possession, client,
		client_version, agency_rule, build_commit, build_modified, sensor_config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	findPlace = `SELECT id FROM places WHERE place = ?`
	addPlace  = `INSERT INTO places (place) VALUES (?)`
	findItem  = `SELECT id FROM items WHERE hash = ? AND kind = ?`
	addItem   = `INSERT INTO items (hash, kind) VALUES (?, ?)`
	findChain = `SELECT id FROM sensor_chains WHERE chain = ? AND chain_key = ? AND form = ?`
	addChain  = `INSERT INTO sensor_chains (chain, chain_key, sensor, first_ns, form) VALUES (?, ?, ?, ?, ?)`
)

// chainID returns the sensor_chains row of o's chain in o's evidence
// form, adding it (with o's sensor and time: the chain's first
// observation stored) when there is none.
func (w *obsWriter) chainID(ctx context.Context, dc driverConn, o *observe.Observation) (int64, error) {
	id, err := w.queryInt(ctx, dc, findChain, o.Chain.ID, o.Chain.Key, chainForm(o))
	if !errors.Is(err, store.ErrNotFound) {
		return id, err
	}
	st, err := w.stmt(ctx, dc, addChain)
	if err != nil {
		return 0, err
	}
	res, err := w.exec(ctx, st, o.Chain.ID, o.Chain.Key, o.Sensor.ID, o.Time.UnixNano(), chainForm(o))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// chainKey is what a sensor_chains row holds: a chain's id and key, and
// the evidence form of its observations (migration 0023).
type chainKey struct {
	chain, key string
	form       uint8
}

// chainForm is sensor_chains.form of o: its evidence form, 1 or 2.
func chainForm(o *observe.Observation) int64 { return int64(max(o.Chain.Form, 1)) }

func (k *facetKey) args() []any {
	modified := int64(0)
	if k.modified {
		modified = 1
	}
	return []any{k.sensor, k.version, k.vantage, k.clock, k.network, k.method, k.transport, k.possession, k.client, k.clientVersion, k.rule,
		k.commit, modified, k.config}
}

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

// freshIDs are ids of rows added to items, facets and places in a
// transaction not yet committed.
type freshIDs struct {
	items  map[hashKey]int64
	facets map[facetKey]int64
	places map[string]int64
	chains map[chainKey]int64
}

func newFreshIDs() *freshIDs {
	return &freshIDs{items: map[hashKey]int64{}, facets: map[facetKey]int64{}, places: map[string]int64{}, chains: map[chainKey]int64{}}
}

// refIDs returns the items, facets and places rows of every observation
// (0 for no place), adding rows for values not seen before. New ids enter
// the caches only after the transaction commits (see commitIDs): a
// rolled-back id must not be reused.
func (s *Store) refIDs(ctx context.Context, dc driverConn, obs []observe.Observation, fresh *freshIDs) (items, facets, places, chains []int64, err error) {
	w := &s.obs
	items, facets, places, chains = make([]int64, len(obs)), make([]int64, len(obs)), make([]int64, len(obs)), make([]int64, len(obs))
	var (
		scratch []byte
		last    facetKey
		lastID  int64
	)
	for i := range obs {
		o := &obs[i]
		h := o.Item.Hash
		k := keyOf(h)
		id, ok := s.items[k]
		if !ok {
			id, ok = fresh.items[k]
		}
		if !ok {
			if id, err = w.refID(ctx, dc, findItem, addItem, h.Bytes(), h.Kind().String()); err != nil {
				return nil, nil, nil, nil, fmt.Errorf("item %s %s: %w", h.Kind(), h.Hex(), err)
			}
			fresh.items[k] = id
		}
		items[i] = id

		if o.Signed() {
			ck := chainKey{o.Chain.ID, string(o.Chain.Key), o.Chain.Form}
			id, ok = s.chains[ck]
			if !ok {
				id, ok = fresh.chains[ck]
			}
			if !ok {
				if id, err = w.chainID(ctx, dc, o); err != nil {
					return nil, nil, nil, nil, fmt.Errorf("chain %s of observation %s: %w", o.Chain.ID, o.ID, err)
				}
				fresh.chains[ck] = id
			}
			chains[i] = id
		}

		fk := facetOf(o)
		if lastID == 0 || fk != last { // neighbours often share them
			id, ok = s.facets[fk]
			if !ok {
				id, ok = fresh.facets[fk]
			}
			if !ok {
				if id, err = w.refID(ctx, dc, findFacet, addFacet, fk.args()...); err != nil {
					return nil, nil, nil, nil, fmt.Errorf("facets of observation %s: %w", o.ID, err)
				}
				fresh.facets[fk] = id
			}
			last, lastID = fk, id
		}
		facets[i] = lastID

		var found bool
		if scratch, found = rowcodec.AppendPlace(scratch[:0], &o.Place); !found {
			continue
		}
		id, ok = s.places[string(scratch)]
		if !ok {
			id, ok = fresh.places[string(scratch)]
		}
		if !ok {
			p := string(scratch)
			if id, err = w.refID(ctx, dc, findPlace, addPlace, p); err != nil {
				return nil, nil, nil, nil, fmt.Errorf("place %s: %w", p, err)
			}
			fresh.places[p] = id
		}
		places[i] = id
	}
	return items, facets, places, chains, nil
}

// refID returns the id of the row that find finds, adding it with add
// (both take args) when there is none.
func (w *obsWriter) refID(ctx context.Context, dc driverConn, find, add string, args ...any) (int64, error) {
	st, err := w.stmt(ctx, dc, find)
	if err != nil {
		return 0, err
	}
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(ctx, named)
	if err != nil {
		return 0, err
	}
	dest := make([]driver.Value, 1)
	err = rows.Next(dest)
	rows.Close()
	switch {
	case err == nil:
		id, ok := dest[0].(int64)
		if !ok {
			return 0, fmt.Errorf("id of type %T", dest[0])
		}
		return id, nil
	case !errors.Is(err, io.EOF):
		return 0, err
	}
	ins, err := w.stmt(ctx, dc, add)
	if err != nil {
		return 0, err
	}
	res, err := w.exec(ctx, ins, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// maxCachedIDs bounds each id cache; past it the cache starts over.
const maxCachedIDs = 1 << 20

func commitCache[K comparable](cache, fresh map[K]int64) {
	if len(cache)+len(fresh) > maxCachedIDs {
		clear(cache)
	}
	maps.Copy(cache, fresh)
}

// commitIDs adds ids of a committed transaction to the caches.
func (s *Store) commitIDs(fresh *freshIDs) {
	commitCache(s.items, fresh.items)
	commitCache(s.facets, fresh.facets)
	commitCache(s.places, fresh.places)
	commitCache(s.chains, fresh.chains)
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// InsertObservations stores obs in one transaction: all of them or, on any
// error, none. An observation with an empty ID is given one (written back
// into obs); one whose ID is already stored is skipped.
func (s *Store) InsertObservations(ctx context.Context, obs []observe.Observation) error {
	_, err := s.InsertObservationsCounted(ctx, obs)
	return err
}

// InsertObservationsCounted implements store.NewCounter.
func (s *Store) InsertObservationsCounted(ctx context.Context, obs []observe.Observation) (int, error) {
	if len(obs) == 0 {
		return 0, nil
	}
	for i := range obs {
		o := &obs[i]
		if err := o.Validate(); err != nil {
			return 0, &store.RefusedError{Index: i, Err: fmt.Errorf("observation %d (%s): %w", i, o.ID, err)}
		}
		if o.ID == "" {
			o.ID = observe.NewID(o.Time)
		}
	}
	// The leaves are hashed on a goroutine of their own while the rows
	// are written (the writer waits for it before it appends them): the
	// hashing then costs ingest CPU, not time.
	// A form 2 leaf is hashed from the sensor hash (the one ingest's gate
	// remembered, while no field it covers changed: KnownSensorHash),
	// which is kept (sensor) and handed on in obs once the batch is stored
	// (RememberSensorHash): ingest's check then does not compute it again.
	// (Not when it is the one remembered already: HashesRemembered.)
	var leaves, sensor [][32]byte
	var known []bool
	leafErr := make(chan error, 1)
	if s.cfg.NoEvidenceLog {
		leafErr <- nil
	} else {
		leaves, sensor, known = make([][32]byte, len(obs)), make([][32]byte, len(obs)), make([]bool, len(obs))
		go func() {
			for i := range obs {
				l, h, k, err := obs[i].HashesRemembered()
				if err != nil {
					leafErr <- fmt.Errorf("observation %d (%s): evidence log leaf: %w", i, obs[i].ID, err)
					return
				}
				leaves[i], sensor[i], known[i] = l, h, k
			}
			leafErr <- nil
		}()
	}
	waited := false
	defer func() {
		if !waited {
			<-leafErr
		}
	}()
	chunk := s.cfg.ObservationChunk
	fresh := newFreshIDs()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// An id purged under retention is not stored again: a replay must not
	// undo a purge (its leaf is in the log: appendLeaves adds none).
	rows := obs
	var keep []int // rows' indexes in obs, when some were left out
	if gone, err := s.purgedIDs(ctx, obs); err != nil {
		return 0, err
	} else if len(gone) > 0 {
		rows = nil
		for i := range obs {
			if !gone[obs[i].ID] {
				rows, keep = append(rows, obs[i]), append(keep, i)
			}
		}
	}
	w := &s.obs
	added := 0
	err := w.conn.Raw(func(c any) error {
		dc, ok := c.(driverConn)
		if !ok {
			return fmt.Errorf("sqlite driver connection %T cannot prepare and begin", c)
		}
		tx, err := dc.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		var before int64 // the largest seq before the batch: its rows come after
		if leaves != nil {
			if before, err = w.queryInt(ctx, dc, `SELECT COALESCE(MAX(seq), 0) FROM observations`); err != nil {
				tx.Rollback()
				return err
			}
		}
		n, last, err := s.insertObservations(ctx, dc, rows, chunk, fresh)
		if err != nil {
			tx.Rollback()
			return err
		}
		waited = true
		if err := <-leafErr; err != nil {
			tx.Rollback()
			return err
		}
		lv := leaves
		if keep != nil && leaves != nil {
			lv = make([][32]byte, len(keep))
			for j, i := range keep {
				lv[j] = leaves[i]
			}
		}
		if err := s.appendLeaves(ctx, dc, rows, lv, before, n, last); err != nil {
			tx.Rollback()
			return fmt.Errorf("evidence log: %w", err)
		}
		added = n
		return tx.Commit()
	})
	if err != nil {
		return 0, err
	}
	for i := range obs {
		if obs[i].Chain.Form == observe.Form2 && sensor != nil && !known[i] {
			obs[i].RememberSensorHash(sensor[i])
		}
	}
	s.commitIDs(fresh)
	s.kickCheckpoint()
	return added, nil
}

// purgedIDs returns the ids of obs purged under retention (called under
// wmu, which every purge takes).
func (s *Store) purgedIDs(ctx context.Context, obs []observe.Observation) (map[string]bool, error) {
	var some int
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM purged_observations)`).Scan(&some); err != nil || some == 0 {
		return nil, err
	}
	out := map[string]bool{}
	const chunk = 500
	for start := 0; start < len(obs); start += chunk {
		part := obs[start:min(start+chunk, len(obs))]
		args := make([]any, len(part))
		for i := range part {
			args[i] = idValue(part[i].ID)
		}
		q := `SELECT observation_id FROM purged_observations WHERE observation_id IN (?` + strings.Repeat(",?", len(part)-1) + `)`
		if err := eachRow(ctx, s.db, q, func(r *sql.Rows) error {
			var id any
			if err := r.Scan(&id); err != nil {
				return err
			}
			v, err := idString(id)
			out[v] = true
			return err
		}, args...); err != nil {
			return nil, fmt.Errorf("purged ids: %w", err)
		}
	}
	return out, nil
}

// insertObservations inserts obs and returns how many rows it added (an
// id already stored adds none) and the seq of the last row added (0: none,
// or the driver could not tell).
func (s *Store) insertObservations(ctx context.Context, dc driverConn, obs []observe.Observation, chunk int, fresh *freshIDs) (int, int64, error) {
	w := &s.obs
	itemIDs, facetIDs, placeIDs, chainIDs, err := s.refIDs(ctx, dc, obs, fresh)
	if err != nil {
		return 0, 0, err
	}
	added, last := 0, int64(0)
	args := make([]any, 0, min(chunk, len(obs))*signedArgs)
	var scratch []byte
	for start := 0; start < len(obs); {
		// Full chunks, then the rest in power-of-two pieces: few statements to keep.
		n := chunk
		if rest := len(obs) - start; rest < chunk {
			n = 1 << (bits.Len(uint(rest)) - 1)
		}
		signed := false
		for i := start; i < start+n && !signed; i++ {
			signed = obs[i].Signed()
		}
		st, err := w.stmt(ctx, dc, insertSQL(n, signed))
		if err != nil {
			return 0, 0, err
		}
		args = args[:0]
		for i := start; i < start+n; i++ {
			o := &obs[i]
			scratch = rowcodec.AppendMatched(scratch[:0], o.Item.Matched)
			args = append(args, obsValues(o, itemIDs[i], facetIDs[i], placeIDs[i], string(scratch))...)
			if signed {
				args = appendChainValues(args, o, chainIDs[i])
			}
		}
		res, err := w.exec(ctx, st, args...)
		if err != nil {
			return 0, 0, fmt.Errorf("observations %d..%d: %w", start, start+n-1, err)
		}
		rows, err := res.RowsAffected()
		if err != nil {
			rows = int64(n) // cannot tell: count none as a duplicate
		}
		if id, err := res.LastInsertId(); err == nil && rows > 0 {
			last = id
		}
		added += int(rows)
		start += n
	}
	return added, last, nil
}

// appendChainValues appends the bound values of a signed row's chain
// columns (signedRow): all NULL when no sensor signed o. Appended to the
// statement's arguments in place: no slice of their own an observation.
func appendChainValues(args []any, o *observe.Observation, chain int64) []any {
	if !o.Signed() {
		return append(args, nil, nil, nil, nil)
	}
	return append(args, chain, int64(o.Chain.Seq), o.Chain.Prev, nilIfEmpty(o.Chain.BatchSig))
}

// obsValues are the bound values of o's row (obsRow); matched is its
// matches' JSON.
func obsValues(o *observe.Observation, item, facet, place int64, matched string) []any {
	var placeID, uncertainty any
	if place != 0 {
		placeID = place
	}
	if o.ClockKnown {
		uncertainty = int64(o.ClockUncertainty)
	}
	return []any{
		idValue(o.ID), o.Time.UnixNano(), facet, int64(o.ClockOffset), item, matched,
		o.Endpoint.IP.String(), int64(o.Endpoint.Port), nilIfEmpty(o.Client.PeerID), int64(o.Client.ListenPort),
		nilIfEmpty(o.Client.NodeID), nilIfEmpty(o.Client.UserHash), nilIfEmpty(o.Client.GUID),
		int64(max(o.Possession.PiecesHave, -1)), int64(max(o.Possession.PiecesTotal, -1)),
		nilIfEmpty(o.Transcript.Bytes), o.Transcript.Ref, nilIfEmpty(o.Transcript.SHA256),
		placeID, o.Jurisdiction.Agency, rowcodec.MarksColumn(o.Marks), rowcodec.AddrPortColumn(o.Endpoint.Local),
		uncertainty,
	}
}

// Observations calls fn for each observation in f's time range, oldest
// first (ties in the order they were stored).
func (s *Store) Observations(ctx context.Context, f store.ObservationFilter, fn func(o *observe.Observation) error) error {
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !f.Since.IsZero() {
		lo = f.Since.UnixNano()
	}
	where := `o.time_ns >= ?`
	args := []any{lo}
	if !f.Until.IsZero() {
		hi = f.Until.UnixNano()
		where += ` AND o.time_ns < ?`
		args = append(args, hi)
	}
	return s.observationsWhere(ctx, where, `o.time_ns, o.seq`, args, fn)
}

// ObservationsOfAddress calls fn for each observation of one of addrs
// (exactly as stored) with since <= time < until, in time order: one
// range of the (ip, port, time) index per address.
func (s *Store) ObservationsOfAddress(ctx context.Context, addrs []netip.Addr, since, until time.Time, fn func(o *observe.Observation) error) error {
	if len(addrs) == 0 || !since.Before(until) {
		return nil
	}
	args := make([]any, 0, len(addrs)+2)
	for _, a := range addrs {
		if a.Zone() != "" {
			return fmt.Errorf("observations of address %s: an address with a zone is never asked", a)
		}
		args = append(args, a.String())
	}
	args = append(args, since.UnixNano(), until.UnixNano())
	where := `o.ip IN (?` + strings.Repeat(`, ?`, len(addrs)-1) + `) AND o.time_ns >= ? AND o.time_ns < ?`
	return s.observationsWhere(ctx, where, `o.time_ns, o.seq`, args, fn)
}

// observationsWhere calls fn for each observation that where selects, in
// the order orderBy says.
func (s *Store) observationsWhere(ctx context.Context, where, orderBy string, args []any, fn func(o *observe.Observation) error) error {
	q := `SELECT ` + obsSelect + ` FROM observation_rows o JOIN items i ON i.id = o.item_id WHERE ` + where
	r, err := s.db.QueryContext(ctx, q+` ORDER BY `+orderBy, args...)
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() {
		var (
			o                        observe.Observation
			id                       any
			timeNS                   int64
			offset, uncertainty      sql.NullInt64
			kind, matched, ip, level string
			sum                      []byte
			place                    sql.NullString
			port, listenPort         int64
			have, total              int64
			marks, local             string
			chain                    sql.NullString
			chainSeq, form           sql.NullInt64
			chainKey, prev, sig      []byte
		)
		if err := r.Scan(&id, &timeNS, &o.Sensor.ID, &o.Sensor.Version, &o.Sensor.Vantage, &o.Network, &o.Method,
			&offset, &o.ClockSource, &kind, &sum, &matched, &ip, &port, &o.Endpoint.Transport,
			&o.Client.PeerID, &o.Client.Name, &o.Client.Version, &listenPort, &o.Client.NodeID, &o.Client.UserHash, &o.Client.GUID,
			&level, &have, &total, &o.Transcript.Bytes, &o.Transcript.Ref, &o.Transcript.SHA256,
			&place, &o.Jurisdiction.Agency, &o.Jurisdiction.Rule, &marks, &local,
			&uncertainty, &o.Sensor.Commit, &o.Sensor.Modified, &o.Sensor.Config,
			&chain, &chainSeq, &chainKey, &prev, &sig, &form); err != nil {
			return err
		}
		o.Time = time.Unix(0, timeNS).UTC()
		if uncertainty.Valid {
			o.ClockKnown, o.ClockOffset, o.ClockUncertainty = true, time.Duration(offset.Int64), time.Duration(uncertainty.Int64)
		}
		o.Endpoint.Port, o.Client.ListenPort = uint16(port), uint16(listenPort)
		o.Possession.PiecesHave, o.Possession.PiecesTotal = int(have), int(total)
		o.ID, err = idString(id)
		var k hashkind.Kind
		if err == nil {
			k, err = hashkind.ParseKind(kind)
		}
		if err == nil {
			o.Item.Hash, err = hashkind.New(k, sum)
		}
		if err == nil {
			o.Endpoint.IP, err = netip.ParseAddr(ip)
		}
		if err == nil {
			o.Possession.Level, err = observe.ParseLevel(level)
		}
		if err == nil && matched != "[]" {
			err = json.Unmarshal([]byte(matched), &o.Item.Matched)
		}
		if err == nil && place.Valid {
			err = parsePlace(place.String, &o.Place)
		}
		if err == nil {
			o.Marks, err = rowcodec.ParseMarks(marks)
		}
		if err == nil {
			o.Endpoint.Local, err = rowcodec.ParseAddrPort(local)
		}
		scanChain(chain, chainSeq, chainKey, prev, sig, form, &o.Chain)
		if err != nil {
			return fmt.Errorf("observation %s: %w", o.ID, err)
		}
		if err := fn(&o); err != nil {
			return err
		}
	}
	return r.Err()
}
