package observe

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// encodedLines are lines as Encoders write them: the samples (every
// field, and every way one can be empty) and the golden file.
func encodedLines(t testing.TB) [][]byte {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	obs := samples()
	for i := range obs {
		if err := enc.Encode(&obs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "observations.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(golden)
	return bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
}

// hexAsStrings moves the hex that fastRecord keeps in the line's bytes
// (the chain fields', the item's and the client's) to the string fields json.Unmarshal fills, so that the two
// records compare.
func (r *record) hexAsStrings() {
	if r.raw.set {
		r.SensorKey, r.ChainPrev, r.BatchSig = string(r.raw.sensorKey), string(r.raw.chainPrev), string(r.raw.batchSig)
	}
	// The item's and the client's hex, each where the fast path found it.
	for _, f := range []struct {
		raw []byte
		s   *string
	}{{r.raw.item, &r.Item}, {r.raw.peerID, &r.PeerID}, {r.raw.nodeID, &r.NodeID}, {r.raw.userHash, &r.UserHash},
		{r.raw.guid, &r.GUID}, {r.raw.transcriptSHA256, &r.TranscriptSHA256}} {
		if f.raw != nil {
			*f.s = string(f.raw)
		}
	}
	r.raw = rawChain{}
}

// The fast path reads every line an Encoder writes without an escape in
// it, into the record json.Unmarshal makes of it; a line with an escape
// goes to json.Unmarshal, with the same record in the end.
func TestFastRecordTakesWhatEncodersWrite(t *testing.T) {
	fast := 0
	for i, line := range encodedLines(t) {
		var want record
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		var got record
		ok := fastRecord(line, &got)
		got.hexAsStrings()
		switch escaped := bytes.IndexByte(line, '\\') >= 0; {
		case ok:
			fast++
			if !reflect.DeepEqual(got, want) {
				t.Errorf("line %d: fast path read\n%+v\njson.Unmarshal\n%+v", i, got, want)
			}
		case !escaped:
			t.Errorf("line %d: the fast path declined a line without an escape:\n%s", i, line)
		}
		var via record
		err := unmarshalRecord(line, &via)
		via.hexAsStrings()
		if err != nil || !reflect.DeepEqual(via, want) {
			t.Errorf("line %d: unmarshalRecord = %+v, %v; want json.Unmarshal's %+v", i, via, err, want)
		}
	}
	if fast < 5 {
		t.Errorf("the fast path read %d lines, want most", fast)
	}
}

// What the fast path declines goes to json.Unmarshal whole: its error, or
// its record (keys in another case, unknown keys, duplicates, escapes,
// null, numbers out of range, trailing bytes).
func TestFastRecordDeclinesWhatItDoesNotRead(t *testing.T) {
	for _, s := range []string{
		`{"ID":"x"}`,
		`{"id":"x","unknown":1}`,
		`{"id":"x","id":"y"}`,
		`{"build":{"version":"1"},"build":{"commit":"c"}}`,
		`{"client":"a\"b"}`,
		`{"client":"\u00e9"}`,
		`{"client":null}`,
		`{"build":null}`,
		`{"port":65536}`,
		`{"port":-1}`,
		`{"port":1.0}`,
		`{"pieces_have":1e2}`,
		`{"asn":4294967296}`,
		`{"latitude":1e400}`,
		`{"latitude":01}`,
		`{"vpn":1}`,
		`{"marks":["a",1]}`,
		`{"clock_offset_ms":"1.5"}`,
		`{"id":"x"} x`,
		`{"id":"x"}}`,
		`{"id":"x",}`,
		`{"vpn":truex}`,
		"{\"client\":\"\xff\"}",
		"{\"client\":\"a\tb\"}",
		`null`,
		``,
	} {
		var r record
		if fastRecord([]byte(s), &r) {
			t.Errorf("%s: the fast path read it", s)
		}
	}
}

// FuzzFastRecord: wherever the fast path reads a line, json.Unmarshal
// reads it without an error into the same record.
func FuzzFastRecord(f *testing.F) {
	for _, line := range encodedLines(f) {
		f.Add(line)
	}
	f.Add([]byte(`{"id":"x","pieces_have":null,"chain_seq":18446744073709551615,"latitude":-0.5e-3,"marks":[ "a" , "b" ] }`))
	f.Add([]byte(` { "build" : { "version" : "1" , "modified" : true } } `))
	f.Add([]byte(`{"evidence_form":2,"chain_seq":1}`))
	f.Add([]byte(`{"evidence_form":256}`))
	f.Add([]byte(`{"evidence_form":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got record
		if !fastRecord(b, &got) {
			return
		}
		got.hexAsStrings()
		var want record
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast path read %q, json.Unmarshal: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast path read\n%+v\njson.Unmarshal\n%+v", b, got, want)
		}
	})
}

// BenchmarkDecodeLine: one bus message's body, as ingest decodes it.
func BenchmarkDecodeLine(b *testing.B) {
	lines := encodedLines(b)
	line := lines[0]
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		for range b.N {
			var o Observation
			if err := DecodeLine(line, &o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		for range b.N {
			var r record
			if err := json.Unmarshal(line, &r); err != nil {
				b.Fatal(err)
			}
			var o Observation
			if err := r.observation(&o); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzExactMillis: where the integer path reads a number of
// milliseconds, it gives what big.Rat gives.
func FuzzExactMillis(f *testing.F) {
	for _, s := range []string{"0", "-1.5", "0.000001", "0.250007", "999999999999.999999", "-0", "1.10", "01", "1.", ".5", "1e3", "-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := exactMillis(s)
		if !ok {
			return
		}
		want, err := parseMillisRat("x", json.Number(s))
		if err != nil || got != want {
			t.Fatalf("exactMillis(%q) = %v, big.Rat: %v, %v", s, got, want, err)
		}
	})
}
