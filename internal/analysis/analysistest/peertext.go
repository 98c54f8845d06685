package analysistest

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// hostileText is what a hostile peer puts in a string Vigil turns into
// text of its own: a NUL byte (PostgreSQL's text takes none), bytes that
// are not UTF-8 (nor those), a bidi override (which turns a page's cell
// around), a backslash and a control.
const hostileText = "ev\x00il\xff\xfe\u202egnp\\\x1b"

// Attack (h-nul): a peer puts hostileText in its extension handshake's
// "v" (the client name a listen-port link's evidence and reason quote),
// an eD2K server or Kad node in a search result's file name (a suspect
// lead's name and key), a peer in a file name of a watched torrent's
// metadata (an associated file's name and key). Before, the PostgreSQL
// store refused the analysis's whole save (SQLSTATE 22021 or 22P05):
// every later save wrote the same lead or link again and failed again,
// and no target of anyone was updated any more on PostgreSQL, where
// SQLite stored the text as sent (control bytes and all, onto the
// pages). Both stores must hold the same text: the peer's bytes written
// by observe.EscapeText, which reads back to them (UnescapeText).
func testPeerTextIsStoredEscapedAlike(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	var obs []observe.Observation
	for i, ep := range []string{"10.1.2.3:40123", "10.7.7.7:40123"} {
		o := ob(ep, 1, observe.Complete, t0.Add(time.Duration(i)*time.Hour), versailles)
		o.Client = observe.Client{Name: hostileText, Version: "1\x00" + hostileText, ListenPort: 40123}
		obs = append(obs, o)
	}
	// The same client at two addresses of one IPv6 /64, one after the
	// other, on one port: a subscriber_prefix link quotes it too.
	for i, ep := range []string{"[2001:db8:1:1::10]:40124", "[2001:db8:1:1::20]:40124"} {
		o := ob(ep, 2, observe.Complete, t0.Add(time.Duration(3+i)*time.Hour), versailles)
		o.Client = observe.Client{Name: hostileText, Version: "2" + hostileText}
		obs = append(obs, o)
	}
	ingest(t, st, e, obs...)
	sus := hashkind.MustNew(hashkind.ED2K, []byte("lab-suspect-0042"))
	if err := e.AddSuspects(ctx, []analysis.Suspect{{Hash: sus, Name: hostileText + ".bin", Size: 1000, Sources: 1,
		Keyword: "lab-keyword-beta", Network: observe.NetKad, Time: t0}}); err != nil {
		t.Fatalf("a suspect lead named by a hostile Kad node: %v", err)
	}
	ep := observe.Endpoint{IP: netip.MustParseAddr("10.1.2.3"), Port: 40123, Transport: "tcp"}
	if err := e.AddAssociated(ctx, []analysis.Associated{{Torrent: file(1), Endpoint: ep, Time: t0, Files: []analysis.AssocFile{
		{Path: "dir/" + hostileText, Size: 200}}}}); err != nil {
		t.Fatalf("an associated file named by a hostile peer: %v", err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("the analysis's save of a hostile peer's text: %v", err)
	}
	esc := observe.EscapeText(hostileText)
	// A second engine reads all of it back from the store.
	e2 := engine(t, st)
	ls, n, err := e2.Leads(ctx, analysis.LeadQuery{})
	if err != nil || n != 2 {
		t.Fatalf("leads %+v (%d), %v; want the suspect and the associated file", ls, n, err)
	}
	var paths, keys []string
	for _, l := range ls {
		paths, keys = append(paths, l.Path), append(keys, l.Key)
		checkText(t, "lead path", l.Path)
		checkText(t, "lead key", l.Key)
	}
	slices.Sort(paths)
	if want := []string{"dir/" + esc, esc + ".bin"}; !slices.Equal(paths, want) {
		t.Fatalf("lead paths %q, want %q", paths, want)
	}
	if !slices.Contains(keys, analysis.HashKey(file(1))+"/dir/"+esc) {
		t.Fatalf("lead keys %q, want the associated file's torrent and escaped path", keys)
	}
	id := byLabel(t, st, "10.7.7.7:40123")
	d, err := st.Target(ctx, id, analysis.AllAgencies)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, l := range d.Links {
		checkText(t, "link evidence", l.Evidence)
		checkText(t, "link reason", l.Reason)
		if l.Rule == analysis.RuleListenPort {
			found = true
			if want := "AS64512|40123|" + esc + "|1" + observe.EscapeText("\x00"+hostileText); l.Evidence != want {
				t.Errorf("listen-port link evidence %q, want %q", l.Evidence, want)
			}
		}
	}
	if !found || len(d.Endpoints) != 2 {
		t.Fatalf("target %s: %d endpoints, links %+v; want the two addresses linked by listen port and client", id, len(d.Endpoints), d.Links)
	}
	d, err = st.Target(ctx, byLabel(t, st, "[2001:db8:1:1::20]:40124"), analysis.AllAgencies)
	if err != nil {
		t.Fatal(err)
	}
	found = false
	for _, l := range d.Links {
		checkText(t, "link evidence", l.Evidence)
		checkText(t, "link reason", l.Reason)
		if l.Rule == analysis.RuleSubscriberPrefix {
			found = true
			if want := "AS64512|2001:db8:1:1::/64|40124|default|" + esc + "|2" + esc; l.Evidence != want {
				t.Errorf("subscriber-prefix link evidence %q, want %q", l.Evidence, want)
			}
		}
	}
	if !found {
		t.Fatalf("links %+v; want the two addresses of one /64 linked by subscriber prefix and client", d.Links)
	}
}

// checkText fails t if s holds what a PostgreSQL text column or a page
// cannot take, or is not text observe.UnescapeText reads.
func checkText(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }) {
		t.Errorf("%s %q holds bytes that are not UTF-8 or characters that are not printable", what, s)
	}
	if _, err := observe.UnescapeText(s); err != nil {
		t.Errorf("%s %q: %v", what, s, err)
	}
}

// Attack: a geo database is a file from outside (a download, a vendor's
// update), and its strings (an organisation, a city, a subdivision, a
// country code) become the analysis's text (an endpoint's org and city,
// a target's country and subdivision, the figures' roll-ups) as the
// observation's place carries them. A NUL byte or bytes that are not
// UTF-8 in one of them made the PostgreSQL store refuse the analysis's
// whole save, every later save too, as a peer's client name did. Both
// stores must hold the place's text written by observe.EscapeText.
func testPlaceTextIsStoredEscapedAlike(t *testing.T, st Store) {
	ctx := context.Background()
	e := engine(t, st)
	o := ob("10.9.9.9:40125", 3, observe.Complete, t0, versailles)
	o.Place = observe.Place{Country: "F\x00R", Subdivisions: []string{"Île\xff", "7\x008"}, City: "Ly\x00on\u202e",
		ASN: 64512, Org: hostileText}
	ingest(t, st, e, o)
	if err := e.Flush(ctx); err != nil {
		t.Fatalf("the analysis's save of a hostile geo database's text: %v", err)
	}
	id := byLabel(t, st, "10.9.9.9:40125")
	for _, s := range targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies}) {
		if s.ID == id {
			checkText(t, "target country", s.Country)
			checkText(t, "target subdivision", s.Subdivision)
			if s.Country != `F\u0000R` || s.Subdivision != `7\u00008` {
				t.Errorf("target country %q, subdivision %q; want them escaped", s.Country, s.Subdivision)
			}
		}
	}
	d, err := st.Target(ctx, id, analysis.AllAgencies)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Endpoints) != 1 {
		t.Fatalf("target %s: endpoints %+v; want one", id, d.Endpoints)
	}
	ep := d.Endpoints[0]
	for _, s := range []string{ep.Org, ep.Country, ep.Subdivision, ep.City} {
		checkText(t, "endpoint place", s)
	}
	// A byte that is not UTF-8 is U+FFFD in the place the stores keep
	// (and in a JSON line): the text is the same whether the analysis had
	// the observation from ingest or read it back from the store.
	org := observe.EscapeText(strings.ToValidUTF8(hostileText, "\uFFFD\uFFFD"))
	if ep.Org != org || ep.City != `Ly\u0000on\u202e` || ep.Country != `F\u0000R` || ep.Subdivision != `7\u00008` {
		t.Errorf("endpoint org %q, city %q, country %q, subdivision %q; want them escaped", ep.Org, ep.City, ep.Country, ep.Subdivision)
	}
	// Another process stores the same place at another address; a new
	// engine reads it from the store.
	o2 := ob("10.9.9.10:40125", 4, observe.Complete, t0.Add(time.Hour), versailles)
	o2.Place = o.Place
	ingest(t, st, nil, o2)
	if err := engine(t, st).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	d, err = st.Target(ctx, byLabel(t, st, "10.9.9.10:40125"), analysis.AllAgencies)
	if err != nil || len(d.Endpoints) != 1 {
		t.Fatalf("target of the place read back: %+v, %v", d, err)
	}
	if got := d.Endpoints[0].Org; got != org {
		t.Errorf("endpoint org %q read back from the store, %q from ingest; want one text", got, ep.Org)
	}
}
