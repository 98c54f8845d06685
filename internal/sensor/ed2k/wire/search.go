package wire

import (
	"slices"
	"strings"
	"unicode"
)

// Search opcodes (ProtoEDonkey, client to server and back).
const (
	OpSearchRequest byte = 0x16
	OpSearchResult  byte = 0x33
)

// File tags a search result carries beside FTFileName, FTFileSize and
// FTFileType.
const (
	FTSources         byte = 0x15 // clients the server knows with the file
	FTCompleteSources byte = 0x30 // of them, those with the whole file
)

// Search expression node types, as eMule writes them (prefix order: an
// operator node is followed by its two operands).
const (
	SearchOperator byte = 0x00 // then one byte: SearchAnd, SearchOr, SearchNot
	SearchString   byte = 0x01 // a term: 16-bit length, bytes
	SearchMeta     byte = 0x02 // a value (16-bit length, bytes) for a tag (16-bit length, name)
	SearchNum32    byte = 0x03 // 32-bit value, comparison byte, tag
	SearchNum64    byte = 0x08 // 64-bit value, comparison byte, tag
)

// Boolean operators of a SearchOperator node.
const (
	SearchAnd byte = 0x00
	SearchOr  byte = 0x01
	SearchNot byte = 0x02 // AND NOT
)

// Bounds on a decoded search expression: eMule limits an expression to
// 512 characters, so no legitimate request comes near them; they keep a
// hostile one from costing more than its bytes (and recursion) allow.
const (
	MaxSearchDepth = 32
	MaxSearchNodes = 256
)

// SearchExpr is one node of a search expression.
type SearchExpr struct {
	Type        byte // one of the Search* node types
	Op          byte // SearchOperator: SearchAnd, SearchOr or SearchNot
	Left, Right *SearchExpr
	Str         string // SearchString: the term; SearchMeta: the value
	Tag         string // SearchMeta, SearchNum*: the tag's name (one byte for FT_* ids)
	Num         uint64 // SearchNum*
	Cmp         byte   // SearchNum*: the comparison
}

// Terms returns the string terms of the expression, in order.
func (e *SearchExpr) Terms() []string {
	if e == nil {
		return nil
	}
	if e.Type == SearchString {
		return []string{e.Str}
	}
	return append(e.Left.Terms(), e.Right.Terms()...)
}

// SearchRequest is OP_SEARCHREQUEST: one search expression.
type SearchRequest struct{ Expr *SearchExpr }

// KeywordSearch is the request eMule sends for a plain keyword search:
// each word a string term, joined by AND (left to right, as eMule nests
// them). It returns a request without an expression for no words.
func KeywordSearch(words []string) SearchRequest {
	var e *SearchExpr
	for i := len(words) - 1; i >= 0; i-- {
		t := &SearchExpr{Type: SearchString, Str: words[i]}
		if e == nil {
			e = t
			continue
		}
		e = &SearchExpr{Type: SearchOperator, Op: SearchAnd, Left: t, Right: e}
	}
	return SearchRequest{Expr: e}
}

// DecodeSearchRequest decodes OP_SEARCHREQUEST. An expression deeper
// than MaxSearchDepth or of more than MaxSearchNodes nodes is refused.
func DecodeSearchRequest(payload []byte) (SearchRequest, error) {
	r := newReader(payload)
	nodes := 0
	m := SearchRequest{Expr: readSearchExpr(r, 0, &nodes)}
	if err := r.end("search request"); err != nil {
		return SearchRequest{}, err
	}
	return m, nil
}

func readSearchExpr(r *reader, depth int, nodes *int) *SearchExpr {
	if r.Err != nil {
		return nil
	}
	*nodes++
	if depth >= MaxSearchDepth || *nodes > MaxSearchNodes {
		r.Fail("search expression deeper than %d or of more than %d nodes", MaxSearchDepth, MaxSearchNodes)
		return nil
	}
	e := &SearchExpr{Type: r.U8("search node type")}
	switch e.Type {
	case SearchOperator:
		e.Op = r.U8("search operator")
		if r.Err == nil && e.Op > SearchNot {
			r.Fail("search operator 0x%02x", e.Op)
			return nil
		}
		e.Left = readSearchExpr(r, depth+1, nodes)
		e.Right = readSearchExpr(r, depth+1, nodes)
	case SearchString:
		e.Str = r.str("search term")
	case SearchMeta:
		e.Str = r.str("search meta value")
		e.Tag = r.str("search meta tag")
	case SearchNum32:
		e.Num, e.Cmp = uint64(r.U32("search number")), r.U8("search comparison")
		e.Tag = r.str("search number tag")
	case SearchNum64:
		e.Num, e.Cmp = r.U64("search number"), r.U8("search comparison")
		e.Tag = r.str("search number tag")
	default:
		r.Fail("search node type 0x%02x", e.Type)
	}
	if r.Err != nil {
		return nil
	}
	return e
}

// AppendTo appends the payload.
func (m SearchRequest) AppendTo(b []byte) []byte { return appendSearchExpr(b, m.Expr) }

func appendSearchExpr(b []byte, e *SearchExpr) []byte {
	if e == nil {
		return b
	}
	b = append(b, e.Type)
	switch e.Type {
	case SearchOperator:
		b = append(b, e.Op)
		b = appendSearchExpr(b, e.Left)
		b = appendSearchExpr(b, e.Right)
	case SearchString:
		b = appendStr(b, e.Str)
	case SearchMeta:
		b = appendStr(appendStr(b, e.Str), e.Tag)
	case SearchNum32:
		b = appendStr(append(appendU32(b, uint32(e.Num)), e.Cmp), e.Tag)
	case SearchNum64:
		b = appendStr(append(appendU64(b, e.Num), e.Cmp), e.Tag)
	}
	return b
}

// SearchResult is OP_SEARCHRESULT: a 32-bit count, then each file in the
// layout of an OP_OFFERFILES entry (hash, a client id and port, tags),
// and, from servers that can give more, one byte saying whether more
// results are waiting. A result describes a file as the server indexes
// it; the client id and port it carries name one client the server
// chose, and prove nothing of that client.
type SearchResult struct {
	Files []OfferedFile
	// HasMore says the trailing byte was present; More is its value.
	HasMore, More bool
}

// DecodeSearchResult decodes OP_SEARCHRESULT. The count is checked
// against the bytes present (an entry takes at least 26) before anything
// is kept.
func DecodeSearchResult(payload []byte) (SearchResult, error) {
	r := newReader(payload)
	n := r.U32("result count")
	if r.Err == nil && int64(n)*26 > int64(r.Left()) {
		r.Fail("%d results in %d bytes", n, r.Left())
	}
	var m SearchResult
	if r.Err == nil {
		m.Files = make([]OfferedFile, 0, n)
	}
	for i := uint32(0); i < n && r.Err == nil; i++ {
		f := OfferedFile{Hash: r.hash("file hash"), ClientID: r.U32("client id"), Port: r.U16("port")}
		f.Tags = readTags(r)
		m.Files = append(m.Files, f)
	}
	if r.Err == nil && r.Left() == 1 {
		v := r.U8("more results")
		if v > 1 {
			r.Fail("more-results byte 0x%02x", v)
		}
		m.HasMore, m.More = true, v == 1
	}
	if err := r.end("search result"); err != nil {
		return SearchResult{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m SearchResult) AppendTo(b []byte) []byte {
	b = appendU32(b, uint32(len(m.Files)))
	for _, f := range m.Files {
		b = append(b, f.Hash[:]...)
		b = appendU16(appendU32(b, f.ClientID), f.Port)
		b = appendTags(b, f.Tags)
	}
	if m.HasMore {
		v := byte(0)
		if m.More {
			v = 1
		}
		b = append(b, v)
	}
	return b
}

// Name returns the file name the tags give (FT_FILENAME), or "".
func (f OfferedFile) Name() string {
	for _, t := range f.Tags {
		if t.Named(FTFileName) && t.IsStr() {
			return t.Str
		}
	}
	return ""
}

// Sources returns the source count the tags give (FT_SOURCES), or -1.
func (f OfferedFile) Sources() int {
	for _, t := range f.Tags {
		if t.Named(FTSources) && t.IsInt() {
			return int(min(t.Int, 1<<31-1))
		}
	}
	return -1
}

// keywordDelimiters are the characters eMule and aMule split a file name
// or a search into words at (besides white space).
const keywordDelimiters = " ()[]{}<>,._-!?:;\\/\""

// Words splits s into the words eMule and aMule index and search by:
// split at white space and at ()[]{}<>,._-!?:;\/", lower-cased, and
// only words of at least 3 bytes of UTF-8 (shorter ones are not
// indexed).
func Words(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return strings.ContainsRune(keywordDelimiters, r) || unicode.IsSpace(r)
	}) {
		if w = strings.ToLower(w); len(w) >= 3 {
			out = append(out, w)
		}
	}
	return out
}

// HasWords reports whether name holds every one of words (as Words gives
// them) as a word of its own.
func HasWords(name string, words []string) bool {
	have := Words(name)
	for _, w := range words {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
