package observe

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// ingestFields are the fields a remembered sensor hash does not cover
// (canon.IngestKeys, and the memo itself): they may change after it.
var ingestFields = map[string]bool{"Place": true, "Jurisdiction": true, "Chain.BatchSig": true, "memo": true}

// everyField calls fn with the path and a settable value of every field of
// an Observation, down to the fields that are not structs of this package
// (a time, an address, a hash are taken whole).
func everyField(v reflect.Value, path string, fn func(path string, f reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		p := t.Field(i).Name
		if path != "" {
			p = path + "." + p
		}
		f := v.Field(i)
		if f.Kind() == reflect.Struct && t.Field(i).Type.PkgPath() == t.PkgPath() && !ingestFields[p] {
			everyField(f, p, fn)
			continue
		}
		fn(p, f)
	}
}

// changeField sets f to another value of its type, still valid: false if
// it cannot say how.
func changeField(f reflect.Value) bool {
	switch x := f.Addr().Interface().(type) {
	case *string:
		*x += "x"
	case *[]byte:
		*x = append(append([]byte(nil), *x...), 0xaa)
	case *[]string:
		*x = append(append([]string(nil), *x...), "zz_extra")
	case *[]Match:
		*x = append(append([]Match(nil), *x...), Match{List: "l", Category: "c"})
	case *bool:
		*x = !*x
	case *uint8:
		*x ^= 2
	case *uint16:
		*x++
	case *uint32:
		*x++
	case *uint64:
		*x++
	case *int:
		*x++
	case *Level:
		if *x == Announced {
			*x = Verified
		} else {
			*x = Announced
		}
	case *time.Duration:
		*x += time.Millisecond
	case *time.Time:
		*x = x.Add(time.Nanosecond)
	case *netip.Addr:
		*x = netip.MustParseAddr("127.0.0.99")
	case *netip.AddrPort:
		*x = netip.MustParseAddrPort("127.0.0.98:4444")
	case *hashkind.Hash:
		*x = hashOf(hashkind.BTIH, "99112233445566778899aabbccddeeff00112233")
	case *Place, *Jurisdiction, *sensorMemo:
		return false
	default:
		return false
	}
	return true
}

// TestSensorPrintCoversEveryField: a sensor hash remembered for an
// observation is not given back once any field it covers changed,
// whichever it is (set through a method or not): KnownSensorHash then
// computes it afresh. Changing the keys ingest adds keeps it.
func TestSensorPrintCoversEveryField(t *testing.T) {
	for _, base := range []Observation{samples()[0], asForm2(samples()[0])} {
		if len(base.Chain.Key) == 0 {
			base.Chain = Chain{Key: make([]byte, 32), ID: "c", Seq: 3, Prev: make([]byte, 32), BatchSig: []byte{1}}
		}
		fresh, err := base.SensorHash()
		if err != nil {
			t.Fatal(err)
		}
		base.RememberSensorHashAndTranscript(fresh)
		n := 0
		everyField(reflect.ValueOf(&base).Elem(), "", func(path string, _ reflect.Value) {
			o := base // keeps the memo
			f := reflect.ValueOf(&o).Elem()
			for _, name := range strings.Split(path, ".") {
				f = f.FieldByName(name)
			}
			if !f.CanAddr() || !f.CanInterface() {
				if path != "memo" {
					t.Errorf("%s: cannot change it in the test", path)
				}
				return
			}
			if !changeField(f) {
				if !ingestFields[path] {
					t.Errorf("%s: the test does not know how to change a %s", path, f.Type())
				}
				return
			}
			n++
			want, err := o.SensorHash()
			if err != nil {
				return // no longer valid: nothing hashes it
			}
			got, err := o.KnownSensorHash()
			if err != nil || got != want {
				t.Errorf("form %d, %s changed after the sensor hash was remembered: KnownSensorHash %x (%v), the hash now %x", o.Chain.Form, path, got, err, want)
			}
			if want != fresh && o.TranscriptChecked() {
				t.Errorf("%s changed: the transcript is still taken as checked", path)
			}
		})
		if n < 30 {
			t.Fatalf("only %d fields changed", n)
		}
		// The keys ingest adds may change: the remembered hash stays.
		o := base
		o.Place.City += "x"
		o.Jurisdiction.Agency += "x"
		o.Chain.BatchSig = append(o.Chain.BatchSig, 1)
		if o.memo.print != o.sensorPrint() {
			t.Errorf("a key ingest adds changed the fingerprint")
		}
	}
}

// TestSensorPrintSeesChangesInPlace: bytes or list members changed in
// place (the copy that remembered the hash shares them) are seen too.
func TestSensorPrintSeesChangesInPlace(t *testing.T) {
	o := asForm2(samples()[0])
	h, _ := o.SensorHash()
	o.RememberSensorHash(h)
	p := o
	p.Client.PeerID[0] ^= 1
	p.Marks = append(p.Marks, "x")
	if got, _ := o.KnownSensorHash(); got == h {
		t.Errorf("PeerID changed in place: the remembered hash still given")
	}
	o.Client.PeerID[0] ^= 1
	if o.TranscriptChecked() {
		t.Errorf("the transcript taken as checked by RememberSensorHash")
	}
	o.RememberSensorHashAndTranscript(h)
	if !o.TranscriptChecked() {
		t.Errorf("RememberSensorHashAndTranscript not kept")
	}
	o.RememberSensorHash(h)
	if !o.TranscriptChecked() {
		t.Errorf("RememberSensorHash of the same hash forgot the transcript checked")
	}
	o.Transcript.Bytes[1] ^= 1
	if o.TranscriptChecked() {
		t.Errorf("transcript changed in place: still taken as checked")
	}
}

// TestHashesRememberedSaysWhenTheMemoHolds: HashesRemembered gives what
// Hashes gives, and says the sensor hash is the one remembered only while
// the fingerprint holds (a store then skips remembering it again); never
// in form 1, whose leaf does not use it.
func TestHashesRememberedSaysWhenTheMemoHolds(t *testing.T) {
	o := asForm2(samples()[0])
	if len(o.Chain.Key) == 0 {
		o.Chain = Chain{Key: make([]byte, 32), ID: "c", Seq: 3, Prev: make([]byte, 32), Form: Form2}
	}
	fresh, err := o.SensorHash()
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, o Observation, wantRemembered bool) {
		t.Helper()
		leaf, sensor, remembered, err := o.HashesRemembered()
		bare := o
		bare.memo = sensorMemo{}
		wantLeaf, wantSensor, werr := bare.Hashes()
		if err != nil || werr != nil || leaf != wantLeaf || sensor != wantSensor || remembered != wantRemembered {
			t.Errorf("%s: leaf %x sensor %x remembered %v (%v); want %x %x %v (%v)", name, leaf, sensor, remembered, err, wantLeaf, wantSensor, wantRemembered, werr)
		}
	}
	check("nothing remembered", o, false)
	o.RememberSensorHash(fresh)
	check("remembered", o, true)
	changed := o
	changed.Endpoint.Port++
	check("a field it covers changed", changed, false)
	ing := o
	ing.Place.City += "x"
	check("a key ingest adds changed", ing, true)
	form1 := samples()[0]
	form1.Chain.Form = 0
	h1, _ := form1.SensorHash()
	form1.RememberSensorHash(h1)
	if _, _, remembered, err := form1.HashesRemembered(); err != nil || remembered {
		t.Errorf("form 1: remembered %v (%v); its leaf uses no sensor hash", remembered, err)
	}
}
