package pages

import (
	"bytes"
	"fmt"
	"html/template"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// The row loops as the templates wrote them before TargetRows and
// TimelineRows, in the same HTML context (inside a tbody).
const refRowsTemplate = `{{define "targets"}}<table><tbody>
{{range .Data}}<tr>
<td><a href="/targets/{{.ID}}">{{.ID}}</a></td>
<td class="num">{{$.Score .Score}}</td>
<td>{{$.Level .Level}}</td>
<td class="num">{{$.Num .Files}}</td>
<td class="num">{{$.Num .Endpoints}}</td>
<td>{{range $i, $n := .Networks}}{{if $i}}, {{end}}{{$n}}{{end}}</td>
<td>{{$.Agency .Jurisdiction}}</td>
<td>{{$.Place .Country .Subdivision}}{{if .VPN}} <span class="flag">VPN</span>{{end}}</td>
<td>{{$.Time .FirstSeen}}</td>
<td>{{$.Time .LastSeen}}</td>
</tr>{{else}}<tr><td colspan="10">{{$.T "targets.none"}}</td></tr>{{end}}
</tbody></table>{{end}}
{{define "timeline"}}<table id="timeline"><tbody>
{{range .Data}}<tr><td>{{$.TimeMS .Time}}</td><td>{{$.Level .Level}}</td><td class="marks">{{$.Marks .FirstHand .Marks}}</td><td class="num">{{$.Pieces .PiecesHave .PiecesTotal}}</td><td>{{.Network}} {{.Method}}</td><td class="mono ep">{{.Endpoint}}/{{.Transport}}{{if .VPN}} <span class="flag">VPN</span>{{end}}</td><td class="mono">{{.Item}}</td><td>{{$.Matches .Lists}}</td><td>{{.Client}}</td><td>{{.Sensor}}</td></tr>{{else}}<tr><td colspan="10">{{$.T "none.observations"}}</td></tr>{{end}}
</tbody></table>{{end}}`

const newRowsTemplate = `{{define "targets"}}<table><tbody>
{{.TargetRows .Data}}
</tbody></table>{{end}}
{{define "timeline"}}<table id="timeline"><tbody>
{{.TimelineRows .Data}}
</tbody></table>{{end}}`

// hostile strings: every byte html/template or a URL escapes, invalid
// UTF-8, non-ASCII, NUL, markup.
var hostile = []string{"", "T-A1", `<script>alert("x")</script>`, "a&b+c'd\"e", "é ü 漢字", "\x00\xff\xfe", "%41%zz/..?#x=1&y=2",
	"javascript:alert(1)", "%4", "%41", "x%41", "%4g%", "%%41%", " sp ace\t\n", "!$*,;:=@[]~_.-", "\u2028\u2029", "{{.}}", "a\\b`c", "<!--", "]]>"}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return hostile[r.IntN(len(hostile))]
	}
	b := make([]byte, r.IntN(12))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

func randTime(r *rand.Rand) time.Time {
	if r.IntN(8) == 0 {
		return time.Time{}
	}
	return time.Unix(0, r.Int64N(4e18)).UTC()
}

func randSummary(r *rand.Rand) TargetSummary {
	t := TargetSummary{ID: randString(r), Jurisdiction: randString(r), Score: r.Float64()*1000 - 10, Level: observe.Level(r.IntN(7) - 1),
		Files: r.IntN(2000) - 5, Endpoints: r.IntN(100), Country: randString(r), Subdivision: randString(r), VPN: r.IntN(2) == 0,
		FirstSeen: randTime(r), LastSeen: randTime(r)}
	for range r.IntN(4) {
		t.Networks = append(t.Networks, randString(r))
	}
	return t
}

func randObservation(r *rand.Rand) ObservationRow {
	o := ObservationRow{Time: randTime(r), Network: randString(r), Method: randString(r), Level: observe.Level(r.IntN(7) - 1),
		PiecesHave: r.IntN(100) - 2, PiecesTotal: r.IntN(100) - 2, Item: randString(r), Transport: randString(r),
		Client: randString(r), Sensor: randString(r), VPN: r.IntN(2) == 0, FirstHand: r.IntN(2) == 0}
	for range r.IntN(3) {
		if r.IntN(2) == 0 {
			o.Marks = append(o.Marks, observe.KnownMarks[r.IntN(len(observe.KnownMarks))].Name)
		} else {
			o.Marks = append(o.Marks, randString(r))
		}
	}
	switch r.IntN(3) {
	case 0:
		o.Endpoint = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(r.IntN(256))}), uint16(r.IntN(65536)))
	case 1:
		o.Endpoint = netip.MustParseAddrPort("[2001:db8::1]:6881")
	}
	for range r.IntN(3) {
		o.Lists = append(o.Lists, observe.Match{List: randString(r), Category: randString(r)})
	}
	return o
}

// TargetRows and TimelineRows write what the template loops they
// replaced wrote, for every language, in zones with odd abbreviations,
// over random and hostile values.
func TestRowsEqualTemplateLoops(t *testing.T) {
	ref := template.Must(template.New("ref").Parse(refRowsTemplate))
	got := template.Must(template.New("new").Parse(newRowsTemplate))
	r := rand.New(rand.NewPCG(5, 5))
	zones := []string{"UTC", "Europe/Paris", "Asia/Dubai", "America/St_Johns", "Pacific/Chatham"}
	for iter := range 300 {
		v := &view{Lang: []string{"en", "fr"}[iter%2], Zone: zoneOf(zones[iter%len(zones)])}
		n := r.IntN(8)
		if iter%50 == 0 {
			n = 0
		}
		ts := make([]TargetSummary, n)
		os := make([]ObservationRow, n)
		for i := range n {
			ts[i], os[i] = randSummary(r), randObservation(r)
		}
		for name, data := range map[string]any{"targets": ts, "timeline": os} {
			v.Data = data
			var want, have bytes.Buffer
			if err := ref.ExecuteTemplate(&want, name, v); err != nil {
				t.Fatal(err)
			}
			if err := got.ExecuteTemplate(&have, name, v); err != nil {
				t.Fatal(err)
			}
			if want.String() != have.String() {
				t.Fatalf("%s, iteration %d (%s, %s):\nwant %q\nhave %q", name, iter, v.Lang, v.Zone, firstDiff(want.String(), have.String()), firstDiff(have.String(), want.String()))
			}
		}
	}
}

func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return a[max(0, i-60):min(len(a), i+60)]
}

// Time and TimeMS write what they wrote with fmt.Sprintf.
func TestTimeHTMLUnchanged(t *testing.T) {
	// French writes the milliseconds after a decimal comma (ISO 8601
	// allows it); the order of the fields is the same in both languages.
	old := func(v *view, tm time.Time, layout string) template.HTML {
		if tm.IsZero() {
			return ""
		}
		utc := "2006-01-02 15:04:05.000 UTC"
		if v.Lang == "fr" {
			utc, layout = strings.Replace(utc, ".", ",", 1), strings.Replace(layout, ".", ",", 1)
		}
		return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`,
			tm.UTC().Format(time.RFC3339Nano), tm.UTC().Format(utc),
			template.HTMLEscapeString(tm.In(v.Zone).Format(layout))))
	}
	r := rand.New(rand.NewPCG(7, 7))
	for _, z := range []string{"UTC", "Europe/Paris", "Asia/Dubai", "America/St_Johns", "Asia/Kolkata"} {
		for _, lang := range []string{"en", "fr"} {
			v := &view{Zone: zoneOf(z), Lang: lang}
			for range 200 {
				tm := randTime(r)
				if got, want := v.Time(tm), old(v, tm, "2006-01-02 15:04:05 MST"); got != want {
					t.Fatalf("Time(%v) in %s, %s = %q, want %q", tm, z, lang, got, want)
				}
				if got, want := v.TimeMS(tm), old(v, tm, "2006-01-02 15:04:05.000 MST"); got != want {
					t.Fatalf("TimeMS(%v) in %s, %s = %q, want %q", tm, z, lang, got, want)
				}
			}
		}
	}
	if !strings.Contains(string((&view{Zone: zoneOf("Asia/Dubai")}).Time(time.Unix(0, 0))), "+04") {
		t.Fatal("the test's zones do not exercise a numeric abbreviation")
	}
}
