package webviews

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// ends is a store whose endpoints belong to the targets it names.
type ends struct {
	owner   map[netip.AddrPort]string
	visible map[string]bool
	asked   int
}

func (e *ends) EndpointTargetsAt(_ context.Context, eps []netip.AddrPort, _ []time.Time, _ time.Duration) ([]string, error) {
	e.asked++
	out := make([]string, len(eps))
	for i, ap := range eps {
		out[i] = e.owner[ap]
	}
	return out, nil
}

func (e *ends) VisibleTargets(_ context.Context, _ analysis.Scope, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = e.visible[id]
	}
	return out, nil
}

// A withdrawn link's note may name two endpoints that are neither of its
// ends (an identifier active at two other addresses at once): each
// address a link names is withheld unless the viewer may see its target.
func TestWithholdLinkEndsCoversEndsReasonsAndNotes(t *testing.T) {
	own := netip.MustParseAddrPort("127.1.0.1:6881")
	mine := netip.MustParseAddrPort("127.1.0.9:6881")    // another target of the viewer's
	theirs := netip.MustParseAddrPort("127.3.0.1:6881")  // another service's
	v6 := netip.MustParseAddrPort("[2001:db8::7]:51413") // another service's
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	d := &analysis.TargetDetail{
		Endpoints: []analysis.EndpointInfo{{IP: own.Addr(), Port: own.Port()}},
		Timeline:  []analysis.TimelineEntry{{ID: "obs-own"}},
		Links: []analysis.Link{{
			A: own.String(), B: theirs.String() + "#1", EndpointA: own.String(), EndpointB: theirs.String() + "#1",
			Reason: "same peer id seen from " + own.String() + " at x and " + theirs.String() + " at y",
			Note:   "identifier active at " + mine.String() + " (t) and " + v6.String() + " (t) at the same time: replayed",
			Obs:    []string{"obs-own", "obs-theirs"}, At: at, State: "withdrawn",
		}, {
			A: own.String(), B: mine.String(), EndpointA: own.String(), EndpointB: mine.String(),
			Reason: "same DHT node id seen from " + own.String() + " and " + mine.String() + ".", Obs: []string{"a", "b"}, At: at, State: "rejected",
		}},
	}
	st := &ends{owner: map[netip.AddrPort]string{mine: "T-2", theirs: "T-3", v6: "T-4"}, visible: map[string]bool{"T-2": true}}
	national := *d
	national.Links = slices.Clone(d.Links)
	if err := WithholdLinkEnds(t.Context(), st, &national, analysis.AllAgencies, 0); err != nil || st.asked != 0 {
		t.Fatalf("national: %v, %d questions", err, st.asked)
	}
	if err := WithholdLinkEnds(t.Context(), st, d, analysis.Scope{Agencies: []string{"fr-pp-dpj"}}, 0); err != nil {
		t.Fatal(err)
	}
	l := d.Links[0]
	for _, s := range []string{l.A, l.B, l.EndpointA, l.EndpointB, l.Reason, l.Note, strings.Join(l.Obs, ",")} {
		if strings.Contains(s, theirs.Addr().String()) || strings.Contains(s, "2001:db8") || strings.Contains(s, "obs-theirs") {
			t.Errorf("another service's endpoint or observation is shown: %q", s)
		}
	}
	if l.EndpointA != own.String() || l.EndpointB != Withheld || !strings.Contains(l.Note, mine.String()) || !strings.Contains(l.Reason, own.String()) {
		t.Errorf("withheld too much or too little: %+v", l)
	}
	if !slices.Equal(l.Obs, []string{"obs-own"}) {
		t.Errorf("observations %v, want the target's own", l.Obs)
	}
	if d.Links[1].EndpointB != mine.String() || len(d.Links[1].Obs) != 2 {
		t.Errorf("a link to a target the viewer may see was changed: %+v", d.Links[1])
	}
	// A store that cannot say whose an endpoint is: every foreign one is
	// withheld.
	d2 := &analysis.TargetDetail{Endpoints: d.Endpoints, Links: []analysis.Link{{EndpointA: own.String(), EndpointB: mine.String(), At: at}}}
	if err := WithholdLinkEnds(t.Context(), nil, d2, analysis.Scope{Agencies: []string{"fr-pp-dpj"}}, 0); err != nil || d2.Links[0].EndpointB != Withheld {
		t.Errorf("without a store: %v, %+v", err, d2.Links[0])
	}
}

// An analyst's note is free text: an address in it may follow "=" or
// "<", end a line, sit before "/tcp", or be written in capitals or in
// full (IPv6); the host of a withheld endpoint may be written alone too.
// Each form of another service's endpoint is withheld, not only the one
// a program prints.
func TestWithholdLinkEndsFindsAddressesInAnyForm(t *testing.T) {
	own := netip.MustParseAddrPort("127.1.0.1:6881")
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	theirs := map[netip.AddrPort]string{}
	for _, s := range []string{"127.3.0.1:6881", "127.3.0.2:6881", "127.3.0.3:6881", "127.3.0.4:6881", "[2001:db8::7]:51413", "[2001:db8::8]:51413"} {
		theirs[netip.MustParseAddrPort(s)] = "T-3"
	}
	note := "endpoint=127.3.0.1:6881, then 127.3.0.2:6881\n(next line) <127.3.0.3:6881> 127.3.0.4:6881/tcp " +
		"[2001:DB8::7]:51413 [2001:db8:0:0:0:0:0:8]:51413\tand host 127.3.0.1 again, [127.3.0.2]:6881"
	d := &analysis.TargetDetail{
		Endpoints: []analysis.EndpointInfo{{IP: own.Addr(), Port: own.Port()}},
		Links: []analysis.Link{{A: own.String(), EndpointA: own.String(), B: Withheld, EndpointB: Withheld,
			Reason: "rejected", Note: note, At: at, State: "rejected"}},
	}
	st := &ends{owner: theirs, visible: map[string]bool{}}
	if err := WithholdLinkEnds(t.Context(), st, d, analysis.Scope{Agencies: []string{"fr-pp-dpj"}}, 0); err != nil {
		t.Fatal(err)
	}
	got := d.Links[0].Note
	for _, leak := range []string{"127.3.", "2001:", "2001:DB8", ":8]"} {
		if strings.Contains(got, leak) {
			t.Errorf("note %q still shows %q", got, leak)
		}
	}
	if !strings.Contains(got, "(next line)") || !strings.Contains(got, "/tcp") {
		t.Errorf("note %q: more than the addresses withheld", got)
	}
}

// FuzzAddressTokens: whatever a note holds, the addresses found lie in
// it in order, and once each address and port found is withheld, none of
// them is found again.
func FuzzAddressTokens(f *testing.F) {
	f.Add("endpoint=127.3.0.1:6881, then [2001:DB8::7]:51413\n<ab127.3.0.3:6881> host 127.3.0.1.")
	f.Add("[::ffff:127.0.0.1]:1 1.2.3.4.5:6 [fe80::1%eth0]:7 ::")
	f.Fuzz(func(t *testing.T, note string) {
		last := 0
		var found []netip.AddrPort
		for _, tk := range addressTokens(note) {
			if tk.start < last || tk.end <= tk.start || tk.end > len(note) {
				t.Fatalf("token %+v out of order in %q", tk, note)
			}
			last = tk.end
			if tk.ap.IsValid() {
				found = append(found, tk.ap)
			}
		}
		l := analysis.Link{Note: note}
		for _, ap := range found {
			withhold(&l, ap, nil)
		}
		for _, tk := range addressTokens(l.Note) {
			if slices.Contains(found, tk.ap) {
				t.Fatalf("%v still in %q (from %q)", tk.ap, l.Note, note)
			}
		}
	})
}
