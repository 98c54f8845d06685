package watchlist

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// csvHeader is the fixed part of the header WriteCSV writes.
var csvHeader = []string{"hash", "kind", "category", "severity", "note", "name", "size", "series", "victim_identified", "offender_identified"}

// WriteCSV writes entries as CSV that Parse reads back to the same entries:
// the header hash, kind, category, severity, note, name, size, series,
// victim_identified, offender_identified, then the Extra keys of all
// entries, sorted. Hashes are in their customary form (hashkind's String)
// with their kind beside them; unknown sizes, unset severities and
// booleans are empty. An Extra key that Parse would read as one of its own
// columns (a "Comments" kept from VICS, say) is written as "extra.KEY".
func WriteCSV(w io.Writer, entries []Entry) error {
	keys := extraKeys(entries)
	header := slices.Clone(csvHeader)
	for _, k := range keys {
		if r, _ := classifyColumn(k); r != colExtra || strings.TrimSpace(k) == "" || hasPrefixFold([]byte(strings.TrimSpace(k)), extraPrefix) {
			k = extraPrefix + k
		}
		header = append(header, k)
	}
	cw := &csvWriter{w: bufio.NewWriter(w)}
	cw.write(header)
	row := make([]string, len(header))
	for i := range entries {
		e := &entries[i]
		if !e.Hash.Kind().Valid() {
			return fmt.Errorf("watchlist: entry %d has no hash", i)
		}
		row[0], row[1], row[2] = e.Hash.String(), e.Hash.Kind().String(), e.Category
		row[3] = ""
		if e.Severity != 0 {
			row[3] = strconv.Itoa(e.Severity)
		}
		row[4], row[5] = e.Note, e.Name
		row[6] = ""
		if e.Size >= 0 {
			row[6] = strconv.FormatInt(e.Size, 10)
		}
		row[7], row[8], row[9] = e.Series, boolText(e.VictimIdentified), boolText(e.OffenderIdentified)
		for j, k := range keys {
			row[len(csvHeader)+j] = e.Extra[k]
		}
		cw.write(row)
	}
	return cw.w.Flush()
}

// csvWriter writes RFC 4180 CSV, quoting also fields with surrounding
// white space, which Parse would otherwise trim.
type csvWriter struct{ w *bufio.Writer }

func (cw *csvWriter) write(fields []string) {
	for i, f := range fields {
		if i > 0 {
			cw.w.WriteByte(',')
		}
		if f != "" && (strings.ContainsAny(f, ",\"\r\n") || strings.TrimSpace(f) != f) {
			cw.w.WriteByte('"')
			cw.w.WriteString(strings.ReplaceAll(f, `"`, `""`))
			cw.w.WriteByte('"')
			continue
		}
		cw.w.WriteString(f)
	}
	cw.w.WriteByte('\n')
}

func extraKeys(entries []Entry) []string {
	set := make(map[string]bool)
	for i := range entries {
		for k := range entries[i].Extra {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func boolText(b *bool) string {
	switch {
	case b == nil:
		return ""
	case *b:
		return "true"
	}
	return "false"
}

// VICSOptions says how to write VICS JSON.
type VICSOptions struct {
	// Model is the regional data model named in @odata.context (US, UK,
	// CUSTOM, ...). Default "CUSTOM": Vigil's export is not a Project VIC
	// release, and category numbers keep whatever meaning the list gave them.
	Model string
}

// WriteVICS writes entries as a VICS 2.0 hash set:
//
//	{"@odata.context":"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/CUSTOM/$metadata#Media",
//	 "value":[
//	 {"MediaID":1,"Category":1,"MD5":"…","SHA1":"…","MediaSize":…},
//	 …]}
//
// one Media record a line. Entries that came from one Media record (they
// share Extra's MediaID and every other field) are written as one record
// again, with its MD5 and SHA1; every other entry is a record of its own. md5
// and sha1 are the record's MD5 and SHA1; other kinds (sha256, ed2k, tth,
// btih, btih2, btv2) go in AlternativeHashes as {"HashName","HashValue"},
// the model's place for hashes beyond MD5 and SHA1. Category is written as a
// number when it is one; Note is Comments; Name is MediaFiles[0].FileName
// (and FileName, when a kept MediaFiles names another file first); Extra
// fields are written back as they were read (JSON text as JSON, other text
// as strings). Severity is not written: VICS has none, and Parse derives it
// from the category again.
func WriteVICS(w io.Writer, entries []Entry, opt VICSOptions) error {
	model := opt.Model
	if model == "" {
		model = "CUSTOM"
	}
	if strings.ContainsAny(model, "/\"\\ ") {
		return fmt.Errorf("watchlist: VICS model name %q", model)
	}
	for i := range entries {
		if !entries[i].Hash.Kind().Valid() {
			return fmt.Errorf("watchlist: entry %d has no hash", i)
		}
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `{"@odata.context":"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/%s/$metadata#Media","value":[`, model)
	for i, g := range groupMedia(entries) {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
		if err := writeMedia(bw, entries, g); err != nil {
			return err
		}
	}
	bw.WriteString("\n]}\n")
	return bw.Flush()
}

// mediaGroup is the entries (indexes) written as one Media record.
type mediaGroup struct {
	members []int
	kinds   map[hashkind.Kind]bool
}

// groupMedia puts entries that share a MediaID, and all else but the hash,
// into one record; a record holds at most one hash of each kind.
func groupMedia(entries []Entry) []*mediaGroup {
	var groups []*mediaGroup
	byID := make(map[string][]*mediaGroup)
	for i := range entries {
		e := &entries[i]
		id := e.Extra["MediaID"]
		var g *mediaGroup
		if id != "" {
			for _, cand := range byID[id] {
				if !cand.kinds[e.Hash.Kind()] && sameMedia(&entries[cand.members[0]], e) {
					g = cand
					break
				}
			}
		}
		if g == nil {
			g = &mediaGroup{kinds: make(map[hashkind.Kind]bool)}
			groups = append(groups, g)
			if id != "" {
				byID[id] = append(byID[id], g)
			}
		}
		g.members = append(g.members, i)
		g.kinds[e.Hash.Kind()] = true
	}
	return groups
}

func sameMedia(a, b *Entry) bool {
	return a.Category == b.Category && a.Note == b.Note && a.Name == b.Name && a.Size == b.Size &&
		a.Series == b.Series && sameBool(a.VictimIdentified, b.VictimIdentified) &&
		sameBool(a.OffenderIdentified, b.OffenderIdentified) && maps.Equal(a.Extra, b.Extra)
}

func sameBool(a, b *bool) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

// jsonObject writes the members of one JSON object in order, each key once.
type jsonObject struct {
	w    *bufio.Writer
	seen map[string]bool
	err  error
}

func (o *jsonObject) raw(key string, val []byte) {
	lk := strings.ToLower(key)
	if o.seen[lk] || o.err != nil {
		return
	}
	if len(o.seen) > 0 {
		o.w.WriteByte(',')
	}
	o.seen[lk] = true
	k, _ := json.Marshal(key)
	o.w.Write(k)
	o.w.WriteByte(':')
	o.w.Write(val)
}

func (o *jsonObject) value(key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		o.err = err
		return
	}
	o.raw(key, b)
}

// extraJSON is how an Extra value is written: JSON text that is not a
// string as itself (Parse keeps such values as compact JSON), anything else
// as a JSON string (Parse keeps strings unquoted).
func extraJSON(s string) []byte {
	t := []byte(s)
	if len(t) > 0 && t[0] != '"' && json.Valid(t) {
		var b bytes.Buffer
		if json.Compact(&b, t) == nil && b.String() == s {
			return t
		}
	}
	b, _ := json.Marshal(s)
	return b
}

type altHash struct {
	HashName  string
	HashValue string
}

func writeMedia(bw *bufio.Writer, entries []Entry, g *mediaGroup) error {
	first := &entries[g.members[0]]
	o := &jsonObject{w: bw, seen: make(map[string]bool)}
	bw.WriteByte('{')
	if id, ok := first.Extra["MediaID"]; ok {
		o.raw("MediaID", extraJSON(id))
	}
	if c := first.Category; c != "" {
		if n, err := strconv.Atoi(c); err == nil && strconv.Itoa(n) == c {
			o.raw("Category", []byte(c))
		} else {
			o.value("Category", c)
		}
	}
	// Alternative hashes already kept (with their annotations) are not
	// written twice.
	kept := make(map[hashkind.Hash]bool)
	var keptAlt []json.RawMessage
	if s, ok := first.Extra["AlternativeHashes"]; ok {
		if hs, _, reason := alternativeHashes(json.RawMessage(s)); reason == "" {
			for _, h := range hs {
				kept[h] = true
			}
		}
		if json.Unmarshal([]byte(s), &keptAlt) != nil {
			keptAlt = nil
		}
	}
	var alts []any
	for _, m := range g.members {
		h := entries[m].Hash
		switch h.Kind() {
		case hashkind.MD5:
			o.value("MD5", h.String())
		case hashkind.SHA1:
			o.value("SHA1", h.String())
		default:
			if !kept[h] {
				alts = append(alts, altHash{HashName: strings.ToUpper(h.Kind().String()), HashValue: h.String()})
			}
		}
	}
	if len(alts) > 0 || keptAlt != nil {
		all := make([]any, 0, len(keptAlt)+len(alts))
		for _, k := range keptAlt {
			all = append(all, k)
		}
		o.value("AlternativeHashes", append(all, alts...))
	}
	if first.Size >= 0 {
		o.raw("MediaSize", []byte(strconv.FormatInt(first.Size, 10)))
	}
	if first.Series != "" {
		o.value("Series", first.Series)
	}
	if first.VictimIdentified != nil {
		o.value("VictimIdentified", *first.VictimIdentified)
	}
	if first.OffenderIdentified != nil {
		o.value("OffenderIdentified", *first.OffenderIdentified)
	}
	if first.Note != "" {
		o.value("Comments", first.Note)
	}
	if mf, ok := first.Extra["MediaFiles"]; ok {
		var files []struct{ FileName string }
		named := ""
		if json.Unmarshal([]byte(mf), &files) == nil && len(files) > 0 {
			named = files[0].FileName
		}
		if first.Name != named {
			o.value("FileName", first.Name)
		}
		o.raw("MediaFiles", extraJSON(mf))
	} else if first.Name != "" {
		o.value("MediaFiles", []struct{ FileName string }{{first.Name}})
	}
	for _, k := range slices.Sorted(maps.Keys(first.Extra)) {
		v := first.Extra[k]
		if vicsEscaped(k, v) {
			o.raw(extraPrefix+k, extraJSON(v))
			continue
		}
		o.raw(k, extraJSON(v))
	}
	bw.WriteByte('}')
	return o.err
}

// vicsEscaped reports whether an Extra field must be written as
// "extra.KEY": Parse would read it under its own name as one of the fields
// it interprets (a CSV column "md5" that is not a hash, say), or it is an
// AlternativeHashes that is not the array VICS has there.
func vicsEscaped(key, val string) bool {
	lk := strings.ToLower(key)
	switch lk {
	case "mediafiles", "mediaid":
		return false
	case "alternativehashes":
		var items []json.RawMessage
		return json.Unmarshal([]byte(val), &items) != nil
	case "category", "mediasize", "series", "victimidentified", "offenderidentified", "comments", "name", "filename",
		"media": // a record with "Media" reads as a case
		return true
	}
	_, hash := vicsHashFields[lk]
	return hash || hasPrefixFold([]byte(key), extraPrefix)
}
