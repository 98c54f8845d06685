package kadwire

import (
	"encoding/binary"
	"fmt"
)

// Tag types (the same numbers as eD2K's).
const (
	TagHash16  byte = 0x01
	TagString  byte = 0x02
	TagUint32  byte = 0x03
	TagFloat32 byte = 0x04
	TagUint16  byte = 0x08
	TagUint8   byte = 0x09
	TagBsob    byte = 0x0A
	TagUint64  byte = 0x0B
)

// Tag names (one byte) that Kad source entries and hellos use.
const (
	TagFileSize    byte = 0x02
	TagEncryption  byte = 0xF3
	TagKadMisc     byte = 0xF2
	TagBuddyHash   byte = 0xF8
	TagClientLowID byte = 0xF9
	TagServerPort  byte = 0xFA
	TagServerIP    byte = 0xFB
	TagSourceUPort byte = 0xFC
	TagSourcePort  byte = 0xFD
	TagSourceIP    byte = 0xFE
	TagSourceType  byte = 0xFF
)

// Tag is one Kad tag. Kad writes every name with a 16-bit length; the
// one-byte names above are names of length 1.
type Tag struct {
	Name string
	Type byte
	Int  uint64
	Str  string
	Hash [16]byte
	Raw  []byte // Bsob bytes, Float32's four bytes
}

// Named reports whether the tag's name is the one-byte name id.
func (t Tag) Named(id byte) bool { return len(t.Name) == 1 && t.Name[0] == id }

// IsInt reports whether the tag holds an integer.
func (t Tag) IsInt() bool {
	switch t.Type {
	case TagUint8, TagUint16, TagUint32, TagUint64:
		return true
	}
	return false
}

// IntTag returns an integer tag of the smallest type that holds v (as
// aMule's CTagVarInt does).
func IntTag(id byte, v uint64) Tag {
	t := Tag{Name: string([]byte{id}), Int: v}
	switch {
	case v <= 0xFF:
		t.Type = TagUint8
	case v <= 0xFFFF:
		t.Type = TagUint16
	case v <= 0xFFFFFFFF:
		t.Type = TagUint32
	default:
		t.Type = TagUint64
	}
	return t
}

func readTag(r *reader) Tag {
	var t Tag
	t.Type = r.U8("tag type")
	t.Name = string(r.Take(int(r.U16("tag name length")), "tag name"))
	if r.Err != nil {
		return t
	}
	switch t.Type {
	case TagHash16:
		copy(t.Hash[:], r.Take(16, "hash tag"))
	case TagString:
		t.Str = string(r.Take(int(r.U16("string length")), "string tag"))
	case TagUint64:
		t.Int = r.U64("uint64 tag")
	case TagUint32:
		t.Int = uint64(r.U32("uint32 tag"))
	case TagUint16:
		t.Int = uint64(r.U16("uint16 tag"))
	case TagUint8:
		t.Int = uint64(r.U8("uint8 tag"))
	case TagFloat32:
		t.Raw = r.Take(4, "float tag")
	case TagBsob:
		t.Raw = r.Take(int(r.U8("bsob length")), "bsob tag")
	default:
		r.Fail("kad tag type 0x%02x", t.Type)
	}
	return t
}

// AppendTo appends the tag's encoding.
func (t Tag) AppendTo(b []byte) []byte {
	name := t.Name
	if len(name) > 0xFFFF {
		name = name[:0xFFFF]
	}
	b = append(b, t.Type)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	switch t.Type {
	case TagHash16:
		b = append(b, t.Hash[:]...)
	case TagString:
		s := t.Str
		if len(s) > 0xFFFF {
			s = s[:0xFFFF]
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	case TagUint64:
		b = binary.LittleEndian.AppendUint64(b, t.Int)
	case TagUint32:
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Int))
	case TagUint16:
		b = binary.LittleEndian.AppendUint16(b, uint16(t.Int))
	case TagUint8:
		b = append(b, byte(t.Int))
	case TagFloat32:
		var f [4]byte
		copy(f[:], t.Raw)
		b = append(b, f[:]...)
	case TagBsob:
		raw := t.Raw
		if len(raw) > 0xFF {
			raw = raw[:0xFF]
		}
		b = append(b, byte(len(raw)))
		b = append(b, raw...)
	}
	return b
}

// readTags reads an 8-bit count and that many tags.
func readTags(r *reader) []Tag {
	n := int(r.U8("tag count"))
	if r.Err != nil {
		return nil
	}
	if n*4 > r.Left() {
		r.Fail("%d tags in %d bytes", n, r.Left())
		return nil
	}
	tags := make([]Tag, 0, n)
	for i := 0; i < n && r.Err == nil; i++ {
		tags = append(tags, readTag(r))
	}
	return tags
}

func appendTags(b []byte, tags []Tag) []byte {
	if len(tags) > 255 {
		tags = tags[:255]
	}
	b = append(b, byte(len(tags)))
	for _, t := range tags {
		b = t.AppendTo(b)
	}
	return b
}

func (t Tag) String() string {
	name := fmt.Sprintf("%q", t.Name)
	if len(t.Name) == 1 {
		name = fmt.Sprintf("0x%02x", t.Name[0])
	}
	if t.IsInt() {
		return fmt.Sprintf("%s=%d", name, t.Int)
	}
	if t.Type == TagString {
		return fmt.Sprintf("%s=%q", name, t.Str)
	}
	return fmt.Sprintf("%s:type0x%02x", name, t.Type)
}
