package wire

import (
	"bytes"
	"runtime"
	"testing"
)

// TestDecodeJunkKeepsLittle: a hostile publisher's 1 MiB message of
// 524,288 lines that do not decode used to be read into 524,288 errors
// (about 640 MB allocated, all of it held until the message was dealt
// with). Every line is still counted, but only the first few errors are
// kept.
func TestDecodeJunkKeepsLittle(t *testing.T) {
	body := bytes.Repeat([]byte("x\n"), 1<<19)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	obs, bad, dropped := Decode(body)
	runtime.ReadMemStats(&after)
	if len(obs) != 0 || dropped != 1<<19 {
		t.Fatalf("%d observations, %d lines dropped; want 0 and %d", len(obs), dropped, 1<<19)
	}
	if len(bad) > MaxLineErrors {
		t.Errorf("%d errors kept, want at most %d", len(bad), MaxLineErrors)
	}
	if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > 64<<20 {
		t.Errorf("decoding held %d MB", held>>20)
	}
	runtime.KeepAlive(bad)
}
