package pages

import (
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// Every mark this version sets has a short word and a meaning in every
// language: a new mark in observe.KnownMarks without them fails here.
func TestEveryMarkHasItsWordsInEveryLanguage(t *testing.T) {
	for _, m := range observe.KnownMarks {
		for _, k := range []string{"mark." + m.Name, "mark." + m.Name + ".why"} {
			if !i18n.Has(k) {
				t.Errorf("mark %s: no %q in every language", m.Name, k)
			}
		}
	}
	for _, k := range []string{"source.first", "source.first.why", "source.third", "source.third.why", "mark.unknown.why", "col.marks"} {
		if !i18n.Has(k) {
			t.Errorf("%q missing in some language", k)
		}
	}
}

// The badges say where an observation comes from and show every mark,
// known or not, with its meaning in the title; a third party's
// third_party mark is shown in its source badge.
func TestMarkBadges(t *testing.T) {
	for _, lang := range i18n.Languages {
		v := &view{Lang: lang}
		var all []string
		for _, m := range observe.KnownMarks {
			all = append(all, m.Name)
		}
		all = append(all, "from_a_newer_vigil")
		first := string(v.Marks(true, all))
		third := string(v.Marks(false, all))
		if !strings.HasPrefix(first, `<span class="src first" title="`) || !strings.HasPrefix(third, `<span class="src third" data-mark="third_party" title="`) {
			t.Fatalf("%s: source badges: %.80s / %.80s", lang, first, third)
		}
		for _, m := range observe.KnownMarks {
			label := i18n.T(lang, "mark."+m.Name)
			want := `<span class="mark" data-mark="` + m.Name + `" title="` + m.Name + " — "
			if !strings.Contains(first, want) || !strings.Contains(first, ">"+label+"</span>") {
				t.Errorf("%s: first-hand row lacks the badge of %s", lang, m.Name)
			}
			if m.Name == observe.MarkThirdParty {
				if strings.Contains(third, want) {
					t.Errorf("%s: third_party shown twice on a third party's row", lang)
				}
				continue
			}
			if !strings.Contains(third, want) {
				t.Errorf("%s: third-party row lacks the badge of %s", lang, m.Name)
			}
		}
		if !strings.Contains(first, `data-mark="from_a_newer_vigil" title="from_a_newer_vigil — `+i18n.T(lang, "mark.unknown.why")+`">from_a_newer_vigil</span>`) {
			t.Errorf("%s: an unknown mark is not shown as such: %s", lang, first)
		}
		if got := string(v.Marks(false, nil)); strings.Contains(got, "data-mark") || !strings.Contains(got, ">"+i18n.T(lang, "source.third")+"<") {
			t.Errorf("%s: a third party's row without marks: %s", lang, got)
		}
	}
}
