package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/observe"
)

// The observation values that repeat from row to row are written once, in
// the dictionaries of migration 0017, and each row holds their ids: its
// facets (sensor, build, clock source, network, method, transport, level,
// client, marks), its place with the agency it was routed to, its
// matches; and, since migration 0023, its sensor's clock offset.

// dictionary is one of those tables: its name, its columns after id and
// key, their array types for unnest, the SQL of the text array
// vigil_dict_key takes of a row (as the migration computes it), and the
// Go values of an observation's row, in column order. No value may be
// NULL (a nil []byte is sent as NULL: rawText gives the client's as
// empty, never nil): vigil_dict_key leaves NULL elements out, so that
// ARRAY['a', NULL], ARRAY[NULL, 'a'] and ARRAY['a'] share a key, and the
// row of one would be taken for the other's (ON CONFLICT on the key)
// before any NOT NULL constraint is checked.
type dictionary struct {
	table  string
	cols   []string
	types  []string
	keySQL string
	values func(o *observe.Observation) []any
}

// The dictionaries, in the order their ids are looked up (the same in
// every writer).
const (
	dictFacets = iota
	dictPlaces
	dictMatches
	dictClocks
	numDicts
)

var dictionaries = [numDicts]dictionary{
	dictFacets: {
		table: "observation_facets",
		cols: []string{"sensor", "sensor_version", "vantage", "build_commit", "build_modified", "sensor_config",
			"clock_source", "network", "method", "transport", "possession", "client", "client_version", "marks"},
		types: []string{"text", "text", "text", "text", "boolean", "text",
			"text", "text", "text", "text", "text", "bytea", "bytea", "text"},
		keySQL: `ARRAY[sensor, sensor_version, vantage, build_commit, build_modified::text, sensor_config,
			clock_source, network, method, transport, possession, encode(client, 'hex'), encode(client_version, 'hex'), marks]`,
		values: func(o *observe.Observation) []any {
			return []any{o.Sensor.ID, o.Sensor.Version, o.Sensor.Vantage, o.Sensor.Commit, o.Sensor.Modified, o.Sensor.Config,
				o.ClockSource, o.Network, o.Method, o.Endpoint.Transport, o.Possession.Level.String(),
				rawText(o.Client.Name), rawText(o.Client.Version), strings.Join(o.Marks, ",")}
		},
	},
	dictPlaces: {
		table:  "observation_places",
		cols:   []string{"place", "agency", "agency_rule"},
		types:  []string{"text", "text", "text"},
		keySQL: `ARRAY[place, agency, agency_rule]`,
		values: func(o *observe.Observation) []any {
			place, _ := placeValue(&o.Place).(string) // '' when nothing is known
			return []any{place, o.Jurisdiction.Agency, o.Jurisdiction.Rule}
		},
	},
	dictMatches: {
		table:  "observation_matches",
		cols:   []string{"matched"},
		types:  []string{"text"},
		keySQL: `ARRAY[matched]`,
		values: func(o *observe.Observation) []any { return []any{string(appendMatched(nil, o.Item.Matched))} },
	},
	// The sensor's clock offset (migration 0023), as written, known or
	// not (the row's uncertainty says which). The uncertainty is in the
	// row: it grows with the time since the measurement.
	dictClocks: {
		table:  "observation_clocks",
		cols:   []string{"offset_ns"},
		types:  []string{"bigint"},
		keySQL: `ARRAY[offset_ns::text]`,
		values: func(o *observe.Observation) []any { return []any{int64(o.ClockOffset)} },
	},
}

// appendKey appends to b a key of values that no other list of values
// has (each prefixed by its length): the caches' key.
func appendKey(b []byte, values []any) []byte {
	for _, v := range values {
		switch v := v.(type) {
		case string:
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case []byte:
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case bool:
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case int64:
			b = binary.AppendVarint(b, v)
		}
	}
	return b
}

// maxRawDictKey is the longest appendKey a cache keeps as it is; a
// longer one is kept as its SHA-256. A client name is whatever a peer
// sent (up to a message's length, a new one each connection if it
// likes), and a cache of a million such keys would hold all of them.
const maxRawDictKey = 256

// appendCacheKey appends to b the cache's key of values: 0 and their
// appendKey when it is short, else 1 and its SHA-256 (the leading byte
// keeps the two forms apart).
func appendCacheKey(b []byte, values []any) []byte {
	start := len(b)
	b = appendKey(append(b, 0), values)
	if len(b)-start-1 > maxRawDictKey {
		sum := sha256.Sum256(b[start+1:])
		b = append(append(b[:start], 1), sum[:]...)
	}
	return b
}

// insertSQL adds the rows of d not there yet and reads the id of each:
// (n, id) for the n-th row of the input (1-based). The ids are integers,
// drawn for good, and ON CONFLICT draws one for each row it is offered
// before it finds the row there: a row already committed is not offered
// (a store with empty caches would spend an id on every value it writes
// again; only a writer racing another for a new value still does).
func (d *dictionary) insertSQL() string {
	params := make([]string, len(d.cols))
	for i, t := range d.types {
		params[i] = "$" + strconv.Itoa(i+1) + "::" + t + "[]"
	}
	cols := strings.Join(d.cols, ", ")
	return `WITH input AS (SELECT u.*, vigil_dict_key(` + d.keySQL + `) AS key
			FROM unnest(` + strings.Join(params, ", ") + `) WITH ORDINALITY AS u(` + cols + `, n)),
		added AS (INSERT INTO ` + d.table + ` (key, ` + cols + `) SELECT key, ` + cols + ` FROM input
			WHERE NOT EXISTS (SELECT 1 FROM ` + d.table + ` t WHERE t.key = input.key) ORDER BY key
			ON CONFLICT (key) DO NOTHING RETURNING id, key)
		SELECT input.n, added.id FROM added JOIN input USING (key)
		UNION ALL
		SELECT input.n, t.id FROM ` + d.table + ` t JOIN input USING (key)`
}

// columnsOf turns rows of values into one array a column, typed for pgx.
func columnsOf(rows [][]any, width int) []any {
	out := make([]any, width)
	for c := 0; c < width; c++ {
		switch rows[0][c].(type) {
		case string:
			col := make([]string, len(rows))
			for i := range rows {
				col[i] = rows[i][c].(string)
			}
			out[c] = col
		case []byte:
			col := make([][]byte, len(rows))
			for i := range rows {
				col[i] = rows[i][c].([]byte)
			}
			out[c] = col
		case bool:
			col := make([]bool, len(rows))
			for i := range rows {
				col[i] = rows[i][c].(bool)
			}
			out[c] = col
		case int64:
			col := make([]int64, len(rows))
			for i := range rows {
				col[i] = rows[i][c].(int64)
			}
			out[c] = col
		}
	}
	return out
}

// dictRefs returns, for each dictionary, the id of each observation's
// row, adding the rows missing, and the ids it added or read (fresh) for
// the caches once the transaction commits (itemIDs says why not before).
func (s *Store) dictRefs(ctx context.Context, tx pgx.Tx, obs []observe.Observation) ([numDicts][]int64, [numDicts]map[string]int64, error) {
	var ids [numDicts][]int64
	var fresh [numDicts]map[string]int64
	for k := range dictionaries {
		d := &dictionaries[k]
		ids[k] = make([]int64, len(obs))
		keys := make([]string, len(obs))
		var missing map[string]int // key: the first observation that has it
		var order []string
		var buf []byte
		s.mu.Lock()
		for i := range obs {
			buf = appendCacheKey(buf[:0], d.values(&obs[i]))
			id, ok := s.dicts[k][string(buf)]
			if !ok {
				keys[i] = string(buf)
				if missing == nil {
					missing = map[string]int{}
				}
				if _, seen := missing[keys[i]]; !seen {
					missing[keys[i]] = i
					order = append(order, keys[i])
				}
			}
			ids[k][i] = id
		}
		s.mu.Unlock()
		if len(missing) == 0 {
			continue
		}
		got, err := s.addDictRows(ctx, tx, d, obs, missing, order)
		if err != nil {
			return ids, fresh, err
		}
		for i := range obs {
			if ids[k][i] == 0 {
				ids[k][i] = got[keys[i]]
			}
		}
		fresh[k] = got
	}
	return ids, fresh, nil
}

// addDictRows adds to d the rows of the observations missing names (by
// key, in order), and returns the id of each key. A row another
// transaction is adding at the same moment is neither added by this
// statement nor seen by its snapshot: the next round sees it.
func (s *Store) addDictRows(ctx context.Context, tx pgx.Tx, d *dictionary, obs []observe.Observation,
	missing map[string]int, order []string) (map[string]int64, error) {
	got := make(map[string]int64, len(order))
	for round := 0; len(order) > 0; round++ {
		if round == 3 {
			return nil, fmt.Errorf("%s: %d rows neither added nor found after %d rounds", d.table, len(order), round)
		}
		rows := make([][]any, len(order))
		for i, key := range order {
			rows[i] = d.values(&obs[missing[key]])
		}
		r, err := tx.Query(ctx, d.insertSQL(), columnsOf(rows, len(d.cols))...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.table, err)
		}
		for r.Next() {
			var n int64
			var id int64
			if err := r.Scan(&n, &id); err != nil {
				r.Close()
				return nil, fmt.Errorf("%s: %w", d.table, err)
			}
			if n < 1 || n > int64(len(order)) {
				r.Close()
				return nil, fmt.Errorf("%s: row %d of %d", d.table, n, len(order))
			}
			got[order[n-1]] = id
		}
		r.Close()
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", d.table, err)
		}
		rest := order[:0:0]
		for _, key := range order {
			if _, ok := got[key]; !ok {
				rest = append(rest, key)
			}
		}
		order = rest
	}
	return got, nil
}

// commitDicts keeps the ids of a committed transaction in the caches.
func (s *Store) commitDicts(fresh [numDicts]map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, f := range fresh {
		if len(f) == 0 {
			continue
		}
		if len(s.dicts[k])+len(f) > maxCachedItems {
			clear(s.dicts[k])
		}
		for key, id := range f {
			s.dicts[k][key] = id
		}
	}
}
