package web

import (
	"context"
	"database/sql"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
)

// The operations pages: the national office lists the operations and
// reads a whole board; a local service reads its own row of a board that
// gave it targets, and nothing of one that gave it none, nor the list
// (404, as for what does not exist, and the refusal on record); every
// read is audited with the targets it shows.
func TestOperationsPagesOnANeedToKnow(t *testing.T) {
	e := newEnv(t, "", 600)
	analyst := newBrowser(t, e)
	analyst.login("analyst")
	code, body := analyst.get("/operations")
	if code != http.StatusOK || !strings.Contains(body, "Aurore") || !strings.Contains(body, "Borée") || !strings.Contains(body, `href="/operations/2"`) {
		t.Fatalf("analyst, /operations: %d\n%s", code, body)
	}
	if recs := records(t, e, audit.Filter{Actor: "analyst", Action: audit.ActionSearch, Object: "operations"}); len(recs) != 1 {
		t.Fatalf("the list was read with %d records", len(recs))
	}
	code, body = analyst.get("/operations/1")
	if code != http.StatusOK || !strings.Contains(body, e.TargetA) || !strings.Contains(body, e.TargetB) || !strings.Contains(body, `id="board"`) {
		t.Fatalf("analyst, /operations/1: %d\n%s", code, body)
	}
	recs := records(t, e, audit.Filter{Actor: "analyst", Action: audit.ActionListTargets, Object: "operation:1"})
	if len(recs) != 1 || !strings.Contains(string(recs[0].Detail), e.TargetA) || !strings.Contains(string(recs[0].Detail), e.TargetB) {
		t.Fatalf("the board was read with the records %+v", recs)
	}

	paris := newBrowser(t, e)
	paris.login("paris")
	code, body = paris.get("/operations/1")
	if code != http.StatusOK || !strings.Contains(body, e.TargetA) || strings.Contains(body, e.TargetB) || strings.Contains(body, agencySud) {
		t.Fatalf("paris, /operations/1: %d, want its own row only\n%s", code, body)
	}
	if strings.Contains(body, `href="/operations"`) {
		t.Fatal("the operations link is shown to a local service")
	}
	code2, body2 := paris.get("/operations/2")
	code3, body3 := paris.get("/operations/999")
	if code2 != http.StatusNotFound || strings.Contains(body2, e.TargetB) || strings.Contains(body2, "Borée") || code3 != code2 ||
		!strings.Contains(body2, "No such operation.") || !strings.Contains(body3, "No such operation.") {
		t.Fatalf("paris, an operation that gave it nothing: %d\n%s\n(one that does not exist: %d)", code2, body2, code3)
	}
	if code, body := paris.get("/operations"); code != http.StatusNotFound || strings.Contains(body, "Aurore") {
		t.Fatalf("paris, /operations: %d\n%s", code, body)
	}
	denied := records(t, e, audit.Filter{Actor: "paris", Action: audit.ActionDenied})
	var objs []string
	for _, r := range denied {
		objs = append(objs, r.Object)
	}
	if strings.Join(objs, ",") != "operation:2,operation:999,operations" {
		t.Fatalf("paris's refusals on record: %v", objs)
	}
	sud := newBrowser(t, e)
	sud.login("sud")
	if code, body := sud.get("/operations/2"); code != http.StatusOK || !strings.Contains(body, "Opération Borée") || !strings.Contains(body, "perquisition") {
		t.Fatalf("sud (French), /operations/2: %d\n%s", code, body)
	}
}

// A board's row is the service's need to know now: after the target an
// operation gave agency A is handed off to agency B, A's board no longer
// names it nor counts the case B runs on it (B's steps and outcomes), and
// an operation that gave A nothing else answers as one that does not
// exist; B, which the operation never gave it, sees no row either, while
// the national office still reads the whole board.
func TestOperationBoardLeavesAHandedOffTarget(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { boardLeavesAHandedOffTarget(t, newEnv(t, "", 600)) })
	t.Run("postgres", func(t *testing.T) { boardLeavesAHandedOffTarget(t, newTestPGEnv(t, "web_board_handoff", 600, nil)) })
}

func boardLeavesAHandedOffTarget(t *testing.T, e *env) {
	ctx := context.Background()
	eng, err := analysis.New(ctx, e.Back, func() analysis.Config { c := analysis.DefaultConfig(); c.SaveInterval = 0; return c }())
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Assign(ctx, e.TargetA, agencySud, "cli:test", "hand-off agreed"); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ag, _, err := e.Back.TargetAgencies(ctx, e.TargetA); err != nil || ag != agencySud {
		t.Fatalf("after the hand-off %s is routed to %s (%v)", e.TargetA, ag, err)
	}
	if err := e.Back.AddCaseStep(ctx, casework.Step{Target: e.TargetA, Step: casework.StepClosed, At: time.Now().UTC(), Agency: agencySud,
		By: "sud", Outcomes: []string{"hands_on_abuse"}}); err != nil {
		t.Fatal(err)
	}
	paris := newBrowser(t, e)
	paris.login("paris")
	if code, _ := paris.get("/targets/" + e.TargetA); code != http.StatusNotFound {
		t.Fatalf("paris still sees the handed-off target's page: %d", code)
	}
	code, body := paris.get("/operations/1")
	if code != http.StatusNotFound || strings.Contains(body, e.TargetA) || !strings.Contains(body, "No such operation.") {
		t.Fatalf("paris, /operations/1 after %s was handed off: %d, want 404 as for an operation that gave it nothing\n%s", e.TargetA, code, body)
	}
	err = e.Back.AuditRecords(ctx, audit.Filter{Actor: "paris", Object: "operation:1"}, func(r audit.Record) error {
		if r.Action != audit.ActionDenied || strings.Contains(string(r.Detail), e.TargetA) {
			t.Errorf("paris's read of operation 1 is on record as %s %s", r.Action, r.Detail)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	analyst := newBrowser(t, e)
	analyst.login("analyst")
	if code, body := analyst.get("/operations/1"); code != http.StatusOK || !strings.Contains(body, e.TargetA) {
		t.Fatalf("analyst, /operations/1: %d\n%s", code, body)
	}
}

// A target the analysis merged into another since the operation was made
// has its case under the id it is in now: the board counts that case, as
// 'vigil operation show' does, rather than none.
func TestOperationBoardFollowsAMergedTarget(t *testing.T) {
	e := newEnv(t, "", 600)
	ctx := context.Background()
	// Another live target of agency A, for operation 1's TargetA to be
	// merged into (as the analysis records a merge).
	list, _, err := e.Back.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{Agencies: []string{agencyParis}}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	into := ""
	for _, s := range list {
		if s.ID != e.TargetA && s.Jurisdiction == agencyParis {
			into = s.ID
			break
		}
	}
	if into == "" {
		t.Fatal("no second target of agency A")
	}
	db, err := sql.Open("sqlite", "file:"+e.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE targets SET merged_into = ? WHERE id = ?`, into, e.TargetA); err != nil {
		t.Fatal(err)
	}
	if err := e.Back.AddCaseStep(ctx, casework.Step{Target: into, Step: casework.StepClosed, At: time.Now().UTC(), Agency: agencyParis,
		By: "paris", Outcomes: []string{"arrest"}}); err != nil {
		t.Fatal(err)
	}
	analyst := newBrowser(t, e)
	analyst.login("analyst")
	code, body := analyst.get("/operations/1")
	row := regexp.MustCompile(`<tr><td>` + agencyParis + `</td>((?:<td class="num">\d+</td>)+)</tr>`).FindStringSubmatch(body)
	if code != http.StatusOK || row == nil {
		t.Fatalf("analyst, /operations/1: %d\n%s", code, body)
	}
	// targets, none, lead, isp, subscriber, search, closed, arrest, ...
	cells := regexp.MustCompile(`\d+`).FindAllString(row[1], -1)
	if len(cells) < 8 || cells[0] != "1" || cells[1] != "0" || cells[6] != "1" || cells[7] != "1" {
		t.Fatalf("agency A's row %v: want its one target closed with an arrest (the case of the target it was merged into)", cells)
	}
}
