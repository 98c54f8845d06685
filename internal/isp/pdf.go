package isp

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// A minimal PDF 1.4 writer: the standard Helvetica fonts in WinAnsiEncoding
// (so French accents and guillemets print without embedding a font), A4
// pages, uncompressed content streams, a classic cross-reference table.

const (
	pageW, pageH = 595.28, 841.89 // A4 in points
	marginX      = 56.0           // about 2 cm
	marginTop    = 56.0
	marginBottom = 64.0 // room for the page footer
	bodyW        = pageW - 2*marginX
)

type font int

const (
	regular font = iota
	bold
)

func (f font) res() string {
	if f == bold {
		return "/F2"
	}
	return "/F1"
}

// cp1252 maps the runes WinAnsiEncoding places in 0x80–0x9F.
var cp1252 = map[rune]byte{
	'€': 0x80, '‚': 0x82, 'ƒ': 0x83, '„': 0x84, '…': 0x85, '†': 0x86, '‡': 0x87, 'ˆ': 0x88,
	'‰': 0x89, 'Š': 0x8A, '‹': 0x8B, 'Œ': 0x8C, 'Ž': 0x8E, '‘': 0x91, '’': 0x92, '“': 0x93,
	'”': 0x94, '•': 0x95, '–': 0x96, '—': 0x97, '˜': 0x98, '™': 0x99, 'š': 0x9A, '›': 0x9B,
	'œ': 0x9C, 'ž': 0x9E, 'Ÿ': 0x9F,
}

// winAnsi encodes s for the standard fonts. Runes the encoding lacks become
// '?'; spaces of any kind become a space; control characters are dropped.
func winAnsi(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r == '\t' || r == '\u202f' || r == '\u2009' || r == '\u2007':
			out = append(out, ' ')
		case r < 0x20 || r == 0x7f:
		case r < 0x80:
			out = append(out, byte(r))
		case r >= 0xa0 && r <= 0xff:
			out = append(out, byte(r))
		default:
			if b, ok := cp1252[r]; ok {
				out = append(out, b)
			} else {
				out = append(out, '?')
			}
		}
	}
	return out
}

// width of WinAnsi bytes in points at size.
func width(b []byte, f font, size float64) float64 {
	tab := &helveticaWidths
	if f == bold {
		tab = &helveticaBoldWidths
	}
	var u int
	for _, c := range b {
		if c >= 32 {
			u += int(tab[c-32])
		}
	}
	return float64(u) * size / 1000
}

// pdfString writes b as a PDF literal string, escaping what must be and
// writing bytes outside printable ASCII as octal so the file stays 7-bit.
func pdfString(dst *bytes.Buffer, b []byte) {
	dst.WriteByte('(')
	for _, c := range b {
		switch {
		case c == '(' || c == ')' || c == '\\':
			dst.WriteByte('\\')
			dst.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(dst, "\\%03o", c)
		default:
			dst.WriteByte(c)
		}
	}
	dst.WriteByte(')')
}

func num(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// wrap breaks text into lines no wider than w; a word wider than a line is
// cut between characters.
func wrap(s string, f font, size, w float64) [][]byte {
	var lines [][]byte
	for _, para := range strings.Split(s, "\n") {
		words := bytes.Fields(winAnsi(para))
		var line []byte
		for _, word := range words {
			cand := word
			if len(line) > 0 {
				cand = append(append(append([]byte{}, line...), ' '), word...)
			}
			if width(cand, f, size) <= w {
				line = cand
				continue
			}
			if len(line) > 0 {
				lines = append(lines, line)
				line = nil
			}
			for width(word, f, size) > w && len(word) > 1 {
				n := 1
				for n < len(word) && width(word[:n+1], f, size) <= w {
					n++
				}
				lines = append(lines, word[:n])
				word = word[n:]
			}
			line = append([]byte{}, word...)
		}
		if len(line) > 0 || len(words) == 0 {
			lines = append(lines, line)
		}
	}
	return lines
}

type page struct {
	content bytes.Buffer
}

// doc lays text out on pages. Pages are grouped into documents that are
// numbered on their own ("page 2 / 3" of one letter).
type doc struct {
	pages []*page
	cur   *page
	y     float64
	// spans are the page ranges numbered together, with their footer label.
	spans []span
	// onNewPage, when set, runs after a page break inside a span (to
	// repeat a table header).
	onNewPage func()
}

type span struct {
	first, last int
	label       string
}

// begin starts a new numbered document on a fresh page.
func (d *doc) begin(label string) {
	d.onNewPage = nil
	d.spans = append(d.spans, span{first: len(d.pages), label: label})
	d.newPage()
}

func (d *doc) newPage() {
	d.cur = &page{}
	d.pages = append(d.pages, d.cur)
	d.y = pageH - marginTop
	if n := len(d.spans); n > 0 {
		d.spans[n-1].last = len(d.pages) - 1
	}
}

// need breaks the page unless h points fit above the bottom margin.
func (d *doc) need(h float64) {
	if d.y-h < marginBottom {
		d.newPage()
		if d.onNewPage != nil {
			d.onNewPage()
		}
	}
}

func (d *doc) text(x, y float64, f font, size float64, b []byte) {
	c := &d.cur.content
	fmt.Fprintf(c, "BT %s %s Tf %s %s Td ", f.res(), num(size), num(round2(x)), num(round2(y)))
	pdfString(c, b)
	c.WriteString(" Tj ET\n")
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

// para writes wrapped text at the left margin plus indent.
func (d *doc) para(s string, f font, size, indent, after float64) {
	lead := size * 1.3
	for _, l := range wrap(s, f, size, bodyW-indent) {
		d.need(lead)
		d.y -= lead
		d.text(marginX+indent, d.y, f, size, l)
	}
	d.y -= after
}

// hline draws a rule across the body at the current position.
func (d *doc) hline(x0, x1 float64) {
	fmt.Fprintf(&d.cur.content, "0.5 w %s %s m %s %s l S\n", num(round2(x0)), num(round2(d.y)), num(round2(x1)), num(round2(d.y)))
}

func (d *doc) rect(x, y, w, h float64) {
	fmt.Fprintf(&d.cur.content, "0.5 w %s %s %s %s re S\n", num(round2(x)), num(round2(y)), num(round2(w)), num(round2(h)))
}

// column of a table: a header and a width in points.
type column struct {
	head string
	w    float64
}

const (
	tableSize    = 7.0
	tableMinSize = 5.0 // a single word is shrunk down to this before it is cut
)

// table writes rows under a bold header, wrapping each cell in its column,
// repeating the header on each new page. A cell holding one word too wide
// for its column (a long IPv6 address, a large offset) is set smaller
// rather than cut, so that an address is never split across lines.
func (d *doc) table(cols []column, rows [][]string) {
	lead := tableSize * 1.25
	pad := 2.0
	drawRow := func(cells []string, f font) {
		wrapped := make([][][]byte, len(cols))
		sizes := make([]float64, len(cols))
		h := 1
		for i, c := range cols {
			s := ""
			if i < len(cells) {
				s = cells[i]
			}
			avail := c.w - 2*pad
			sizes[i] = tableSize
			// A word wider than the column (a digest, an id) is set
			// smaller rather than broken, down to tableMinSize.
			for _, word := range bytes.Fields(winAnsi(s)) {
				if wd := width(word, f, tableSize); wd > avail {
					sizes[i] = min(sizes[i], max(tableMinSize, math.Floor(tableSize*avail/wd*100)/100))
				}
			}
			wrapped[i] = wrap(s, f, sizes[i], avail)
			h = max(h, len(wrapped[i]))
		}
		d.need(float64(h)*lead + pad)
		top := d.y
		x := marginX
		for i, c := range cols {
			for j, l := range wrapped[i] {
				d.text(x+pad, top-float64(j+1)*lead, f, sizes[i], l)
			}
			x += c.w
		}
		d.y = top - float64(h)*lead - pad
	}
	header := func() {
		heads := make([]string, len(cols))
		for i, c := range cols {
			heads[i] = c.head
		}
		drawRow(heads, bold)
		d.hline(marginX, marginX+bodyW)
	}
	header()
	d.onNewPage = header
	for _, r := range rows {
		drawRow(r, regular)
	}
	d.onNewPage = nil
	d.hline(marginX, marginX+bodyW)
	d.y -= 6
}

// footers numbers each span's pages.
func (d *doc) footers(of func(i, n int) string) {
	for _, s := range d.spans {
		n := s.last - s.first + 1
		for i := s.first; i <= s.last; i++ {
			d.cur = d.pages[i]
			b := winAnsi(s.label + " — " + of(i-s.first+1, n))
			d.text(pageW/2-width(b, regular, 8)/2, 32, regular, 8, b)
		}
	}
}

// write serialises the pages as a PDF 1.4 file.
func (d *doc) write(w io.Writer, title string, created time.Time) error {
	var out bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, out.Len())
		fmt.Fprintf(&out, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	out.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	// 1 catalog, 2 pages, 3 and 4 fonts, 5 info, then a page and its
	// content per page.
	const first = 6
	kids := make([]string, len(d.pages))
	for i := range d.pages {
		kids[i] = fmt.Sprintf("%d 0 R", first+2*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(d.pages)))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
	var info bytes.Buffer
	info.WriteString("<< /Title ")
	pdfString(&info, winAnsi(title))
	info.WriteString(" /Producer (Vigil) /CreationDate ")
	pdfString(&info, []byte(created.UTC().Format("D:20060102150405Z")))
	info.WriteString(" >>")
	obj(info.String())
	for i, p := range d.pages {
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>",
			num(pageW), num(pageH), first+2*i+1))
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", p.content.Len(), p.content.Bytes()))
	}
	xref := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&out, "%010d 00000 n \n", o)
	}
	id := sha256.Sum256(out.Bytes())
	fmt.Fprintf(&out, "trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R /ID [<%x> <%x>] >>\nstartxref\n%d\n%%%%EOF\n",
		len(offsets)+1, id[:16], id[:16], xref)
	_, err := w.Write(out.Bytes())
	return err
}
