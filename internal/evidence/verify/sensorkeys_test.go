package verify

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPinnedSensorKeys: keys.json lists the sensor keys the store's log
// holds observations of, and whoever can write to the database (a hub
// without --sensor-keys at ingest) can add observations signed with a key
// of its own. An examiner who has the sensors' published keys pins them:
// a batch under any other key then covers nothing, and its observations
// fail as unsigned by a sensor.
func TestPinnedSensorKeys(t *testing.T) {
	b := fixtureOf(t, "bundle-form2", nil)
	var keys Keys
	if err := json.Unmarshal(fileOf(t, "bundle-form2", FileKeys), &keys); err != nil || len(keys.Sensors) == 0 {
		t.Fatalf("keys.json: %v %+v", err, keys)
	}
	genuine := keys.Sensors[0].PublicKey
	rep, err := Verify(bytes.NewReader(b), int64(len(b)), Options{SensorKeys: []string{genuine}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || !rep.SensorKeysPinned || rep.Signed == 0 {
		t.Fatalf("pinned to the sensor's own key: ok %v pinned %v signed %d: %v", rep.OK(), rep.SensorKeysPinned, rep.Signed, rep.Problems)
	}
	other := strings.Repeat("ab", 32)
	rep, err = Verify(bytes.NewReader(b), int64(len(b)), Options{SensorKeys: []string{other}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Signed != 0 {
		t.Fatalf("pinned to another key: ok %v, %d observations still counted as signed", rep.OK(), rep.Signed)
	}
	found := false
	for _, p := range rep.Problems {
		if p.File == FileBatches && strings.Contains(p.Detail, "not among the sensor keys given") {
			found = true
		}
	}
	if !found {
		t.Errorf("no problem names the batch's key: %v", rep.Problems)
	}
	rep, _ = Verify(bytes.NewReader(b), int64(len(b)), Options{})
	if rep.SensorKeysPinned {
		t.Error("no key given, yet the report says the sensor keys were pinned")
	}
}

// fileOf reads one file of the checked-in bundle testdata/name.
func fileOf(t *testing.T, name, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
