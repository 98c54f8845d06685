package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/figures"
)

// The figures page is the national office's (figures.Store counts every
// observation, whatever its agency): an analyst sees the three series as
// charts with their tables, and downloads the very report `vigil stats`
// computes (figures.Compute over the same store), plain or publishable;
// a local service is refused the page and every export, learns no
// figure, and the refusal is audited.
func TestFiguresPage(t *testing.T) {
	e := newEnv(t, "", 3000)
	ctx := context.Background()
	now := time.Now().UTC()
	report := func(by, group string, from time.Time, minCell int) *figures.Report {
		t.Helper()
		rep, err := figures.Compute(ctx, e.Store, figures.Query{By: by, Group: group, From: from, To: now, MinCell: minCell})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	yearAgo := time.Date(now.Year(), now.Month()-11, 1, 0, 0, 0, 0, time.UTC)

	a := newBrowser(t, e)
	a.login("analyst")
	code, body := a.get("/figures")
	if code != http.StatusOK {
		t.Fatalf("analyst: /figures %d", code)
	}
	want := report(figures.Month, figures.All, yearAgo, 0)
	if len(want.Rows) != 12 {
		t.Fatalf("the default report has %d months, want 12", len(want.Rows))
	}
	var total int64
	for _, r := range want.Rows {
		total += *r.Observations
	}
	if total == 0 {
		t.Fatal("the fixture has no figures")
	}
	for _, id := range []string{"chart-observations", "chart-addresses", "chart-devices"} {
		m := regexp.MustCompile(`(?s)<figure id="` + id + `"[^>]*>(.*?)</figure>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no chart %s:\n%.2000s", id, body)
		}
		for _, w := range []string{"<svg", "<title", "<desc", `role="img"`, "<table", "<caption", "<th scope=\"col\""} {
			if !strings.Contains(m[1], w) {
				t.Errorf("chart %s lacks %s", id, w)
			}
		}
	}
	// The table is the report: each month's observations as computed.
	table := regexp.MustCompile(`(?s)<figure id="chart-observations"[^>]*>.*?<table(.*?)</table>`).FindStringSubmatch(body)[1]
	for _, r := range want.Rows {
		row := regexp.MustCompile(`(?s)<tr><th scope="row">` + r.Period + `</th><td[^>]*>([^<]*)</td>`).FindStringSubmatch(table)
		if row == nil {
			t.Fatalf("no row %s in the observations table:\n%s", r.Period, table)
		}
		if got := strings.NewReplacer(",", "", "\u202f", "", " ", "").Replace(row[1]); got != figures.Int(r.Observations) {
			t.Fatalf("%s: table %q, report %s", r.Period, row[1], figures.Int(r.Observations))
		}
	}
	if k := regexp.MustCompile(`\[[a-z]+\.[a-z.]+\]`).FindString(body); k != "" {
		t.Fatalf("a message missing from the catalog: %s", k)
	}
	if want.Estimated != strings.Contains(body, `id="estimated"`) {
		t.Fatalf("report estimated %v, page says otherwise", want.Estimated)
	}

	// Exports: the bytes `vigil stats --format csv|json` would print.
	q := "by=week&group=network&from=" + now.AddDate(0, 0, -20).Format(time.DateOnly)
	code, csvBody, h := a.do("GET", "/figures/export?format=csv&"+q, nil)
	var wantCSV bytes.Buffer
	wantRep := report(figures.Week, figures.Network, now.AddDate(0, 0, -20), 0)
	if err := figures.WriteCSV(&wantCSV, wantRep); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || csvBody != wantCSV.String() || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") ||
		!strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV export: %d %q\n%s\nwant\n%s", code, h, csvBody, wantCSV.String())
	}
	code, jsonBody, _ := a.do("GET", "/figures/export?format=json&"+q, nil)
	var got figures.Report
	if err := json.Unmarshal([]byte(jsonBody), &got); code != http.StatusOK || err != nil {
		t.Fatalf("JSON export: %d %v", code, err)
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(wantRep)
	if !bytes.Equal(gj, wj) {
		t.Fatalf("JSON export\n%s\nwant\n%s", gj, wj)
	}
	// Publishable: every cell below k suppressed, as --min-cell k.
	k := 0
	for _, r := range wantRep.Rows {
		k = max(k, int(*r.UniqueDevices))
	}
	code, pubBody, _ := a.do("GET", "/figures/export?format=csv&publish=1&k="+itoa(k)+"&"+q, nil)
	wantCSV.Reset()
	pub := report(figures.Week, figures.Network, now.AddDate(0, 0, -20), k)
	if err := figures.WriteCSV(&wantCSV, pub); err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || pubBody != wantCSV.String() || pub.SuppressedCells == 0 {
		t.Fatalf("publishable export (k=%d, %d cells suppressed): %d\n%s\nwant\n%s", k, pub.SuppressedCells, code, pubBody, wantCSV.String())
	}
	if code, _, _ := a.do("GET", "/figures/export?format=csv&publish=1&k=1&"+q, nil); code != http.StatusBadRequest {
		t.Fatalf("a publishable export with k=1 (nothing suppressed): %d", code)
	}
	for _, bad := range []string{"format=csv&by=year", "format=csv&group=agency", "format=csv&from=yesterday", "format=xml", "format=csv&publish=yes&k=5", "format=csv&k=0"} {
		if code, _, _ := a.do("GET", "/figures/export?"+bad, nil); code != http.StatusBadRequest {
			t.Errorf("export with %s: %d, want 400", bad, code)
		}
	}
	recs := records(t, e, audit.Filter{Actor: "analyst", Object: "figures"})
	var searched, exported, published bool
	for _, r := range recs {
		searched = searched || r.Action == audit.ActionSearch
		exported = exported || (r.Action == audit.ActionExport && strings.Contains(string(r.Detail), `"network"`))
		published = published || (r.Action == audit.ActionExport && strings.Contains(string(r.Detail), `"min_cell":`+itoa(k)))
	}
	if !searched || !exported || !published {
		t.Fatalf("the analyst's reads are not all audited (page %v, export %v, publishable %v): %+v", searched, exported, published, recs)
	}

	// French.
	a.do("POST", "/lang", map[string][]string{"lang": {"fr"}, "next": {"/figures"}, "csrf_token": {a.csrf}})
	if _, body := a.get("/figures?group=level"); !strings.Contains(body, `lang="fr"`) || !strings.Contains(body, "Chiffres") || !strings.Contains(body, "Adresses uniques") ||
		regexp.MustCompile(`\[[a-z]+\.[a-z.]+\]`).MatchString(body) {
		t.Fatalf("the French page:\n%.1500s", body)
	}

	// A local service: nothing, whatever it asks, and the refusal audited.
	p := newBrowser(t, e)
	p.login("paris")
	for _, path := range []string{"/figures", "/figures?group=subdivision", "/figures/export?format=csv", "/figures/export?format=json&group=country",
		"/figures/export?format=csv&publish=1&k=2&group=subdivision"} {
		code, body := p.get(path)
		if code != http.StatusForbidden || strings.Contains(body, "<svg") || strings.Contains(body, "<table") || strings.Contains(body, "period") {
			t.Fatalf("paris %s: %d\n%.800s", path, code, body)
		}
	}
	if _, body := p.get("/"); strings.Contains(body, `href="/figures"`) {
		t.Fatal("the navigation offers the figures to a local service")
	}
	denied := records(t, e, audit.Filter{Actor: "paris", Action: audit.ActionDenied, Object: "figures"})
	if len(denied) != 5 {
		t.Fatalf("paris's refused reads: %d audit records, want 5", len(denied))
	}
}

func itoa(n int) string { return figures.Int(ptr64(int64(n))) }

func ptr64(v int64) *int64 { return &v }
