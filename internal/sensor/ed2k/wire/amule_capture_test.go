package wire

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The packets under testdata/amule-2.3.3 were sent by Debian's aMule
// daemon 2.3.3 to the sensor's probe in the lab (TestAMuleIsFound... in
// internal/sensor/ed2k, run with VIGIL_AMULE_CAPTURE), sharing a synthetic
// file of two parts.
func readCapture(t *testing.T, name string) Packet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "amule-2.3.3", name))
	if err != nil {
		t.Fatal(err)
	}
	p, n, err := Decode(b, DefaultLimits())
	if err != nil || n != len(b) {
		t.Fatalf("%s: %d of %d bytes, %v", name, n, len(b), err)
	}
	return p
}

func TestDecodesAMule233Capture(t *testing.T) {
	p := readCapture(t, "hello-answer")
	h, err := DecodeHello(p.Payload, true)
	if err != nil || p.Opcode != OpHelloAnswer {
		t.Fatalf("hello answer: opcode 0x%02x %v", p.Opcode, err)
	}
	if out := h.AppendTo(nil); string(out) != string(p.Payload) {
		t.Fatal("aMule's hello answer does not re-encode to its bytes")
	}
	c := h.Client()
	if c.Name != "aMule" || c.Version != "2.3.3" || c.ListenPort != 4662 || c.KadPort != 4672 || c.KadVersion != 8 || !strings.Contains(c.Nick, "aMule") {
		t.Fatalf("client %+v", c)
	}
	if h.UserHash[5] != 14 || h.UserHash[14] != 111 {
		t.Fatalf("user hash %x lacks eMule's marks", h.UserHash)
	}

	fn, err := DecodeFileName(readCapture(t, "file-name-answer").Payload)
	if err != nil || !strings.HasPrefix(fn.Name, "synthetic-") {
		t.Fatalf("file name %+v %v", fn, err)
	}
	fs, err := DecodeFileStatus(readCapture(t, "file-status").Payload)
	if err != nil || fs.Hash != fn.Hash || fs.Count != 0 {
		t.Fatalf("file status %+v %v: a shared complete file is count 0", fs, err)
	}
	if pm := fs.Judge(PartSize + 1_000_000); !pm.Complete() || pm.Have != 2 {
		t.Fatalf("judged %+v", pm)
	}
	hs, err := DecodeHashSet(readCapture(t, "hash-set-answer").Payload)
	if err != nil || len(hs.Hashes) != HashSetCount(PartSize+1_000_000) || !CheckHashSet(fn.Hash, hs) {
		t.Fatalf("hash set of %d: %v", len(hs.Hashes), err)
	}
	if p := readCapture(t, "accept-upload"); p.Opcode != OpAcceptUploadReq || len(p.Payload) != 0 {
		t.Fatalf("accept upload %+v", p)
	}
}
