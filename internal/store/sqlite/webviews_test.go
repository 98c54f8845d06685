package sqlite

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// Both plans of WebTargets (walking an index in the order asked, or
// sorting the matches) list what Targets lists, on targets written
// straight into the tables: routed, assigned, shared, merged, with ties.
func TestWebTargetsPlans(t *testing.T) {
	st, _ := openTemp(t, DefaultConfig())
	ctx := context.Background()
	r := mrand.New(mrand.NewPCG(5, 5))
	agencies := []string{"ag-a", "ag-b", "ag-c", ""}
	day := int64(24 * time.Hour)
	base := time.Now().UnixNano() / day * day
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 600 {
		id := fmt.Sprintf("T-%d", i)
		route := agencies[r.IntN(len(agencies))]
		assigned := ""
		if i%17 == 0 {
			assigned = "ag-c"
		}
		shares := "[]"
		access := []string{}
		eff := route
		if assigned != "" {
			eff = assigned
		}
		if eff != "" {
			access = append(access, eff)
		}
		if i%23 == 0 && eff != "ag-b" {
			shares, access = `[{"agency":"ag-b"}]`, append(access, "ag-b")
		}
		var merged any
		if i%29 == 0 {
			merged, access = "T-1", nil
		}
		score := float64(r.IntN(40)) // ties
		last := base - r.Int64N(20)*day - r.Int64N(day)
		first := last - r.Int64N(30*day)
		if _, err := tx.Exec(`INSERT INTO targets (id, seq, merged_into, agency, assigned, score, endpoints, max_level, observations,
			first_ns, last_ns, networks, country, subdivision, shares) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			id, i, merged, route, assigned, score, 1+r.IntN(3), r.IntN(5), 1+r.IntN(50), first, last, ",bittorrent,", "FR", "75", shares); err != nil {
			t.Fatal(err)
		}
		for _, a := range access {
			if _, err := tx.Exec(`INSERT INTO target_access (agency, target, score, last_ns, first_ns) VALUES (?,?,?,?,?)`, a, id, score, last, first); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Updates through the triggers: some move day, some die.
	if _, err := tx.Exec(`UPDATE targets SET last_ns = last_ns + 86400000000000, observations = observations + 1 WHERE seq % 7 = 0`); err != nil {
		t.Fatal(err)
	}
	// As the analysis does, the access rows follow.
	if _, err := tx.Exec(`UPDATE target_access SET last_ns = last_ns + 86400000000000 WHERE target IN (SELECT id FROM targets WHERE seq % 7 = 0)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	scopes := []analysis.Scope{analysis.AllAgencies, {Agencies: []string{"ag-a"}}, {Agencies: []string{"ag-b"}},
		{Agencies: []string{"ag-a", "ag-b"}}, {Agencies: []string{"ag-none"}}}
	for _, sc := range scopes {
		n, err := st.CountTargets(ctx, sc)
		if err != nil {
			t.Fatal(err)
		}
		_, want, err := st.Targets(ctx, analysis.TargetQuery{Scope: sc, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("scope %v: CountTargets %d, Targets %d", sc, n, want)
		}
		for _, sort := range []string{"score", "last_seen", "first_seen"} {
			for _, q := range []analysis.TargetQuery{{Limit: 50}, {Limit: 13, Offset: 40}, {Limit: 30, MinScore: 20},
				{Limit: 20, Since: time.Unix(0, base-5*day)}, {Limit: 1000}} {
				q.Scope, q.Sort = sc, sort
				want, wantN, err := st.Targets(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, walk := range []bool{false, true} {
					if walk && sort == "score" && !sc.All {
						continue // no such plan: target_access_rank is already in order
					}
					got, n, err := st.webTargets(ctx, q, true, walk)
					if err != nil {
						t.Fatalf("%+v walk %v: %v", q, walk, err)
					}
					if n != wantN || !reflect.DeepEqual(idsOf(got), idsOf(want)) {
						t.Errorf("%+v walk %v: %d %v, want %d %v", q, walk, n, idsOf(got), wantN, idsOf(want))
					}
				}
			}
		}
	}
}

func idsOf(ts []analysis.TargetSummary) []string {
	out := make([]string, len(ts))
	for i := range ts {
		out[i] = ts[i].ID
	}
	return out
}
