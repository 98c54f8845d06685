package kadwire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestKeywordIDIsMD4OfTheWord(t *testing.T) {
	// RFC 1320's test vector: MD4("abc").
	if got := KeywordID("abc").String(); got != "a448017aaf21d8525fc10ae87aa6729d" {
		t.Fatalf("KeywordID(abc) = %s", got)
	}
	// On the wire an id is four little-endian words, most significant
	// first: the digest's bytes are not sent in order.
	b := SearchKeyReq{Target: KeywordID("abc")}.AppendTo(nil)
	if got := hex.EncodeToString(b[:16]); got != "7a0148a4"+"52d821af"+"e80ac15f"+"9d72a67a" {
		t.Fatalf("wire form %s", got)
	}
}

func TestSearchKeyReqRoundTrip(t *testing.T) {
	for _, m := range []SearchKeyReq{
		{Target: KeywordID("alpha")},
		{Target: KeywordID("alpha"), Start: 0x7FFF},
		{Target: KeywordID("alpha"), Start: 100, Tree: []byte{1, 3, 0, 'l', 'a', 'b'}},
	} {
		b := m.AppendTo(nil)
		got, err := DecodeSearchKeyReq(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Target != m.Target || got.Start != m.Start || !bytes.Equal(got.Tree, m.Tree) || !bytes.Equal(got.AppendTo(nil), b) {
			t.Fatalf("round trip of %+v gave %+v", m, got)
		}
	}
	flagged := append(SearchKeyReq{}.AppendTo(nil)[:16], 0, 0x80)
	if _, err := DecodeSearchKeyReq(flagged); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a flagged request without its expression: %v", err)
	}
	if _, err := DecodeSearchKeyReq(make([]byte, 17)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a short request: %v", err)
	}
}

func TestResultFileReadsKeywordEntries(t *testing.T) {
	var h [16]byte
	copy(h[:], "0123456789abcdef")
	f, ok := Result{ID: ID(h), Tags: []Tag{StrTag(TagFileName, "lab-keyword-alpha.bin"), IntTag(TagFileSize, 300_000), IntTag(TagSources, 7)}}.File()
	if !ok || f.Hash != h || f.Name != "lab-keyword-alpha.bin" || f.Size != 300_000 || f.Sources != 7 {
		t.Fatalf("File = %+v, %v", f, ok)
	}
	big, ok := Result{Tags: []Tag{StrTag(TagFileName, "x.bin"), {Name: "\x02", Type: TagBsob, Raw: []byte{0, 0, 0, 0, 1, 0, 0, 0}}}}.File()
	if !ok || big.Size != 1<<32 || big.Sources != -1 {
		t.Fatalf("large file: %+v", big)
	}
	// A source entry is not a file entry.
	if _, ok := (Result{Tags: []Tag{IntTag(TagSourceType, 1)}}).File(); ok {
		t.Fatal("a source entry read as a file")
	}
}
