package verify

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixture zips the checked-in bundle (testdata/bundle-v1, kept unzipped
// so that it reads as text; its observations are in evidence form 1),
// with changed applied to its files.
func fixture(t testing.TB, changed func(files map[string][]byte)) []byte {
	t.Helper()
	return fixtureOf(t, "bundle-v1", changed)
}

// fixtureOf zips the checked-in bundle testdata/name.
func fixtureOf(t testing.TB, name string, changed func(files map[string][]byte)) []byte {
	t.Helper()
	dir := filepath.Join("testdata", name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	if changed != nil {
		changed(files)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func logKey(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("testdata", "bundle-v1.logkey"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestFixtureBundleStillVerifies: a bundle written by an earlier Vigil
// (the checked-in one, regenerated only with
// 'go test ./internal/evidence -run TestWriteFixtureBundle -update-fixture'
// when the format changes on purpose) must keep verifying.
func TestFixtureBundleStillVerifies(t *testing.T) {
	b := fixture(t, nil)
	rep, err := Verify(bytes.NewReader(b), int64(len(b)), Options{LogKey: logKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Observations != 5 || rep.Proofs != 5 || rep.Signed != 5 || rep.Batches == 0 || rep.Transcripts == 0 || rep.Files != 9 {
		t.Fatalf("report %+v", rep)
	}
}

// TestFixtureForm2BundleStillVerifies: the checked-in bundle of evidence
// form 2 (testdata/bundle-form2, written by 'go test ./internal/evidence
// -run TestWriteFixtureBundle -update-fixture') must keep verifying, as
// bundle-v1 must in form 1.
func TestFixtureForm2BundleStillVerifies(t *testing.T) {
	b := fixtureOf(t, "bundle-form2", nil)
	rep, err := Verify(bytes.NewReader(b), int64(len(b)), Options{LogKey: logKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	if rep.Observations != 5 || rep.Form2 != 5 || rep.Signed != 5 || rep.Batches == 0 || rep.Transcripts == 0 {
		t.Fatalf("report %+v", rep)
	}
	b1 := fixture(t, nil)
	if rep, err := Verify(bytes.NewReader(b1), int64(len(b1)), Options{LogKey: logKey(t)}); err != nil || rep.Form1 != 5 || rep.Form2 != 0 {
		t.Fatalf("bundle-v1: forms %d/%d (%v)", rep.Form1, rep.Form2, err)
	}
}

// TestFixtureEveryByteOfEveryFile flips each byte of each file of the
// fixture in turn (every 7th byte, and the first and last): verification
// fails and names the file.
func TestFixtureEveryByteOfEveryFile(t *testing.T) {
	names := []string{FileManifest, FileReadme, FileObservations, FileProofs, FileCheckpoint, FileKeys, FileBatches, FileWatchlist, FileLinks, FileISPAnnex}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join("testdata", "bundle-v1", name))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(data); i++ {
			if i%7 != 0 && i != len(data)-1 {
				continue
			}
			b := fixture(t, func(files map[string][]byte) {
				c := bytes.Clone(files[name])
				c[i] ^= 0x20
				files[name] = c
			})
			rep, err := Verify(bytes.NewReader(b), int64(len(b)), Options{LogKey: logKey(t)})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Errorf("%s byte %d changed: verified", name, i)
				continue
			}
			named := false
			for _, p := range rep.Problems {
				named = named || p.File == name || (name == FileKeys && p.File == FileManifest)
			}
			if !named {
				t.Errorf("%s byte %d changed: problems do not name it: %v", name, i, rep.Problems)
			}
		}
	}
}

// FuzzVerify: whatever a bundle holds, Verify answers (a report or an
// error), never panics, and never calls a changed fixture good unless it
// is byte for byte the fixture's content.
func FuzzVerify(f *testing.F) {
	good := fixture(f, nil)
	f.Add(good)
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Verify(bytes.NewReader(b), int64(len(b)), Options{})
		if err != nil || !rep.OK() {
			return
		}
		if rep.Observations > 0 && rep.Target == "" {
			t.Fatalf("verified without a target: %+v", rep)
		}
	})
}

// TestChangedLargeFileIsTheManifestsProblemOnly: observations.jsonl and
// proofs.json are checked as they are hashed, but as with every other
// file, one that is not the manifest's is reported as changed, and what
// its content would have failed is not reported (nor counted).
func TestChangedLargeFileIsTheManifestsProblemOnly(t *testing.T) {
	for _, name := range []string{FileObservations, FileProofs} {
		b := fixture(t, func(files map[string][]byte) {
			c := bytes.Clone(files[name])
			c[len(c)/2] ^= 0x20
			files[name] = c
		})
		rep, err := Verify(bytes.NewReader(b), int64(len(b)), Options{LogKey: logKey(t)})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) != 1 || rep.Problems[0].File != name || rep.Problems[0].Field != "sha256" {
			t.Errorf("%s changed: problems %v", name, rep.Problems)
		}
		if rep.Observations != 0 || rep.Proofs != 0 || rep.Checkpoint != "" || rep.Files != 8 {
			t.Errorf("%s changed: report %+v", name, rep)
		}
	}
}
