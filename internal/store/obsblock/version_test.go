package obsblock

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// v1File is a version-1 block of v1Observations, written by obsblock's
// Encode at commit ed67508 (before version 2 existed) and never
// rewritten: a block kept for years must decode as it did.
var v1File = filepath.Join("testdata", "version1-block.vob")

var writeV1 = flag.Bool("write-version1-block", false, "write "+v1File+" (only with an encoder that writes version 1)")

// v1Observations are the observations of v1File: made here field by field
// from a seeded generator (not by reflection, nor by storetest's lab
// generator, so that neither a new field of Observation nor a change of
// the lab's shape changes them). A signed chain whose hashes follow
// verify.ChainStep (what version 2 derives), a second chain interleaved,
// unsigned rows, an id that is no UUID, nil and empty slices, a row
// without a time.
func v1Observations() []observe.Observation {
	r := rand.New(rand.NewPCG(2026, 12))
	rb := func(k int) []byte {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	uuid := func(t time.Time) string { // a UUIDv7 of t, its random bits from r
		var id [16]byte
		ms := uint64(t.UnixMilli())
		for i := range 6 {
			id[i] = byte(ms >> (40 - 8*i))
		}
		copy(id[6:], rb(10))
		id[6] = 0x70 | id[6]&0x0f
		id[8] = 0x80 | id[8]&0x3f
		return formatUUID(id)
	}
	items := make([]hashkind.Hash, 12)
	for i := range items {
		items[i] = hashkind.MustNew(hashkind.BTIH, rb(20))
	}
	keys := [][]byte{rb(32), rb(32)}
	chains := []string{"00000000000000000000000000000a11", "00000000000000000000000000000b22"}
	var prevs [2][32]byte
	var seqs [2]uint64
	at := time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)
	out := make([]observe.Observation, 0, 120)
	for i := range 120 {
		at = at.Add(time.Duration(1+r.IntN(5000)) * time.Microsecond)
		o := observe.Observation{ID: uuid(at), Time: at, Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe,
			Sensor:     observe.Sensor{ID: "bt-lab-1", Version: "0.4.0", Vantage: "10.0.0.1:6881", Config: fmt.Sprintf("%064x", 7)},
			ClockKnown: true, ClockOffset: time.Duration(r.IntN(2000)) * time.Microsecond, ClockUncertainty: 250 * time.Microsecond,
			ClockSource: "ntp:10.0.0.2:123",
			Item:        observe.Item{Hash: items[r.IntN(len(items))], Matched: []observe.Match{{List: "national", Category: "1"}}},
			Endpoint: observe.Endpoint{IP: netip.AddrFrom4([4]byte{10, 1, byte(r.IntN(4)), byte(1 + r.IntN(250))}), Port: uint16(1024 + r.IntN(60000)),
				Transport: "tcp", Local: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(40000+i))},
			Client:     observe.Client{PeerID: append([]byte("-TR3000-"), rb(12)...), Name: "Transmission", Version: "3.00", ListenPort: 51413},
			Possession: observe.Possession{Level: observe.Complete, PiecesHave: 100, PiecesTotal: 100},
			Marks:      []string{observe.MarkThirdParty},
			Transcript: observe.Transcript{SHA256: rb(32)},
			Place: observe.Place{Country: "FR", Subdivisions: []string{"Région 1", "75"}, City: "Paris", Lat: 48.85, Lon: 2.35,
				ASN: 64512, Org: "Opérateur 1", DB: "lab-city.mmdb", DBBuild: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
			Jurisdiction: observe.Jurisdiction{Agency: "fr-agency-75", Rule: "subdivision FR/75 (france.yaml:12)"},
		}
		switch {
		case i%10 == 3: // unsigned
			o.Marks, o.Client.PeerID = nil, []byte{}
		case i == 50:
			o.ID, o.Time = "not-a-uuid-50", time.Time{}
		default: // signed, in one of two chains
			c := 0
			if i%4 == 1 {
				c = 1
			}
			seqs[c]++
			o.Chain = observe.Chain{Key: keys[c], ID: chains[c], Seq: seqs[c], Prev: append([]byte(nil), prevs[c][:]...), Form: observe.Form2}
			if seqs[c]%16 == 0 {
				o.Chain.BatchSig = rb(64)
			}
			h, err := o.SensorHash()
			if err != nil {
				panic(err)
			}
			prevs[c] = verify.ChainStep(prevs[c][:], h[:])
		}
		out = append(out, o)
	}
	return out
}

// TestVersion1BlockDecodes: a version-1 block written before version 2
// existed decodes to exactly the observations it was written from.
func TestVersion1BlockDecodes(t *testing.T) {
	obs := v1Observations()
	if *writeV1 {
		blk, err := Encode(nil, obs)
		if err != nil {
			t.Fatal(err)
		}
		if blk[3] != 1 {
			t.Fatalf("Encode writes version %d: %s holds a version-1 block", blk[3], v1File)
		}
		if err := os.WriteFile(v1File, blk, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	blk, err := os.ReadFile(v1File)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(blk[:4], []byte("VOB\x01")) {
		t.Fatalf("%s starts %q, not a version-1 block", v1File, blk[:4])
	}
	got, err := Decode(blk)
	if err != nil {
		t.Fatalf("%s: %v", v1File, err)
	}
	if len(got) != len(obs) {
		t.Fatalf("%d observations, want %d", len(got), len(obs))
	}
	for i := range obs {
		if d := diff(reflect.ValueOf(got[i]), reflect.ValueOf(stored(obs[i])), "Observation"); d != "" {
			t.Fatalf("observation %d: %s", i, d)
		}
	}
}
