package analysis

import "testing"

// A category may hold a comma: a target whose categories go from a and b
// to "a,b" (a list's entry rewritten) must have them written again.
func TestWrittenSigTellsListsApart(t *testing.T) {
	for _, c := range [][2][]string{
		{{"a", "b"}, {"a,b"}},
		{{"a", ""}, {"a"}},
		{{""}, nil},
		{{"1:a"}, {"a"}},
		{{"2:ab"}, {"ab", ""}},
	} {
		if sigOf(nil, c[0]) == sigOf(nil, c[1]) || sigOf(c[0], nil) == sigOf(c[1], nil) {
			t.Errorf("%q and %q read alike", c[0], c[1])
		}
	}
	if sigOf([]string{"fr-a"}, []string{"x"}) != sigOf([]string{"fr-a"}, []string{"x"}) {
		t.Error("equal lists read differently")
	}
}
