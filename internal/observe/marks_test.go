package observe

import (
	"slices"
	"strings"
	"testing"
)

func TestMarkKeepsMarksSortedAndUnique(t *testing.T) {
	var o Observation
	o.Mark(MarkThirdParty)
	o.Mark(MarkMalformedBitfield)
	o.Mark(MarkThirdParty)
	o.Mark(MarkSpoofableSource)
	if got, want := strings.Join(o.Marks, ","), "malformed_bitfield,spoofable_source,third_party"; got != want {
		t.Fatalf("marks = %s, want %s", got, want)
	}
	if !o.HasMark(MarkSpoofableSource) || o.HasMark(MarkTranscriptCut) {
		t.Fatalf("HasMark wrong on %v", o.Marks)
	}
}

func TestDecodeNormalizesMarks(t *testing.T) {
	got, err := normalizeMarks([]string{"third_party", "a_newer_mark", "third_party"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a_newer_mark", "third_party"}; !slices.Equal(got, want) {
		t.Fatalf("normalizeMarks = %v, want %v", got, want)
	}
}

func TestFirstHandNeverTrustsThirdPartyMethods(t *testing.T) {
	tests := []struct {
		method string
		marks  []string
		want   bool
	}{
		{MethodPeerProbe, nil, true},
		{MethodPeerProbe, []string{MarkMalformedBitfield}, true},
		{MethodDHTAnnounce, nil, true},
		{MethodDHTAnnounce, []string{MarkSpoofableSource}, false},
		// Imported from a Vigil that set no marks: the method decides.
		{MethodDHTGetPeers, nil, false},
		{MethodTracker, nil, false},
		{MethodPEX, nil, false},
		{"kad_sources", []string{MarkThirdParty}, false},
		// A server's or a Kad node's list of sources, even unmarked.
		{MethodED2KServerSources, nil, false},
		{MethodKadSources, nil, false},
		// An imported file proves no conversation, whatever its method.
		{MethodPeerProbe, []string{MarkUnsigned}, false},
		{MethodDHTAnnounce, []string{MarkUnsigned}, false},
	}
	for _, tt := range tests {
		o := Observation{Method: tt.method, Marks: tt.marks}
		if got := o.FirstHand(); got != tt.want {
			t.Errorf("FirstHand(%s %v) = %v, want %v", tt.method, tt.marks, got, tt.want)
		}
	}
}

func TestKnownMarksAreValidAndSorted(t *testing.T) {
	for i, m := range KnownMarks {
		if !ValidMark(m.Name) {
			t.Errorf("known mark %q is not valid", m.Name)
		}
		if i > 0 && KnownMarks[i-1].Name >= m.Name {
			t.Errorf("known marks out of order at %q", m.Name)
		}
	}
}
