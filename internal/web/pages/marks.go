package pages

import (
	"encoding/json"
	"html/template"
	"slices"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// Every row that shows an observation shows where it comes from — the
// endpoint itself (first-hand) or a third party — and its marks, each a
// short word whose title gives the meaning (observe.KnownMarks,
// docs/evidence.md "Marks"), in the viewer's language: a screen must never
// let a third party's claim pass for what the peer itself showed. The
// live rows (vigil.js) build the same badges from MarkLabels.

// markLabel returns the short word and the title of a mark.
func (v *view) markLabel(m string) (label, title string) {
	if i18n.Has("mark."+m) && i18n.Has("mark."+m+".why") {
		return v.T("mark." + m), m + " — " + v.T("mark."+m+".why")
	}
	return m, m + " — " + v.T("mark.unknown.why")
}

// appendMarks appends the source badge and the mark badges. A third
// party's claim marked third_party shows that mark in its source badge
// (data-mark and title) rather than in a badge of its own that would say
// the same again.
func (v *view) appendMarks(b []byte, firstHand bool, marks []string) []byte {
	folded := !firstHand && slices.Contains(marks, observe.MarkThirdParty)
	if firstHand {
		b = append(b, `<span class="src first" title="`...)
		b = appendHTMLText(b, v.T("source.first.why"))
		b = append(b, `">`...)
		b = appendHTMLText(b, v.T("source.first"))
	} else {
		b = append(b, `<span class="src third"`...)
		if folded {
			b = append(b, ` data-mark="`+observe.MarkThirdParty+`"`...)
		}
		b = append(b, ` title="`...)
		b = appendHTMLText(b, v.T("source.third.why"))
		if folded {
			_, title := v.markLabel(observe.MarkThirdParty)
			b = append(b, '\n')
			b = appendHTMLText(b, title)
		}
		b = append(b, `">`...)
		b = appendHTMLText(b, v.T("source.third"))
	}
	b = append(b, `</span>`...)
	for _, m := range marks {
		if folded && m == observe.MarkThirdParty {
			continue
		}
		label, title := v.markLabel(m)
		b = append(b, ` <span class="mark" data-mark="`...)
		b = appendHTMLText(b, m)
		b = append(b, `" title="`...)
		b = appendHTMLText(b, title)
		b = append(b, `">`...)
		b = appendHTMLText(b, label)
		b = append(b, `</span>`...)
	}
	return b
}

// MarkBadges is the mark badges alone, for a level that rests on several
// observations (a target's file row): the marks of those that gave it.
func (v *view) MarkBadges(marks []string) template.HTML {
	var b []byte
	for _, m := range marks {
		label, title := v.markLabel(m)
		b = append(b, ` <span class="mark" data-mark="`...)
		b = appendHTMLText(b, m)
		b = append(b, `" title="`...)
		b = appendHTMLText(b, title)
		b = append(b, `">`...)
		b = appendHTMLText(b, label)
		b = append(b, `</span>`...)
	}
	return template.HTML(b)
}

// Marks is the source badge and the mark badges of one observation.
func (v *view) Marks(firstHand bool, marks []string) template.HTML {
	return template.HTML(v.appendMarks(nil, firstHand, marks))
}

// MarkLabels is the JSON the live rows build their badges from: the
// source badges' words and titles, and each known mark's.
func (v *view) MarkLabels() string {
	type pair [2]string
	out := struct {
		First   pair            `json:"first"`
		Third   pair            `json:"third"`
		Marks   map[string]pair `json:"marks"`
		Unknown string          `json:"unknown"`
	}{
		First:   pair{v.T("source.first"), v.T("source.first.why")},
		Third:   pair{v.T("source.third"), v.T("source.third.why")},
		Marks:   map[string]pair{},
		Unknown: v.T("mark.unknown.why"),
	}
	for _, k := range observe.KnownMarks {
		l, t := v.markLabel(k.Name)
		out.Marks[k.Name] = pair{l, t}
	}
	b, _ := json.Marshal(out)
	return string(b)
}
