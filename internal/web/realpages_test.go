package web

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/pages"
)

// rowWith returns the table row of body (within the element of id) that
// contains want, or "".
func rowWith(body, id, want string) string {
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	table := body[i:]
	if j := strings.Index(table, "</table>"); j >= 0 {
		table = table[:j]
	}
	for _, row := range strings.Split(table, "<tr>") {
		if strings.Contains(row, want) {
			return row
		}
	}
	return ""
}

// The target page's timeline and the overview's recent rows show what the
// store has: the client the peer named, the pieces it showed, whether the
// endpoint itself talked to the sensor, and the observation's marks with
// their meaning (issue 17 item 3, issue 10). Before, every client and
// pieces cell of the timeline was empty, peer_probe included, and no
// screen showed a mark.
func TestPagesShowClientPiecesAndMarks(t *testing.T) {
	e := newEnv(t, "", 600)
	ctx := context.Background()
	ep, file, probe := nowProbeOfA(t, e)
	now := probe.Time
	probe.Client = observe.Client{Name: "anacrolix/torrent", ListenPort: ep.Port()}
	probe.Possession = observe.Possession{Level: observe.Complete, PiecesHave: 63, PiecesTotal: 63}
	probe.Endpoint.Local = netip.MustParseAddrPort("127.0.0.1:6881")
	probe.Mark(observe.MarkTranscriptCut)
	third := liveObs(ep, file, agencyParis)
	at := now.Add(-time.Millisecond)
	third.ID, third.Time, third.Method = observe.NewID(at), at, observe.MethodTracker
	third.Possession = observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1}
	third.Mark(observe.MarkThirdParty)
	eng := storeAndCatchUp(t, ctx, e, probe, third)
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// The store's timeline entry carries them.
	d, err := e.Store.Target(ctx, e.TargetA, analysis.AllAgencies)
	if err != nil {
		t.Fatal(err)
	}
	var got *analysis.TimelineEntry
	for i := range d.Timeline {
		if d.Timeline[i].ID == probe.ID {
			got = &d.Timeline[i]
		}
	}
	if got == nil || got.Client != "anacrolix/torrent" || got.PiecesHave != 63 || got.PiecesTotal != 63 || !got.FirstHand {
		t.Fatalf("timeline entry of the probe: %+v", got)
	}

	b := newBrowser(t, e)
	b.login("paris")
	code, body := b.get("/targets/" + e.TargetA)
	if code != http.StatusOK {
		t.Fatalf("target page: %d", code)
	}
	row := rowWith(body, "timeline", "anacrolix/torrent")
	for _, want := range []string{"63/63", `class="src first"`, `data-mark="transcript_cut"`, "transcript cut", "peer_probe",
		`<td class="mono ep">` + ep.String() + "/tcp"} {
		if !strings.Contains(row, want) {
			t.Errorf("timeline row of the probe lacks %q: %s", want, row)
		}
	}
	row = rowWith(body, "timeline", "bittorrent tracker")
	// The third_party mark is shown in the source badge, its meaning in
	// the badge's title.
	for _, want := range []string{`class="src third" data-mark="third_party" title="Second-hand:`, "a third party (a DHT node, a tracker, a peer’s PEX message) named the endpoint", "announced"} {
		if !strings.Contains(row, want) {
			t.Errorf("timeline row of the tracker's claim lacks %q: %s", want, row)
		}
	}
	if strings.Contains(row, `class="src first"`) {
		t.Errorf("a tracker's claim shown first-hand: %s", row)
	}

	// The overview's newest rows carry the same badges.
	_, body = b.get("/")
	row = rowWith(body, "recent", `data-mark="transcript_cut"`)
	if !strings.Contains(row, `class="src first"`) || !strings.Contains(row, file.Kind+":"+file.Hex) {
		t.Errorf("overview row of the probe: %s", row)
	}
	if row := rowWith(body, "recent", `data-mark="third_party"`); !strings.Contains(row, `class="src third"`) {
		t.Errorf("overview row of the tracker's claim: %s", row)
	}

	// In French, with the meaning in the title.
	if code, _, _ := b.do("POST", "/lang", url.Values{"lang": {"fr"}, "next": {"/"}, "csrf_token": {b.csrf}}); code != http.StatusSeeOther {
		t.Fatalf("switch to French: %d", code)
	}
	_, body = b.get("/targets/" + e.TargetA)
	row = rowWith(body, "timeline", "bittorrent tracker")
	if !strings.Contains(row, ">tiers</span>") || !regexp.MustCompile(`title="Indirect[^"]*\nthird_party — un tiers \([^"]*\) a cité le point d’accès`).MatchString(row) {
		t.Errorf("French timeline row of the tracker's claim: %s", row)
	}
}

// The overview's "highest scores of the week" are in score order and
// none is below HighScore, which the page states (issue 17 item 6: the
// list was in last-seen order and listed scores of 0.1).
func TestOverviewHighScoresInScoreOrder(t *testing.T) {
	e := newEnv(t, "", 3000)
	ctx := context.Background()
	b, err := pages.NewBackend(ctx, pages.BackendConfig{Store: e.Store, OverviewTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	tg := b.Targets()
	since := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -6)
	u := &pages.User{Name: "analyst", Agency: agencyNat, Role: pages.RoleAnalyst, Scope: pages.Scope{All: true}}
	ov, err := tg.Overview(ctx, u, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(ov.NewestHigh) < 3 || ov.HighScore != pages.HighScore {
		t.Fatalf("%d high-score targets, threshold %v", len(ov.NewestHigh), ov.HighScore)
	}
	for i, h := range ov.NewestHigh {
		if h.Score < pages.HighScore {
			t.Errorf("%s: score %v under the threshold %v", h.ID, h.Score, pages.HighScore)
		}
		if i > 0 && h.Score > ov.NewestHigh[i-1].Score {
			t.Errorf("%s (%v) after %s (%v): not in score order", h.ID, h.Score, ov.NewestHigh[i-1].ID, ov.NewestHigh[i-1].Score)
		}
	}
	// The best of the week leads the list.
	all, _, err := e.Store.WebTargets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Since: since, Sort: "score", Limit: 1}, false)
	if err != nil || len(all) == 0 {
		t.Fatal(all, err)
	}
	if ov.NewestHigh[0].ID != all[0].ID {
		t.Errorf("first %s (%v), want the week's best %s (%v)", ov.NewestHigh[0].ID, ov.NewestHigh[0].Score, all[0].ID, all[0].Score)
	}
	// And the page says what the threshold is.
	br := newBrowser(t, e)
	br.login("analyst")
	_, body := br.get("/")
	if !strings.Contains(body, `<h2 id="newest-title">Highest scores of the week (score 2.0 or more)</h2>`) {
		i := strings.Index(body, "newest-title")
		t.Errorf("overview heading: %.200s", body[max(0, i):])
	}
}
