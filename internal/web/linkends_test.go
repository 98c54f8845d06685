package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/observe"
)

// A link an analyst rejected (or the analysis withdrew) stays on both
// targets' pages as evidence of why they are apart. Its far end is the
// other target's endpoint: a service that may not see that target must
// not learn its address, nor when it was seen, from its own target's
// links (pages and API). The national view, and a service that may see
// both, are shown it, and the view's record names what was shown.
func TestRejectedLinkHidesTheOtherServicesEndpoint(t *testing.T) {
	e := newEnv(t, "", 400)
	ctx := context.Background()
	// Two endpoints no fixture target holds: one in Paris, one in
	// Marseille, the same eMule user hash an hour apart (one device that
	// moved, as far as the rule can tell).
	pa := netip.MustParseAddrPort("127.251.0.1:4662")
	sud := netip.MustParseAddrPort("127.252.0.1:4663")
	var hash [16]byte
	copy(hash[:], "\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xf1\x02")
	d0, err := e.Store.Target(ctx, e.TargetA, analysis.AllAgencies)
	if err != nil || len(d0.Files) == 0 {
		t.Fatalf("target %s: %v", e.TargetA, err)
	}
	t0 := time.Now().UTC().Add(-3 * time.Hour)
	mk := func(ep netip.AddrPort, at time.Time, agency, sub, city string) observe.Observation {
		o := liveObs(ep, d0.Files[0], agency)
		o.ID, o.Time = observe.NewID(at), at
		o.Network = observe.NetED2K
		o.Client = observe.Client{Name: "aMule", Version: "2.3.3", UserHash: hash[:]}
		o.Place.Subdivisions, o.Place.City = []string{"x", sub}, city
		return o
	}
	obs := []observe.Observation{mk(pa, t0, agencyParis, "75", "Paris"), mk(sud, t0.Add(time.Hour), agencySud, "13", "Marseille")}
	if err := e.Store.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	eng := newTestEngine(t, ctx, e.Store)
	if err := eng.Add(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	owners := func() (string, string) {
		t.Helper()
		o, err := e.Store.EndpointTargets(ctx, []netip.AddrPort{pa, sud})
		if err != nil {
			t.Fatal(err)
		}
		return o[pa], o[sud]
	}
	joined, other := owners()
	if joined == "" || joined != other {
		t.Fatalf("the user hash did not join %s and %s (%q, %q)", pa, sud, joined, other)
	}
	d, err := e.Store.Target(ctx, joined, analysis.AllAgencies)
	if err != nil || len(d.Links) != 1 {
		t.Fatalf("target %s: %v, links %+v", joined, err, d)
	}
	if err := eng.Unlink(ctx, d.Links[0].ID, "analyst", "two people"); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	tp, ts := owners()
	if tp == "" || ts == "" || tp == ts {
		t.Fatalf("after the rejection: %s in %q, %s in %q", pa, tp, sud, ts)
	}
	if ag := agencyOf(t, e, tp); ag != agencyParis {
		t.Fatalf("%s (%s) is routed to %s", tp, pa, ag)
	}
	if ag := agencyOf(t, e, ts); ag != agencySud {
		t.Fatalf("%s (%s) is routed to %s", ts, sud, ag)
	}

	// Paris: its own target, with the rejected link, and nothing of the
	// Marseille endpoint.
	b := newBrowser(t, e)
	b.login("paris")
	code, body := b.get("/targets/" + tp)
	if code != http.StatusOK {
		t.Fatalf("paris reads its own target %s: %d", tp, code)
	}
	if !strings.Contains(body, pa.String()) || !strings.Contains(body, "rejected") {
		t.Fatalf("paris's page of %s does not show its endpoint %s and the rejected link", tp, pa)
	}
	if strings.Contains(body, sud.Addr().String()) {
		t.Errorf("paris's page of %s shows %s, an endpoint of %s (another service's target)", tp, sud.Addr(), ts)
	}
	apiBody := func(user, id string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", e.URL+"/api/v1/targets/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+e.Token[user])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s reads %s through the API: %d", user, id, resp.StatusCode)
		}
		return string(data)
	}
	got := apiBody("paris", tp)
	var ans struct {
		Links []analysis.Link `json:"links"`
	}
	if err := json.Unmarshal([]byte(got), &ans); err != nil || len(ans.Links) != 1 || ans.Links[0].State != "rejected" {
		t.Fatalf("paris's API answer for %s: links %+v (%v)", tp, ans.Links, err)
	}
	if strings.Contains(got, sud.Addr().String()) {
		t.Errorf("paris's API answer for %s names %s, an endpoint of %s: %+v", tp, sud.Addr(), ts, ans.Links)
	}
	for _, id := range ans.Links[0].Obs {
		if id == obs[1].ID {
			t.Errorf("paris's API answer for %s names the other service's observation %s", tp, id)
		}
	}

	// Shared with Paris, the other target is Paris's to see: so is the
	// link's other end.
	if err := eng.Share(ctx, ts, agencyParis, true, "analyst", "joint case"); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := apiBody("paris", tp); !strings.Contains(got, sud.String()) {
		t.Errorf("shared with paris, %s's end %s is still withheld from paris's answer for %s", ts, sud, tp)
	}

	// The national view sees both ends, and its record names them.
	a := newBrowser(t, e)
	a.login("analyst")
	if _, body := a.get("/targets/" + tp); !strings.Contains(body, sud.Addr().String()) {
		t.Errorf("the national view of %s does not show the rejected link's other end %s", tp, sud)
	}
	if got := apiBody("analyst", tp); !strings.Contains(got, sud.String()) {
		t.Errorf("the national API answer for %s does not name the rejected link's other end %s", tp, sud)
	}
	recs := records(t, e, audit.Filter{Actor: "analyst", Action: audit.ActionViewTarget, Object: "target:" + tp})
	if len(recs) == 0 {
		t.Fatal("no record of the analyst's view")
	}
	for _, r := range recs {
		if !strings.Contains(string(r.Detail), sud.String()) {
			t.Errorf("the analyst's view record %s does not name the endpoint it showed, %s", r.Detail, sud)
		}
	}
}
