package wire

import "fmt"

// Tag value types (the eD2K and Kad tag types).
const (
	TagHash16    byte = 0x01
	TagString    byte = 0x02
	TagUint32    byte = 0x03
	TagFloat32   byte = 0x04
	TagBool      byte = 0x05
	TagBoolArray byte = 0x06
	TagBlob      byte = 0x07
	TagUint16    byte = 0x08
	TagUint8     byte = 0x09
	TagBsob      byte = 0x0A // Kad only
	TagUint64    byte = 0x0B
	// TagStr1 .. TagStr16 are strings whose length is the type minus 0x10.
	TagStr1  byte = 0x11
	TagStr16 byte = 0x20
)

// Tag name ids the package interprets. Client hello tags (CT_*), server
// tags (ST_*) and file tags (FT_*) share the one-byte name space per
// message.
const (
	CTName         byte = 0x01 // client nick name (string)
	CTPort         byte = 0x0F // TCP listen port
	CTVersion      byte = 0x11 // eDonkey protocol version (0x3C)
	CTServerFlags  byte = 0x20 // capabilities sent to a server at login
	CTEmuleCompat  byte = 0xEF // eMule compat options
	CTEmuleUDP     byte = 0xF9 // Kad UDP port << 16 | eD2K UDP port
	CTEmuleMisc1   byte = 0xFA // eMule misc options 1
	CTEmuleVersion byte = 0xFB // compatible client << 24 | version
	CTEmuleMisc2   byte = 0xFE // eMule misc options 2 (Kad version, ...)
	CTModVersion   byte = 0x55 // mod name (string) or id

	STServerName  byte = 0x01
	STDescription byte = 0x0B

	FTFileName byte = 0x01
	FTFileSize byte = 0x02
	FTFileType byte = 0x03
	FTSizeHi   byte = 0x3A
)

// TagForm is how a tag's name was written, kept so that a decoded tag
// encodes back to the same bytes.
type TagForm uint8

const (
	// FormID is the classic form: type, 16-bit name length 1, name id.
	FormID TagForm = iota
	// FormCompact is eMule's "new" form: type|0x80, then the name id.
	FormCompact
	// FormName is a tag with a string name (server.met, old files).
	FormName
)

// Tag is one eD2K tag: a named, typed value.
type Tag struct {
	Form TagForm
	ID   byte   // name id (FormID, FormCompact)
	Name string // name (FormName)
	Type byte   // one of the Tag* types, as sent
	Int  uint64 // integer types and Bool
	Str  string // TagString and TagStr1..16
	Hash [16]byte
	// Raw holds the bytes of a Blob, a BoolArray's bytes, or a Float32's
	// four bytes.
	Raw []byte
	// Bits is a BoolArray's bit count.
	Bits uint16
}

// IsInt reports whether the tag holds an integer.
func (t Tag) IsInt() bool {
	switch t.Type {
	case TagUint8, TagUint16, TagUint32, TagUint64:
		return true
	}
	return false
}

// IsStr reports whether the tag holds a string.
func (t Tag) IsStr() bool { return t.Type == TagString || t.Type >= TagStr1 && t.Type <= TagStr16 }

// Named reports whether the tag's name is the id id.
func (t Tag) Named(id byte) bool { return t.Form != FormName && t.ID == id }

// IntTag returns a 32-bit integer tag named id.
func IntTag(id byte, v uint32) Tag { return Tag{ID: id, Type: TagUint32, Int: uint64(v)} }

// StrTag returns a string tag named id.
func StrTag(id byte, s string) Tag { return Tag{ID: id, Type: TagString, Str: s} }

// readTag reads one eD2K tag.
func readTag(r *reader) Tag {
	var t Tag
	typ := r.U8("tag type")
	if typ&0x80 != 0 {
		t.Form, t.Type, t.ID = FormCompact, typ&0x7F, r.U8("tag name id")
	} else {
		t.Type = typ
		n := r.U16("tag name length")
		if n == 1 {
			t.Form, t.ID = FormID, r.U8("tag name id")
		} else {
			t.Form, t.Name = FormName, string(r.Take(int(n), "tag name"))
		}
	}
	if r.Err != nil {
		return t
	}
	switch t.Type {
	case TagHash16:
		t.Hash = r.hash("hash tag")
	case TagString:
		t.Str = r.str("string tag")
	case TagUint32:
		t.Int = uint64(r.U32("uint32 tag"))
	case TagUint64:
		t.Int = r.U64("uint64 tag")
	case TagUint16:
		t.Int = uint64(r.U16("uint16 tag"))
	case TagUint8, TagBool:
		t.Int = uint64(r.U8("uint8 tag"))
	case TagFloat32:
		t.Raw = r.Take(4, "float tag")
	case TagBoolArray:
		// eMule reads len/8+1 bytes, whatever len is (its own comment
		// calls it off by one); so do we, to stay in step.
		t.Bits = r.U16("bool array length")
		t.Raw = r.Take(int(t.Bits)/8+1, "bool array")
	case TagBlob:
		n := r.U32("blob length")
		if int64(n) > int64(r.Left()) {
			r.Fail("blob of %d bytes, %d left", n, r.Left())
			return t
		}
		t.Raw = r.Take(int(n), "blob")
	default:
		if t.Type >= TagStr1 && t.Type <= TagStr16 {
			t.Str = string(r.Take(int(t.Type-TagStr1+1), "short string tag"))
			return t
		}
		r.Fail("tag type 0x%02x", t.Type)
	}
	return t
}

// AppendTo appends the tag's encoding.
func (t Tag) AppendTo(b []byte) []byte {
	switch t.Form {
	case FormCompact:
		b = append(b, t.Type|0x80, t.ID)
	case FormName:
		b = append(b, t.Type)
		b = appendStr(b, t.Name)
	default:
		b = append(b, t.Type, 1, 0, t.ID)
	}
	switch t.Type {
	case TagHash16:
		b = append(b, t.Hash[:]...)
	case TagString:
		b = appendStr(b, t.Str)
	case TagUint32:
		b = appendU32(b, uint32(t.Int))
	case TagUint64:
		b = appendU64(b, t.Int)
	case TagUint16:
		b = appendU16(b, uint16(t.Int))
	case TagUint8, TagBool:
		b = append(b, byte(t.Int))
	case TagFloat32:
		var f [4]byte
		copy(f[:], t.Raw)
		b = append(b, f[:]...)
	case TagBoolArray:
		b = appendU16(b, t.Bits)
		raw := make([]byte, int(t.Bits)/8+1)
		copy(raw, t.Raw)
		b = append(b, raw...)
	case TagBlob:
		b = appendU32(b, uint32(len(t.Raw)))
		b = append(b, t.Raw...)
	default:
		if t.Type >= TagStr1 && t.Type <= TagStr16 {
			s := make([]byte, int(t.Type-TagStr1+1))
			copy(s, t.Str)
			b = append(b, s...)
		}
	}
	return b
}

// readTags reads a 32-bit count and that many tags. The count is checked
// against the bytes left (a tag takes at least 4) before anything is kept.
func readTags(r *reader) []Tag {
	n := r.U32("tag count")
	if r.Err != nil {
		return nil
	}
	if int64(n)*4 > int64(r.Left()) {
		r.Fail("%d tags in %d bytes", n, r.Left())
		return nil
	}
	tags := make([]Tag, 0, n)
	for i := uint32(0); i < n && r.Err == nil; i++ {
		tags = append(tags, readTag(r))
	}
	return tags
}

func appendTags(b []byte, tags []Tag) []byte {
	b = appendU32(b, uint32(len(tags)))
	for _, t := range tags {
		b = t.AppendTo(b)
	}
	return b
}

func (t Tag) String() string {
	name := fmt.Sprintf("0x%02x", t.ID)
	if t.Form == FormName {
		name = fmt.Sprintf("%q", t.Name)
	}
	switch {
	case t.IsInt():
		return fmt.Sprintf("%s=%d", name, t.Int)
	case t.IsStr():
		return fmt.Sprintf("%s=%q", name, t.Str)
	}
	return fmt.Sprintf("%s:type0x%02x", name, t.Type)
}
