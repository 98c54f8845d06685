package wire

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestKeywordSearchIsEMulesAndOfTerms(t *testing.T) {
	// eMule writes "a b c" as AND a (AND b c), in prefix order.
	got := KeywordSearch([]string{"lab", "keyword", "alpha"}).AppendTo(nil)
	want := []byte{0, 0, 1, 3, 0, 'l', 'a', 'b', 0, 0, 1, 7, 0, 'k', 'e', 'y', 'w', 'o', 'r', 'd', 1, 5, 0, 'a', 'l', 'p', 'h', 'a'}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
	m, err := DecodeSearchRequest(got)
	if err != nil {
		t.Fatal(err)
	}
	if terms := m.Expr.Terms(); !slices.Equal(terms, []string{"lab", "keyword", "alpha"}) {
		t.Fatalf("terms %q", terms)
	}
}

func TestSearchRequestRefusesDeepOrUnknownTrees(t *testing.T) {
	deep := bytes.Repeat([]byte{SearchOperator, SearchAnd}, MaxSearchDepth+1)
	for name, p := range map[string][]byte{
		"deep":          deep,
		"many-nodes":    append(bytes.Repeat([]byte{SearchOperator, SearchOr, SearchString, 0, 0}, MaxSearchNodes), SearchString, 0, 0),
		"unknown-node":  {0x07, 0, 0},
		"bad-operator":  {SearchOperator, 9, SearchString, 0, 0, SearchString, 0, 0},
		"trailing":      {SearchString, 1, 0, 'a', 'b'},
		"empty":         {},
		"short-operand": {SearchOperator, SearchAnd, SearchString, 0, 0},
	} {
		if _, err := DecodeSearchRequest(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestSearchResultRoundTripAndFields(t *testing.T) {
	var h [16]byte
	copy(h[:], "0123456789abcdef")
	m := SearchResult{Files: []OfferedFile{
		{Hash: h, ClientID: 0x0500007F, Port: 4662, Tags: []Tag{StrTag(FTFileName, "lab-keyword-alpha 01.bin"), IntTag(FTFileSize, 300_000), IntTag(FTSources, 4), IntTag(FTCompleteSources, 2)}},
		{Hash: h, Tags: []Tag{{ID: FTFileSize, Type: TagUint64, Int: 5 << 30}}},
	}, HasMore: true, More: true}
	b := m.AppendTo(nil)
	got, err := DecodeSearchResult(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.AppendTo(nil), b) || !got.More || len(got.Files) != 2 {
		t.Fatalf("round trip: %+v", got)
	}
	f := got.Files[0]
	if f.Name() != "lab-keyword-alpha 01.bin" || f.Size() != 300_000 || f.Sources() != 4 {
		t.Fatalf("name %q size %d sources %d", f.Name(), f.Size(), f.Sources())
	}
	if g := got.Files[1]; g.Name() != "" || g.Size() != 5<<30 || g.Sources() != -1 {
		t.Fatalf("second: name %q size %d sources %d", g.Name(), g.Size(), g.Sources())
	}
}

func TestSearchResultRefusesCountsPastItsBytes(t *testing.T) {
	for name, p := range map[string][]byte{
		"huge-count":     {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"more-byte-2":    {0, 0, 0, 0, 2},
		"two-trailing":   {0, 0, 0, 0, 0, 0},
		"huge-tag-count": append(append([]byte{1, 0, 0, 0}, make([]byte, 22)...), 0xFF, 0xFF, 0xFF, 0xFF),
	} {
		if _, err := DecodeSearchResult(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestWordsSplitAsEMuleDoes(t *testing.T) {
	got := Words("Lab-Keyword-ALPHA (01).bin\tab x.y__zeta")
	want := []string{"lab", "keyword", "alpha", "bin", "zeta"}
	if !slices.Equal(got, want) {
		t.Fatalf("Words = %q, want %q", got, want)
	}
	if !HasWords("synthetic lab-keyword-alpha.bin", Words("LAB keyword")) || HasWords("lab-keywords.bin", Words("keyword")) {
		t.Fatal("HasWords matches parts of words or misses whole ones")
	}
	if long := strings.Repeat("é", 2); len(Words(long)) != 1 {
		t.Fatalf("a 4-byte word of two runes was dropped: %q", Words(long))
	}
}
