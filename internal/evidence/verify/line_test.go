package verify

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// jsonLine is obsLine as the verifier read it before obsLine.read: with
// encoding/json, from the line itself.
type jsonLine struct {
	ID               string   `json:"id"`
	Network          string   `json:"network"`
	Method           string   `json:"method"`
	IP               string   `json:"ip"`
	Port             uint16   `json:"port"`
	ItemKind         string   `json:"item_kind"`
	Item             string   `json:"item"`
	Possession       string   `json:"possession"`
	PiecesHave       *int     `json:"pieces_have"`
	PiecesTotal      *int     `json:"pieces_total"`
	Marks            []string `json:"marks"`
	PeerID           string   `json:"peer_id"`
	ListenPort       uint16   `json:"listen_port"`
	UserHash         string   `json:"user_hash"`
	Transcript       []byte   `json:"transcript"`
	TranscriptSHA256 string   `json:"transcript_sha256"`
	TranscriptRef    string   `json:"transcript_ref"`
	SensorKey        string   `json:"sensor_key"`
	Sensor           string   `json:"sensor"`
	Chain            string   `json:"chain"`
	ChainSeq         uint64   `json:"chain_seq"`
	ChainPrev        string   `json:"chain_prev"`
	BatchSig         string   `json:"batch_sig"`
	Form             *int     `json:"evidence_form"`
}

// FuzzReadLine: on any line canon reads, obsLine.read decodes the fields
// as encoding/json decodes them from the line, or refuses the line where
// encoding/json does; but for a key spelled in another case than a
// field's (encoding/json reads "ID" as id; the verifier reads the keys
// the hashes cover, exactly).
func FuzzReadLine(f *testing.F) {
	for _, fixture := range []string{"bundle-v1", "bundle-form2"} {
		data, err := os.ReadFile(filepath.Join("testdata", fixture, FileObservations))
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			f.Add(l)
		}
	}
	for _, s := range []string{
		`{"id":"\u0041\"","port":65535,"pieces_have":-3,"pieces_total":null,"marks":["a",null],"transcript":"AAAA","chain_seq":18446744073709551615}`,
		`{"port":65536}`, `{"port":1.0}`, `{"port":"1"}`, `{"port":-0}`, `{"pieces_have":1e2}`, `{"marks":[]}`, `{"marks":null}`,
		`{"transcript":""}`, `{"transcript":"A"}`, `{"transcript":"AA\r\nAA"}`, `{"transcript":"AA\u000aAA"}`, `{"id":1}`, `{"id":null}`,
		`{"ID":"x","id":"y"}`, `{"evidence_form":2}`, `{"evidence_form":"2"}`, `{"evidence_form":null}`, `{"pieces_total":9223372036854775808}`, `{"build":{"x":""},"marks":[{}]}`, `{"id":"a","id":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		obj, err := canon.Parse(line)
		if err != nil {
			return // refused before reading the fields, as before
		}
		var keys map[string]json.RawMessage
		if json.Unmarshal(line, &keys) != nil {
			t.Fatalf("canon reads %q, encoding/json does not", line)
		}
		fields := reflect.TypeFor[jsonLine]()
		for k := range keys {
			for i := range fields.NumField() {
				if tag := fields.Field(i).Tag.Get("json"); k != tag && strings.EqualFold(k, tag) {
					return // read by encoding/json, not by the verifier: the difference said above
				}
			}
		}
		var got obsLine
		errGot := got.read(obj)
		var want jsonLine
		errWant := json.Unmarshal(line, &want)
		if (errGot == nil) != (errWant == nil) {
			t.Fatalf("read: %v; encoding/json: %v", errGot, errWant)
		}
		if errGot == nil && !reflect.DeepEqual(jsonLine(got), want) {
			t.Fatalf("read:          %+v\nencoding/json: %+v", got, want)
		}
	})
}

// FuzzReadLines: readLines, in batches of any size, gives back every line
// of its input, numbered, and says whether the last has no newline.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc\n"), uint8(1))
	f.Add([]byte("a\nbb"), uint8(2))
	f.Add([]byte("\n"), uint8(0))
	f.Add([]byte(""), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		lines := 0
		var all []byte
		free := make(chan []byte, 1)
		noNewline, err := readLines(iotest.HalfReader(bytes.NewReader(in)), int(size), free, func(first int, data []byte) {
			if first != lines+1 {
				t.Fatalf("batch numbered %d after %d lines", first, lines)
			}
			all = append(all, data...)
			lines += bytes.Count(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) + 1
			if data[len(data)-1] != '\n' && len(all) != len(in) {
				t.Fatalf("a batch of a part of a line, %q", data)
			}
			select {
			case free <- data[:cap(data)]: // the buffer, given back (and overwritten)
			default:
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(all, in) {
			t.Fatalf("batches %q, input %q", all, in)
		}
		want := 0
		if len(in) > 0 {
			want = len(bytes.Split(bytes.TrimSuffix(in, []byte("\n")), []byte("\n")))
		}
		if lines != want || noNewline != (len(in) > 0 && in[len(in)-1] != '\n') {
			t.Fatalf("%d lines (no newline %v), want %d", lines, noNewline, want)
		}
	})
}
