package observe

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// TestEveryKeyOfTheLineIsInTheLeaf: for every key of an observation's
// JSON line, a line with that key's value changed (and still valid) reads
// back as an observation whose leaf hash differs: no value the line shows
// can be changed in the store without the evidence log seeing it. Keys a
// sensor writes (all but canon's IngestKeys) change the sensor hash too.
func TestEveryKeyOfTheLineIsInTheLeaf(t *testing.T) {
	b, err := os.ReadFile("testdata/observations.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(bytes.NewReader(b))
	ingest := []string{"country", "subdivisions", "city", "latitude", "longitude", "asn", "org",
		"vpn", "hosting", "geo_db", "geo_db_build", "agency", "agency_rule", "batch_sig"}
	tested := map[string]bool{}
	var obs []Observation
	for {
		var o Observation
		if err := d.Decode(&o); err != nil {
			break
		}
		obs = append(obs, o, asForm2(o))
	}
	for _, o := range obs {
		line, err := o.Line()
		if err != nil {
			t.Fatal(err)
		}
		leaf0, _ := o.LeafHash()
		sens0, _ := o.SensorHash()
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range m {
			for _, nv := range alternatives(k, v) {
				c := map[string]json.RawMessage{}
				for kk, vv := range m {
					c[kk] = vv
				}
				c[k] = json.RawMessage(nv)
				cl, _ := json.Marshal(c)
				var p Observation
				if err := NewDecoder(bytes.NewReader(append(cl, '\n'))).Decode(&p); err != nil {
					continue
				}
				pl, _ := p.Line()
				if bytes.Equal(pl, line) {
					continue // the change did not survive decoding
				}
				tested[k] = true
				leaf, _ := p.LeafHash()
				sens, _ := p.SensorHash()
				if k == "transcript" && p.Chain.Form == Form2 {
					// Form 2: transcript_sha256 stands for the bytes,
					// which must then no longer match it.
					if sum := sha256.Sum256(p.Transcript.Bytes); bytes.Equal(sum[:], p.Transcript.SHA256) {
						t.Errorf("%s: form 2 transcript -> %s still matches transcript_sha256", o.ID, nv)
					}
					continue
				}
				if leaf == leaf0 {
					t.Errorf("%s: %s -> %s keeps the leaf hash", o.ID, k, nv)
				}
				if !slices.Contains(ingest, k) && sens == sens0 {
					t.Errorf("%s: %s -> %s keeps the sensor hash", o.ID, k, nv)
				}
			}
		}
	}
	var r record
	rt, _ := json.Marshal(r)
	var all map[string]json.RawMessage
	json.Unmarshal(rt, &all)
	all["evidence_form"] = nil // omitted from a form 1 line
	for k := range all {
		if !tested[k] {
			t.Errorf("key %s: no change of it was tried", k)
		}
	}
}

// alternatives are values to try for key k whose value is v.
func alternatives(k string, v json.RawMessage) []string {
	out := []string{`null`, `""`, `0`, `1`, `7`, `true`, `false`, `[]`, `["x"]`, `["1"]`, `["third_party"]`,
		`"ab"`, `"abcd"`, `"0000000000000000000000000000000000000001"`, `"127.0.0.9"`, `"127.0.0.1:9"`,
		`"2026-11-23T13:34:13.123456788Z"`, `"tcp"`, `"udp"`, `"complete"`, `"partial"`, `"dht_announce"`, `"ed2k"`,
		`"0.5"`, `2.5`, `-3`, `{"version":"x","commit":"y","modified":true}`, `{"version":"","commit":"","modified":true}`,
		`"AAEC"`, `"` + string(bytes.Repeat([]byte("ab"), 32)) + `"`, `"` + string(bytes.Repeat([]byte("cd"), 20)) + `"`,
		`"019ab123-4567-7abc-8def-0123456789ff"`, `"btih2"`, `"sha1"`, `"` + string(bytes.Repeat([]byte("ef"), 16)) + `"`,
		`"` + string(bytes.Repeat([]byte("01"), 64)) + `"`}
	return out
}
