package isp

import (
	"bytes"
	"encoding/csv"
	"net/netip"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Attack: a geo database is a file from outside; its organisation and
// country strings reach the request's CSV, JSON and PDF through the
// observation's place. A NUL, a control, a bidi override or bytes that
// are not UTF-8 in them must be written by observe.PlaceText (the rule
// of the analysis's text, docs/evidence.md "Peer text"), and a country
// that starts like a formula neutralised as the organisation is. Before,
// the CSV's country cell was the database's bytes as they were, "=..."
// included, and the organisation's NUL and bidi override went into the
// cell raw.
func TestRequestWritesAGeoDatabasesTextByThePeerTextRule(t *testing.T) {
	tg, s := fixture()
	o := observe.Observation{ID: "0190-geo", Time: fixedNow.Add(-48 * 3600e9), Network: observe.NetBitTorrent,
		Method: observe.MethodPeerProbe, Item: observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, bytes.Repeat([]byte{0xab}, 20))},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("192.0.2.77"), Port: 6881, Transport: "tcp"},
		Possession: observe.Possession{Level: observe.Acknowledged},
		Place:      observe.Place{Country: "=HYPERLINK(\"x\")\x00", ASN: 64499, Org: "ev\x00il\xff\u202egnp\x1b"},
	}
	s = append(s, fh(FromObservation(&o)))
	o.ID, o.Time = "0190-geo-2", o.Time.Add(3600e9) // an address seen once goes to the annex
	s = append(s, fh(FromObservation(&o)))
	req := Build(tg, s, fixedNow, testRetention())
	var b bytes.Buffer
	if err := WriteCSV(&b, &req); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var saw bool
	for _, r := range recs[1:] {
		for i, c := range r {
			if !utf8.ValidString(c) || strings.ContainsFunc(c, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }) {
				t.Errorf("cell %s %q holds what is not printable text", recs[0][i], c)
			}
			if i == col["isp"] || i == col["country"] {
				if c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
					t.Errorf("cell %s %q reads as a formula", recs[0][i], c)
				}
			}
		}
		if r[col["isp"]] == "ev\\u0000il\uFFFD\\u202egnp\\u001b" && r[col["country"]] == `'=HYPERLINK("X")\u0000` {
			saw = true
		}
	}
	if !saw {
		t.Errorf("no row with the organisation and country escaped:\n%s", b.Bytes())
	}
}
