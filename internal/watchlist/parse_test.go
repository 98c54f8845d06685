package watchlist

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// synth returns n synthetic random bytes as hex: hashes of no real file.
func synth(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return hex.EncodeToString(b)
}

func newRand(t testing.TB) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(len(t.Name())), 7))
}

func parseString(in string, opt ParseOptions) (*Result, error) {
	if opt.File == "" {
		opt.File = "list.txt"
	}
	return Parse(strings.NewReader(in), opt)
}

func TestParseDetectsFormat(t *testing.T) {
	r := newRand(t)
	sha1 := synth(r, 20)
	tests := []struct {
		name string
		in   string
		want Format
	}{
		{"text", sha1 + "\n", FormatText},
		{"text-after-comments", "# list\n\n# more\n" + sha1 + "\n", FormatText},
		{"text-ambiguous-still-text", synth(r, 16) + "\n", FormatText},
		{"text-bom", "\ufeff" + sha1 + "\n", FormatText},
		{"vics-object", "\n  {\"value\":[]}", FormatVICS},
		{"vics-array", "[{\"MD5\":\"" + synth(r, 16) + "\"}]", FormatVICS},
		{"magnet", "magnet:?xt=urn:btih:" + sha1 + "\n", FormatMagnet},
		{"ed2k", "ed2k://|file|a.bin|1|" + synth(r, 16) + "|/\n", FormatED2K},
		{"csv-comma", "hash,category\n" + sha1 + ",1\n", FormatCSV},
		{"csv-semicolon", "MD5;SHA1;Name\n", FormatCSV},
		{"csv-tab", "name\tsha1\n", FormatCSV},
		{"csv-single-column", "sha1\n" + sha1 + "\n", FormatCSV},
		{"csv-hashdeep", "%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n", FormatCSV},
		{"empty", "", FormatText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect([]byte(tt.in))
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Detect = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseRejectsUndetectableInput(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		reason string
	}{
		{"binary-nul", "\x7fELF\x02\x01\x01\x00\x00\x00junk", "cannot detect format of list.txt: binary data (NUL byte at offset 7); give --format"},
		{"binary-invalid-utf8", "\xff\xd8\xff\xe0 jpeg-like junk", "binary data or not UTF-8 (invalid byte 0xff at offset 0)"},
		{"utf16", "\xff\xfeh\x00a\x00", "UTF-16 text (save it as UTF-8)"},
		{"prose", "\n\nthese are not hashes\nnor this\n", `line 3 ("these are not hashes") is not a hash, a magnet or ed2k link, a CSV header or JSON; give --format`},
		{"csv-without-hash-column", "name,size\nsynthetic-001.bin,1\n", `line 1 ("name,size") is not a hash`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := parseString(tt.in, ParseOptions{})
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", res)
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %q does not say %q", err, tt.reason)
			}
			if res != nil {
				t.Fatalf("a Result came with a format error")
			}
		})
	}
}

func TestParseRejectsWrongFormatNamed(t *testing.T) {
	r := newRand(t)
	csvIn := "hash,category\n" + synth(r, 20) + ",1\n"
	vicsIn := "{\"value\":[{\"MD5\":\"" + synth(r, 16) + "\"}]}"
	textIn := "# a list\n" + synth(r, 20) + "\n"
	tests := []struct {
		name   string
		in     string
		format Format
		reason string
	}{
		{"csv-as-vics", csvIn, FormatVICS, "list.txt line 1: this is not a vics list, it looks like csv (give --format csv, or leave --format out to detect it)"},
		{"vics-as-csv", vicsIn, FormatCSV, "list.txt line 1: this is not a csv list, it looks like vics"},
		{"csv-as-text", csvIn, FormatText, "list.txt line 1: this is not a text list, it looks like csv"},
		{"text-as-magnet", textIn, FormatMagnet, "list.txt line 2: this is not a magnet list, it looks like text"},
		{"text-as-ed2k", textIn, FormatED2K, "list.txt line 2: this is not a ed2k list, it looks like text"},
		{"text-as-vics", textIn, FormatVICS, "this is not a vics list, it looks like text"},
		{"junk-as-vics", "<html>", FormatVICS, `list.txt line 1: not VICS JSON: it starts with "<html>" (want '{')`},
		{"unknown-format", textIn, Format("xml"), `unknown format "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(tt.in, ParseOptions{Format: tt.format})
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %q does not say %q", err, tt.reason)
			}
		})
	}
}

func TestParseEmptyFileHasNoEntries(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n", "\ufeff"} {
		for _, f := range []Format{FormatAuto, FormatText, FormatCSV, FormatVICS, FormatMagnet, FormatED2K} {
			res, err := parseString(in, ParseOptions{Format: f, File: "empty.txt"})
			if f == FormatVICS && strings.HasPrefix(in, "#") {
				// A comment is not JSON: not an empty VICS document.
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("Parse(%q, vics) error = %v, want ErrFormat", in, err)
				}
				continue
			}
			if !errors.Is(err, ErrEmpty) {
				t.Fatalf("Parse(%q, %q) error = %v, want ErrEmpty", in, f, err)
			}
			if got, want := err.Error(), "empty.txt: no entries"; got != want {
				t.Fatalf("error %q, want %q", got, want)
			}
			if res == nil || len(res.Entries) != 0 {
				t.Fatalf("Result %+v", res)
			}
		}
	}
}

func TestParseRejectsOverLongLine(t *testing.T) {
	r := newRand(t)
	in := synth(r, 20) + "\n" + strings.Repeat("a", 200) + "\n" + synth(r, 20) + "\n"
	res, err := parseString(in, ParseOptions{Format: FormatText, MaxLineBytes: 100})
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v is not an *InvalidError", err)
	}
	if got, want := err.Error(), "list.txt: 1 invalid entry: line 2: line is longer than 100 bytes"; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
	if len(res.Entries) != 2 || res.Rejected[0].Line != 2 {
		t.Fatalf("entries %d, rejected %+v", len(res.Entries), res.Rejected)
	}
	// The default limit, 64 KiB, with a line of 100 KiB in CSV and magnet lists.
	long := strings.Repeat("x", 100<<10)
	for _, tt := range []struct {
		format Format
		in     string
	}{
		{FormatCSV, "hash,note\n" + synth(r, 20) + "," + long + "\n" + synth(r, 20) + ",short\n"},
		{FormatMagnet, "magnet:?xt=urn:btih:" + synth(r, 20) + "&dn=" + long + "\nmagnet:?xt=urn:btih:" + synth(r, 20) + "\n"},
	} {
		res, err := parseString(tt.in, ParseOptions{Format: tt.format, SkipInvalid: true})
		if err != nil {
			t.Fatalf("%s: %v", tt.format, err)
		}
		if len(res.Entries) != 1 || len(res.Rejected) != 1 || res.Rejected[0].Reason != "line is longer than 65536 bytes" {
			t.Fatalf("%s: entries %d, rejected %+v", tt.format, len(res.Entries), res.Rejected)
		}
	}
}

func TestParseCountsDuplicatesOnce(t *testing.T) {
	r := newRand(t)
	a, b := synth(r, 20), synth(r, 20)
	in := fmt.Sprintf("%s\n%s\n%s\nurn:sha1:%s\n%s\n", a, b, strings.ToUpper(a), a, b)
	res, err := parseString(in, ParseOptions{Category: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Entries), 2; got != want {
		t.Fatalf("%d entries, want %d", got, want)
	}
	if got, want := res.Duplicates, 3; got != want {
		t.Fatalf("%d duplicates, want %d", got, want)
	}
	if res.Entries[0].Pos.Line != 1 || res.Entries[1].Pos.Line != 2 {
		t.Fatalf("kept lines %d and %d, want the first occurrences 1 and 2", res.Entries[0].Pos.Line, res.Entries[1].Pos.Line)
	}
}

func TestParseRejectsSameHashWithTwoCategories(t *testing.T) {
	r := newRand(t)
	a, b := synth(r, 20), synth(r, 20)
	in := "hash,category\n" + a + ",1\n" + b + ",1\n" + a + ",2\n"
	res, err := parseString(in, ParseOptions{File: "two.csv"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not wrap ErrInvalid", err)
	}
	msg := err.Error()
	for _, want := range []string{"two.csv: 2 invalid entries", "line 2: hash " + a + ` has category "1" here but another at line 4`, "line 4: hash " + a + ` has category "2" here but "1" at line 2`} {
		if !strings.Contains(msg, want) {
			t.Fatalf("error %q does not say %q", msg, want)
		}
	}
	if len(res.Rejected) != 2 || res.Rejected[0].Line != 2 || res.Rejected[1].Line != 4 {
		t.Fatalf("rejected %+v", res.Rejected)
	}
	// Skipping drops both lines: neither category is to be trusted.
	res, err = parseString(in, ParseOptions{SkipInvalid: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || res.Entries[0].Hash.Hex() != b {
		t.Fatalf("entries %+v, want only %s", res.Entries, b)
	}
}

func TestParseRejectsTruncatedJSON(t *testing.T) {
	r := newRand(t)
	full := "{\n\"@odata.context\": \"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media\",\n\"value\": [\n{\"MD5\": \"" + synth(r, 16) + "\", \"Category\": 1},\n{\"MD5\": \"" + synth(r, 16) + "\", \"Category\": 2}\n]}\n"
	if _, err := parseString(full, ParseOptions{}); err != nil {
		t.Fatalf("the whole document: %v", err)
	}
	tests := []struct {
		cut    int // bytes kept
		reason string
	}{
		{strings.Index(full, "\"Category\": 2") + len("\"Category\": "), "list.txt line 5, $.value[1].Category: the JSON ends early (truncated file?)"},
		{strings.Index(full, "\"Category\": 2") + 5, "list.txt line 5, $.value[1]: the JSON ends early (truncated file?)"},
		{strings.Index(full, "]}"), "list.txt line 6, $.value: the JSON ends early (truncated file?)"},
		{3, "list.txt line 2, $: the JSON ends early"},
	}
	for _, tt := range tests {
		_, err := parseString(full[:tt.cut], ParseOptions{})
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut at %d: error %v does not wrap ErrMalformed", tt.cut, err)
		}
		if !strings.Contains(err.Error(), tt.reason) {
			t.Fatalf("cut at %d: error %q does not say %q", tt.cut, err, tt.reason)
		}
	}
}

func TestParseReportsJSONSyntaxErrorLine(t *testing.T) {
	r := newRand(t)
	in := "{\"value\": [\n{\"MD5\": \"" + synth(r, 16) + "\"},\n{\"MD5\": \"" + synth(r, 16) + "\",,}\n]}"
	_, err := parseString(in, ParseOptions{})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v", err)
	}
	if want := "list.txt line 3, $.value[1]: JSON syntax error: invalid character ','"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}

func TestParseRejectsAmbiguousLengthWithoutKind(t *testing.T) {
	r := newRand(t)
	md5 := synth(r, 16)
	for _, in := range []string{md5 + "\n", "hash\n" + md5 + "\n"} {
		res, err := parseString(in, ParseOptions{})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: error %v", in, err)
		}
		if !strings.Contains(err.Error(), "32 hex digits are md5 or ed2k: give --kind") {
			t.Fatalf("error %q does not ask for --kind", err)
		}
		if res.Rejected[0].Line != strings.Count(in, "\n") {
			t.Fatalf("rejected at line %d", res.Rejected[0].Line)
		}
		res, err = parseString(in, ParseOptions{Kind: hashkind.ED2K})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Entries[0].Hash.Kind(); got != hashkind.ED2K {
			t.Fatalf("kind %v, want ed2k", got)
		}
	}
	// A kind column settles it row by row.
	res, err := parseString("hash,kind\n"+md5+",md5\n"+synth(r, 16)+",ed2k\n", ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries[0].Hash.Kind() != hashkind.MD5 || res.Entries[1].Hash.Kind() != hashkind.ED2K {
		t.Fatalf("kinds %v, %v", res.Entries[0].Hash.Kind(), res.Entries[1].Hash.Kind())
	}
}

// TestParseNamesLineInEveryError checks that every rejection, in every
// format, carries the file and the line it stands on.
func TestParseNamesLineInEveryError(t *testing.T) {
	r := newRand(t)
	tests := []struct {
		format Format
		in     string
		lines  []int // lines of the rejections, in order
	}{
		{FormatText, "# c\n" + synth(r, 20) + "\nzz\n\n" + synth(r, 16) + "\nsha1:00\n\x00\n" + synth(r, 20) + " x\n", []int{3, 5, 6, 7, 8}},
		{FormatCSV, "md5,sha1,severity,size,victim_identified\n" + synth(r, 16) + ",,9,,\n,,,,\n" + synth(r, 16) + "," + synth(r, 16) + ",,,\n" + synth(r, 16) + ",,,-1,\n" + synth(r, 16) + ",,,,maybe\n" + synth(r, 16) + ",\n\"" + synth(r, 16) + "\"x,,,,\n\"open,,,,\n", []int{2, 3, 4, 5, 6, 7, 8, 9}},
		{FormatMagnet, "magnet:?xt=urn:btih:" + synth(r, 20) + "\nmagnet:?xt=urn:btih:00\nhttp://127.0.0.1/\nmagnet:?dn=x\n", []int{2, 3, 4}},
		{FormatED2K, "ed2k://|file|a|1|" + synth(r, 16) + "|/\ned2k://|server|127.0.0.1|4661|/\nmagnet:?xt=urn:btih:" + synth(r, 20) + "\ned2k://|file|a|x|" + synth(r, 16) + "|/\n", []int{2, 3, 4}},
		{FormatVICS, "{\"value\":[\n{\"MD5\":\"" + synth(r, 16) + "\"},\n{\"MD5\":\"00\"},\n{\"SHA1\":5},\n{\"Category\":1},\n\"x\",\n{\"CaseID\":\"c\",\"Media\":[\n{\"MD5\":\"" + synth(r, 16) + "\",\"MediaSize\":\"big\"}]}\n]}", []int{3, 4, 5, 6, 8}},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			res, err := parseString(tt.in, ParseOptions{Format: tt.format, File: "f"})
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v is not an *InvalidError", err)
			}
			var lines []int
			for _, rj := range res.Rejected {
				if rj.File != "f" || rj.Line == 0 || rj.Reason == "" {
					t.Fatalf("rejection without file, line or reason: %+v", rj)
				}
				lines = append(lines, rj.Line)
			}
			if fmt.Sprint(lines) != fmt.Sprint(tt.lines) {
				t.Fatalf("rejected lines %v, want %v: %+v", lines, tt.lines, res.Rejected)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("f: %d invalid entries: line %d", len(tt.lines), tt.lines[0])) {
				t.Fatalf("error %q", err)
			}
			if tt.format == FormatVICS && !strings.HasPrefix(res.Rejected[0].Path, "$.value[1]") {
				t.Fatalf("JSON rejection without path: %+v", res.Rejected[0])
			}
		})
	}
}

func TestParseSkipInvalidKeepsTheRest(t *testing.T) {
	r := newRand(t)
	good := synth(r, 20)
	res, err := parseString(good+"\nbad\n", ParseOptions{SkipInvalid: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || res.RejectedTotal != 1 || res.Rejected[0].Line != 2 {
		t.Fatalf("entries %d, rejected %+v", len(res.Entries), res.Rejected)
	}
	// Nothing valid at all is still an error, after the skipping.
	res, err = parseString(good[:10]+"\nbad\n", ParseOptions{SkipInvalid: true, Format: FormatText})
	if !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), "2 invalid entries skipped") {
		t.Fatalf("error %v", err)
	}
	if len(res.Rejected) != 2 {
		t.Fatalf("rejected %+v", res.Rejected)
	}
}

func TestInvalidErrorNamesFirstProblems(t *testing.T) {
	var b strings.Builder
	for range 8 {
		b.WriteString("nothex\n")
	}
	res, err := parseString(b.String(), ParseOptions{Format: FormatText})
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatal(err)
	}
	if ie.Total != 8 || len(ie.Problems) != 5 || len(res.Rejected) != 8 {
		t.Fatalf("total %d, problems %d, rejected %d", ie.Total, len(ie.Problems), len(res.Rejected))
	}
	if !strings.HasSuffix(err.Error(), "; and 3 more") || !strings.Contains(err.Error(), "line 5: ") || strings.Contains(err.Error(), "line 6: ") {
		t.Fatalf("error %q", err)
	}
}

func TestParseDerivesSeverityFromCategory(t *testing.T) {
	r := newRand(t)
	tests := []struct {
		category string
		severity string
		want     int
	}{
		{"1", "", 5}, {"2", "", 3}, {"3", "", 2}, {"0", "", 0}, {"4", "", 0}, {"5", "", 0},
		{"Category A", "", 5}, {"b", "", 4}, {"C", "", 3}, {"local", "", 0}, {"", "", 0},
		{"1", "2", 2}, // the list's own severity wins
	}
	var b strings.Builder
	b.WriteString("sha1,category,severity\n")
	for _, tt := range tests {
		fmt.Fprintf(&b, "%s,%s,%s\n", synth(r, 20), tt.category, tt.severity)
	}
	res, err := parseString(b.String(), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		if got := res.Entries[i].Severity; got != tt.want {
			t.Fatalf("category %q severity %q: got %d, want %d", tt.category, tt.severity, got, tt.want)
		}
	}
}

func TestParseAppliesDefaultCategory(t *testing.T) {
	r := newRand(t)
	in := "hash,category\n" + synth(r, 20) + ",\n" + synth(r, 20) + ",2\n"
	res, err := parseString(in, ParseOptions{Category: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries[0].Category != "1" || res.Entries[0].Severity != 5 || res.Entries[1].Category != "2" {
		t.Fatalf("entries %+v", res.Entries)
	}
}

func TestParseCSVHeaderErrors(t *testing.T) {
	tests := []struct {
		in     string
		reason string
	}{
		{"name,size\nx,1\n", "list.txt line 1: CSV header has no hash column"},
		{"md5,MD5\n", `columns 1 ("md5") and 2 ("MD5") hold the same thing`},
		{"hash,category,cat\n", `columns 2 ("category") and 3 ("cat") hold the same thing`},
		{"hash,,name\n", "column 2 has no name"},
		{"\"hash,name\n", "a quoted header field is not closed"},
	}
	for _, tt := range tests {
		_, err := parseString(tt.in, ParseOptions{Format: FormatCSV})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.reason) {
			t.Fatalf("Parse(%q) error %v, want %q", tt.in, err, tt.reason)
		}
	}
}

func TestParseReadsVICSVersions(t *testing.T) {
	r := newRand(t)
	md5, sha1 := synth(r, 16), synth(r, 20)
	tests := []struct {
		name, in, version string
	}{
		{"1.1", `{"odata.metadata":"http://github.com/ICMEC/ProjectVic/DataModels/1.1.xml#Cases","value":[{"Media":[{"MD5":"` + md5 + `","AlternativeHashes":[{"HashName":"SHA1","HashValue":"` + sha1 + `"}]}]}]}`, "1.1"},
		{"2.0-cases", `{"@odata.context":"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/UK/$metadata#Cases","value":[{"CaseID":"c","Media":[{"MD5":"` + md5 + `","SHA1":"` + sha1 + `"}]}]}`, "2.0"},
		{"2.0-media", `{"@odata.context":"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media","value":[{"MD5":"` + md5 + `","SHA1":"` + sha1 + `"}]}`, "2.0"},
		{"bare-array", `[{"MD5":"` + md5 + `","SHA1":"` + sha1 + `"}]`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := parseString(tt.in, ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.SchemaVersion != tt.version || res.Format != FormatVICS {
				t.Fatalf("version %q format %q", res.SchemaVersion, res.Format)
			}
			if len(res.Entries) != 2 || res.Entries[0].Hash.Hex() != md5 || res.Entries[1].Hash.Hex() != sha1 ||
				res.Entries[0].Hash.Kind() != hashkind.MD5 || res.Entries[1].Hash.Kind() != hashkind.SHA1 {
				t.Fatalf("entries %+v", res.Entries)
			}
		})
	}
}

func TestParseRejectsVICSStructure(t *testing.T) {
	tests := []struct {
		in, reason string
	}{
		{`{"odata.metadata":"x"}`, `list.txt line 1, $: no "value" array: not a VICS document`},
		{`{"value":{}}`, "$.value: want an array of cases or media, got '{'"},
		{`{"value":[[1]]}`, "$.value[0]: want a case or media object, got an array"},
		{`{"value":[{"Media":{}}]}`, "$.value[0].Media: want an array of media, got '{'"},
		{`{"value":[]} {}`, "more JSON after the end of the document"},
	}
	for _, tt := range tests {
		_, err := parseString(tt.in, ParseOptions{})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.reason) {
			t.Fatalf("Parse(%s) error %v, want %q", tt.in, err, tt.reason)
		}
	}
}

func TestParseTextKeepsNamesAndNotes(t *testing.T) {
	r := newRand(t)
	a, b, c := synth(r, 20), synth(r, 20), synth(r, 20)
	in := a + "  synthetic #1.bin\n" + b + " # a note\n" + c + "\tsynthetic-3.bin\n"
	res, err := parseString(in, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{res.Entries[0].Name, res.Entries[1].Note, res.Entries[2].Name}
	if fmt.Sprint(got) != fmt.Sprint([]string{"synthetic #1.bin", "a note", "synthetic-3.bin"}) {
		t.Fatalf("got %q", got)
	}
}

func TestParseReadsCRLFAndBOM(t *testing.T) {
	r := newRand(t)
	a, b := synth(r, 20), synth(r, 20)
	res, err := Parse(bytes.NewReader([]byte("\ufeffsha1,category\r\n"+a+",1\r\n"+b+",2\r\n")), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != FormatCSV || len(res.Entries) != 2 || res.Entries[1].Category != "2" {
		t.Fatalf("%+v", res)
	}
}

// failingReader gives data, then an error.
type failingReader struct{ data string }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestParseReportsReadErrors(t *testing.T) {
	r := newRand(t)
	for _, tt := range []struct {
		format Format
		data   string
	}{
		{FormatText, synth(r, 20) + "\n"},
		{FormatCSV, "sha1\n" + synth(r, 20) + "\n"},
		{FormatVICS, "{\"value\":["},
	} {
		_, err := Parse(&failingReader{data: tt.data}, ParseOptions{Format: tt.format, File: "f"})
		if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.HasPrefix(err.Error(), "f") {
			t.Fatalf("%s: error %v", tt.format, err)
		}
	}
}
