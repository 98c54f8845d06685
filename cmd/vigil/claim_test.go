package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// importOne imports into env's store one synthetic observation (drawn
// from seed) of ip:51413, an hour old: one target.
func importOne(t *testing.T, env map[string]string, dir string, seed uint64, ip string) {
	t.Helper()
	var buf bytes.Buffer
	enc := observe.NewEncoder(&buf)
	o := storetest.Observation(rand.New(rand.NewPCG(15, seed)), time.Now().UTC().Add(-time.Hour), 1)
	o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(ip), 51413
	if err := enc.Encode(&o); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env, "", "observations", "import", "--format", "jsonl", writeFile(t, dir, "obs.jsonl", buf.String()))
}

// vigil claim: one agency holds a target; another is refused and told who
// holds it and whom to call; a hand-off (target share --assign) moves the
// claim; release lets it go; each step is audited.
func TestClaimFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "v.db")
	env := map[string]string{"VIGIL_DB": db, "USER": "tester"}
	importOne(t, env, dir, 2, "192.0.2.9")
	for _, a := range []string{"fr-lyon", "fr-versailles", "fr-lille"} {
		mustRun(t, env, "", "agency", "add", "--id", a, "--name", a)
	}
	var ts []targetJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "targets", "--json")), &ts); err != nil || len(ts) != 1 {
		t.Fatalf("targets: %v %+v", err, ts)
	}
	id := ts[0].ID
	if out := mustRun(t, env, "", "claim", "--target", id, "--agency", "fr-lyon", "--contact", "Lt. Martin, 04 00 00 00 00"); !strings.Contains(out, "claimed by fr-lyon") {
		t.Fatalf("claim: %s", out)
	}
	code, _, errOut := vigilRun(t, env, "", "claim", "--target", id, "--agency", "fr-versailles")
	if code == exitOK || !strings.Contains(errOut, "claimed by agency fr-lyon since") || !strings.Contains(errOut, "Lt. Martin, 04 00 00 00 00") {
		t.Fatalf("a second agency's claim: exit %d\n%s", code, errOut)
	}
	if code, _, _ := vigilRun(t, env, "", "claim", "--target", id, "--agency", "fr-nowhere"); code == exitOK {
		t.Fatal("a claim for an agency that does not exist succeeded")
	}
	mustRun(t, env, "", "target", "share", id, "--agency", "fr-lille", "--assign", "--why", "moved to Lille")
	code, _, errOut = vigilRun(t, env, "", "claim", "--target", id, "--agency", "fr-lyon")
	if code == exitOK || !strings.Contains(errOut, "claimed by agency fr-lille") {
		t.Fatalf("after the hand-off to fr-lille, fr-lyon's claim: exit %d\n%s", code, errOut)
	}
	if code, _, _ := vigilRun(t, env, "", "claim", "release", "--target", id, "--agency", "fr-lyon"); code == exitOK {
		t.Fatal("fr-lyon released a claim fr-lille holds")
	}
	if out := mustRun(t, env, "", "claim", "release", "--target", id); !strings.Contains(out, "released by fr-lille") {
		t.Fatalf("release: %s", out)
	}
	mustRun(t, env, "", "claim", "--target", id, "--agency", "fr-versailles")
	if out := mustRun(t, env, "", "claim", "list"); !strings.Contains(out, id+"\tfr-versailles since") || strings.Contains(out, "LAPSING") {
		t.Fatalf("claim list:\n%s", out)
	}
	// The target is routed to fr-srpj-versailles, but by imported
	// observations, which are not first-hand: no hand-off is proposed.
	if out := mustRun(t, env, "", "claim", "handoffs"); out != "" {
		t.Fatalf("a hand-off proposed on observations that are not first-hand:\n%s", out)
	}
	if code, _, errOut := vigilRun(t, env, "", "claim", "handoff", "--target", id, "--accept", "--note", "x"); code == exitOK || !strings.Contains(errOut, "no pending hand-off") {
		t.Fatalf("accepting a proposal never made: exit %d %s", code, errOut)
	}
	out := mustRun(t, env, "", "audit", "list", "--action", "change", "--json")
	if strings.Count(out, `"target:`+id+`"`) < 5 {
		t.Fatalf("claims, hand-off and release not all audited:\n%s", out)
	}
}

// A claimed target whose newest first-hand observations were routed to
// another agency gets a hand-off proposal there, read from its timeline.
func TestHandOffProposedWhenTheTargetMoves(t *testing.T) {
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
	r := rand.New(rand.NewPCG(15, 3))
	now := time.Now().UTC()
	var obs []observe.Observation
	for i, agency := range []string{"fr-lyon", "fr-lyon", "fr-lille", "fr-lyon"} {
		o := storetest.Observation(r, now.Add(time.Duration(i-4)*time.Hour), 1)
		o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr("192.0.2.44"), 51413
		o.Method, o.Marks, o.Jurisdiction.Agency = observe.MethodPeerProbe, nil, agency
		if i == 3 { // the newest, but a third party's: it moves nothing
			o.Method = observe.MethodDHTGetPeers
		}
		obs = append(obs, o)
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Add(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ts, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 10})
	if err != nil || len(ts) != 1 {
		t.Fatalf("targets %+v %v", ts, err)
	}
	claims := claimsOf(st)
	if _, err := claims.Claim(ctx, ts[0].ID, "fr-lyon", "u1", "04"); err != nil {
		t.Fatal(err)
	}
	ps, err := claims.ProposeHandOffs(ctx, st, movement{st})
	if err != nil || len(ps) != 1 || ps[0].To != "fr-lille" || ps[0].From != "fr-lyon" {
		t.Fatalf("proposals %+v (%v), want one from fr-lyon to fr-lille", ps, err)
	}
}

// vigil case: the holding agency moves the case and enters the
// subscriber; another agency cannot read it, the national office can;
// every read (and the refusal) is audited.
func TestCaseFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "v.db")
	env := map[string]string{"VIGIL_DB": db, "USER": "tester"}
	importOne(t, env, dir, 4, "192.0.2.10")
	for _, a := range []string{"fr-lyon", "fr-versailles"} {
		mustRun(t, env, "", "agency", "add", "--id", a, "--name", a)
	}
	var ts []targetJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "targets", "--json")), &ts); err != nil || len(ts) != 1 {
		t.Fatalf("targets: %v %+v", err, ts)
	}
	id := ts[0].ID
	if code, _, _ := vigilRun(t, env, "", "case", "step", "--target", id, "--agency", "fr-lyon", "--step", "lead"); code == exitOK {
		t.Fatal("a step on an unclaimed target succeeded")
	}
	mustRun(t, env, "", "claim", "--target", id, "--agency", "fr-lyon")
	mustRun(t, env, "", "case", "step", "--target", id, "--agency", "fr-lyon", "--step", "isp_request_sent", "--note", "PV 2026/0042")
	if code, _, _ := vigilRun(t, env, "", "case", "step", "--target", id, "--agency", "fr-lyon", "--step", "closed"); code != exitUsage {
		t.Fatalf("closing without an outcome: exit %d, want %d", code, exitUsage)
	}
	mustRun(t, env, "", "case", "step", "--target", id, "--agency", "fr-lyon", "--step", "closed", "--outcome", "arrest", "--outcome", "devices_seized")
	if out := mustRun(t, env, "", "case", "show", "--target", id); !strings.Contains(out, "isp_request_sent") || !strings.Contains(out, "arrest,devices_seized") {
		t.Fatalf("case show:\n%s", out)
	}
	mustRun(t, env, "", "case", "subscriber", "--target", id, "--agency", "fr-lyon", "--set", "synthetic subscriber 0001")
	if out := mustRun(t, env, "", "case", "subscriber", "--target", id, "--agency", "fr-lyon"); !strings.Contains(out, "synthetic subscriber 0001") {
		t.Fatalf("the holding agency's read: %s", out)
	}
	if out := mustRun(t, env, "", "case", "subscriber", "--target", id, "--national"); !strings.Contains(out, "synthetic subscriber 0001") {
		t.Fatalf("the national office's read: %s", out)
	}
	code, out, errOut := vigilRun(t, env, "", "case", "subscriber", "--target", id, "--agency", "fr-versailles")
	if code == exitOK || strings.Contains(out+errOut, "synthetic subscriber") {
		t.Fatalf("another agency's read: exit %d\n%s%s", code, out, errOut)
	}
	out = mustRun(t, env, "", "audit", "list", "--action", "denied", "--json")
	if !strings.Contains(out, `"target:`+id+`"`) || !strings.Contains(out, "fr-versailles") {
		t.Fatalf("the refused read is not audited:\n%s", out)
	}
	out = mustRun(t, env, "", "audit", "list", "--action", "view_target", "--json")
	if strings.Count(out, `"subscriber": "read"`)+strings.Count(out, `"subscriber":"read"`) < 2 {
		t.Fatalf("the subscriber reads are not audited:\n%s", out)
	}
}

// An agency that claims a target after another released it is refused
// the subscriber the other entered (casework.Cases.Subscriber): the
// trail must say so. Hostile case: the refusal was written as a read of
// the subscriber ("view_target", "subscriber": "read"), so the trail
// showed a disclosure that never happened and no refusal.
func TestCaseSubscriberRefusalAfterReleaseIsAuditedAsDenied(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db"), "USER": "tester"}
	importOne(t, env, dir, 5, "192.0.2.11")
	for _, a := range []string{"fr-lyon", "fr-versailles"} {
		mustRun(t, env, "", "agency", "add", "--id", a, "--name", a)
	}
	var ts []targetJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "targets", "--json")), &ts); err != nil || len(ts) != 1 {
		t.Fatalf("targets: %v %+v", err, ts)
	}
	id := ts[0].ID
	mustRun(t, env, "", "claim", "--target", id, "--agency", "fr-lyon")
	mustRun(t, env, "", "case", "subscriber", "--target", id, "--agency", "fr-lyon", "--set", "synthetic subscriber 0002")
	mustRun(t, env, "", "claim", "release", "--target", id, "--agency", "fr-lyon")
	mustRun(t, env, "", "claim", "--target", id, "--agency", "fr-versailles")
	code, out, errOut := vigilRun(t, env, "", "case", "subscriber", "--target", id, "--agency", "fr-versailles")
	if code == exitOK || strings.Contains(out+errOut, "synthetic subscriber") {
		t.Fatalf("the claimant after a release read the subscriber: exit %d\n%s%s", code, out, errOut)
	}
	if out := mustRun(t, env, "", "audit", "list", "--action", "view_target", "--json"); strings.Contains(out, "fr-versailles") {
		t.Fatalf("the refused read is in the trail as a read by fr-versailles:\n%s", out)
	}
	if out := mustRun(t, env, "", "audit", "list", "--action", "denied", "--json"); !strings.Contains(out, `"target:`+id+`"`) || !strings.Contains(out, "fr-versailles") {
		t.Fatalf("the refusal is not audited as denied:\n%s", out)
	}
}
