package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

func testConfig(t *testing.T) Config {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dial = g.Dialer(&net.Dialer{}).DialContext
	cfg.UserHash = NewUserHash()
	cfg.Timeout = 5 * time.Second
	return cfg
}

var nextAddr = 0

func startClient(t *testing.T, b labed2k.Behaviour, shares ...labed2k.Share) *labed2k.Client {
	t.Helper()
	nextAddr++
	c, err := labed2k.StartClient(labed2k.ClientConfig{
		UserHash: [16]byte{1, 2, 3, 4, 5, 14, 7, 8, 9, 10, 11, 12, 13, 14, 111, byte(nextAddr)},
		Software: labed2k.AMule233, Behaviour: b, Shares: shares,
		Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 90, 0, byte(nextAddr)}), 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var (
	small = labed2k.NewFile(1, 300_000)
	two   = labed2k.NewFile(2, wire.PartSize+500_000)
)

func TestProbeCompleteClientIsAMuleWithItsUserHash(t *testing.T) {
	c := startClient(t, labed2k.Honest, labed2k.Share{File: two})
	res, tr, err := Probe(context.Background(), testConfig(t), Target{Addr: c.Addr(), Hash: two.Hash, Size: two.Size})
	if err != nil {
		t.Fatal(err)
	}
	pos, marks := res.Possession()
	if pos.Level != observe.Complete || pos.PiecesHave != 2 || pos.PiecesTotal != 2 || len(marks) != 0 {
		t.Fatalf("possession %+v marks %v", pos, marks)
	}
	if res.Hello.UserHash != c.UserHash() || res.Client.Name != "aMule" || res.Client.Version != "2.3.3" || res.Client.ListenPort != c.Addr().Port() {
		t.Fatalf("hello %x client %+v", res.Hello.UserHash, res.Client)
	}
	recs, err := tscript.Decode(tr.Bytes)
	if err != nil || len(recs) < 4 {
		t.Fatalf("transcript: %d records, %v", len(recs), err)
	}
	if res.Local.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("local %v", res.Local)
	}
}

func TestProbePartialClient(t *testing.T) {
	c := startClient(t, labed2k.Honest, labed2k.Share{File: two, Have: []bool{false, true}})
	res, _, err := Probe(context.Background(), testConfig(t), Target{Addr: c.Addr(), Hash: two.Hash, Size: two.Size})
	if err != nil {
		t.Fatal(err)
	}
	if pos, _ := res.Possession(); pos.Level != observe.Partial || pos.PiecesHave != 1 {
		t.Fatalf("possession %+v", pos)
	}
}

// TestLiarsAreNeverComplete: a part map with spare bits set, or with a
// count that is not the file's, is marked malformed and never complete.
func TestLiarsAreNeverComplete(t *testing.T) {
	for _, b := range []labed2k.Behaviour{labed2k.LiarSpareBits, labed2k.LiarWrongCount} {
		c := startClient(t, b, labed2k.Share{File: two})
		res, _, err := Probe(context.Background(), testConfig(t), Target{Addr: c.Addr(), Hash: two.Hash, Size: two.Size})
		if err != nil {
			t.Fatal(err)
		}
		pos, marks := res.Possession()
		if pos.Level == observe.Complete || len(marks) != 1 || marks[0] != observe.MarkMalformedBitfield {
			t.Fatalf("%s: possession %+v marks %v", b, pos, marks)
		}
	}
}

func TestWrongFileAnswerSaysNothing(t *testing.T) {
	c := startClient(t, labed2k.WrongFile, labed2k.Share{File: small})
	res, _, err := Probe(context.Background(), testConfig(t), Target{Addr: c.Addr(), Hash: small.Hash, Size: small.Size})
	if !errors.Is(err, ErrWrongFile) {
		t.Fatalf("err %v", err)
	}
	if res != nil && res.Acknowledged() {
		t.Fatal("a client answering for another file acknowledged")
	}
}

func TestNoFileIsNotAcknowledged(t *testing.T) {
	c := startClient(t, labed2k.Honest, labed2k.Share{File: small})
	res, _, err := Probe(context.Background(), testConfig(t), Target{Addr: c.Addr(), Hash: two.Hash, Size: two.Size})
	if err != nil {
		t.Fatal(err)
	}
	if !res.NoFile || res.Acknowledged() {
		t.Fatalf("result %+v", res)
	}
}

// TestBombAndOversizeAreRefusedWithinBounds: neither a 16 MiB packed
// packet nor a 100 MB announced packet is read past the bound.
func TestBombAndOversizeAreRefusedWithinBounds(t *testing.T) {
	for _, b := range []labed2k.Behaviour{labed2k.Bomb, labed2k.Oversize} {
		c := startClient(t, b, labed2k.Share{File: small})
		res, _, err := Probe(context.Background(), testConfig(t), Target{Addr: c.Addr(), Hash: small.Hash, Size: small.Size})
		if !errors.Is(err, wire.ErrTooLarge) {
			t.Fatalf("%s: err %v", b, err)
		}
		if res != nil && res.Acknowledged() {
			t.Fatalf("%s: acknowledged", b)
		}
	}
}

func TestVerifyFetchesOnePartAndKeepsNoContent(t *testing.T) {
	c := startClient(t, labed2k.Honest, labed2k.Share{File: two})
	cfg := testConfig(t)
	cfg.Verify = true
	res, tr, err := Probe(context.Background(), cfg, Target{Addr: c.Addr(), Hash: two.Hash, Size: two.Size})
	if err != nil {
		t.Fatal(err)
	}
	if pos, _ := res.Possession(); !res.Verified || pos.Level != observe.Verified {
		t.Fatalf("verified %v (%s), possession %+v", res.Verified, res.VerifyNote, pos)
	}
	if len(tr.Bytes) > cfg.TranscriptLimit {
		t.Fatalf("transcript of %d bytes", len(tr.Bytes))
	}
	s, err := tscript.Summarize(tr.Bytes)
	if err != nil || !s.Paused || s.ReceivedLeft < wire.PartSize {
		t.Fatalf("summary %+v err %v: the part's bytes must be counted as paused, not kept", s, err)
	}
}

func TestVerifyCatchesCorruptDataAndQueues(t *testing.T) {
	for _, b := range []labed2k.Behaviour{labed2k.CorruptData, labed2k.Queue} {
		c := startClient(t, b, labed2k.Share{File: small})
		cfg := testConfig(t)
		cfg.Verify = true
		res, _, err := Probe(context.Background(), cfg, Target{Addr: c.Addr(), Hash: small.Hash, Size: small.Size})
		if err != nil {
			t.Fatal(err)
		}
		if pos, _ := res.Possession(); res.Verified || pos.Level != observe.Complete || !strings.HasPrefix(res.VerifyNote, "verify: ") {
			t.Fatalf("%s: verified %v (%s) possession %+v", b, res.Verified, res.VerifyNote, pos)
		}
	}
}

func TestProbeRefusesOutOfScope(t *testing.T) {
	_, _, err := Probe(context.Background(), testConfig(t), Target{Addr: netip.MustParseAddrPort("192.0.2.1:4662"), Hash: small.Hash, Size: small.Size})
	if !errors.Is(err, scope.ErrOutOfScope) {
		t.Fatalf("err %v", err)
	}
}
