package postgres

import (
	"context"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/obsblock"
)

// blockStoredIDs returns the ids of obs that a block holds in their
// windows (migration 0030): the rows compaction moved there, which the
// hot rows' unique index and ingest's probe of the id's window no longer
// see. An id stored outside its window is listed in
// observation_ids_elsewhere, which compaction leaves alone, and found
// there. It reads the ids alone (obsblock's IDs) of the blocks whose time
// range meets a window and whose UUID range holds the id; a batch whose
// windows meet no block (a live batch: blocks hold settled, older rows)
// costs one probe of the blocks' time index. Called under seqOrder's
// lock, which compaction takes too: no row moves between this look and
// the INSERT's.
func blockStoredIDs(ctx context.Context, tx pgx.Tx, obs []observe.Observation) (map[string]bool, error) {
	var los, his []int64
	var uids []pgtype.UUID
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range obs {
		uid, _ := idValues(obs[i].ID)
		t, ok := idNS(uid)
		if !ok {
			continue
		}
		los, his, uids = append(los, t-idWindowNS), append(his, t+idWindowNS), append(uids, uid)
		lo, hi = min(lo, t-idWindowNS), max(hi, t+idWindowNS)
	}
	if len(uids) == 0 {
		return nil, nil
	}
	var any bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM observation_blocks
		WHERE int8range(time_lo, time_hi, '[]') && int8range($1, $2))`, lo, hi).Scan(&any); err != nil {
		return nil, fmt.Errorf("ids in blocks: %w", err)
	}
	if !any {
		return nil, nil
	}
	r, err := tx.Query(ctx, `SELECT DISTINCT b.time_lo, b.seq_lo, b.body FROM unnest($1::bigint[], $2::bigint[], $3::uuid[]) AS w(lo, hi, u)
		JOIN observation_blocks b ON int8range(b.time_lo, b.time_hi, '[]') && int8range(w.lo, w.hi) AND w.u BETWEEN b.uid_lo AND b.uid_hi`,
		los, his, uids)
	if err != nil {
		return nil, fmt.Errorf("ids in blocks: %w", err)
	}
	defer r.Close()
	want := make(map[string]bool, len(uids))
	for _, u := range uids {
		want[formatUUID(u.Bytes)] = true
	}
	out := map[string]bool{}
	for r.Next() {
		var tlo, seqLo int64
		var body []byte
		if err := r.Scan(&tlo, &seqLo, &body); err != nil {
			return nil, fmt.Errorf("ids in blocks: %w", err)
		}
		ids, err := obsBlockIDs(body)
		if err != nil {
			return nil, fmt.Errorf("ids in the block of seq %d: %w", seqLo, err)
		}
		for _, id := range ids {
			if want[id] {
				out[id] = true
			}
		}
	}
	return out, r.Err()
}

// obsBlockIDs reads a block's ids alone.
func obsBlockIDs(body []byte) ([]string, error) {
	b, err := obsblock.Open(body)
	if err != nil {
		return nil, err
	}
	return b.IDs()
}
