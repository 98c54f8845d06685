package watchlist

import (
	"fmt"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// Merge joins the entries of several files imported as one list, applying
// across files the rule Parse applies within one: the same hash with the
// same category is a duplicate (kept once, counted), the same hash with two
// categories is rejected at both places, each naming the other, since
// neither category can be trusted.
func Merge(files ...[]Entry) (entries []Entry, duplicates int, rejected []Rejected) {
	type seen struct {
		idx      int // index in entries, -1 once disputed
		category string
		pos      Pos
	}
	first := map[hashkind.Hash]*seen{}
	disputed := map[hashkind.Hash]bool{}
	for _, es := range files {
		for _, e := range es {
			s, ok := first[e.Hash]
			if !ok {
				first[e.Hash] = &seen{idx: len(entries), category: e.Category, pos: e.Pos}
				entries = append(entries, e)
				continue
			}
			if s.category == e.Category {
				duplicates++
				continue
			}
			rejected = append(rejected, Rejected{File: e.Pos.File, Line: e.Pos.Line, Path: e.Pos.Path,
				Reason: fmt.Sprintf("%s %s has category %q here but %q at %s", e.Hash.Kind(), e.Hash, e.Category, s.category, posString(s.pos))})
			if !disputed[e.Hash] {
				disputed[e.Hash] = true
				rejected = append(rejected, Rejected{File: s.pos.File, Line: s.pos.Line, Path: s.pos.Path,
					Reason: fmt.Sprintf("%s %s has category %q here but %q at %s", e.Hash.Kind(), e.Hash, s.category, e.Category, posString(e.Pos))})
			}
		}
	}
	if len(disputed) == 0 {
		return entries, duplicates, nil
	}
	kept := entries[:0]
	for _, e := range entries {
		if !disputed[e.Hash] {
			kept = append(kept, e)
		}
	}
	return kept, duplicates, rejected
}

func posString(p Pos) string {
	s := p.File
	if p.Line > 0 {
		s += fmt.Sprintf(" line %d", p.Line)
	}
	if p.Path != "" {
		s += " " + p.Path
	}
	return s
}
