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

const obsColumns = `id, time_ns, sensor, sensor_version, vantage, network, method, clock_offset_ns, clock_source,
	item_id, matched, ip, port, transport, peer_id, client, client_version, listen_port,
	node_id, user_hash, guid, possession, pieces_have, pieces_total, transcript, transcript_ref, transcript_sha256,
	place, agency, agency_rule`

// obsSelect reads an observation back, its item from items.
const obsSelect = `o.id, o.time_ns, o.sensor, o.sensor_version, o.vantage, o.network, o.method, o.clock_offset_ns,
	o.clock_source, i.kind, i.hash, o.matched, o.ip, o.port, o.transport, o.peer_id, o.client, o.client_version,
	o.listen_port, o.node_id, o.user_hash, o.guid, o.possession, o.pieces_have, o.pieces_total, o.transcript,
	o.transcript_ref, o.transcript_sha256, o.place, o.agency, o.agency_rule`

const (
	obsArgs  = 30
	maxChunk = 32766 / obsArgs // SQLite's default SQLITE_MAX_VARIABLE_NUMBER
)

// insertSQL is the INSERT of n observations.
func insertSQL(n int) string {
	var b strings.Builder
	// OR FAIL: a failing row stops the statement without undoing the rows
	// before it, so SQLite keeps no statement journal (a copy of every page
	// the statement touches, a third of the cost otherwise); the enclosing
	// transaction is rolled back on any error, which undoes them anyway.
	b.WriteString(`INSERT OR FAIL INTO observations (` + obsColumns + `) VALUES `)
	row := "(" + strings.Repeat("?,", obsArgs-1) + "?)"
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
			const hexDigits = "0123456789abcdef"
			var s [36]byte
			j := 0
			for i, c := range v {
				if i == 4 || i == 6 || i == 8 || i == 10 {
					s[j] = '-'
					j++
				}
				s[j], s[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
				j += 2
			}
			return string(s[:]), nil
		}
	}
	return "", fmt.Errorf("stored observation id of type %T", v)
}

// itemIDs returns the items row of every observation's hash, adding rows
// for new hashes. New ids enter the cache only after the transaction
// commits (see commitItems): a rolled-back id must not be reused.
func (s *Store) itemIDs(ctx context.Context, dc driverConn, obs []observe.Observation, fresh map[hashKey]int64) ([]int64, error) {
	w := &s.obs
	ids := make([]int64, 0, len(obs))
	for i := range obs {
		h := obs[i].Item.Hash
		k := keyOf(h)
		id, ok := s.items[k]
		if !ok {
			id, ok = fresh[k]
		}
		if !ok {
			var err error
			if id, err = s.itemID(ctx, dc, w, h); err != nil {
				return nil, fmt.Errorf("item %s %s: %w", h.Kind(), h.Hex(), err)
			}
			fresh[k] = id
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (s *Store) itemID(ctx context.Context, dc driverConn, w *obsWriter, h hashkind.Hash) (int64, error) {
	find, err := w.stmt(ctx, dc, `SELECT id FROM items WHERE hash = ? AND kind = ?`)
	if err != nil {
		return 0, err
	}
	rows, err := find.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{
		{Ordinal: 1, Value: h.Bytes()}, {Ordinal: 2, Value: h.Kind().String()}})
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
			return 0, fmt.Errorf("items id of type %T", dest[0])
		}
		return id, nil
	case !errors.Is(err, io.EOF):
		return 0, err
	}
	add, err := w.stmt(ctx, dc, `INSERT INTO items (kind, hash) VALUES (?, ?)`)
	if err != nil {
		return 0, err
	}
	res, err := w.exec(ctx, add, h.Kind().String(), h.Bytes())
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// maxCachedItems bounds the item id cache; past it the cache starts over.
const maxCachedItems = 1 << 20

func (s *Store) commitItems(fresh map[hashKey]int64) {
	if len(s.items)+len(fresh) > maxCachedItems {
		clear(s.items)
	}
	maps.Copy(s.items, fresh)
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
	if len(obs) == 0 {
		return nil
	}
	for i := range obs {
		o := &obs[i]
		if err := o.Validate(); err != nil {
			return fmt.Errorf("observation %d (%s): %w", i, o.ID, err)
		}
		if o.ID == "" {
			o.ID = observe.NewID(o.Time)
		}
	}
	chunk := s.cfg.ObservationChunk
	fresh := map[hashKey]int64{}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	w := &s.obs
	err := w.conn.Raw(func(c any) error {
		dc, ok := c.(driverConn)
		if !ok {
			return fmt.Errorf("sqlite driver connection %T cannot prepare and begin", c)
		}
		tx, err := dc.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		if err := s.insertObservations(ctx, dc, obs, chunk, fresh); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
	if err != nil {
		return err
	}
	s.commitItems(fresh)
	s.kickCheckpoint()
	return nil
}

func (s *Store) insertObservations(ctx context.Context, dc driverConn, obs []observe.Observation, chunk int, fresh map[hashKey]int64) error {
	w := &s.obs
	itemIDs, err := s.itemIDs(ctx, dc, obs, fresh)
	if err != nil {
		return err
	}
	args := make([]any, 0, min(chunk, len(obs))*obsArgs)
	var scratch []byte
	for start := 0; start < len(obs); {
		// Full chunks, then the rest in power-of-two pieces: few statements to keep.
		n := chunk
		if rest := len(obs) - start; rest < chunk {
			n = 1 << (bits.Len(uint(rest)) - 1)
		}
		st, err := w.stmt(ctx, dc, insertSQL(n))
		if err != nil {
			return err
		}
		args = args[:0]
		for i := start; i < start+n; i++ {
			o := &obs[i]
			scratch = rowcodec.AppendMatched(scratch[:0], o.Item.Matched)
			args = append(args,
				idValue(o.ID), o.Time.UnixNano(), o.Sensor.ID, o.Sensor.Version, o.Sensor.Vantage, o.Network, o.Method,
				int64(o.ClockOffset), o.ClockSource, itemIDs[i], string(scratch),
				o.Endpoint.IP.String(), int64(o.Endpoint.Port), o.Endpoint.Transport,
				nilIfEmpty(o.Client.PeerID), o.Client.Name, o.Client.Version, int64(o.Client.ListenPort),
				nilIfEmpty(o.Client.NodeID), nilIfEmpty(o.Client.UserHash), nilIfEmpty(o.Client.GUID),
				o.Possession.Level.String(), int64(max(o.Possession.PiecesHave, -1)), int64(max(o.Possession.PiecesTotal, -1)),
				nilIfEmpty(o.Transcript.Bytes), o.Transcript.Ref, nilIfEmpty(o.Transcript.SHA256),
				placeValue(&o.Place), o.Jurisdiction.Agency, o.Jurisdiction.Rule,
			)
		}
		if _, err := w.exec(ctx, st, args...); err != nil {
			return fmt.Errorf("observations %d..%d: %w", start, start+n-1, err)
		}
		start += n
	}
	return nil
}

// Observations calls fn for each observation in f's time range, oldest
// first (ties in the order they were stored).
func (s *Store) Observations(ctx context.Context, f store.ObservationFilter, fn func(o *observe.Observation) error) error {
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !f.Since.IsZero() {
		lo = f.Since.UnixNano()
	}
	q := `SELECT ` + obsSelect + ` FROM observations o JOIN items i ON i.id = o.item_id WHERE o.time_ns >= ?`
	args := []any{lo}
	if !f.Until.IsZero() {
		hi = f.Until.UnixNano()
		q += ` AND o.time_ns < ?`
		args = append(args, hi)
	}
	r, err := s.db.QueryContext(ctx, q+` ORDER BY o.time_ns, o.seq`, args...)
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() {
		var (
			o                        observe.Observation
			id                       any
			timeNS, offset           int64
			kind, matched, ip, level string
			sum                      []byte
			place                    sql.NullString
			port, listenPort         int64
			have, total              int64
		)
		if err := r.Scan(&id, &timeNS, &o.Sensor.ID, &o.Sensor.Version, &o.Sensor.Vantage, &o.Network, &o.Method,
			&offset, &o.ClockSource, &kind, &sum, &matched, &ip, &port, &o.Endpoint.Transport,
			&o.Client.PeerID, &o.Client.Name, &o.Client.Version, &listenPort, &o.Client.NodeID, &o.Client.UserHash, &o.Client.GUID,
			&level, &have, &total, &o.Transcript.Bytes, &o.Transcript.Ref, &o.Transcript.SHA256,
			&place, &o.Jurisdiction.Agency, &o.Jurisdiction.Rule); err != nil {
			return err
		}
		o.Time = time.Unix(0, timeNS).UTC()
		o.ClockOffset = time.Duration(offset)
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
		if err != nil {
			return fmt.Errorf("observation %s: %w", o.ID, err)
		}
		if err := fn(&o); err != nil {
			return err
		}
	}
	return r.Err()
}
