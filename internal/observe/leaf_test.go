package observe

import (
	"bytes"
	"math"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
	"github.com/vigil-oss/vigil/internal/hashkind"
)

// TestLeafIgnoresKeysAddedEmpty: a record written before a key existed
// (here, the sensor chain's keys) hashes to the same leaf as the same
// record written now with that key empty, so that an older store's leaves
// still prove its rows; and a value set in the new key changes the leaf.
func TestLeafIgnoresKeysAddedEmpty(t *testing.T) {
	b, err := os.ReadFile("testdata/observations.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.SplitN(b, []byte("\n"), 2)[0]
	i := bytes.Index(line, []byte(`,"sensor_key"`))
	if i < 0 {
		t.Fatal("golden line has no sensor_key")
	}
	older := append(bytes.Clone(line[:i]), '}')
	now, err := canon.Form(line)
	if err != nil {
		t.Fatal(err)
	}
	before, err := canon.Form(older)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(now, before) {
		t.Fatalf("canonical forms differ:\n%s\n%s", now, before)
	}
	var o Observation
	d := NewDecoder(bytes.NewReader(line))
	if err := d.Decode(&o); err != nil {
		t.Fatal(err)
	}
	l1, _ := o.LeafHash()
	o.Chain.Seq = 1
	l2, _ := o.LeafHash()
	if l1 == l2 || l1 != canon.LeafHash(before) {
		t.Fatalf("leaf does not follow the record: %x %x %x", l1, l2, canon.LeafHash(before))
	}
}

// TestCanonicalFormIsCanonOfTheLine holds the direct canonical form to
// canon.Form of the JSON line, for the golden records and for records
// with every kind of awkward value.
func TestCanonicalFormIsCanonOfTheLine(t *testing.T) {
	b, err := os.ReadFile("testdata/observations.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var obs []Observation
	d := NewDecoder(bytes.NewReader(b))
	for {
		var o Observation
		if err := d.Decode(&o); err != nil {
			break
		}
		obs = append(obs, o)
	}
	if len(obs) < 5 {
		t.Fatalf("%d golden records", len(obs))
	}
	odd := obs[0]
	odd.Client.Name = "bad \xff\xfe utf-8 \"q\" <&> \u2028 \u2029 \x01\b\f\n\r\t\\ \x7f é 😀"
	odd.Item.Matched = []Match{{List: "l\xffist", Category: ""}, {List: "", Category: "c"}}
	odd.Place.Lat, odd.Place.Lon = 1e-7, -123456789.125
	odd.Place.Subdivisions = []string{""}
	odd.Chain = Chain{Key: make([]byte, 32), ID: "ab", Seq: 7, Prev: make([]byte, 32), BatchSig: []byte{1}}
	odd.ClockOffset = -1
	obs = append(obs, odd)
	for c := range 256 {
		x := obs[0]
		x.Client.Name = "a" + string([]byte{byte(c)}) + "z"
		x.Place.Lat = []float64{0.1, 1e21, 1e-6, 9.999e-7, -0.0, 123456789012345678, 1.5e300}[c%7]
		x.Possession.PiecesHave = c%3 - 1
		obs = append(obs, x)
	}
	for i, n := 0, len(obs); i < n; i++ {
		obs = append(obs, asForm2(obs[i]))
	}
	for i := range obs {
		line, err := obs[i].Line()
		if err != nil {
			t.Fatal(err)
		}
		for _, sensor := range []bool{false, true} {
			var drop []string
			if sensor {
				drop = canon.SensorDrop(max(1, int(obs[i].Chain.Form)))
			}
			want, err := canon.Form(line, drop...)
			if err != nil {
				t.Fatal(err)
			}
			var got, ref []byte
			if err := obs[i].appendCanonical(sensor, func(b []byte) { got = bytes.Clone(b) }); err != nil {
				t.Fatal(err)
			}
			if err := obs[i].canonical(sensor, func(b []byte) { ref = bytes.Clone(b) }); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || !bytes.Equal(ref, want) {
				t.Errorf("record %d (sensor form %v):\ngot  %s\nref  %s\nwant %s", i, sensor, got, ref, want)
			}
		}
	}
}

// FuzzCanonicalForm: whatever text and numbers a peer or a file gives,
// the canonical form written straight from the observation is canon.Form
// of its JSON line (the form 'vigil verify' computes).
func FuzzCanonicalForm(f *testing.F) {
	f.Add("Transmission", "3.00", "national", "1", 48.8049, int64(-1500000), 12, uint64(0))
	f.Add("bad \xff\xfe", "\u2028\x00", "", "\"", 1e-7, int64(1), -1, uint64(7))
	f.Fuzz(func(t *testing.T, client, version, list, category string, lat float64, offset int64, have int, seq uint64) {
		o := Observation{
			ID: "019ab123-4567-7abc-8def-0123456789ab", Network: NetBitTorrent, Method: MethodPeerProbe,
			Time:        time.Date(2026, 11, 23, 13, 34, 13, 123456789, time.UTC),
			Item:        Item{Hash: hashkind.MustNew(hashkind.BTIH, make([]byte, 20)), Matched: []Match{{List: list, Category: category}}},
			Endpoint:    Endpoint{IP: netip.MustParseAddr("127.0.0.2"), Port: 6881, Transport: "tcp"},
			Client:      Client{Name: client, Version: version},
			Possession:  Possession{Level: Partial, PiecesHave: have, PiecesTotal: -1},
			ClockOffset: time.Duration(offset),
			Place:       Place{Lat: lat, Subdivisions: []string{category}},
			Chain:       Chain{Seq: seq, ID: list},
		}
		if math.IsNaN(lat) || math.IsInf(lat, 0) {
			return // no JSON form
		}
		if o.Possession.PiecesHave < -1 {
			o.Possession.PiecesHave = -1
		}
		for _, o := range []Observation{o, asForm2(o)} {
			line, err := o.Line()
			if err != nil {
				t.Skip()
			}
			for _, sensor := range []bool{false, true} {
				var drop []string
				if sensor {
					drop = canon.SensorDrop(max(1, int(o.Chain.Form)))
				}
				want, err := canon.Form(line, drop...)
				if err != nil {
					t.Fatal(err)
				}
				var got []byte
				if err := o.appendCanonical(sensor, func(b []byte) { got = bytes.Clone(b) }); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("form %d, sensor form %v:\ngot  %s\nwant %s", o.Chain.Form, sensor, got, want)
				}
			}
		}
	})
}
