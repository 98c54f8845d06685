package verify

import (
	"archive/zip"
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// withEntry zips the fixture and one more entry of size zero bytes (which
// deflate packs a thousandfold).
func withEntry(t *testing.T, name string, size int) []byte {
	t.Helper()
	good := fixture(t, nil)
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for n := 0; n < size; n += len(zero) {
		w.Write(zero[:min(len(zero), size-n)])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestZipBombIsNotReadIntoMemory: a forged bundle may carry an entry that
// unpacks to far more than it weighs; the verifier names it without
// unpacking what no check needs (a name the bundle format does not have),
// and refuses a bundle whose entries declare more than MaxBundle in all.
func TestZipBombIsNotReadIntoMemory(t *testing.T) {
	const size = 64 << 20
	b := withEntry(t, "bomb.bin", size)
	if len(b) > size/100 {
		t.Fatalf("the bomb weighs %d bytes", len(b))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rep, err := Verify(bytes.NewReader(b), int64(len(b)), Options{LogKey: logKey(t)})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatal("a bundle with an extra entry verified")
	}
	named := false
	for _, p := range rep.Problems {
		named = named || p.File == "bomb.bin"
	}
	if !named {
		t.Errorf("problems do not name the extra entry: %v", rep.Problems)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > size/4 {
		t.Errorf("verifying allocated %d MiB for a bundle of %d KiB: the extra entry was unpacked", got>>20, len(b)>>10)
	}
}

// TestDeclaredSizesAreBounded: entries that declare more than MaxBundle
// bytes in all are refused before any is read.
func TestDeclaredSizesAreBounded(t *testing.T) {
	good := fixture(t, nil)
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		h := f.FileHeader
		if f.Name == FileObservations {
			h.UncompressedSize64 = MaxBundle + 1
		}
		w, err := zw.CreateRaw(&h)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := f.OpenRaw()
		if err != nil {
			t.Fatal(err)
		}
		var raw bytes.Buffer
		raw.ReadFrom(rc)
		w.Write(raw.Bytes())
	}
	zw.Close()
	b := buf.Bytes()
	rep, err := Verify(bytes.NewReader(b), int64(len(b)), Options{LogKey: logKey(t)})
	if err == nil && rep.OK() {
		t.Fatal("verified")
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	} else {
		msg = rep.Problems[0].String()
	}
	if !strings.Contains(msg, "declare") {
		t.Errorf("refused for another reason: %s", msg)
	}
}
