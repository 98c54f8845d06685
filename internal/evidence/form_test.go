package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/canon"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// lineChange is one change to an observation line of a bundle.
type lineChange struct {
	name string
	fn   func(m map[string]any)
	want []string // what the problems must say, each in one of them
}

// changeLine applies c to line li of the bundle's observations, signs the
// manifest again with key, and returns the report.
func changeLine(t *testing.T, key []byte, names []string, files map[string][]byte, li int, c lineChange) *verify.Report {
	t.Helper()
	lines := bytes.Split(bytes.TrimSuffix(files[verify.FileObservations], []byte("\n")), []byte("\n"))
	d := json.NewDecoder(bytes.NewReader(lines[li]))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	c.fn(m)
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(m); err != nil {
		t.Fatal(err)
	}
	ls := slices.Clone(lines)
	ls[li] = bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	fs := maps(files)
	fs[verify.FileObservations] = append(bytes.Join(ls, []byte("\n")), '\n')
	return check(t, resign(t, key, names, fs))
}

// wantProblems fails t unless rep failed with each of want in one of its
// problems, on line li+1.
func wantProblems(t *testing.T, what string, rep *verify.Report, li int, want []string) {
	t.Helper()
	if rep.OK() {
		t.Errorf("%s: verified", what)
		return
	}
	var all []string
	for _, p := range rep.Problems {
		all = append(all, p.String())
	}
	text := strings.Join(all, "\n")
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s: no problem says %q:\n%s", what, w, text)
		}
	}
	if !strings.Contains(text, "line "+itoa(li+1)) {
		t.Errorf("%s: no problem names line %d:\n%s", what, li+1, text)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestForm2ChangesFailAndSayWhat: a sensor's observations are in evidence
// form 2; each change to a form 2 line's fields (the transcript's bytes,
// its transcript_sha256, the form, a sensor_sha256 slipped in, a key
// ingest added), with the manifest signed again, fails and names what
// broke, and the report counts the forms.
func TestForm2ChangesFailAndSayWhat(t *testing.T) {
	f := newFixture(t, signed(t, sample(3)))
	f.checkpoint(t)
	names, files := unzip(t, f.bundle(t, f.ids))
	rep := check(t, resign(t, f.key, names, files))
	if !rep.OK() || rep.Form2 != 3 || rep.Form1 != 0 {
		t.Fatalf("unchanged form 2 bundle: forms %d/%d, problems %v", rep.Form1, rep.Form2, rep.Problems)
	}
	const li = 0 // a peer probe, with a transcript
	for _, c := range []lineChange{
		{"transcript bytes", func(m map[string]any) {
			b, _ := base64.StdEncoding.DecodeString(m["transcript"].(string))
			b[len(b)-1] ^= 1
			m["transcript"] = base64.StdEncoding.EncodeToString(b)
		}, []string{"transcript_sha256", "the transcript's SHA-256 is"}},
		{"transcript removed", func(m map[string]any) { delete(m, "transcript") }, []string{"transcript: missing"}},
		{"transcript_sha256", func(m map[string]any) { m["transcript_sha256"] = changed(m["transcript_sha256"]) },
			[]string{"transcript_sha256", "in evidence form 2", "the sensor signed another content"}},
		{"transcript and transcript_sha256 both", func(m map[string]any) {
			m["transcript"] = base64.StdEncoding.EncodeToString([]byte("other"))
			m["transcript_sha256"] = "f5c2d3c3a0df6b2dbb8bd5e6fc1a9ae2cbc5c8bbd5ab5f6da8f2bc1f6d9b0ba2"
		}, []string{"in evidence form 2", "the sensor signed another content"}},
		{"relabelled form 1", func(m map[string]any) { delete(m, "evidence_form") },
			[]string{"in evidence form 1", "the sensor signed another content"}},
		{"form 3", func(m map[string]any) { m["evidence_form"] = json.Number("3") }, []string{"evidence_form 3: not an evidence form"}},
		// The store never writes form 2 unsigned (observe.Validate):
		// verify is never looser than the store.
		{"sensor_key removed", func(m map[string]any) { delete(m, "sensor_key") }, []string{"evidence form 2 without a sensor_key"}},
		{"sensor_sha256 added", func(m map[string]any) { m["sensor_sha256"] = strings.Repeat("ab", 32) },
			[]string{"in evidence form 2", "the sensor signed another content"}},
		{"country (ingest)", func(m map[string]any) { m["country"] = "DE" }, []string{"does not hash to leaf", "in evidence form 2"}},
		{"agency (ingest)", func(m map[string]any) { m["agency"] = changed(m["agency"]) }, []string{"does not hash to leaf"}},
		{"latitude (ingest)", func(m map[string]any) { m["latitude"] = json.Number("1.5") }, []string{"does not hash to leaf"}},
		{"port (sensor)", func(m map[string]any) { m["port"] = json.Number("1") }, []string{"does not hash to leaf", "the sensor signed another content"}},
	} {
		wantProblems(t, c.name, changeLine(t, f.key, names, files, li, c), li, c.want)
	}
}

// TestForm1FixtureRelabelledAsForm2Fails: the checked-in bundle of
// evidence form 1 verifies and says so; one of its lines relabelled
// form 2 (the manifest signed again with the fixture's log key) fails.
func TestForm1FixtureRelabelledAsForm2Fails(t *testing.T) {
	dir := filepath.Join("verify", "testdata", "bundle-v1")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	files := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		names, files[e.Name()] = append(names, e.Name()), b
	}
	key := newFixture(t, nil).key // the fixture's log key (TestWriteFixtureBundle)
	rep := check(t, resign(t, key, names, files))
	if !rep.OK() || rep.Form1 != rep.Observations || rep.Form2 != 0 || rep.Observations == 0 {
		t.Fatalf("the form 1 fixture, manifest signed again: forms %d/%d of %d, problems %v", rep.Form1, rep.Form2, rep.Observations, rep.Problems)
	}
	for li := range rep.Observations {
		c := lineChange{"relabelled form 2", func(m map[string]any) { m["evidence_form"] = json.Number("2") },
			[]string{"in evidence form 2"}}
		wantProblems(t, c.name, changeLine(t, key, names, files, li, c), li, c.want)
	}
}

// TestChainCheckerForm2: ingest's check compares a form 2 transcript with
// its transcript_sha256 (which alone the sensor hash covers) and fails a
// relabelled form; a store's remembered sensor hash is what it checks
// with, handed over to another goroutine (run with -race).
func TestChainCheckerForm2(t *testing.T) {
	for _, c := range []struct {
		name string
		fn   func(o *observe.Observation)
		want string
	}{
		{"transcript bytes", func(o *observe.Observation) { o.Transcript.Bytes[0] ^= 1 }, "not its transcript_sha256"},
		{"transcript removed", func(o *observe.Observation) { o.Transcript.Bytes = nil }, "is missing"},
		{"relabelled form 1", func(o *observe.Observation) { o.Chain.Form = 0 }, "does not check"},
		{"transcript_sha256", func(o *observe.Observation) { o.Transcript.SHA256[0] ^= 1 }, "not its transcript_sha256"},
	} {
		obs := signed(t, sample(4))
		if r := evidence.NewChainChecker().Check(slices.Clone(obs)); len(r.Failures) != 0 || r.Signed != 4 {
			t.Fatalf("untouched: %+v", r)
		}
		obs[0].Transcript.Bytes = bytes.Clone(obs[0].Transcript.Bytes)
		obs[0].Transcript.SHA256 = bytes.Clone(obs[0].Transcript.SHA256)
		c.fn(&obs[0])
		r := evidence.NewChainChecker().Check(obs)
		var all []string
		for _, err := range r.Failures {
			all = append(all, err.Error())
		}
		if r.Signed != 0 || !strings.Contains(strings.Join(all, "\n"), c.want) {
			t.Errorf("%s: signed %d, failures %v, want one saying %q", c.name, r.Signed, all, c.want)
		}
	}

	// Stored, then checked on another goroutine, as the pipeline does.
	obs := signed(t, sample(8))
	f := newFixture(t, nil)
	if err := f.st.InsertObservations(context.Background(), obs); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var r evidence.CheckResult
	batch := slices.Clone(obs)
	wg.Go(func() { r = evidence.NewChainChecker().Check(batch) })
	wg.Wait()
	if len(r.Failures) != 0 || r.Signed != 8 {
		t.Fatalf("stored then checked: %+v", r)
	}
	for i := range obs {
		want, _ := obs[i].SensorHash()
		if got, _ := obs[i].KnownSensorHash(); got != want {
			t.Fatalf("observation %d: the store remembered %x, its sensor hash is %x", i, got, want)
		}
		// A field changed after: the remembered hash is not given.
		obs[i].Endpoint.Port++
		want, _ = obs[i].SensorHash()
		if got, _ := obs[i].KnownSensorHash(); got != want {
			t.Fatalf("observation %d, port changed after it was stored: known sensor hash %x, its sensor hash now %x", i, got, want)
		}
	}
}

// TestEditedForm2TranscriptIsNotExported: a form 2 leaf covers the
// transcript only through transcript_sha256, so a transcript changed or
// removed in the database still hashes to its leaf. The export must
// refuse such a row as it refuses any row edited after it was logged,
// rather than write a bundle that 'vigil verify' then fails.
func TestEditedForm2TranscriptIsNotExported(t *testing.T) {
	for _, c := range []struct{ name, set string }{
		{"changed", `UPDATE observations SET transcript = randomblob(40) WHERE transcript IS NOT NULL`},
		{"removed", `UPDATE observations SET transcript = NULL WHERE transcript IS NOT NULL`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vigil.db")
			ctx := context.Background()
			st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			obs := signed(t, sample(1)) // a peer probe with its transcript
			if obs[0].Chain.Form != observe.Form2 || len(obs[0].Transcript.Bytes) == 0 {
				t.Fatalf("form %d, %d transcript bytes", obs[0].Chain.Form, len(obs[0].Transcript.Bytes))
			}
			if err := st.InsertObservations(ctx, obs); err != nil {
				t.Fatal(err)
			}
			key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
			if _, err := evidence.MakeCheckpoint(ctx, st, key, t0); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if r, err := db.Exec(c.set); err != nil {
				t.Fatal(err)
			} else if n, _ := r.RowsAffected(); n != 1 {
				t.Fatalf("%d rows changed", n)
			}
			var buf bytes.Buffer
			err = evidence.WriteBundle(ctx, &buf, st, key, evidence.Export{Target: "T", IDs: []string{obs[0].ID}})
			if err == nil || !strings.Contains(err.Error(), "transcript_sha256") || !strings.Contains(err.Error(), "changed after it was logged") {
				t.Fatalf("transcript %s in the database: err %v", c.name, err)
			}
		})
	}
}

// TestReadmeSaysEmptyMembersGoInsideObjectsToo: the canonical form drops
// empty members inside nested objects too (a line's "build" holds
// "commit":"" when the build has none), so a defence expert who drops them
// at the top level only computes another leaf. The README a bundle
// carries, which tells them how to recompute it by hand, must say so.
func TestReadmeSaysEmptyMembersGoInsideObjectsToo(t *testing.T) {
	lines := bytes.Split(fileOfBundle(t, "bundle-form2", verify.FileObservations), []byte("\n"))
	d := json.NewDecoder(bytes.NewReader(lines[0]))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if b, ok := m["build"].(map[string]any); !ok || b["commit"] != "" {
		t.Fatalf("the fixture's first line has no empty build commit: %v", m["build"])
	}
	for k, v := range m { // the top level only
		if v == nil || v == "" || fmt.Sprint(v) == "[]" || fmt.Sprint(v) == "map[]" {
			delete(m, k)
		}
	}
	var top bytes.Buffer
	e := json.NewEncoder(&top)
	e.SetEscapeHTML(false)
	if err := e.Encode(m); err != nil {
		t.Fatal(err)
	}
	full, err := canon.Form(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(bytes.TrimSpace(top.Bytes()), full) {
		t.Fatal("pruning the top level only gives the canonical form: the test shows nothing")
	}
	readme := evidence.Readme("T", evidence.Checkpoint{})
	if !strings.Contains(readme, `inside the objects it holds`) || !strings.Contains(readme, `"build"`) {
		t.Errorf("the README does not say that empty members are dropped inside nested objects too:\n%s", readme)
	}
}

func fileOfBundle(t *testing.T, name, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("verify", "testdata", name, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
