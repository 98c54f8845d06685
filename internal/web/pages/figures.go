package pages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// The figures page: the office's figures (`vigil stats --by`) as charts,
// each followed by its table, and their exports. The report is
// figures.Compute's, the very code `vigil stats` runs; the exports are its
// CSV (figures.WriteCSV) and JSON. figures.Store counts every observation
// whatever agency it was routed to, so the figures are the national
// office's: a viewer without a national scope is refused the page and
// every export (403, audited as denied) and learns no figure.

// Figures answers the figures page.
type Figures interface {
	// Figures returns figures.Compute's report of q, or ErrDenied when
	// the viewer's scope is not national.
	Figures(ctx context.Context, viewer *User, q figures.Query) (*figures.Report, error)
}

// CanSeeFigures reports whether u may read the office's figures: a
// national scope only.
func (u *User) CanSeeFigures() bool { return u != nil && u.Scope.All }

// storeFigures computes the figures over a store.
type storeFigures struct{ st figures.Store }

// Figures implements Figures.
func (f storeFigures) Figures(ctx context.Context, viewer *User, q figures.Query) (*figures.Report, error) {
	if !viewer.CanSeeFigures() {
		return nil, ErrDenied
	}
	return figures.Compute(ctx, f.st, q)
}

// DefaultPublishK is the publishable export's threshold unless the form
// says otherwise: every figure below it is suppressed.
const DefaultPublishK = 10

// figuresForm is the page's form as asked (or its defaults).
type figuresForm struct {
	By, Group, From, To string
	K                   int
}

// parseFigures reads by (week|month), group, from, to (YYYY-MM-DD, UTC
// days) and k (the publishable threshold) from v. Default: by month,
// ungrouped, the last 12 months up to today.
func parseFigures(v url.Values, now time.Time) (figures.Query, figuresForm, error) {
	now = now.UTC()
	f := figuresForm{By: v.Get("by"), Group: v.Get("group"), From: v.Get("from"), To: v.Get("to"), K: DefaultPublishK}
	if f.By == "" {
		f.By = figures.Month
	}
	q := figures.Query{By: f.By, Group: f.Group, To: now,
		From: time.Date(now.Year(), now.Month()-11, 1, 0, 0, 0, 0, time.UTC)}
	if q.By != figures.Week && q.By != figures.Month {
		return q, f, &QueryError{"by", f.By, "want week or month", "figures.q.by"}
	}
	if q.Group != figures.All && !slices.Contains(figures.Groups, q.Group) {
		return q, f, &QueryError{"group", f.Group, "want network, country, subdivision, category or level", "figures.q.group"}
	}
	for _, d := range []struct {
		name, val string
		t         *time.Time
	}{{"from", f.From, &q.From}, {"to", f.To, &q.To}} {
		if d.val == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, d.val)
		if err != nil {
			return q, f, &QueryError{d.name, d.val, "want a date YYYY-MM-DD", "query.date"}
		}
		*d.t = t
	}
	f.From, f.To = q.From.Format(time.DateOnly), q.To.Format(time.DateOnly)
	if k := v.Get("k"); k != "" {
		n, err := strconv.Atoi(k)
		if err != nil || n < 2 || n > 1_000_000 {
			return q, f, &QueryError{"k", k, "want a whole number from 2 to 1000000", "figures.q.k"}
		}
		f.K = n
	}
	if err := q.Validate(); err != nil {
		return q, f, &QueryError{"to", f.To, "before from", "figures.q.order"}
	}
	return q, f, nil
}

// figuresDenied refuses a viewer without a national scope, audited.
func (s *server) figuresDenied(w http.ResponseWriter, r *http.Request, u *User) bool {
	if u.CanSeeFigures() {
		return false
	}
	s.denied.Inc()
	_ = s.audit(r, ActionDenied, "figures", "", map[string]string{"path": r.URL.Path, "query": r.URL.RawQuery, "reason": "figures are for a national scope"})
	s.fail(w, r, u, http.StatusForbidden, "error.forbidden")
	return true
}

// figuresReport computes q for u, answering the request itself when it
// cannot (and returning nil).
func (s *server) figuresReport(w http.ResponseWriter, r *http.Request, u *User, q figures.Query) *figures.Report {
	rep, err := s.cfg.Figures.Figures(r.Context(), u, q)
	switch {
	case errors.Is(err, ErrDenied):
		_ = s.audit(r, ActionDenied, "figures", "", map[string]string{"query": r.URL.RawQuery})
		s.fail(w, r, u, http.StatusForbidden, "error.forbidden")
		return nil
	case errors.Is(err, figures.ErrQuery):
		s.fail(w, r, u, http.StatusBadRequest, "targets.badquery", err.Error())
		return nil
	case err != nil:
		s.log.Error("figures", "user", u.Name, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return nil
	}
	return rep
}

func figuresDetail(q figures.Query, format string) map[string]any {
	d := map[string]any{"by": q.By, "group": q.Group, "from": q.From.Format(time.DateOnly), "to": q.To.Format(time.DateOnly), "min_cell": q.MinCell}
	if format != "" {
		d["format"] = format
	}
	return d
}

// figuresPage serves GET /figures.
func (s *server) figuresPage(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Figures == nil || s.cfg.Trail == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	if s.figuresDenied(w, r, u) {
		return
	}
	q, form, err := parseFigures(r.URL.Query(), s.now())
	if err != nil {
		s.failQuery(w, r, u, err)
		return
	}
	rep := s.figuresReport(w, r, u, q)
	if rep == nil {
		return
	}
	if !s.audited(w, r, u, ActionSearch, "figures", "", figuresDetail(q, "")) {
		return
	}
	v := s.newView(r, u, "figures", "figures.title", nil)
	links := url.Values{"by": {form.By}, "group": {form.Group}, "from": {form.From}, "to": {form.To}}
	exp := func(format string, publish bool) string {
		l := url.Values{"format": {format}}
		for k, vs := range links {
			l[k] = vs
		}
		if publish {
			l.Set("publish", "1")
			l.Set("k", strconv.Itoa(form.K))
		}
		return "/figures/export?" + l.Encode()
	}
	v.Data = map[string]any{
		"R": rep, "Form": form, "Groups": figures.Groups, "Charts": v.figureCharts(rep),
		"CSV": exp("csv", false), "JSON": exp("json", false), "PubCSV": exp("csv", true), "PubJSON": exp("json", true),
	}
	s.render(w, http.StatusOK, "figures", v)
}

// figuresExport serves GET /figures/export: format csv or json, the
// page's query, and with publish=1 every figure below k suppressed
// (figures.Query.MinCell, as `vigil stats --min-cell`).
func (s *server) figuresExport(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Figures == nil || s.cfg.Trail == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	if s.figuresDenied(w, r, u) {
		return
	}
	v := r.URL.Query()
	q, form, err := parseFigures(v, s.now())
	if err != nil {
		s.failQuery(w, r, u, err)
		return
	}
	format := v.Get("format")
	if format != "csv" && format != "json" {
		s.failQuery(w, r, u, &QueryError{"format", format, "want csv or json", "figures.q.format"})
		return
	}
	switch p := v.Get("publish"); p {
	case "":
	case "1":
		if v.Get("k") == "" {
			s.failQuery(w, r, u, &QueryError{"k", "", "want a whole number from 2 to 1000000", "figures.q.k"})
			return
		}
		q.MinCell = form.K
	default:
		s.failQuery(w, r, u, &QueryError{"publish", p, "want 1", "figures.q.publish"})
		return
	}
	rep := s.figuresReport(w, r, u, q)
	if rep == nil {
		return
	}
	var body bytes.Buffer
	if format == "csv" {
		err = figures.WriteCSV(&body, rep)
	} else {
		enc := json.NewEncoder(&body)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	}
	if err != nil {
		s.log.Error("figures export", "user", u.Name, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	if !s.audited(w, r, u, ActionExport, "figures", "", figuresDetail(q, format)) {
		return
	}
	name := "vigil-figures-" + q.By
	if q.Group != figures.All {
		name += "-" + q.Group
	}
	name += "-" + rep.From + "-" + rep.To
	if q.MinCell > 1 {
		name += fmt.Sprintf("-k%d", q.MinCell)
	}
	h := w.Header()
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+"."+format+`"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body.Bytes())
}

// figureChart is one series of a report: its chart and the rows of the
// table that follows it (the chart's accessible source).
type figureChart struct {
	ID, Title string
	SVG       template.HTML
	Unique    bool // unique counts: exact or estimated, by row
	Rows      []figureCell
}

// figureCell is one row of a series' table.
type figureCell struct {
	Period, Group string
	Value, Change string // as shown; "x" a suppressed figure, "–" no change to give
	Estimated     bool
}

// chartGroups is how many groups a chart draws (the most observations
// first); the table gives them all.
const chartGroups = 5

// figureCharts draws the report's three series.
func (v *view) figureCharts(rep *figures.Report) []figureChart {
	series := []struct {
		id, key string
		unique  bool
		val     func(*figures.Row) *int64
		ch      func(*figures.Row) *float64
	}{
		{"chart-observations", "figures.obs", false, func(r *figures.Row) *int64 { return r.Observations }, func(r *figures.Row) *float64 { return r.ObservationsChange }},
		{"chart-addresses", "figures.addrs", true, func(r *figures.Row) *int64 { return r.UniqueAddresses }, func(r *figures.Row) *float64 { return r.UniqueAddressesChange }},
		{"chart-devices", "figures.devices", true, func(r *figures.Row) *int64 { return r.UniqueDevices }, func(r *figures.Row) *float64 { return r.UniqueDevicesChange }},
	}
	periods := reportPeriods(rep)
	totals := map[string]int64{}
	for i := range rep.Rows {
		r := &rep.Rows[i]
		if r.Observations != nil {
			totals[r.Group] += *r.Observations
		}
	}
	groups := make([]string, 0, len(totals))
	for g := range totals {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b string) int {
		if totals[a] != totals[b] {
			if totals[a] > totals[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	if rep.Group == figures.All {
		groups = []string{""}
	}
	drawn := groups[:min(len(groups), chartGroups)]
	out := make([]figureChart, 0, len(series))
	for _, s := range series {
		c := figureChart{ID: s.id, Title: v.T(s.key), Unique: s.unique}
		vals := map[[2]string]*int64{}
		for i := range rep.Rows {
			r := &rep.Rows[i]
			vals[[2]string{r.Period, r.Group}] = s.val(r)
			cell := figureCell{Period: r.Period, Group: v.figureGroup(rep.Group, r.Group), Value: "x", Change: "–", Estimated: s.unique && r.Estimated}
			if p := s.val(r); p != nil {
				cell.Value = v.Num64(*p)
			}
			if p := s.ch(r); p != nil {
				cell.Change = v.figurePct(*p)
			}
			c.Rows = append(c.Rows, cell)
		}
		labels := make([]string, len(drawn))
		for i, g := range drawn {
			labels[i] = v.figureGroup(rep.Group, g)
		}
		desc := v.T("figures.desc", c.Title, v.T("figures.by."+rep.By), rep.From, rep.To)
		if rep.Group != figures.All {
			desc += " " + v.T("figures.desc.groups", min(len(groups), chartGroups), len(groups))
		}
		if s.unique && rep.Estimated {
			desc += " " + v.T("figures.desc.estimated")
		}
		c.SVG = seriesSVG(seriesSpec{title: c.Title, desc: desc, xLabel: v.T("figures.axis." + rep.By), yLabel: c.Title,
			periods: periods, groups: drawn, groupLabels: labels, values: vals, num: v.Num64, colon: v.Colon()})
		out = append(out, c)
	}
	return out
}

// reportPeriods labels every period of rep, those without a row too (a
// grouped report has rows only for the groups seen in a period), so that
// the chart's axis is time without gaps.
func reportPeriods(rep *figures.Report) []string {
	from, err1 := time.Parse(time.DateOnly, rep.From)
	to, err2 := time.Parse(time.DateOnly, rep.To)
	var out []string
	if err1 == nil && err2 == nil {
		for t := from; !t.After(to) && len(out) < 1000; {
			if rep.By == figures.Month {
				out = append(out, t.Format("2006-01"))
				t = t.AddDate(0, 1, 0)
				continue
			}
			y, w := t.ISOWeek()
			out = append(out, fmt.Sprintf("%04d-W%02d", y, w))
			t = t.AddDate(0, 0, 7)
		}
	}
	for _, r := range rep.Rows {
		if !slices.Contains(out, r.Period) {
			out = append(out, r.Period)
		}
	}
	return out
}

// figureGroup names a group value in the viewer's language.
func (v *view) figureGroup(dim, g string) string {
	switch {
	case dim == figures.All:
		return ""
	case g == "":
		return v.T("figures.unknown")
	case dim == figures.Level:
		return v.T("level." + g)
	}
	return g
}

// figurePct is a change in percent, signed.
func (v *view) figurePct(p float64) string {
	s := i18n.Float(v.Lang, p, 1)
	if p >= 0 {
		s = "+" + s
	}
	return s + v.T("figures.pct")
}

// seriesSpec is what seriesSVG draws: one bar a period and drawn group.
type seriesSpec struct {
	title, desc, xLabel, yLabel string
	periods, groups             []string
	groupLabels                 []string
	values                      map[[2]string]*int64 // (period, group); nil: suppressed
	num                         func(int64) string
	colon                       string
}

// seriesSVG draws a bar chart of a series by period, with a bar for each
// group side by side (each group its own shade, named in a legend), its
// axes and their labels, a <title> and a <desc>. Every bar has a <title>
// with its figure; the table after the chart gives them all.
func seriesSVG(s seriesSpec) template.HTML {
	const w, h, left, right, top, bottom = 640.0, 260.0, 64.0, 8.0, 28.0, 46.0
	esc := html.EscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart series" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%[3]s-t %[3]s-d" xmlns="http://www.w3.org/2000/svg">`, w, h, idOf(s.title))
	fmt.Fprintf(&b, `<title id="%[1]s-t">%[2]s</title><desc id="%[1]s-d">%[3]s</desc>`, idOf(s.title), esc(s.title), esc(s.desc))
	var maxV int64
	for _, v := range s.values {
		if v != nil {
			maxV = max(maxV, *v)
		}
	}
	top2 := niceMax(maxV)
	plotH, plotW := h-top-bottom, w-left-right
	steps := int64(1) // gridlines at whole numbers only
	for _, n := range []int64{4, 5, 2} {
		if top2 > 0 && top2%n == 0 {
			steps = n
			break
		}
	}
	for i := int64(0); i <= steps; i++ {
		val := top2 * i / steps
		y := h - bottom - plotH*float64(i)/float64(steps)
		fmt.Fprintf(&b, `<line class="grid" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/>`, left, y, w-right, y)
		fmt.Fprintf(&b, `<text class="tick y" x="%.0f" y="%.1f">%s</text>`, left-4, y+4, esc(s.num(val)))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line class="axis" x1="%.0f" y1="%.0f" x2="%.0f" y2="%.1f"/>`, left, top, left, h-bottom)
	fmt.Fprintf(&b, `<text class="axis-label" x="%.0f" y="%.0f">%s</text>`, left+plotW/2, h-4, esc(s.xLabel))
	fmt.Fprintf(&b, `<text class="axis-label" transform="rotate(-90)" x="%.0f" y="14">%s</text>`, -(top + plotH/2), esc(s.yLabel))
	n := len(s.periods)
	if n > 0 && len(s.groups) > 0 {
		slot := plotW / float64(n)
		bw := slot * 0.8 / float64(len(s.groups))
		every := (n + 11) / 12 // at most 12 period labels
		for i, p := range s.periods {
			x0 := left + float64(i)*slot + slot*0.1
			for j, g := range s.groups {
				v := s.values[[2]string{p, g}]
				label := p
				if s.groupLabels[j] != "" {
					label += ", " + s.groupLabels[j]
				}
				if v == nil {
					continue
				}
				bh := 0.0
				if top2 > 0 {
					bh = float64(*v) / float64(top2) * plotH
				}
				fmt.Fprintf(&b, `<rect class="bar g%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s%s %s</title></rect>`,
					j, x0+float64(j)*bw, h-bottom-bh, math.Max(bw-1, 0.5), bh, esc(label), esc(s.colon), esc(s.num(*v)))
			}
			if i%every == 0 {
				fmt.Fprintf(&b, `<text class="lbl" x="%.1f" y="%.0f">%s</text>`, left+float64(i)*slot+slot/2, h-bottom+14, esc(p))
			}
		}
	}
	if len(s.groups) > 1 || (len(s.groups) == 1 && s.groupLabels[0] != "") {
		x := left + 8
		for j, l := range s.groupLabels {
			fmt.Fprintf(&b, `<rect class="bar g%d" x="%.0f" y="6" width="10" height="10"/><text class="legend" x="%.0f" y="15">%s</text>`, j, x, x+14, esc(l))
			x += 22 + 7*float64(len([]rune(l)))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceMax rounds v up to 1, 2, 4 or 5 times a power of ten, so that the
// axis' steps are round numbers (0 stays 0).
func niceMax(v int64) int64 {
	if v <= 0 {
		return 0
	}
	p := int64(1)
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []int64{1, 2, 4, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// idOf is a string as an id fragment (letters and digits).
func idOf(s string) string {
	var b strings.Builder
	b.WriteString("c")
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}
