package watchlist

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// goldenInputs are the golden files with the options that read them
// without error.
var goldenInputs = []struct {
	file string
	opt  ParseOptions
}{
	{"text-mixed.txt", ParseOptions{Category: "local-1"}},
	{"text-md5.txt", ParseOptions{Kind: hashkind.MD5}},
	{"sha1sum.txt", ParseOptions{}},
	{"bsd.txt", ParseOptions{}},
	{"list.csv", ParseOptions{}},
	{"multi.csv", ParseOptions{}},
	{"hashdeep.txt", ParseOptions{Category: "1"}},
	{"vics-1.3.json", ParseOptions{}},
	{"vics-2.0-cases.json", ParseOptions{}},
	{"vics-2.0-media.json", ParseOptions{}},
	{"links.magnet", ParseOptions{}},
	{"links.ed2k", ParseOptions{}},
	{"rhash.magnet", ParseOptions{}},
	{"rhash.ed2k", ParseOptions{}},
}

func readGolden(t *testing.T, file string, opt ParseOptions) []Entry {
	t.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", "golden", file))
	if err != nil {
		t.Fatal(err)
	}
	opt.File = file
	res, err := Parse(bytes.NewReader(in), opt)
	if err != nil {
		t.Fatal(err)
	}
	return res.Entries
}

// withoutPos returns copies of entries with Pos cleared: where an entry
// was read from is not part of what it says.
func withoutPos(es []Entry) []Entry {
	out := make([]Entry, len(es))
	for i, e := range es {
		e.Pos = Pos{}
		out[i] = e
	}
	return out
}

func TestWriteCSVRoundTrips(t *testing.T) {
	for _, g := range goldenInputs {
		t.Run(g.file, func(t *testing.T) {
			entries := readGolden(t, g.file, g.opt)
			var buf bytes.Buffer
			if err := WriteCSV(&buf, entries); err != nil {
				t.Fatal(err)
			}
			res, err := Parse(bytes.NewReader(buf.Bytes()), ParseOptions{File: "out.csv"})
			if err != nil {
				t.Fatalf("reading back: %v\n%s", err, buf.Bytes())
			}
			if res.Format != FormatCSV {
				t.Fatalf("written CSV detected as %q", res.Format)
			}
			if got, want := withoutPos(res.Entries), withoutPos(entries); !reflect.DeepEqual(got, want) {
				t.Fatalf("read back:\n%+v\nwant:\n%+v\nCSV:\n%s", got, want, buf.Bytes())
			}
		})
	}
}

// vicsCarried returns what VICS carries of an entry: everything but the
// position, an explicit severity (VICS derives it from the category), and
// the MediaFiles record WriteVICS adds to hold a name.
func vicsCarried(e Entry, hadMediaFiles bool) Entry {
	e.Pos = Pos{}
	e.Severity = CategorySeverity(e.Category)
	if !hadMediaFiles && e.Extra != nil {
		e.Extra = maps.Clone(e.Extra)
		delete(e.Extra, "MediaFiles")
		if len(e.Extra) == 0 {
			e.Extra = nil
		}
	}
	return e
}

func TestWriteVICSRoundTrips(t *testing.T) {
	for _, g := range goldenInputs {
		t.Run(g.file, func(t *testing.T) {
			entries := readGolden(t, g.file, g.opt)
			var buf bytes.Buffer
			if err := WriteVICS(&buf, entries, VICSOptions{}); err != nil {
				t.Fatal(err)
			}
			res, err := Parse(bytes.NewReader(buf.Bytes()), ParseOptions{File: "out.json"})
			if err != nil {
				t.Fatalf("reading back: %v\n%s", err, buf.Bytes())
			}
			if res.Format != FormatVICS || res.SchemaVersion != "2.0" {
				t.Fatalf("written VICS read as %q version %q", res.Format, res.SchemaVersion)
			}
			if len(res.Entries) != len(entries) {
				t.Fatalf("%d entries read back, want %d\n%s", len(res.Entries), len(entries), buf.Bytes())
			}
			for i := range entries {
				_, had := entries[i].Extra["MediaFiles"]
				got, want := vicsCarried(res.Entries[i], had), vicsCarried(entries[i], had)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("entry %d read back:\n%+v\nwant:\n%+v\nVICS:\n%s", i, got, want, buf.Bytes())
				}
			}
			// Writing what was read back gives the same document.
			var again bytes.Buffer
			if err := WriteVICS(&again, res.Entries, VICSOptions{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Fatalf("second write differs:\n%s\nfirst:\n%s", again.Bytes(), buf.Bytes())
			}
		})
	}
}

func TestWriteVICSKeepsOneRecordPerMedia(t *testing.T) {
	entries := readGolden(t, "vics-2.0-cases.json", ParseOptions{})
	var buf bytes.Buffer
	if err := WriteVICS(&buf, entries, VICSOptions{Model: "US"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// Three Media records in, three out: the md5 and sha1 of MediaID 10 together.
	if got, want := strings.Count(out, `"MediaID":`), 3; got != want {
		t.Fatalf("%d media records, want %d:\n%s", got, want, out)
	}
	if !strings.Contains(out, `{"MediaID":10,"Category":1,"MD5":"`+entries[0].Hash.Hex()+`","SHA1":"`+entries[1].Hash.Hex()+`"`) {
		t.Fatalf("MediaID 10 not written as one record with its MD5 and SHA1:\n%s", out)
	}
	if !strings.HasPrefix(out, `{"@odata.context":"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media","value":[`) {
		t.Fatalf("header:\n%s", out)
	}
}

func TestWriteVICSPutsOtherKindsInAlternativeHashes(t *testing.T) {
	entries := readGolden(t, "links.ed2k", ParseOptions{})
	var buf bytes.Buffer
	if err := WriteVICS(&buf, entries[:1], VICSOptions{}); err != nil {
		t.Fatal(err)
	}
	want := `{"AlternativeHashes":[{"HashName":"ED2K","HashValue":"` + entries[0].Hash.Hex() + `"}],"MediaSize":9728000,"MediaFiles":[{"FileName":"synthetic-080.bin"}]}`
	if !strings.Contains(buf.String(), want) {
		t.Fatalf("got\n%s\nwant a record\n%s", buf.String(), want)
	}
}

func TestWriteCSVHeader(t *testing.T) {
	entries := readGolden(t, "list.csv", ParseOptions{})
	entries[0].Extra["Comments"] = "kept from VICS as it was not a string"
	var buf bytes.Buffer
	if err := WriteCSV(&buf, entries); err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(buf.String(), "\n")
	if want := "hash,kind,category,severity,note,name,size,series,victim_identified,offender_identified,extra.Comments,source"; header != want {
		t.Fatalf("header %q, want %q", header, want)
	}
	res, err := Parse(&buf, ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Entries[0].Extra["Comments"]; got != "kept from VICS as it was not a string" {
		t.Fatalf("Extra Comments read back as %q", got)
	}
}

func TestWriteRejectsEntryWithoutHash(t *testing.T) {
	if err := WriteCSV(&bytes.Buffer{}, []Entry{{Size: -1}}); err == nil {
		t.Fatal("WriteCSV wrote an entry without a hash")
	}
	if err := WriteVICS(&bytes.Buffer{}, []Entry{{Size: -1}}, VICSOptions{}); err == nil {
		t.Fatal("WriteVICS wrote an entry without a hash")
	}
	if err := WriteVICS(&bytes.Buffer{}, nil, VICSOptions{Model: "a/b"}); err == nil {
		t.Fatal("WriteVICS took a model name with a slash")
	}
}
