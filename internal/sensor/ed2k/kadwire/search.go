package kadwire

import (
	"encoding/binary"

	"golang.org/x/crypto/md4"
)

// Tag names of the file entries a keyword search returns.
const (
	TagFileName byte = 0x01
	TagFileType byte = 0x03
	TagSources  byte = 0x15 // clients the storing node heard publish the file
)

// KeywordID is the Kad id a keyword is stored under: the MD4 of the word
// as UTF-8, read as the file ids are (eMule's and aMule's
// KadGetKeywordHash). The word must already be what publishers index: a
// lower-cased word of at least 3 bytes (wire.Words).
func KeywordID(word string) ID {
	h := md4.New()
	h.Write([]byte(word))
	return ID(h.Sum(nil))
}

// SearchKeyReq is KADEMLIA2_SEARCH_KEY_REQ: the files stored under a
// keyword id. Start is the number of results to skip (15 bits); the
// 16th bit of the field on the wire says a search expression follows,
// which a node uses to narrow its answer. Tree keeps that expression's
// bytes as sent: this package does not interpret it.
type SearchKeyReq struct {
	Target ID
	Start  uint16
	Tree   []byte
}

// DecodeSearchKeyReq decodes KADEMLIA2_SEARCH_KEY_REQ.
func DecodeSearchKeyReq(b []byte) (SearchKeyReq, error) {
	r := newReader(b)
	m := SearchKeyReq{Target: r.id("target")}
	start := r.U16("start")
	m.Start = start & 0x7FFF
	if r.Err == nil && start&0x8000 != 0 {
		if r.Left() == 0 {
			r.Fail("search expression flagged but absent")
		}
		m.Tree = r.Take(r.Left(), "search expression")
	}
	if err := r.end("search key request"); err != nil {
		return SearchKeyReq{}, err
	}
	return m, nil
}

// AppendTo appends the payload.
func (m SearchKeyReq) AppendTo(b []byte) []byte {
	b = appendID(b, m.Target)
	start := m.Start & 0x7FFF
	if len(m.Tree) > 0 {
		start |= 0x8000
	}
	b = binary.LittleEndian.AppendUint16(b, start)
	return append(b, m.Tree...)
}

// File is what a keyword search's result says of a file: a node's index
// entry, built from what publishers told it. It proves nothing of any
// client.
type File struct {
	Hash    [16]byte // the file's ed2k hash (the result's id)
	Name    string   // TAG_FILENAME
	Size    int64    // TAG_FILESIZE; -1 when absent
	Sources int      // TAG_SOURCES; -1 when absent
}

// File decodes a keyword result's tags; ok is false when they carry no
// file name (not a keyword entry).
func (res Result) File() (f File, ok bool) {
	f = File{Hash: [16]byte(res.ID), Size: -1, Sources: -1}
	for _, t := range res.Tags {
		switch {
		case t.Named(TagFileName) && t.Type == TagString:
			f.Name, ok = t.Str, true
		case t.Named(TagFileSize) && t.IsInt():
			f.Size = int64(min(t.Int, 1<<62))
		case t.Named(TagFileSize) && t.Type == TagBsob && len(t.Raw) == 8:
			f.Size = int64(min(binary.LittleEndian.Uint64(t.Raw), 1<<62))
		case t.Named(TagSources) && t.IsInt():
			f.Sources = int(min(t.Int, 1<<31-1))
		}
	}
	return f, ok
}

// StrTag returns a string tag named id.
func StrTag(id byte, s string) Tag { return Tag{Name: string([]byte{id}), Type: TagString, Str: s} }
