package watchlist

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// colRole is what a CSV column holds.
type colRole uint8

const (
	colExtra    colRole = iota // kept in Entry.Extra under its header
	colHash                    // a hash of the kind the kind column, --kind or its form says
	colKindHash                // a hash of the kind its header names (md5, sha1, ...)
	colKind
	colCategory
	colSeverity
	colNote
	colName
	colSize
	colSeries
	colVictim
	colOffender
)

// extraPrefix marks, in a header WriteCSV writes, an Extra key that would
// otherwise read as a column Vigil interprets.
const extraPrefix = "extra."

// columnNames maps header names, lower-cased and without spaces,
// underscores, hyphens and dots, to their roles. Hash kinds are recognised
// separately, by hashkind.ParseKind.
var columnNames = map[string]colRole{
	"hash": colHash, "value": colHash, "digest": colHash, "checksum": colHash, "hashvalue": colHash,
	"kind": colKind, "type": colKind, "hashtype": colKind, "hashkind": colKind, "algorithm": colKind, "algo": colKind, "hashname": colKind,
	"category": colCategory, "cat": colCategory, "categorie": colCategory, "class": colCategory,
	"severity": colSeverity, "sev": colSeverity,
	"note": colNote, "notes": colNote, "comment": colNote, "comments": colNote, "description": colNote,
	"name": colName, "filename": colName, "file": colName,
	"size": colSize, "filesize": colSize, "bytes": colSize, "length": colSize, "mediasize": colSize,
	"series":             colSeries,
	"victimidentified":   colVictim,
	"offenderidentified": colOffender,
}

func normalizeHeader(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-', '.':
			return -1
		}
		return r
	}, s)
}

// classifyColumn says what a column holds from its header.
func classifyColumn(header string) (colRole, hashkind.Kind) {
	h := strings.TrimSpace(header)
	if hasPrefixFold([]byte(h), extraPrefix) {
		return colExtra, hashkind.Unknown
	}
	n := normalizeHeader(h)
	if r, ok := columnNames[n]; ok {
		return r, hashkind.Unknown
	}
	for _, cand := range []string{strings.ToLower(h), n, strings.TrimSuffix(n, "hash"), strings.TrimSuffix(n, "sum")} {
		if cand == "" {
			continue
		}
		if k, err := hashkind.ParseKind(cand); err == nil {
			return colKindHash, k
		}
	}
	return colExtra, hashkind.Unknown
}

type csvCol struct {
	role colRole
	kind hashkind.Kind
	name string // header as written
}

// csvColumns reads a header row.
func csvColumns(fields []string) ([]csvCol, error) {
	cols := make([]csvCol, len(fields))
	seen := make(map[string]int)
	hashes := 0
	for i, f := range fields {
		r, k := classifyColumn(f)
		if strings.TrimSpace(f) == "" {
			return nil, fmt.Errorf("column %d has no name", i+1)
		}
		name := f
		if t := strings.TrimLeft(f, " \t"); r == colExtra && hasPrefixFold([]byte(t), extraPrefix) {
			name = t[len(extraPrefix):]
		}
		key := "extra:" + name
		switch r {
		case colKindHash:
			key = "hash:" + k.String()
			hashes++
		case colHash:
			key = "hash"
			hashes++
		case colExtra:
		default:
			key = strconv.Itoa(int(r))
		}
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("columns %d (%q) and %d (%q) hold the same thing", j+1, fields[j], i+1, f)
		}
		seen[key] = i
		cols[i] = csvCol{role: r, kind: k, name: name}
	}
	if hashes == 0 {
		return nil, fmt.Errorf("CSV header has no hash column (want one of hash, md5, sha1, sha256, ed2k, tth, btih, btih2, btv2); it reads %s", quoteCut([]byte(strings.Join(fields, ","))))
	}
	return cols, nil
}

// sniffDelimiter picks the header's separator: the one of comma, semicolon
// (spreadsheets in much of Europe) and tab that occurs most.
func sniffDelimiter(header []byte) byte {
	best, n := byte(','), 0
	for _, d := range []byte{',', ';', '\t'} {
		if c := bytes.Count(header, []byte{d}); c > n {
			best, n = d, c
		}
	}
	return best
}

// isCSVHeader reports whether a line reads as a CSV header naming a hash
// column: "hash,category", "md5;sha1;name", or a single column "sha1".
func isCSVHeader(t []byte) bool {
	fields, open, err := splitRecord(t, sniffDelimiter(t), nil)
	if err != nil || open {
		return false
	}
	if len(fields) == 1 {
		r, _ := classifyColumn(fields[0])
		return r == colHash || r == colKindHash
	}
	_, err = csvColumns(fields)
	return err == nil
}

var errQuote = errors.New("extraneous character after a closing quote")

// splitRecord splits one record into fields (RFC 4180 quoting, fields
// trimmed of surrounding spaces). open reports a quoted field that the line
// does not close: the record goes on on the next line.
func splitRecord(line []byte, delim byte, out []string) (fields []string, open bool, err error) {
	fields = out[:0]
	var b []byte
	for i := 0; ; {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' && delim != '\t') {
			i++
		}
		if i < len(line) && line[i] == '"' {
			b = b[:0]
			i++
			closed := false
			for i < len(line) {
				c := line[i]
				i++
				if c != '"' {
					b = append(b, c)
					continue
				}
				if i < len(line) && line[i] == '"' {
					b = append(b, '"')
					i++
					continue
				}
				closed = true
				break
			}
			if !closed {
				return fields, true, nil
			}
			for i < len(line) && line[i] != delim && (line[i] == ' ' || line[i] == '\t') {
				i++
			}
			if i < len(line) && line[i] != delim {
				return fields, false, errQuote
			}
			fields = append(fields, string(b))
		} else {
			j := bytes.IndexByte(line[i:], delim)
			end := len(line)
			if j >= 0 {
				end = i + j
			}
			fields = append(fields, string(bytes.TrimSpace(line[i:end])))
			i = end
		}
		if i >= len(line) {
			return fields, false, nil
		}
		i++ // the delimiter
		if i == len(line) {
			return append(fields, ""), false, nil
		}
	}
}

// parseCSV reads a CSV list: a header row, then one file a row. hashdeep's
// output (a "%%%% HASHDEEP-1.0" line, a "%%%% size,md5,..." header and "##"
// comments) is CSV too.
func parseCSV(br *bufio.Reader, c *collector) error {
	lr := &lineReader{br: br, max: c.opt.MaxLineBytes}
	var (
		cols   []csvCol
		delim  byte
		fields []string
	)
	for cols == nil {
		line, tooLong, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return c.readErr(lr.line+1, err)
		}
		if tooLong {
			return wrapf(ErrMalformed, "%s line %d: the CSV header is longer than %d bytes", c.opt.File, lr.line, c.opt.MaxLineBytes)
		}
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' || hasPrefixFold(t, "%%%% HASHDEEP") {
			continue
		}
		if bytes.HasPrefix(t, []byte("%%%% ")) {
			t = t[5:]
		}
		pos := Pos{File: c.opt.File, Line: lr.line}
		if r := notText(t); r != "" {
			if err := c.wrongFormat(FormatCSV, pos); err != nil {
				return err
			}
			return wrapf(ErrMalformed, "%s line %d: the CSV header is %s", c.opt.File, lr.line, r)
		}
		delim = sniffDelimiter(t)
		var open bool
		fields, open, err = splitRecord(t, delim, nil)
		if err == nil && open {
			err = errors.New("a quoted header field is not closed")
		}
		if err == nil {
			cols, err = csvColumns(fields)
		}
		if err != nil {
			if werr := c.wrongFormat(FormatCSV, pos); werr != nil {
				return werr
			}
			return wrapf(ErrMalformed, "%s line %d: %v", c.opt.File, lr.line, err)
		}
	}
	var rec []byte
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
			continue
		}
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		if r := notText(t); r != "" {
			c.reject(pos, r)
			continue
		}
		var open bool
		fields, open, err = splitRecord(t, delim, fields)
		if open {
			// A quoted field with line breaks: gather the lines of the record.
			rec = append(rec[:0], line...)
			for open && err == nil {
				var more []byte
				more, tooLong, err = lr.next()
				if err == io.EOF {
					c.reject(pos, "a quoted field is not closed before the end of the file")
					return nil
				}
				if err != nil {
					return c.readErr(lr.line+1, err)
				}
				if tooLong || len(rec)+1+len(more) > c.opt.MaxLineBytes {
					err = fmt.Errorf("record is longer than %d bytes", c.opt.MaxLineBytes)
					break
				}
				rec = append(append(rec, '\n'), more...)
				fields, open, err = splitRecord(bytes.TrimSpace(rec), delim, fields)
			}
		}
		if err != nil {
			c.reject(pos, err.Error())
			continue
		}
		if r := c.csvRow(cols, fields, pos); r != "" {
			c.reject(pos, r)
		}
	}
}

// csvRow reads one row; it returns why the row is refused, or "".
func (c *collector) csvRow(cols []csvCol, fields []string, pos Pos) string {
	if len(fields) != len(cols) {
		return fmt.Sprintf("row has %d fields, the header %d", len(fields), len(cols))
	}
	e := Entry{Size: -1, Pos: pos}
	kind := c.opt.Kind
	for i, col := range cols {
		v := fields[i]
		if v == "" {
			continue
		}
		switch col.role {
		case colKind:
			k, err := hashkind.ParseKind(v)
			if err != nil {
				return fmt.Sprintf("column %q: %v", col.name, err)
			}
			kind = k
		case colCategory:
			e.Category = v
		case colSeverity:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 5 {
				return fmt.Sprintf("column %q: severity %q is not 0 to 5", col.name, v)
			}
			e.Severity = n
		case colNote:
			e.Note = v
		case colName:
			e.Name = v
		case colSize:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Sprintf("column %q: size %q is not a number of bytes", col.name, v)
			}
			e.Size = n
		case colSeries:
			e.Series = v
		case colVictim, colOffender:
			b, ok := parseBool(v)
			if !ok {
				return fmt.Sprintf("column %q: %q is not true or false", col.name, v)
			}
			if col.role == colVictim {
				e.VictimIdentified = &b
			} else {
				e.OffenderIdentified = &b
			}
		case colExtra:
			if e.Extra == nil {
				e.Extra = make(map[string]string)
			}
			e.Extra[col.name] = v
		}
	}
	var hashes []hashkind.Hash
	for i, col := range cols {
		v := fields[i]
		if v == "" {
			continue
		}
		switch col.role {
		case colKindHash:
			h, err := hashkind.Parse(v, col.kind)
			if err != nil {
				return fmt.Sprintf("column %q: %v", col.name, err)
			}
			hashes = append(hashes, h)
		case colHash:
			ref, err := hashkind.ParseRef(v, kind)
			if err != nil {
				return fmt.Sprintf("column %q: %v", col.name, err)
			}
			hashes = append(hashes, ref.Hashes...)
			if e.Name == "" {
				e.Name = ref.Name
			}
			if e.Size < 0 {
				e.Size = ref.Size
			}
		}
	}
	if len(hashes) == 0 {
		return "no hash in this row"
	}
	for i, h := range hashes {
		e.Hash = h
		if i > 0 && e.Extra != nil {
			e.Extra = maps.Clone(e.Extra) // entries must not share a map
		}
		c.add(&e)
	}
	return ""
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "y", "1", "t":
		return true, true
	case "false", "no", "n", "0", "f":
		return false, true
	}
	return false, false
}
