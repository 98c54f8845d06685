package watchlist

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// lineReader reads lines without copying them: a line is valid until the
// next call. Lines longer than max are skipped and reported, not returned.
type lineReader struct {
	br   *bufio.Reader // its buffer holds at least max+2 bytes (see Parse)
	max  int
	line int // number of the line last returned, 1-based
}

// next returns the next line without its line ending. tooLong reports a
// line longer than max, whose bytes are skipped. err is io.EOF at the end.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	b, err := lr.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		lr.line++
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = lr.br.ReadSlice('\n')
		}
		if err != nil && err != io.EOF {
			return nil, false, err
		}
		return nil, true, nil
	}
	if err == io.EOF && len(b) == 0 {
		return nil, false, io.EOF
	}
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	lr.line++
	b = bytes.TrimSuffix(b, []byte{'\n'})
	b = bytes.TrimSuffix(b, []byte{'\r'})
	if len(b) > lr.max {
		return nil, true, nil
	}
	return b, false, nil
}

func (c *collector) readErr(line int, err error) error {
	return fmt.Errorf("%s line %d: reading: %w", c.opt.File, line, err)
}

func (c *collector) tooLong() string {
	return fmt.Sprintf("line is longer than %d bytes", c.opt.MaxLineBytes)
}

// notText says why a line that is not UTF-8 text was refused, or "".
func notText(t []byte) string {
	if i := bytes.IndexByte(t, 0); i >= 0 {
		return fmt.Sprintf("binary data (NUL byte at column %d)", i+1)
	}
	if !utf8.Valid(t) {
		for i := 0; i < len(t); {
			r, size := utf8.DecodeRune(t[i:])
			if r == utf8.RuneError && size <= 1 {
				return fmt.Sprintf("not UTF-8 text (invalid byte 0x%02x at column %d)", t[i], i+1)
			}
			i += size
		}
	}
	return ""
}

// parseLines reads the line-oriented formats: text, magnet and ed2k lists.
// Blank lines and lines whose first non-blank character is '#' are
// comments in all three.
func parseLines(br *bufio.Reader, c *collector, format Format) error {
	lr := &lineReader{br: br, max: c.opt.MaxLineBytes}
	first := true
	for {
		line, tooLong, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return c.readErr(lr.line+1, err)
		}
		pos := Pos{File: c.opt.File, Line: lr.line}
		if tooLong {
			c.reject(pos, c.tooLong())
			first = false
			continue
		}
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		reason := notText(t)
		if reason == "" {
			switch format {
			case FormatText:
				reason = c.textLine(t, pos)
			case FormatMagnet:
				reason = c.magnetLine(t, pos)
			case FormatED2K:
				reason = c.ed2kLine(t, pos)
			}
		}
		if reason != "" {
			if first {
				if err := c.wrongFormat(format, pos); err != nil {
					return err
				}
			}
			c.reject(pos, reason)
		}
		first = false
	}
}

// wrongFormat returns an error if the format was named by the user, the
// first entry failed, and the file looks like another format: better one
// clear error than a rejection for every line.
func (c *collector) wrongFormat(format Format, pos Pos) error {
	if c.opt.Format == FormatAuto || c.head == nil {
		return nil
	}
	f, err := detect(c.head, c.opt)
	if err != nil || f == format {
		return nil
	}
	return wrapf(ErrFormat, "%s line %d: this is not a %s list, it looks like %s (give --format %s, or leave --format out to detect it)",
		pos.File, pos.Line, format, f, f)
}

// textLine reads one line of a text list: a hash in any form hashkind
// reads, then optionally a comment ("HASH # note"), or a file name as
// md5sum, sha1sum and rhash print it ("HASH  NAME", "HASH *NAME").
//
// It also reads the BSD form of md5, shasum --tag and rhash --bsd ("SHA1
// (NAME) = HASH"), whose tag says the kind, and coreutils' escaped form
// for names with a line feed or a backslash (a line that starts with a
// backslash, and \n and \\ in the name).
func (c *collector) textLine(t []byte, pos Pos) string {
	if k, name, value, ok := bsdLine(t); ok {
		h, err := hashkind.ParseBytes(value, k)
		if err != nil {
			return err.Error()
		}
		c.add(&Entry{Hash: h, Name: name, Size: -1, Pos: pos})
		return ""
	}
	escaped := t[0] == '\\'
	if escaped {
		t = t[1:]
	}
	tok, rest := cutField(t)
	var name, note string
	if len(rest) > 0 {
		rt := bytes.TrimLeft(rest, " \t")
		switch {
		case rt[0] == '#':
			note = string(bytes.TrimSpace(rt[1:]))
		case bytes.HasPrefix(rest, []byte("  ")) || bytes.HasPrefix(rest, []byte(" *")):
			name = string(rest[2:])
			if escaped {
				name = unescapeName(name)
			}
		case rest[0] == '\t':
			name = string(rest[1:])
		default:
			// One space inside: a hash with a space in it, most likely.
			_, err := hashkind.ParseRef(string(t), c.opt.Kind)
			if err != nil {
				return err.Error()
			}
			return "unexpected text after the hash (want HASH, HASH # NOTE or HASH  NAME)"
		}
	}
	if bytes.IndexByte(tok, ':') < 0 {
		h, err := hashkind.ParseBytes(tok, c.opt.Kind)
		if err != nil {
			return err.Error()
		}
		c.add(&Entry{Hash: h, Name: name, Note: note, Size: -1, Pos: pos})
		return ""
	}
	ref, err := hashkind.ParseRef(string(tok), c.opt.Kind)
	if err != nil {
		return err.Error()
	}
	if name == "" {
		name = ref.Name
	}
	c.addRef(ref, Entry{Name: name, Note: note, Size: ref.Size, Pos: pos})
	return ""
}

// addRef adds one entry for each hash of ref, with e's other fields.
func (c *collector) addRef(ref hashkind.Ref, e Entry) {
	if ref.AICH != "" {
		e.Extra = map[string]string{"aich": ref.AICH}
	}
	for i, h := range ref.Hashes {
		e.Hash = h
		if i > 0 && e.Extra != nil {
			e.Extra = map[string]string{"aich": ref.AICH}
		}
		c.add(&e)
	}
}

// cutComment splits "LINK # note" at a '#' that follows white space.
func cutComment(t []byte) (body []byte, note string) {
	for i := 1; i < len(t); i++ {
		if t[i] == '#' && isSpace(t[i-1]) {
			return bytes.TrimSpace(t[:i]), string(bytes.TrimSpace(t[i+1:]))
		}
	}
	return t, ""
}

func (c *collector) magnetLine(t []byte, pos Pos) string {
	if !hasPrefixFold(t, "magnet:") {
		return fmt.Sprintf("not a magnet link: %s", quoteCut(t))
	}
	body, note := cutComment(t)
	ref, err := hashkind.ParseRef(string(body), c.opt.Kind)
	if err != nil {
		return err.Error()
	}
	c.addRef(ref, Entry{Name: ref.Name, Size: ref.Size, Note: note, Pos: pos})
	return ""
}

func (c *collector) ed2kLine(t []byte, pos Pos) string {
	if !hasPrefixFold(t, "ed2k://") {
		return fmt.Sprintf("not an ed2k link: %s", quoteCut(t))
	}
	// Names may hold spaces and '#': a comment only follows the closing |/.
	body, note := t, ""
	if i := bytes.LastIndex(t, []byte("|/")); i >= 0 {
		if after := bytes.TrimSpace(t[i+2:]); len(after) > 0 && after[0] == '#' {
			body, note = t[:i+2], string(bytes.TrimSpace(after[1:]))
		}
	}
	ref, err := hashkind.ParseRef(string(body), c.opt.Kind)
	if err != nil {
		return err.Error()
	}
	c.addRef(ref, Entry{Name: ref.Name, Size: ref.Size, Note: note, Pos: pos})
	return ""
}

// bsdLine reads "TAG (NAME) = HASH", where TAG names a kind (MD5, SHA1,
// SHA256, TTH, ED2K, ...; rhash pads it with spaces).
func bsdLine(t []byte) (kind hashkind.Kind, name string, value []byte, ok bool) {
	if bytes.IndexByte(t, '(') < 0 { // the common case, quickly
		return hashkind.Unknown, "", nil, false
	}
	open := bytes.Index(t, []byte(" ("))
	end := bytes.LastIndex(t, []byte(") = "))
	if open <= 0 || end < open {
		return hashkind.Unknown, "", nil, false
	}
	tag := bytes.TrimSpace(t[:open])
	if bytes.ContainsAny(tag, " \t") {
		return hashkind.Unknown, "", nil, false
	}
	k, err := hashkind.ParseKind(string(tag))
	if err != nil {
		return hashkind.Unknown, "", nil, false
	}
	return k, string(t[open+2 : end]), t[end+4:], true
}

// unescapeName undoes coreutils' escaping of a file name: "\\n" is a line
// feed, "\\\\" a backslash.
func unescapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
