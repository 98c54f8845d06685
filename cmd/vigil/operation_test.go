package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/pipeline"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

var opAgencies = []string{"fr-lyon", "fr-lille", "fr-marseille"}

// operationStore makes a store of 12 targets: target k at its own
// address, with 1 + k%4 files (categories 1 to 3 in turn), routed to
// opAgencies[k%3], complete when k is even (partial otherwise), and
// flagged known_offender when k%4 is 1 or 2; it returns the environment
// and every target as 'vigil targets --json' prints it.
func operationStore(t *testing.T) (map[string]string, []targetJSON) {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db"), "USER": "tester"}
	var obs []observe.Observation
	r := rand.New(rand.NewPCG(15, 30))
	at := time.Now().UTC().Add(-2 * time.Hour)
	n := 0
	for k := range 12 {
		for f := range 1 + k%4 {
			o := storetest.Observation(r, at.Add(time.Duration(n)*time.Second), n)
			o.Endpoint.IP, o.Endpoint.Port = netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + k)}), uint16(6000+k)
			o.Item.Matched = []observe.Match{{List: "national", Category: fmt.Sprint(1 + (k+f)%3)}}
			o.Marks, o.Method = nil, observe.MethodPeerProbe
			o.Jurisdiction = observe.Jurisdiction{Agency: opAgencies[k%3], Rule: "test"}
			if k%2 == 0 {
				o.Possession.Level = observe.Complete
			}
			obs = append(obs, o)
			n++
		}
	}
	// Stored through ingest as a sensor's would be, not with 'vigil
	// observations import': an imported line is unsigned_import and shows
	// no level above announced (docs/scoring.md), and the --level
	// criterion must have complete targets to select.
	st, err := sqlite.Open(context.Background(), env["VIGIL_DB"], sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := pipeline.ImportObservations(context.Background(), st, obs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, a := range opAgencies {
		mustRun(t, env, "", "agency", "add", "--id", a, "--name", a)
	}
	all := allTargets(t, env)
	if len(all) != 12 {
		t.Fatalf("%d targets, want 12", len(all))
	}
	for _, x := range all {
		k := int(x.Endpoints[0].Port) - 6000
		if k%4 == 1 || k%4 == 2 {
			mustRun(t, env, "", "target", "flag", x.ID, "--flag", analysis.FlagKnownOffender, "--why", "synthetic test flag")
		}
	}
	return env, allTargets(t, env)
}

func allTargets(t *testing.T, env map[string]string) []targetJSON {
	t.Helper()
	var all []targetJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "targets", "--json", "--limit", "1000")), &all); err != nil {
		t.Fatal(err)
	}
	return all
}

// files counts a target's distinct watched files from its list of files
// (quarantined ones left out, as the score leaves them).
func files(x targetJSON) int {
	n := 0
	for _, f := range x.Files {
		if !f.Quarantined {
			n++
		}
	}
	return n
}

type createdJSON struct {
	casework.Operation
	Matching int `json:"matching"`
}

// What an operation selects is what its criteria select, counted here
// from the whole target list without the store's filters: for each of
// several sets of criteria, the same targets, highest scores first, and
// the same number matching.
func TestOperationSelectsWhatItsCriteriaSay(t *testing.T) {
	env, all := operationStore(t)
	for _, c := range []struct {
		flags []string
		keep  func(x targetJSON) bool
	}{
		{[]string{"--min-files", "3"}, func(x targetJSON) bool { return files(x) >= 3 }},
		{[]string{"--known-offender"}, func(x targetJSON) bool { return slices.Contains(x.Flags, analysis.FlagKnownOffender) }},
		{[]string{"--access-to-children"}, func(x targetJSON) bool { return slices.Contains(x.Flags, analysis.FlagChildAccess) }},
		{[]string{"--category", "3", "--min-files", "2"}, func(x targetJSON) bool { return slices.Contains(x.Categories, "3") && files(x) >= 2 }},
		{[]string{"--jurisdiction", "fr-lille", "--level", "complete"}, func(x targetJSON) bool {
			return x.Jurisdiction == "fr-lille" && x.MaxLevel >= observe.Complete
		}},
		{[]string{"--known-offender", "--network", "bittorrent", "--min-score", fmt.Sprint(all[len(all)/2].Score)}, func(x targetJSON) bool {
			return slices.Contains(x.Flags, analysis.FlagKnownOffender) && slices.Contains(x.Networks, "bittorrent") && x.Score >= all[len(all)/2].Score
		}},
		{[]string{"--network", "ed2k"}, func(x targetJSON) bool { return slices.Contains(x.Networks, "ed2k") }},
	} {
		var want []string
		for _, x := range all { // all is ranked by score
			if c.keep(x) {
				want = append(want, x.ID)
			}
		}
		if len(want) == 0 && slices.Contains(c.flags, "--level") {
			t.Fatalf("%v selects no target of the store: the case tests nothing", c.flags)
		}
		args := append([]string{"operation", "create", "--name", "test", "--dry-run", "--json"}, c.flags...)
		var got createdJSON
		if err := json.Unmarshal([]byte(mustRun(t, env, "", args...)), &got); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range got.Targets {
			ids = append(ids, x.Target)
		}
		if !slices.Equal(ids, want) || got.Matching != len(want) {
			t.Errorf("%v: selected %v (%d matching), counted %v", c.flags, ids, got.Matching, want)
		}
	}
	// --limit keeps the highest scores; a dry run keeps nothing.
	var got createdJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "operation", "create", "--name", "Top", "--limit", "4", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Targets) != 4 || got.Matching != 12 || got.ID != 1 || got.Targets[3].Target != all[3].ID || got.Targets[0].Score != all[0].Score ||
		got.Targets[0].Level != all[0].MaxLevel.String() {
		t.Fatalf("--limit 4: %+v, want the 4 highest of 12 (ids from 1: dry runs keep nothing)", got)
	}
	if out := mustRun(t, env, "", "operation", "list"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "Top") {
		t.Fatalf("list: %q, want one operation", out)
	}
}

// Shared out by jurisdiction, each target goes to its routing's service,
// but a target another service claimed is left, reported as held; the
// board counts per service, with the case steps; a local service sees its
// row only, and a service given nothing sees nothing, on record.
func TestOperationAssignAndBoard(t *testing.T) {
	env, all := operationStore(t)
	var op createdJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "operation", "create", "--name", "Aurore", "--min-files", "2", "--json")), &op); err != nil {
		t.Fatal(err)
	}
	if len(op.Targets) != 9 {
		t.Fatalf("%d targets, want 9 (3 of 12 have one file)", len(op.Targets))
	}
	routed := map[string]string{}
	for _, x := range all {
		routed[x.ID] = x.Jurisdiction
	}
	held := op.Targets[0].Target
	holder := opAgencies[(slices.Index(opAgencies, routed[held])+1)%3]
	mustRun(t, env, "", "claim", "--target", held, "--agency", holder)
	// A local service cannot share an operation out, nor make one.
	if code, _, errOut := vigilRun(t, env, "", "operation", "assign", "--operation", "1", "--by-jurisdiction", "--as", "fr-lyon"); code == exitOK ||
		!strings.Contains(errOut, "national office") {
		t.Fatalf("fr-lyon assigning: exit %d %s", code, errOut)
	}
	if code, _, _ := vigilRun(t, env, "", "operation", "create", "--name", "mine", "--as", "fr-lyon"); code == exitOK {
		t.Fatal("fr-lyon created an operation")
	}
	out := mustRun(t, env, "", "operation", "assign", "--operation", "1", "--by-jurisdiction")
	if want := fmt.Sprintf("%s: held by %s, left (not assigned to %s)", held, holder, routed[held]); !strings.Contains(out, want) {
		t.Fatalf("assign:\n%s\nwant %q", out, want)
	}
	if c := strings.Count(out, "assigned to"); c != 9 { // 8 assigned, and "not assigned to" of the held one
		t.Fatalf("assign:\n%s", out)
	}
	// The holder's claim stays; the held target, given to its holder, is assigned.
	mustRun(t, env, "", "claim", "--target", held, "--agency", holder) // a renewal: still the holder's
	if out := mustRun(t, env, "", "operation", "assign", "--operation", "1", "--target", held, "--agency", holder); !strings.Contains(out, "assigned to "+holder) {
		t.Fatalf("assigning the held target to its holder: %s", out)
	}
	// Again by jurisdiction: nothing left to assign; one target to another service: refused, named.
	if out := mustRun(t, env, "", "operation", "assign", "--operation", "1", "--by-jurisdiction"); out != "" {
		t.Fatalf("a second share-out changed something:\n%s", out)
	}
	other := op.Targets[1].Target
	if out := mustRun(t, env, "", "operation", "assign", "--operation", "1", "--target", other, "--agency", holder); holder != routed[other] &&
		!strings.Contains(out, "already assigned to "+routed[other]) {
		t.Fatalf("re-assigning %s to %s: %s", other, holder, out)
	}
	// A case moves on the board.
	steps := op.Targets[2].Target
	mustRun(t, env, "", "claim", "--target", steps, "--agency", routed[steps])
	mustRun(t, env, "", "case", "step", "--target", steps, "--agency", routed[steps], "--step", "search")
	mustRun(t, env, "", "case", "step", "--target", steps, "--agency", routed[steps], "--step", "closed", "--outcome", "arrest", "--outcome", "victims_identified")

	var board casework.Board
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "operation", "show", "--operation", "1", "--json")), &board); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, x := range op.Targets {
		want[routed[x.Target]]++
	}
	want[routed[held]]--
	want[holder]++
	for _, r := range board.Rows {
		if r.Targets != want[r.Agency] {
			t.Errorf("row %s: %d targets, want %d", r.Agency, r.Targets, want[r.Agency])
		}
		if r.Agency == routed[steps] && (r.Steps[casework.StepClosed] != 1 || r.Outcomes["arrest"] != 1 || r.Outcomes["victims_identified"] != 1) {
			t.Errorf("row %s: %+v, want one closed case with its arrest and victims identified", r.Agency, r)
		}
	}
	if len(board.Rows) != 3 || board.Total.Targets != 9 || board.Total.Steps[casework.StepNone] != 8 || board.Total.Outcomes["arrest"] != 1 {
		t.Fatalf("board %+v", board)
	}
	// fr-lyon sees its own row only.
	var local casework.Board
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "operation", "show", "--operation", "1", "--as", "fr-lyon", "--json")), &local); err != nil {
		t.Fatal(err)
	}
	if len(local.Rows) != 1 || local.Rows[0].Agency != "fr-lyon" || local.Total.Targets != want["fr-lyon"] || len(local.Operation.Targets) != want["fr-lyon"] {
		t.Fatalf("fr-lyon's board: %+v", local)
	}
	for _, x := range local.Operation.Targets {
		if x.Agency != "fr-lyon" {
			t.Fatalf("fr-lyon's board names %s's target %s", x.Agency, x.Target)
		}
	}
	// A target of fr-lyon's row handed off to another service leaves the
	// row: fr-lyon no longer sees it (nor, then, its case).
	gone := ""
	for _, x := range local.Operation.Targets {
		if x.Target != held && x.Target != steps {
			gone = x.Target
		}
	}
	if gone == "" {
		t.Fatalf("fr-lyon's board has no target to hand off: %+v", local)
	}
	to := opAgencies[(slices.Index(opAgencies, "fr-lyon")+1)%3]
	mustRun(t, env, "", "target", "share", gone, "--agency", to, "--assign", "--why", "hand-off agreed")
	var after casework.Board
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "operation", "show", "--operation", "1", "--as", "fr-lyon", "--json")), &after); err != nil {
		t.Fatal(err)
	}
	if after.Total.Targets != local.Total.Targets-1 || slices.ContainsFunc(after.Operation.Targets, func(x casework.OperationTarget) bool { return x.Target == gone }) {
		t.Fatalf("fr-lyon's board after %s was handed off to %s: %+v", gone, to, after)
	}
	// A curious service the operation gave nothing: not found, as an
	// operation that does not exist, and the refusal is on record.
	mustRun(t, env, "", "agency", "add", "--id", "fr-rennes", "--name", "fr-rennes")
	code, stdout, errOut := vigilRun(t, env, "", "operation", "show", "--operation", "1", "--as", "fr-rennes")
	_, _, errNone := vigilRun(t, env, "", "operation", "show", "--operation", "99", "--as", "fr-rennes")
	if code == exitOK || stdout != "" || strings.ReplaceAll(errOut, "operation 1", "operation 99") != errNone {
		t.Fatalf("fr-rennes reading the board: exit %d\n%s\n%s\n(an operation that does not exist: %s)", code, stdout, errOut, errNone)
	}
	if out := mustRun(t, env, "", "operation", "list", "--as", "fr-rennes"); out != "" {
		t.Fatalf("fr-rennes lists %q", out)
	}
	// The outcomes in figures, per service and per operation, and
	// suppressed below a minimum cell.
	csvOut := mustRun(t, env, "", "stats", "--outcomes", "--format", "csv")
	if want := routed[steps] + ",1,1,1,0,0,1,0,\n"; !strings.Contains(csvOut, want) || !strings.HasPrefix(csvOut, "group,cases,closed,arrest,") ||
		!strings.HasSuffix(csvOut, "total,1,1,1,0,0,1,0,\n") {
		t.Fatalf("stats --outcomes:\n%s\nwant the line %q and the total", csvOut, want)
	}
	if out := mustRun(t, env, "", "stats", "--outcomes", "--min-cell", "2", "--format", "csv"); !strings.Contains(out, routed[steps]+",,,,,,,,cases;closed;") {
		t.Fatalf("stats --outcomes --min-cell 2:\n%s", out)
	}
	var byOp casework.OutcomeReport
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "stats", "--outcomes", "--group", "operation", "--json")), &byOp); err != nil {
		t.Fatal(err)
	}
	if len(byOp.Rows) != 1 || byOp.Rows[0].Group != "1 Aurore" || *byOp.Rows[0].Cases != 1 || *byOp.Rows[0].Outcomes["victims_identified"] != 1 {
		t.Fatalf("stats --outcomes --group operation: %+v", byOp)
	}
	if code, _, _ := vigilRun(t, env, "", "stats", "--outcomes", "--by", "week"); code != exitUsage {
		t.Fatalf("stats --outcomes --by week: exit %d, want a usage error", code)
	}
	auditOut := mustRun(t, env, "", "audit", "list", "--json")
	var recs []struct {
		Action string          `json:"action"`
		Object string          `json:"object"`
		Detail json.RawMessage `json:"detail"`
	}
	dec := json.NewDecoder(strings.NewReader(auditOut))
	for dec.More() {
		recs = append(recs, struct {
			Action string          `json:"action"`
			Object string          `json:"object"`
			Detail json.RawMessage `json:"detail"`
		}{})
		if err := dec.Decode(&recs[len(recs)-1]); err != nil {
			t.Fatal(err)
		}
	}
	var denied, boards, creates, assigns int
	for _, r := range recs {
		switch {
		case r.Action == "denied" && r.Object == "operation:1" && strings.Contains(string(r.Detail), "fr-rennes"):
			denied++
		case r.Action == "denied" && strings.Contains(string(r.Detail), `"fr-lyon"`):
			denied++
		case r.Action == "list_targets" && r.Object == "operation:1" && strings.Contains(string(r.Detail), `"as":""`) && strings.Contains(string(r.Detail), held):
			boards++
		case r.Action == "list_targets" && r.Object == "operations" && strings.Contains(string(r.Detail), `"create"`):
			creates++
		case r.Action == "change" && r.Object == "operation:1" && strings.Contains(string(r.Detail), held):
			assigns++
		}
	}
	if denied != 3 || boards != 1 || creates != 1 || assigns != 4 {
		t.Fatalf("audit: %d refusals (want fr-lyon's assign and create, fr-rennes's read), %d national board reads naming the targets (want 1), %d creations (want 1), %d assignments naming the targets (want 4)\n%s",
			denied, boards, creates, assigns, auditOut)
	}
}

// An operation keeps the target ids it selected; the analysis may merge
// two of them into one person afterwards, and a service then claims the
// person (under the id it is in now). Assigning the operation's older id
// to another service must be refused as held: it is the same person.
// Hostile case: the claim on the person's current id was not seen from
// the older id, and the person was shared out to a second service.
func TestOperationAssignSeesTheClaimAcrossAMerge(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := analysis.DefaultConfig()
	cfg.SaveInterval = 0
	e, err := analysis.New(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(15, 31))
	at := time.Now().UTC().Add(-3 * time.Hour)
	seq := 0
	add := func(k int, uh byte, when time.Time) {
		t.Helper()
		seq++
		o := storetest.Observation(r, when, seq)
		o.Network, o.Method, o.Marks = observe.NetED2K, observe.MethodPeerProbe, nil
		o.Endpoint.IP, o.Endpoint.Port = netip.AddrFrom4([4]byte{192, 0, 2, byte(40 + k)}), uint16(4662+k)
		h := bytes.Repeat([]byte{uh}, 16)
		h[5], h[14] = 14, 111 // an eMule user hash's marks
		o.Client = observe.Client{Name: "aMule", Version: "2.3.3", ListenPort: uint16(4662 + k), UserHash: h}
		o.Jurisdiction = observe.Jurisdiction{Agency: "fr-lyon", Rule: "test"}
		obs := []observe.Observation{o}
		if err := st.InsertObservations(ctx, obs); err != nil {
			t.Fatal(err)
		}
		if err := e.Add(ctx, obs); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	add(0, 0xA1, at)
	add(1, 0xB2, at)
	ts, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 10})
	if err != nil || len(ts) != 2 {
		t.Fatalf("targets %d %v, want 2", len(ts), err)
	}
	ops := operationsOf(st)
	op, err := ops.Create(ctx, casework.Operation{Name: "Merge", Targets: []casework.OperationTarget{{Target: ts[0].ID}, {Target: ts[1].ID}}}, "national")
	if err != nil {
		t.Fatal(err)
	}
	add(1, 0xA1, at.Add(time.Hour)) // address 1 now says address 0's user hash: one person
	after, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 10})
	if err != nil || len(after) != 1 {
		t.Fatalf("targets after the shared user hash: %d %v, want 1 (a merge to test)", len(after), err)
	}
	person, old := after[0].ID, ""
	for _, ot := range op.Targets {
		if ot.Target != person {
			old = ot.Target
		}
	}
	if old == "" {
		t.Fatalf("the operation's targets %+v: none merged into %s", op.Targets, person)
	}
	if _, err := claimsOf(st).Claim(ctx, person, "fr-lille", "u2", "03"); err != nil {
		t.Fatal(err)
	}
	a, err := ops.Assign(ctx, op.ID, old, "fr-lyon", "national")
	if err != nil {
		t.Fatal(err)
	}
	if a.Result != casework.HeldByOther || a.Other != "fr-lille" {
		t.Fatalf("assigning %s (merged into %s, which fr-lille holds) to fr-lyon: %s; want it left, held by fr-lille", old, person, a)
	}
}

// A service whose every target of an operation was handed off since no
// longer lists the operation as one that gave it something (its board is
// not found either): 'operation list --as' says what 'operation show
// --as' shows.
func TestOperationListAsLeavesAHandedOffService(t *testing.T) {
	env, _ := operationStore(t)
	var op createdJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "operation", "create", "--name", "Solo", "--jurisdiction", "fr-lyon", "--limit", "1", "--json")), &op); err != nil {
		t.Fatal(err)
	}
	if len(op.Targets) != 1 {
		t.Fatalf("%d targets, want 1", len(op.Targets))
	}
	mustRun(t, env, "", "operation", "assign", "--operation", "1", "--by-jurisdiction")
	if out := mustRun(t, env, "", "operation", "list", "--as", "fr-lyon"); !strings.Contains(out, "Solo") {
		t.Fatalf("fr-lyon's list before the hand-off: %q", out)
	}
	mustRun(t, env, "", "target", "share", op.Targets[0].Target, "--agency", "fr-lille", "--assign", "--why", "hand-off agreed")
	if code, _, _ := vigilRun(t, env, "", "operation", "show", "--operation", "1", "--as", "fr-lyon"); code == exitOK {
		t.Fatal("fr-lyon reads the board of an operation whose only target was handed off")
	}
	if out := mustRun(t, env, "", "operation", "list", "--as", "fr-lyon"); strings.Contains(out, "Solo") {
		t.Fatalf("fr-lyon still lists the operation whose only target was handed off: %q", out)
	}
}
