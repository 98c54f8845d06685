package watchlist

// Project VIC's VICS data model, as Vigil reads it.
//
// A VICS file is OData JSON. Version 1.x declares itself with
// "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Cases";
// version 2.0 with "@odata.context":
// "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"
// (the path segment after 2.0.xml names the regional model: US, UK, CUSTOM,
// ...). Its "value" array holds either cases, each with a "Media" array
// (a case export, "#Cases"), or Media records directly (a hash set as
// national portals distribute it, "#Media"). Both shapes are read in both
// versions; a top-level array of either is accepted too.
//
// A Media record carries the file's hashes, "MD5" and "SHA1" (and, in some
// exports, "SHA256"), plus 1.x's "AlternativeHashes" array of
// {"HashName": "SHA1", "HashValue": "..."}; its "Category" (a number in the
// regional model's list; null when uncategorised), "MediaSize", "Series",
// "VictimIdentified", "OffenderIdentified", "Comments", the file names in
// "MediaFiles" (2.0) or "Name"/"FileName" (1.x), and much else (MediaID,
// Exifs, PhotoDNA, IsDistributed, Tags, OData annotations) that Vigil does
// not interpret and keeps in Entry.Extra. Case-level fields (CaseID,
// CaseNumber, Agency, ...) describe the submission, not a file, and are not
// kept.

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

var schemaVersionRE = regexp.MustCompile(`DataModels/(\d+(?:\.\d+)*)\.xml`)

// vicsReader walks a VICS document with a streaming decoder over the whole
// file held in memory, so that any offset can be turned into a line.
type vicsReader struct {
	c    *collector
	data []byte
	dec  *json.Decoder
	// line counting: lines up to lineOff
	lineOff, lineNo int
	sawMedia        bool
}

// lineAt is the 1-based line of byte offset off. Offsets are asked in
// increasing order, mostly, so counting goes on from the last answer.
func (v *vicsReader) lineAt(off int64) int {
	o := int(min(max(off, 0), int64(len(v.data))))
	if o < v.lineOff {
		v.lineOff, v.lineNo = 0, 0
	}
	v.lineNo += bytes.Count(v.data[v.lineOff:o], []byte{'\n'})
	v.lineOff = o
	return v.lineNo + 1
}

// nextOffset is where the next value starts: past white space and commas.
func (v *vicsReader) nextOffset() int64 {
	o := v.dec.InputOffset()
	for o < int64(len(v.data)) {
		switch v.data[o] {
		case ' ', '\t', '\r', '\n', ',', ':':
			o++
			continue
		}
		break
	}
	return o
}

// fail turns a decoder error at path into the error Parse returns.
func (v *vicsReader) fail(path string, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return wrapf(ErrMalformed, "%s line %d, %s: JSON syntax error: %v", v.c.opt.File, v.lineAt(se.Offset), path, err)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return wrapf(ErrMalformed, "%s line %d, %s: the JSON ends early (truncated file?)", v.c.opt.File, v.lineAt(int64(len(v.data))), path)
	}
	return wrapf(ErrMalformed, "%s line %d, %s: %v", v.c.opt.File, v.lineAt(v.dec.InputOffset()), path, err)
}

func (v *vicsReader) structure(path, format string, args ...any) error {
	return wrapf(ErrMalformed, "%s line %d, %s: %s", v.c.opt.File, v.lineAt(v.nextOffset()), path, fmt.Sprintf(format, args...))
}

func parseVICS(br *bufio.Reader, c *collector) error {
	data, err := io.ReadAll(br)
	if err != nil {
		return fmt.Errorf("%s: reading: %w", c.opt.File, err)
	}
	v := &vicsReader{c: c, data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	v.dec.UseNumber()
	first := bytes.TrimLeft(data, " \t\r\n")
	if len(first) == 0 {
		return nil // empty: no entries
	}
	if first[0] != '{' && first[0] != '[' {
		pos := Pos{File: c.opt.File, Line: v.lineAt(int64(len(data) - len(first)))}
		if err := c.wrongFormat(FormatVICS, pos); err != nil {
			return err
		}
		end := bytes.IndexByte(first, '\n')
		if end < 0 {
			end = len(first)
		}
		return wrapf(ErrFormat, "%s line %d: not VICS JSON: it starts with %s (want '{')", c.opt.File, pos.Line, quoteCut(bytes.TrimSpace(first[:end])))
	}
	tok, err := v.dec.Token()
	if err != nil {
		return v.fail("$", err)
	}
	if tok == json.Delim('[') {
		if err := v.elements("$"); err != nil {
			return err
		}
	} else {
		sawValue := false
		for v.dec.More() {
			kt, err := v.dec.Token()
			if err != nil {
				return v.fail("$", err)
			}
			key, _ := kt.(string)
			path := "$." + key
			switch strings.ToLower(key) {
			case "value":
				sawValue = true
				t, err := v.dec.Token()
				if err != nil {
					return v.fail(path, err)
				}
				if t != json.Delim('[') {
					return v.structure(path, "want an array of cases or media, got %s", tokenKind(t))
				}
				if err := v.elements(path); err != nil {
					return err
				}
			case "odata.metadata", "@odata.context":
				var s any
				if err := v.dec.Decode(&s); err != nil {
					return v.fail(path, err)
				}
				if str, ok := s.(string); ok {
					if m := schemaVersionRE.FindStringSubmatch(str); m != nil {
						c.res.SchemaVersion = m[1]
					}
				}
			default:
				var skip json.RawMessage
				if err := v.dec.Decode(&skip); err != nil {
					return v.fail(path, err)
				}
			}
		}
		if _, err := v.dec.Token(); err != nil {
			return v.fail("$", err)
		}
		if !sawValue {
			return v.structure("$", "no \"value\" array: not a VICS document")
		}
	}
	// Nothing may follow the document but white space.
	if _, err := v.dec.Token(); err != io.EOF {
		if err == nil {
			return v.structure("$", "more JSON after the end of the document")
		}
		return v.fail("$", err)
	}
	return nil
}

func tokenKind(t json.Token) string {
	switch t := t.(type) {
	case json.Delim:
		return "'" + t.String() + "'"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", t)
}

// elements reads the members of a value array (after its '['): cases with
// a Media array, or Media records.
func (v *vicsReader) elements(path string) error {
	for i := 0; v.dec.More(); i++ {
		epath := fmt.Sprintf("%s[%d]", path, i)
		off := v.nextOffset()
		t, err := v.dec.Token()
		if err != nil {
			return v.fail(epath, err)
		}
		if t != json.Delim('{') {
			if d, ok := t.(json.Delim); ok && d == '[' {
				return v.structure(epath, "want a case or media object, got an array")
			}
			v.c.reject(Pos{File: v.c.opt.File, Line: v.lineAt(off), Path: epath}, fmt.Sprintf("want a case or media object, got %s", tokenKind(t)))
			continue
		}
		fields := make(map[string]json.RawMessage)
		isCase := false
		for v.dec.More() {
			kt, err := v.dec.Token()
			if err != nil {
				return v.fail(epath, err)
			}
			key, _ := kt.(string)
			if strings.EqualFold(key, "Media") {
				isCase = true
				if err := v.mediaArray(epath + "." + key); err != nil {
					return err
				}
				continue
			}
			var raw json.RawMessage
			if err := v.dec.Decode(&raw); err != nil {
				return v.fail(epath+"."+key, err)
			}
			fields[key] = raw
		}
		if _, err := v.dec.Token(); err != nil {
			return v.fail(epath, err)
		}
		if !isCase && !isEmptyCase(fields) {
			v.media(fields, Pos{File: v.c.opt.File, Line: v.lineAt(off), Path: epath})
		}
	}
	if _, err := v.dec.Token(); err != nil { // ']'
		return v.fail(path, err)
	}
	return nil
}

func (v *vicsReader) mediaArray(path string) error {
	t, err := v.dec.Token()
	if err != nil {
		return v.fail(path, err)
	}
	if t == nil {
		return nil // "Media": null, an empty case
	}
	if t != json.Delim('[') {
		return v.structure(path, "want an array of media, got %s", tokenKind(t))
	}
	for i := 0; v.dec.More(); i++ {
		mpath := fmt.Sprintf("%s[%d]", path, i)
		off := v.nextOffset()
		var raw json.RawMessage
		if err := v.dec.Decode(&raw); err != nil {
			return v.fail(mpath, err)
		}
		pos := Pos{File: v.c.opt.File, Line: v.lineAt(off), Path: mpath}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
			v.c.reject(pos, fmt.Sprintf("want a media object, got %s", jsonKind(raw)))
			continue
		}
		v.media(fields, pos)
	}
	if _, err := v.dec.Token(); err != nil {
		return v.fail(path, err)
	}
	return nil
}

// isEmptyCase reports whether an element without a Media array is a case
// with no media (it names a case and no hash), not a media record.
func isEmptyCase(fields map[string]json.RawMessage) bool {
	named := false
	for k := range fields {
		lk := strings.ToLower(k)
		if _, ok := vicsHashFields[lk]; ok || lk == "alternativehashes" {
			return false
		}
		if lk == "caseid" || lk == "casenumber" {
			named = true
		}
	}
	return named
}

func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// vicsHashFields are the Media fields that hold a hash, by kind.
var vicsHashFields = map[string]hashkind.Kind{"md5": hashkind.MD5, "sha1": hashkind.SHA1, "sha256": hashkind.SHA256}

// vicsCanonical is the model spelling of the fields WriteVICS looks up,
// by their lower-case name.
var vicsCanonical = map[string]string{"alternativehashes": "AlternativeHashes", "mediafiles": "MediaFiles", "mediaid": "MediaID"}

// media turns one Media record into entries, one for each hash. A record
// with any field rejected gives none: its entries would lack what the
// rejected field said.
func (v *vicsReader) media(fields map[string]json.RawMessage, pos Pos) {
	m := &mediaRecord{c: v.c, pos: pos, e: Entry{Size: -1, Pos: pos}}
	for _, key := range mediaKeys(fields) {
		m.field(key, fields[key])
	}
	if m.bad {
		return
	}
	if m.e.Name == "" && m.mediaFiles != nil {
		var files []struct{ FileName string }
		if json.Unmarshal(m.mediaFiles, &files) == nil && len(files) > 0 {
			m.e.Name = files[0].FileName
		}
	}
	if len(m.hashes) == 0 {
		v.c.reject(pos, "no MD5, SHA1, SHA256 or AlternativeHashes in this media record")
		return
	}
	for i, h := range m.hashes {
		m.e.Hash = h
		if i > 0 && m.e.Extra != nil {
			m.e.Extra = maps.Clone(m.e.Extra)
		}
		v.c.add(&m.e)
	}
}

// mediaKeys orders a Media record's fields: MD5, SHA1, SHA256 first, in
// that order; then the other fields by name, so that what a record gives
// does not depend on the order of its fields.
func mediaKeys(fields map[string]json.RawMessage) []string {
	return slices.SortedFunc(maps.Keys(fields), func(a, b string) int {
		ka, kb := vicsHashFields[strings.ToLower(a)], vicsHashFields[strings.ToLower(b)]
		if ka != kb {
			if ka == hashkind.Unknown || kb == hashkind.Unknown {
				return cmp.Compare(kb, ka) // a hash field (kind > 0) first
			}
			return cmp.Compare(ka, kb)
		}
		return strings.Compare(a, b)
	})
}

// mediaRecord is one Media record as its fields are read: the entry its
// hashes will share, the hashes (each once, in the order met), and
// whether a field was rejected.
type mediaRecord struct {
	c          *collector
	pos        Pos
	e          Entry
	hashes     []hashkind.Hash
	mediaFiles json.RawMessage
	bad        bool
}

// reject rejects the field key of the record, and so the record.
func (m *mediaRecord) reject(key, format string, args ...any) {
	p := m.pos
	p.Path += "." + key
	m.c.reject(p, fmt.Sprintf(format, args...))
	m.bad = true
}

func (m *mediaRecord) addHash(h hashkind.Hash) {
	if !slices.Contains(m.hashes, h) {
		m.hashes = append(m.hashes, h)
	}
}

// field reads one field of the record.
func (m *mediaRecord) field(key string, raw json.RawMessage) {
	lk := strings.ToLower(key)
	if ck, ok := vicsCanonical[lk]; ok {
		// WriteVICS looks these up by their model spelling.
		if _, taken := m.e.Extra[ck]; !taken {
			key = ck
		}
	}
	if k, ok := vicsHashFields[lk]; ok {
		m.hashField(key, k, raw)
		return
	}
	switch lk {
	case "alternativehashes":
		hs, keep, reason := alternativeHashes(raw)
		if reason != "" {
			m.reject(key, "%s", reason)
			return
		}
		for _, h := range hs {
			m.addHash(h)
		}
		if keep != nil {
			m.e.setExtra(key, keep)
		}
	case "category":
		s, ok := jsonScalar(raw)
		if !ok {
			m.reject(key, "want a category number or string, got %s", jsonKind(raw))
			return
		}
		m.e.Category = strings.TrimSpace(s)
	case "mediasize":
		m.size(key, raw)
	case "victimidentified", "offenderidentified":
		b, isNull, ok := jsonBool(raw)
		if !ok {
			m.reject(key, "want true or false, got %s", jsonKind(raw))
			return
		}
		if !isNull {
			if lk == "victimidentified" {
				m.e.VictimIdentified = &b
			} else {
				m.e.OffenderIdentified = &b
			}
		}
	default:
		m.text(key, lk, raw)
	}
}

// hashField reads an MD5, SHA1 or SHA256 field; null or blank is no hash.
func (m *mediaRecord) hashField(key string, k hashkind.Kind, raw json.RawMessage) {
	s, isNull, ok := jsonString(raw)
	if !ok {
		m.reject(key, "want a %s hash as a string, got %s", k, jsonKind(raw))
		return
	}
	if isNull || strings.TrimSpace(s) == "" {
		return
	}
	h, err := hashkind.Parse(s, k)
	if err != nil {
		m.reject(key, "%v", err)
		return
	}
	m.addHash(h)
}

// size reads MediaSize, a number of bytes as a number or a string; blank
// leaves the size unknown (-1).
func (m *mediaRecord) size(key string, raw json.RawMessage) {
	s, ok := jsonScalar(raw)
	if !ok {
		m.reject(key, "want a size in bytes, got %s", jsonKind(raw))
		return
	}
	if s = strings.TrimSpace(s); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			m.reject(key, "size %q is not a number of bytes", s)
			return
		}
		m.e.Size = n
	}
}

// text reads the fields that are never rejected: a value of an
// unexpected type is kept as an extra field rather than lost.
func (m *mediaRecord) text(key, lk string, raw json.RawMessage) {
	switch lk {
	case "series":
		if s, ok := jsonScalar(raw); ok {
			m.e.Series = s
		} else {
			m.e.setExtra(key, raw)
		}
	case "comments":
		if s, isNull, ok := jsonString(raw); ok {
			if !isNull {
				m.e.Note = s
			}
		} else {
			m.e.setExtra(key, raw)
		}
	case "name", "filename":
		if s, isNull, ok := jsonString(raw); ok {
			if !isNull && m.e.Name == "" {
				m.e.Name = s
			}
		} else {
			m.e.setExtra(key, raw)
		}
	case "mediafiles":
		m.mediaFiles = raw
		m.e.setExtra(key, raw)
	default:
		if hasPrefixFold([]byte(key), extraPrefix) {
			key = key[len(extraPrefix):] // see vicsEscaped
		}
		m.e.setExtra(key, raw)
	}
}

// setExtra keeps a field Vigil does not interpret: a JSON string as its
// text, any other value as compact JSON.
func (e *Entry) setExtra(key string, raw json.RawMessage) {
	if e.Extra == nil {
		e.Extra = make(map[string]string)
	}
	if s, isNull, ok := jsonString(raw); ok && !isNull {
		e.Extra[key] = s
		return
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		e.Extra[key] = b.String()
		return
	}
	e.Extra[key] = string(raw)
}

// jsonString reads a JSON string or null.
func jsonString(raw json.RawMessage) (s string, isNull, ok bool) {
	t := bytes.TrimSpace(raw)
	if bytes.Equal(t, []byte("null")) {
		return "", true, true
	}
	if len(t) == 0 || t[0] != '"' {
		return "", false, false
	}
	if err := json.Unmarshal(t, &s); err != nil {
		return "", false, false
	}
	return s, false, true
}

// jsonScalar reads a string, a number or null as text ("" for null).
func jsonScalar(raw json.RawMessage) (string, bool) {
	t := bytes.TrimSpace(raw)
	if s, _, ok := jsonString(t); ok {
		return s, true
	}
	if len(t) > 0 && (t[0] == '-' || '0' <= t[0] && t[0] <= '9') {
		return string(t), true
	}
	return "", false
}

// jsonBool reads true, false, "true", "false" or null.
func jsonBool(raw json.RawMessage) (b, isNull, ok bool) {
	t := bytes.TrimSpace(raw)
	switch string(t) {
	case "true", `"true"`, `"True"`, `"TRUE"`:
		return true, false, true
	case "false", `"false"`, `"False"`, `"FALSE"`:
		return false, false, true
	case "null":
		return false, true, true
	}
	return false, false, false
}

// alternativeHashes reads a 1.x AlternativeHashes array. Items whose
// HashName is a kind Vigil knows give hashes; the others are kept (keep,
// as JSON) so that nothing is lost.
func alternativeHashes(raw json.RawMessage) (hs []hashkind.Hash, keep json.RawMessage, reason string) {
	if _, isNull, _ := jsonString(raw); isNull {
		return nil, nil, ""
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, nil, fmt.Sprintf("want an array, got %s", jsonKind(raw))
	}
	var kept []json.RawMessage
	for i, it := range items {
		var alt struct {
			HashName  *string
			HashValue *string
		}
		if json.Unmarshal(it, &alt) != nil || alt.HashName == nil || alt.HashValue == nil {
			kept = append(kept, it)
			continue
		}
		k, err := hashkind.ParseKind(*alt.HashName)
		if err != nil {
			kept = append(kept, it)
			continue
		}
		h, err := hashkind.Parse(*alt.HashValue, k)
		if err != nil {
			return nil, nil, fmt.Sprintf("[%d]: %v", i, err)
		}
		hs = append(hs, h)
		var extra map[string]json.RawMessage
		if json.Unmarshal(it, &extra) == nil && len(extra) > 2 {
			// annotations beside the hash (MD5 back-reference, OData links)
			kept = append(kept, it)
		}
	}
	if len(kept) == 0 {
		return hs, nil, ""
	}
	b, _ := json.Marshal(kept)
	return hs, b, ""
}
