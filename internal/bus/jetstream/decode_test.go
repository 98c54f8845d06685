package jetstream

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Decoding a message body allocates about what the observation holds, not
// a 64 KiB read buffer per message: ingest decodes every message it
// fetches, and those buffers were most of its garbage (docs/benchmarks.md,
// "Ingest through NATS into PostgreSQL").
func TestDecodeAllocatesLittle(t *testing.T) {
	o := storetest.Observation(rand.New(rand.NewPCG(1, 1)), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), 1)
	body, err := Encode(&o)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := Decode(body); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	if limit := uint64(8*len(body) + 4096); per > limit {
		t.Errorf("Decode of a %d-byte body allocates %d bytes, want at most %d", len(body), per, limit)
	}
}

// Decode reads a body as a Decoder reads its first line: the same
// observation, the same errors (a blank body, two lines, a carriage
// return, a line too long, not JSON, an invalid observation).
func TestDecodeAsDecoder(t *testing.T) {
	o := storetest.Observation(rand.New(rand.NewPCG(2, 2)), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), 2)
	body, err := Encode(&o)
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.TrimSuffix(body, []byte("\n"))
	bodies := map[string][]byte{
		"line":             body,
		"no newline":       line,
		"crlf":             append(bytes.Clone(line), "\r\n"...),
		"two crs":          append(bytes.Clone(line), "\r\r\n"...),
		"two lines":        append(bytes.Clone(body), body...),
		"blank first":      append([]byte("\n  \n"), body...),
		"empty":            nil,
		"blank":            []byte(" \n"),
		"not json":         []byte("{\"id\":\n"),
		"invalid":          []byte("{}\n"),
		"too long":         append(bytes.Repeat([]byte(" "), observe.DefaultMaxLineBytes+1), '\n'),
		"limit exactly":    append(append(bytes.Repeat([]byte(" "), observe.DefaultMaxLineBytes-len(line)), line...), '\n'),
		"limit and cr":     append(append(bytes.Repeat([]byte(" "), observe.DefaultMaxLineBytes-len(line)), line...), "\r\n"...),
		"one over the cap": append(append(bytes.Repeat([]byte(" "), observe.DefaultMaxLineBytes+1-len(line)), line...), '\n'),
	}
	for name, b := range bodies {
		var want observe.Observation
		werr := observe.NewDecoder(bytes.NewReader(b)).Decode(&want)
		got, gerr := Decode(b)
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Errorf("%s: error %v, want %v", name, gerr, werr)
			continue
		}
		if werr == nil && !got.Equal(&want) {
			t.Errorf("%s: decoded %+v, want %+v", name, got, want)
		}
	}
}

// Encoding a message body allocates about what the line holds, not a
// 64 KiB write buffer per message (a sensor encodes every observation it
// publishes), and gives the bytes an Encoder writes.
func TestEncodeAllocatesLittle(t *testing.T) {
	o := storetest.Observation(rand.New(rand.NewPCG(3, 3)), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), 3)
	var want bytes.Buffer
	enc := observe.NewEncoder(&want)
	if err := enc.Encode(&o); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	body, err := Encode(&o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want.Bytes()) {
		t.Fatalf("Encode wrote\n%s\nwant the Encoder's\n%s", body, want.Bytes())
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := Encode(&o); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	if limit := uint64(8*len(body) + 4096); per > limit {
		t.Errorf("Encode of a %d-byte body allocates %d bytes, want at most %d", len(body), per, limit)
	}
	// What an Encoder refuses, Encode refuses with the same error.
	bad := o
	bad.ID = ""
	bad.Time = time.Time{}
	werr := observe.NewEncoder(&bytes.Buffer{}).Encode(&bad)
	_, gerr := Encode(&bad)
	if werr == nil || gerr == nil || werr.Error() != gerr.Error() {
		t.Errorf("invalid observation: Encode error %v, want the Encoder's %v", gerr, werr)
	}
}
