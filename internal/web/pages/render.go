package pages

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// pageNames are the templates; each is parsed with layout.html.
var pageNames = []string{"login", "overview", "targets", "target", "isp", "purpose", "lists", "list", "import", "sensors", "audit", "figures", "operations", "operation", "error"}

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		out[n] = template.Must(template.New("layout.html").ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html"))
	}
	return out
}

// view is what every template gets: the request's user, language, zone,
// CSRF token, and the page's data. Its methods are the templates'
// vocabulary (T, Time, Level, ...).
type view struct {
	User      *User
	Lang      string
	Zone      *time.Location
	CSRF      string
	CSRFField string
	Nav       string // the active section
	Title     string
	Path      string
	Now       time.Time
	Data      any
	Query     url.Values
}

// T translates key.
func (v *view) T(key string, args ...any) string { return i18n.T(v.Lang, key, args...) }

// Time formats t in the viewer's zone, with the zone shown; the UTC time
// is in the title attribute.
func (v *view) Time(t time.Time) template.HTML {
	return template.HTML(v.appendTimeHTML(nil, t, false))
}

// TimeText is Time as plain text.
func (v *view) TimeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return i18n.Time(v.Lang, t.In(v.Zone), false)
}

// TimeMS is Time with milliseconds (timelines).
func (v *view) TimeMS(t time.Time) template.HTML {
	return template.HTML(v.appendTimeHTML(nil, t, true))
}

// Date formats the day of t in the viewer's zone.
func (v *view) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return i18n.Date(v.Lang, t.In(v.Zone))
}

// TrendChart is the overview's bar chart of observations per UTC day,
// its labels and values written for the viewer's language.
func (v *view) TrendChart(days []DayCount) template.HTML {
	labels := make([]string, len(days))
	values := make([]int, len(days))
	for i, d := range days {
		labels[i] = i18n.DayMonth(v.Lang, d.Day.UTC())
		values[i] = d.Observations
	}
	return barChart(v.T("overview.trend"), labels, values, v.Num, v.Colon())
}

// Day formats a UTC day (the trend's days).
func (v *view) Day(t time.Time) string { return i18n.Date(v.Lang, t.UTC()) }

// ZoneName is the viewer's zone name.
func (v *view) ZoneName() string { return v.Zone.String() }

// Level is the possession level as a badge with its word.
func (v *view) Level(l observe.Level) template.HTML {
	name := l.String()
	return template.HTML(fmt.Sprintf(`<span class="level %s" title="%s">%s</span>`,
		template.HTMLEscapeString(name), template.HTMLEscapeString(name), template.HTMLEscapeString(v.T("level."+name))))
}

// Levels lists the levels for a select.
func (v *view) Levels() []observe.Level {
	return []observe.Level{observe.Announced, observe.Acknowledged, observe.Partial, observe.Complete, observe.Verified}
}

// Score formats a score (one decimal, in the viewer's language).
func (v *view) Score(f float64) string { return i18n.Float(v.Lang, f, 1) }

// Float formats f with prec decimals in the viewer's language.
func (v *view) Float(f float64, prec int) string { return i18n.Float(v.Lang, f, prec) }

// Num formats an integer with the viewer's thousands separator.
func (v *view) Num(n int) string { return i18n.Int(v.Lang, n) }

// Num64 is Num for an int64.
func (v *view) Num64(n int64) string { return string(i18n.AppendInt(nil, v.Lang, n)) }

// Colon is the colon after a label: "label:" in English, "label :" (a
// narrow no-break space) in French.
func (v *view) Colon() string { return v.T("common.colon") }

// Role names a role in the viewer's language (the code itself when the
// catalog does not know it).
func (v *view) Role(r agency.Role) string { return v.known("role."+string(r), string(r)) }

// known is the message for key, or fallback when the catalog lacks it.
func (v *view) known(key, fallback string) string {
	if !i18n.Has(key) {
		return fallback
	}
	return v.T(key)
}

// PartName names a score part (analysis.Part*) in the viewer's language.
func (v *view) PartName(name string) string { return v.known("part."+name, name) }

// PartWhy explains a score part; why is the backend's explanation, shown
// when the catalog does not know the part.
func (v *view) PartWhy(name, why string) string {
	if i18n.Has("part." + name + ".why") {
		return v.T("part." + name + ".why")
	}
	if why != "" {
		return why
	}
	return v.T("part.other.why")
}

// plural picks key.one or key.other for n (French: 0 and 1 are singular)
// and formats n into it.
func (v *view) plural(key string, n int) string {
	one := n == 1
	if v.Lang == "fr" {
		one = n == 0 || n == 1
	}
	if one {
		return v.T(key+".one", v.Num(n))
	}
	return v.T(key+".other", v.Num(n))
}

// LeadNote is an associated file's note in the viewer's language.
func (v *view) LeadNote(a AssociatedFile) string {
	if a.State == "" {
		return a.Note
	}
	times := v.T("lead.times.one")
	if a.Seen != 1 {
		times = v.T("lead.times.other", v.Num(a.Seen))
	}
	return v.T("lead.note", v.known("lead."+a.State, a.State), times, v.plural("lead.watched", a.Watched), v.plural("lead.torrents", a.Torrents))
}

// Strength is a device link's strength word and confidence.
func (v *view) Strength(word string, confidence float64) string {
	w := v.known("strength."+word, word)
	if confidence == 0 {
		return w
	}
	return w + " (" + v.Float(confidence, 2) + ")"
}

// RuleName names a device-link rule (analysis.Rule*) in the viewer's
// language; "" for none.
func (v *view) RuleName(rule string) string {
	if rule == "" {
		return ""
	}
	return v.known("rule."+rule, rule)
}

// SensorName names a part of the sensors page: "metrics" and "sensor X"
// are the server's own words.
func (v *view) SensorName(name string) string {
	if name == "metrics" {
		return v.T("sensors.metrics")
	}
	if rest, ok := strings.CutPrefix(name, "sensor "); ok {
		return v.T("sensors.sensor", rest)
	}
	return name
}

// healthBT is the BitTorrent sensor's sentence when it works
// (bittorrent.Sensor.Health).
var healthBT = regexp.MustCompile(`^(\d+) routing nodes, (\d+) watched, (\d+) lookups, (\d+) observations$`)

// healthSentences are the parts' fixed sentences, by catalog key.
var healthSentences = map[string]string{
	"starting": "health.starting",
	"no DHT nodes in the routing tables: the bootstrap nodes did not answer": "health.bt.nonodes",
	"no info-hashes are watched: import a watch-list":                        "health.bt.nowatch",
	"no packets received": "health.bt.nopackets",
}

// Health is a part's health sentence in the viewer's language, with its
// numbers formatted for it. A sentence the catalog does not know is
// shown as written, marked as English for screen readers and translators.
func (v *view) Health(why string) template.HTML {
	if k, ok := healthSentences[why]; ok {
		return template.HTML(template.HTMLEscapeString(v.T(k)))
	}
	if m := healthBT.FindStringSubmatch(why); m != nil {
		args := make([]any, 4)
		for i := range args {
			n, _ := strconv.Atoi(m[i+1])
			args[i] = v.Num(n)
		}
		return template.HTML(template.HTMLEscapeString(v.T("health.bt.ok", args...)))
	}
	if v.Lang == "en" || why == "" {
		return template.HTML(template.HTMLEscapeString(why))
	}
	return template.HTML(`<span lang="en">` + template.HTMLEscapeString(why) + `</span>`)
}

// Agency names an agency id, or says it is unrouted.
func (v *view) Agency(a string) string {
	if a == "" {
		return v.T("common.unrouted")
	}
	return a
}

// Place names a place from country and subdivision.
func (v *view) Place(country, sub string) string {
	switch {
	case country == "" && sub == "":
		return v.T("common.unknownplace")
	case sub == "":
		return country
	}
	return country + "-" + sub
}

// Pieces formats held/total pieces.
func (v *view) Pieces(have, total int) string {
	switch {
	case have < 0:
		return ""
	case total < 0:
		return v.Num(have) + "/?"
	}
	return v.Num(have) + "/" + v.Num(total)
}

// Matches formats list matches.
func (v *view) Matches(ms []observe.Match) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		if m.Category != "" {
			parts = append(parts, m.List+" ("+m.Category+")")
		} else {
			parts = append(parts, m.List)
		}
	}
	return strings.Join(parts, ", ")
}

// YesNo translates a bool.
func (v *view) YesNo(b bool) string {
	if b {
		return v.T("common.yes")
	}
	return v.T("common.no")
}

// Q returns the current query with key set to val (and the page reset
// unless the key is the page), as "?...".
func (v *view) Q(kv ...string) string {
	q := url.Values{}
	for k, vs := range v.Query {
		q[k] = append([]string(nil), vs...)
	}
	resetPage := true
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "page" {
			resetPage = false
		}
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	if resetPage {
		q.Del("page")
	}
	return "?" + q.Encode()
}

// Sel returns "selected" when the query's key equals val.
func (v *view) Sel(key, val string) template.HTMLAttr {
	if v.Query.Get(key) == val {
		return "selected"
	}
	return ""
}

// Get returns a query value.
func (v *view) Get(key string) string { return v.Query.Get(key) }

var zones sync.Map // name -> *time.Location

func zoneOf(name string) *time.Location {
	if name == "" || name == "UTC" {
		return time.UTC
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	zones.Store(name, l)
	return l
}

func (s *server) newView(r *http.Request, u *User, nav, title string, data any) *view {
	v := &view{User: u, Lang: s.langOf(r, u), Zone: time.UTC, CSRFField: s.cfg.CSRFField, Nav: nav,
		Path: r.URL.Path, Now: s.now().UTC(), Data: data, Query: r.URL.Query()}
	if u != nil {
		v.Zone = zoneOf(u.TimeZone)
	}
	if s.cfg.CSRFToken != nil {
		v.CSRF = s.cfg.CSRFToken(r)
	}
	v.Title = v.T(title)
	return v
}

// render executes a page into a buffer first, so that a template error
// never sends half a page with a 200.
func (s *server) render(w http.ResponseWriter, code int, page string, v *view) {
	t := s.pages[page]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.log.Error("render", "page", page, "err", err)
		http.Error(w, "page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the error page with a message key.
func (s *server) fail(w http.ResponseWriter, r *http.Request, u *User, code int, key string, args ...any) {
	v := s.newView(r, u, "", "error.title", nil)
	v.Data = v.T(key, args...)
	s.render(w, code, "error", v)
}

// failQuery answers a filter that was not understood, naming the
// parameter, its value and why in the viewer's language.
func (s *server) failQuery(w http.ResponseWriter, r *http.Request, u *User, err error) {
	v := s.newView(r, u, "", "error.title", nil)
	msg := err.Error()
	var qe *QueryError
	if errors.As(err, &qe) && qe.Key != "" {
		msg = fmt.Sprintf("%s=%q%s %s", qe.Param, qe.Value, v.Colon(), v.T(qe.Key))
	}
	v.Data = v.T("targets.badquery", msg)
	s.render(w, http.StatusBadRequest, "error", v)
}

// Networks lists the networks for the filter.
func (v *view) Networks() []string {
	return []string{observe.NetBitTorrent, observe.NetED2K, observe.NetKad, observe.NetGnutella}
}
