package isp

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/testenv"
)

func buildPDF(t *testing.T, req *Request, lang Lang) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WritePDF(&b, req, lang); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkXref parses the file's trailer and cross-reference table and checks
// that every entry points at the start of its object; it returns the number
// of pages the page tree claims and the objects' bodies.
func checkXref(t *testing.T, pdf []byte) (pages int, objs map[int][]byte) {
	t.Helper()
	if !bytes.HasPrefix(pdf, []byte("%PDF-1.4\n")) {
		t.Fatalf("does not start with %%PDF-1.4: %q", pdf[:min(len(pdf), 16)])
	}
	if !bytes.HasSuffix(pdf, []byte("%%EOF\n")) {
		t.Fatalf("does not end with %%%%EOF")
	}
	m := regexp.MustCompile(`startxref\n(\d+)\n%%EOF\n$`).FindSubmatch(pdf)
	if m == nil {
		t.Fatal("no startxref")
	}
	xref, _ := strconv.Atoi(string(m[1]))
	if xref <= 0 || xref >= len(pdf) || !bytes.HasPrefix(pdf[xref:], []byte("xref\n")) {
		t.Fatalf("startxref %d does not point at the xref table", xref)
	}
	lines := strings.Split(string(pdf[xref:]), "\n")
	var first, n int
	if _, err := fmt.Sscanf(lines[1], "%d %d", &first, &n); err != nil || first != 0 {
		t.Fatalf("xref subsection header %q: %v", lines[1], err)
	}
	if lines[2] != "0000000000 65535 f " {
		t.Fatalf("xref entry 0 = %q", lines[2])
	}
	objs = map[int][]byte{}
	for i := 1; i < n; i++ {
		e := lines[2+i]
		if len(e)+1 != 20 || !strings.HasSuffix(e, " 00000 n ") {
			t.Fatalf("xref entry %d = %q: not 20 bytes in use form", i, e)
		}
		off, _ := strconv.Atoi(e[:10])
		head := fmt.Sprintf("%d 0 obj\n", i)
		if !bytes.HasPrefix(pdf[off:], []byte(head)) {
			t.Fatalf("xref entry %d offset %d points at %q", i, off, pdf[off:min(len(pdf), off+20)])
		}
		end := bytes.Index(pdf[off:], []byte("\nendobj\n"))
		if end < 0 {
			t.Fatalf("object %d has no endobj", i)
		}
		objs[i] = pdf[off+len(head) : off+end]
	}
	if lines[2+n] != "trailer" || !strings.Contains(lines[3+n], fmt.Sprintf("/Size %d ", n)) {
		t.Fatalf("trailer %q %q, want /Size %d", lines[2+n], lines[3+n], n)
	}
	// Stream lengths match.
	lenRE := regexp.MustCompile(`^<< /Length (\d+) >>\nstream\n`)
	for i, body := range objs {
		if m := lenRE.FindSubmatch(body); m != nil {
			l, _ := strconv.Atoi(string(m[1]))
			data := body[len(m[0]):]
			if len(data) != l+len("\nendstream") || !bytes.HasSuffix(data, []byte("\nendstream")) {
				t.Fatalf("object %d: /Length %d but the stream holds %d bytes", i, l, len(data)-len("\nendstream"))
			}
		}
	}
	cm := regexp.MustCompile(`/Type /Pages /Kids \[[^\]]*\] /Count (\d+)`).FindSubmatch(objs[2])
	if cm == nil {
		t.Fatalf("object 2 is not the page tree: %q", objs[2])
	}
	pages, _ = strconv.Atoi(string(cm[1]))
	if got := bytes.Count(pdf, []byte("/Type /Page /Parent")); got != pages {
		t.Fatalf("/Count %d but %d page objects", pages, got)
	}
	return pages, objs
}

// manyRows is a request long enough to need several pages per letter.
func manyRows(n int) Request {
	var s []Sighting
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		// Every address seen several times: none is left out as seen once.
		ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 40)})
		if i%7 == 0 {
			// As wide as an IPv6 address in Helvetica gets.
			ip = netip.MustParseAddr(fmt.Sprintf("2001:db8:8888:8888:8888:8888:8888:%04x", 0x8000+i%21))
		}
		x := Sighting{IP: ip, Port: uint16(1024 + i), Transport: []string{"tcp", "utp", "udp"}[i%3],
			Time: base.Add(time.Duration(i) * 7919 * time.Millisecond), ClockSource: "ntp:127.0.0.1:123 failed: no reply within 2s",
			ObservationID: fmt.Sprintf("obs-%d", i), Level: observe.Level(1 + i%5),
			ASN: 64496 + uint32(i%2), Org: []string{"Opérateur Élan & Cie (ç, ô, «»)", "Example Net"}[i%2], Country: "FR"}
		if i%4 != 3 { // one row in four with its offset unknown
			x.ClockKnown, x.ClockSource = true, "ntp:127.0.0.1:123"
			x.ClockOffset = time.Duration(i-n/2) * 37 * time.Microsecond
			x.ClockUncertainty = time.Duration(i%7+1) * 113 * time.Microsecond
		}
		s = append(s, fh(x))
	}
	return Build(Target{ID: "T-LONG", Agency: "Brigade numérique (lab)"}, s, fixedNow, DefaultRetention())
}

func TestPDFStructure(t *testing.T) {
	tg, s := fixture()
	req := Build(tg, s, fixedNow, testRetention())
	for _, lang := range []Lang{LangBoth, LangFR, LangEN} {
		t.Run(lang.String(), func(t *testing.T) {
			pdf := buildPDF(t, &req, lang)
			pages, objs := checkXref(t, pdf)
			letters := 4 // groups with rows, each one page here
			if lang == LangBoth {
				letters *= 2
			}
			if pages < 1+letters {
				t.Fatalf("%d pages, want at least %d", pages, 1+letters)
			}
			// Without poppler: every row's address, port and time is in a
			// content stream as a literal string.
			all := bytes.Join(mapValues(objs), nil)
			for _, g := range req.Groups {
				for _, r := range g.Rows {
					for _, want := range []string{r.IP.String(), strconv.Itoa(int(r.Port)), r.Time.Format(TimeLayout)} {
						if !bytes.Contains(all, []byte("("+want+")")) {
							t.Errorf("no (%s) in the content streams", want)
						}
					}
				}
			}
			// 7-bit file apart from the binary comment on line 2.
			for i, c := range pdf[15:] {
				if c >= 0x80 {
					t.Fatalf("byte %#x at %d: content should be 7-bit", c, 15+i)
				}
			}
		})
	}
	// Same request, same bytes.
	if a, b := buildPDF(t, &req, LangBoth), buildPDF(t, &req, LangBoth); !bytes.Equal(a, b) {
		t.Fatal("two PDFs of one request differ")
	}
}

func TestPDFWithNothingToRequest(t *testing.T) {
	s := []Sighting{{IP: netip.MustParseAddr("192.0.2.1"), Port: 1, Time: fixedNow.AddDate(-3, 0, 0), ASN: 64496, Org: "A", Country: "FR"}}
	req := Build(Target{ID: "T"}, s, fixedNow, DefaultRetention())
	pdf := buildPDF(t, &req, LangBoth)
	if pages, _ := checkXref(t, pdf); pages != 4 {
		t.Fatalf("%d pages, want the two summary pages, their two annexes and no letter", pages)
	}
	text := pdftotext(t, pdf)
	for _, want := range []string{"il n'y a rien à envoyer", "there is nothing to send", "1 sighting(s) before 2025-03-01T10:00:00.000Z"} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
}

func mapValues(m map[int][]byte) [][]byte {
	var out [][]byte
	for i := 1; i <= len(m); i++ {
		out = append(out, m[i])
	}
	return out
}

func TestPDFPaginatesLongTables(t *testing.T) {
	req := manyRows(300)
	pdf := buildPDF(t, &req, LangFR)
	pages, _ := checkXref(t, pdf)
	// Two letters of 150 rows each; a page holds well under 100 rows.
	if pages < 1+2*2 {
		t.Fatalf("%d pages for two letters of 150 rows", pages)
	}
	// Each letter numbers its own pages, and the table header repeats.
	if !bytes.Contains(pdf, []byte("(ISP-")) || !bytes.Contains(pdf, []byte(" page 1 / ")) {
		t.Fatal("no page footer")
	}
	if got := bytes.Count(pdf, []byte("(Adresse IP)")); got < 4 {
		t.Fatalf("table header drawn %d times, want it repeated on each page of the tables", got)
	}
}

// pdftotext runs poppler's pdftotext on the PDF, or skips (fails under
// VIGIL_REQUIRE_POPPLER=1).
func pdftotext(t *testing.T, pdf []byte) string {
	t.Helper()
	bin := testenv.Need(t, "POPPLER", "pdftotext")
	dir := t.TempDir()
	in := filepath.Join(dir, "r.pdf")
	if err := os.WriteFile(in, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-enc", "UTF-8", in, "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("pdftotext: %v: %s", err, stderr.String())
	}
	// Join wrapped lines so that phrases can be searched whole.
	return strings.Join(strings.Fields(string(out)), " ")
}

func TestPDFTextWithPoppler(t *testing.T) {
	tg, s := fixture()
	req := Build(tg, s, fixedNow, testRetention())
	text := pdftotext(t, buildPDF(t, &req, LangBoth))
	for _, want := range []string{
		// French and English letters, with accents and guillemets.
		"Demande d'identification d'abonnés",
		"Request for subscriber identification",
		"temps universel coordonné (UTC), à la milliseconde",
		"Lorsque le décalage est « inconnu »",
		`Where the offset is "unknown"`,
		// Each row's offset with its uncertainty, or unknown (the
		// DHT group's sensor measured nothing).
		"+0.512ms ±", "-2.500ms ±", "inconnu",
		"Coordinated Universal Time (UTC), to the millisecond",
		"heure de référence = heure indiquée - décalage",
		"reference time = listed time - offset",
		"(CGNAT)", "carrier-grade NAT",
		// The annex, with why each sighting is not a row, and the
		// forgery warning over the links, in both languages.
		"Annexe — observations qui ne sont pas des lignes de demande",
		"Annex — sightings that are not request lines",
		"Signalé par un tiers (tracker)", "Reported by a third party (tracker)",
		"Les identifiants peuvent être falsifiés", "Identifiers can be forged",
		// Both ends of each conversation, named for what they are.
		"Port du pair", "Adresse du capteur", "Peer port", "Sensor address", "Transcript SHA-256",
		// Placeholders, not invented law.
		"[article … du code de procédure pénale — à compléter]",
		"[article … of the applicable code of criminal procedure — to be completed]",
		// Signature block.
		"Le magistrat", "Juridiction :", "Signature et sceau :",
		"The magistrate", "Court:", "Signature and seal:",
		// Addressees, reference and notes.
		`de Example "Telecom", S.A. — AS64496, FR`, "[opérateur à identifier", "2026/0042",
		"1 observation(s) antérieure(s) au 2025-03-01T10:00:00.000Z",
		"fiche interne", "internal sheet", "Score d'analyse : 7.5",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	for _, g := range req.Groups {
		for _, r := range g.Rows {
			for _, want := range []string{r.IP.String(), strconv.Itoa(int(r.Port)), r.Time.Format(TimeLayout), offsetCell(&r),
				r.SensorAddress.String(), r.TranscriptSHA256, r.ObservationID} {
				if !strings.Contains(text, want) {
					t.Errorf("PDF text lacks %q of row %s", want, g.ID)
				}
			}
		}
		// A French and an English letter, each numbering its own pages.
		m := regexp.MustCompile(regexp.QuoteMeta(g.ID)+` — page (\d+) / (\d+)`).FindAllStringSubmatch(text, -1)
		var seq []string
		for _, x := range m {
			seq = append(seq, x[1]+"/"+x[2])
		}
		// A short letter takes two pages: the rows and their references,
		// then the signature block, kept whole with its recap.
		if got := strings.Join(seq, " "); got != "1/2 2/2 1/2 2/2" {
			t.Errorf("letter %s page footers %q", g.ID, got)
		}
	}
	// The score stays off the letters: only the summary, once per language.
	if got := strings.Count(text, "7.5"); got != 2 {
		t.Errorf("score printed %d times, want 2 (summary only)", got)
	}
}

func TestPDFLongTablesWithPoppler(t *testing.T) {
	req := manyRows(120)
	text := pdftotext(t, buildPDF(t, &req, LangEN))
	for _, g := range req.Groups {
		for _, r := range g.Rows {
			// Whole addresses: a wide one is set smaller, never cut.
			for _, want := range []string{" " + r.IP.String() + " ", r.Time.Format(TimeLayout)} {
				if !strings.Contains(text, want) {
					t.Errorf("PDF text lacks %q", want)
				}
			}
		}
	}
	if !strings.Contains(text, "Opérateur Élan & Cie (ç, ô, «»)") {
		t.Error("organisation with accents not rendered")
	}
	if !strings.Contains(text, "page 2 / ") {
		t.Error("no second page in a letter of 60 rows")
	}
}

func TestPDFWithQPDF(t *testing.T) {
	bin := testenv.Need(t, "QPDF", "qpdf")
	req := manyRows(200)
	path := filepath.Join(t.TempDir(), "r.pdf")
	if err := os.WriteFile(path, buildPDF(t, &req, LangBoth), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--check", path).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("No syntax or stream encoding errors")) {
		t.Fatalf("qpdf --check: %v\n%s", err, out)
	}
}

func TestWinAnsi(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"é è à ç ô", "\xe9 \xe8 \xe0 \xe7 \xf4"},
		{"«x»", "\xabx\xbb"},
		{"€ — – … ’ œ", "\x80 \x97 \x96 \x85 \x92 \x9c"},
		{"1×", "1\xd7"},
		{"a\u202fb\tc", "a b c"},
		{"x\x00y\x7f", "xy"},
		{"日本", "??"},
		{"\xff", "?"}, // invalid UTF-8 is U+FFFD
	}
	for _, tc := range tests {
		if got := string(winAnsi(tc.in)); got != tc.want {
			t.Errorf("winAnsi(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWrapFitsWidth(t *testing.T) {
	s := "Les heures sont exprimées en temps universel coordonné (UTC) " + strings.Repeat("x", 200) + " fin."
	for _, w := range []float64{40, 100, 483} {
		lines := wrap(s, regular, 10, w)
		var joined []string
		for _, l := range lines {
			if width(l, regular, 10) > w {
				t.Errorf("width %v: line %q is %v wide", w, l, width(l, regular, 10))
			}
			joined = append(joined, string(l))
		}
		if got := strings.ReplaceAll(strings.Join(joined, ""), " ", ""); got != strings.ReplaceAll(string(winAnsi(s)), " ", "") {
			t.Errorf("width %v: text lost in wrapping", w)
		}
	}
	if got := width([]byte("AV"), bold, 1000); got != 667+722 {
		t.Errorf("Helvetica-Bold A+V = %v, want %v", got, 667+722)
	}
}

func TestParseLang(t *testing.T) {
	for in, want := range map[string]Lang{"": LangBoth, "both": LangBoth, "FR": LangFR, "en": LangEN} {
		if got, err := ParseLang(in); err != nil || got != want {
			t.Errorf("ParseLang(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseLang("de"); err == nil || !strings.Contains(err.Error(), `"de"`) {
		t.Errorf("ParseLang(de) error %v", err)
	}
}

// Every table's headings match its columns, in both languages.
func TestTableHeadsMatchColumns(t *testing.T) {
	for _, l := range []*langText{&textFR, &textEN} {
		if len(l.heads) != len(colWidths) || len(l.refHeads) != len(refWidths) || len(l.annexHeads) != len(annexWidths) || len(l.v6Heads) != len(v6Widths) {
			t.Errorf("%s: %d/%d/%d headings for %d/%d/%d columns", l.code, len(l.heads), len(l.refHeads), len(l.annexHeads),
				len(colWidths), len(refWidths), len(annexWidths))
		}
	}
	for _, ws := range [][]float64{colWidths, refWidths, annexWidths, v6Widths} {
		var sum float64
		for _, w := range ws {
			sum += w
		}
		if sum > bodyW || sum < bodyW-1 {
			t.Errorf("columns %v add up to %v, want the body width %v (to the point)", ws, sum, bodyW)
		}
	}
}

// offsetCell is what a row's offset cell begins with: the offset, or the
// French word for unknown (these letters are in French).
func offsetCell(r *Row) string {
	if !r.ClockKnown {
		return "inconnu"
	}
	return FormatOffset(r.ClockOffset) + " ±"
}
