package analysis

import "testing"

// TestIdentOfIsTheKeysIdent: the ident an endpoint kept from its last
// sighting in a slot is used only for the same value; another value, or
// the first value again after it, gets the ident e.idents holds for that
// rule and value, the one every other endpoint gets, so that sightings
// of one identifier at several endpoints meet in one ident.
func TestIdentOfIsTheKeysIdent(t *testing.T) {
	e := &Engine{idents: map[identKey]*ident{}}
	p, q := &endpoint{id: 1}, &endpoint{id: 2}
	x, y := []byte("-TR3000-xxxxxxxxxxxx"), []byte("-TR3000-yyyyyyyyyyyy")
	check := func(who *endpoint, slot int, rule string, val []byte) *ident {
		t.Helper()
		got := e.identOf(who, slot, rule, val)
		if want := e.idents[identKey{rule, string(val)}]; got != want || got == nil {
			t.Fatalf("endpoint %d, %s %q: ident %p, e.idents holds %p", who.id, rule, val, got, want)
		}
		if got.key != (identKey{rule, string(val)}) {
			t.Fatalf("ident of %s %q has key %v", rule, val, got.key)
		}
		return got
	}
	a := check(p, slotPeerID, RulePeerID, x)
	b := check(p, slotPeerID, RulePeerID, y)
	if a == b {
		t.Fatal("two peer ids share an ident")
	}
	if check(p, slotPeerID, RulePeerID, x) != a || check(q, slotPeerID, RulePeerID, x) != a || check(q, slotPeerID, RulePeerID, y) != b {
		t.Fatal("one peer id got two idents")
	}
	// The same bytes under another rule are another identifier.
	if check(p, slotUserHash, RuleUserHash, x) == a {
		t.Fatal("a user hash shares the ident of the peer id of the same bytes")
	}
	// A value read into a buffer that is then overwritten: the ident
	// kept its own copy.
	buf := append([]byte(nil), x...)
	c := check(q, slotGUID, RuleGUID, buf)
	copy(buf, y)
	if c.key.val != string(x) || check(q, slotGUID, RuleGUID, buf) == c {
		t.Fatal("the kept ident follows the bytes it was looked up with")
	}
	if len(e.idents) != 5 {
		t.Fatalf("%d idents, want 5", len(e.idents))
	}
}
