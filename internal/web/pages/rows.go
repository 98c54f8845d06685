package pages

import (
	"html/template"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// The long row loops of the target list (50 rows) and of a target's
// timeline (200 rows) are written here rather than by html/template,
// whose per-cell method calls (through reflect) and escaping were most of
// a page's rendering time. The output is byte for byte what the template
// loops wrote (rows_test.go executes those loops and compares, with
// hostile values in every field): text is escaped as html/template
// escapes text, the link as it escapes a URL path inside an attribute.

// appendHTMLText is html/template's escaping of text and of quoted
// attribute values (its htmlReplacementTable): NUL, quotes, &, +, < and >.
func appendHTMLText(b []byte, s string) []byte { return appendEscaped(b, s, &htmlTextRepl) }

// appendTextEscaped is text/template's HTMLEscape (what Time used):
// quotes, &, < and >, and NUL.
func appendTextEscaped(b, s []byte) []byte { return appendEscaped(b, s, &textEscapeRepl) }

var (
	htmlTextRepl   = replTable(map[byte]string{0: "\uFFFD", '"': "&#34;", '&': "&amp;", '\'': "&#39;", '+': "&#43;", '<': "&lt;", '>': "&gt;"})
	textEscapeRepl = replTable(map[byte]string{0: "\uFFFD", '"': "&#34;", '\'': "&#39;", '&': "&amp;", '<': "&lt;", '>': "&gt;"})
)

func replTable(m map[byte]string) (t [256]string) {
	for c, r := range m {
		t[c] = r
	}
	return t
}

// appendEscaped appends s with each byte that repl names replaced.
func appendEscaped[S string | []byte](b []byte, s S, repl *[256]string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		r := repl[s[i]]
		if r == "" {
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, r...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendURLPathAttr is html/template's escaping of a value after the
// start of a URL path in a double-quoted attribute: URL-normalised (every
// byte but RFC 3986's unreserved and reserved ones and valid %xx escapes,
// as %xx), then
// escaped as attribute text.
func appendURLPathAttr(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			b = append(b, c)
		case c == '-' || c == '.' || c == '_' || c == '~':
			b = append(b, c)
		case c == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]):
			// A valid escape is kept (as html/template does, which
			// checks i+2 < len(s): one at the very end is re-encoded).
			b = append(b, c)
		case c == '!' || c == '#' || c == '$' || c == '*' || c == ',' || c == '/' || c == ':' || c == ';' || c == '=' ||
			c == '?' || c == '@' || c == '[' || c == ']':
			b = append(b, c)
		case c == '&':
			b = append(b, "&amp;"...)
		case c == '+':
			b = append(b, "&#43;"...)
		default:
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return b
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// appendTimeHTML is what Time (ms false) and TimeMS (ms true) return.
func (v *view) appendTimeHTML(b []byte, t time.Time, ms bool) []byte {
	if t.IsZero() {
		return b
	}
	u := t.UTC()
	b = append(b, `<time datetime="`...)
	b = u.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `" title="`...)
	b = i18n.AppendTime(b, v.Lang, u, true)
	b = append(b, `">`...)
	var local [64]byte
	b = appendTextEscaped(b, i18n.AppendTime(local[:0], v.Lang, t.In(v.Zone), ms))
	return append(b, `</time>`...)
}

// levelCache keeps Level's badge per level for one rendering.
type levelCache map[observe.Level]template.HTML

func (c levelCache) get(v *view, l observe.Level) template.HTML {
	h, ok := c[l]
	if !ok {
		h = v.Level(l)
		c[l] = h
	}
	return h
}

// TargetRows is the target list's table rows.
func (v *view) TargetRows(ts []TargetSummary) template.HTML {
	if len(ts) == 0 {
		b := append([]byte(`<tr><td colspan="10">`), appendHTMLText(nil, v.T("targets.none"))...)
		return template.HTML(append(b, `</td></tr>`...))
	}
	levels := levelCache{}
	b := make([]byte, 0, 900*len(ts))
	for i := range ts {
		t := &ts[i]
		b = append(b, "<tr>\n<td><a href=\"/targets/"...)
		b = appendURLPathAttr(b, t.ID)
		b = append(b, `">`...)
		b = appendHTMLText(b, t.ID)
		b = append(b, "</a></td>\n<td class=\"num\">"...)
		b = appendHTMLText(b, v.Score(t.Score))
		b = append(b, "</td>\n<td>"...)
		b = append(b, levels.get(v, t.Level)...)
		b = append(b, "</td>\n<td class=\"num\">"...)
		b = i18n.AppendInt(b, v.Lang, int64(t.Files))
		b = append(b, "</td>\n<td class=\"num\">"...)
		b = i18n.AppendInt(b, v.Lang, int64(t.Endpoints))
		b = append(b, "</td>\n<td>"...)
		for j, n := range t.Networks {
			if j > 0 {
				b = append(b, ", "...)
			}
			b = appendHTMLText(b, n)
		}
		b = append(b, "</td>\n<td>"...)
		b = appendHTMLText(b, v.Agency(t.Jurisdiction))
		b = append(b, "</td>\n<td>"...)
		b = appendHTMLText(b, v.Place(t.Country, t.Subdivision))
		if t.VPN {
			b = append(b, ` <span class="flag">VPN</span>`...)
		}
		b = append(b, "</td>\n<td>"...)
		b = v.appendTimeHTML(b, t.FirstSeen, false)
		b = append(b, "</td>\n<td>"...)
		b = v.appendTimeHTML(b, t.LastSeen, false)
		b = append(b, "</td>\n</tr>"...)
	}
	return template.HTML(b)
}

// TimelineRows is a target's timeline table rows.
func (v *view) TimelineRows(rows []ObservationRow) template.HTML {
	if len(rows) == 0 {
		b := append([]byte(`<tr><td colspan="10">`), appendHTMLText(nil, v.T("none.observations"))...)
		return template.HTML(append(b, `</td></tr>`...))
	}
	levels := levelCache{}
	b := make([]byte, 0, 700*len(rows))
	for i := range rows {
		o := &rows[i]
		b = append(b, "<tr><td>"...)
		b = v.appendTimeHTML(b, o.Time, true)
		b = append(b, "</td><td>"...)
		b = append(b, levels.get(v, o.Level)...)
		b = append(b, `</td><td class="marks">`...)
		b = v.appendMarks(b, o.FirstHand, o.Marks)
		b = append(b, `</td><td class="num">`...)
		b = appendHTMLText(b, v.Pieces(o.PiecesHave, o.PiecesTotal))
		b = append(b, "</td><td>"...)
		b = appendHTMLText(b, o.Network)
		b = append(b, ' ')
		b = appendHTMLText(b, o.Method)
		b = append(b, `</td><td class="mono ep">`...)
		b = appendHTMLText(b, o.Endpoint.String())
		b = append(b, '/')
		b = appendHTMLText(b, o.Transport)
		if o.VPN {
			b = append(b, ` <span class="flag">VPN</span>`...)
		}
		b = append(b, `</td><td class="mono">`...)
		b = appendHTMLText(b, o.Item)
		b = append(b, "</td><td>"...)
		b = appendHTMLText(b, v.Matches(o.Lists))
		b = append(b, "</td><td>"...)
		b = appendHTMLText(b, o.Client)
		b = append(b, "</td><td>"...)
		b = appendHTMLText(b, o.Sensor)
		b = append(b, "</td></tr>"...)
	}
	return template.HTML(b)
}
