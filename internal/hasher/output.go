package hasher

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/vigil-oss/vigil/internal/digest"
	"github.com/vigil-oss/vigil/internal/hashkind"
)

// FormatSum prints a digest as its users expect it: TTH in upper-case
// unpadded base32 (as DC++ and THEX print it), every other kind in
// lower-case hex.
func FormatSum(h hashkind.Hash) string {
	if h.Kind() == hashkind.TTH {
		return digest.TTHEncoding.EncodeToString(h.Bytes())
	}
	return h.Hex()
}

// CSVHeader is the header row of the CSV form, one column per file kind.
var CSVHeader = []string{"path", "size", "md5", "sha1", "sha256", "ed2k", "tth", "btv2"}

// csvKinds are the digest columns of CSVHeader, in order.
var csvKinds = []hashkind.Kind{hashkind.MD5, hashkind.SHA1, hashkind.SHA256, hashkind.ED2K, hashkind.TTH, hashkind.BTV2}

// CSVWriter writes results as CSV with the header CSVHeader. Columns of
// kinds not computed are left empty, and so is btv2 for an empty file.
// Results with an error are not written: the caller reports them.
type CSVWriter struct {
	w      *csv.Writer
	header bool
}

// NewCSVWriter returns a CSVWriter on w; the header is written with the
// first row (or by Flush when there is none).
func NewCSVWriter(w io.Writer) *CSVWriter { return &CSVWriter{w: csv.NewWriter(w)} }

func (c *CSVWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	return c.w.Write(CSVHeader)
}

// Write writes one result's row.
func (c *CSVWriter) Write(r Result) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	if r.Err != nil {
		return nil
	}
	row := make([]string, 0, len(CSVHeader))
	row = append(row, r.Path, strconv.FormatInt(r.Size, 10))
	for _, k := range csvKinds {
		s, ok := r.Sums[k]
		if !ok {
			row = append(row, "")
			continue
		}
		row = append(row, FormatSum(s))
	}
	return c.w.Write(row)
}

// Flush writes any buffered rows (and the header if no row came).
func (c *CSVWriter) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

// WriteCSV writes results as CSV.
func WriteCSV(w io.Writer, results []Result) error {
	c := NewCSVWriter(w)
	for _, r := range results {
		if err := c.Write(r); err != nil {
			return err
		}
	}
	return c.Flush()
}

// FormatText returns the plain-text line for one result, without the
// newline: "size:N kind:value ...  path", kinds in display order, the path
// last (quoted with Go syntax when it holds a newline or other control
// character) as md5sum prints it. A result with an error gives
// "error:MESSAGE  path".
func FormatText(r Result) string {
	var b strings.Builder
	if r.Err != nil {
		b.WriteString("error:")
		b.WriteString(strings.ReplaceAll(r.Err.Error(), "\n", " "))
	} else {
		b.WriteString("size:")
		b.WriteString(strconv.FormatInt(r.Size, 10))
		for _, k := range hashkind.All() {
			if s, ok := r.Sums[k]; ok {
				b.WriteByte(' ')
				b.WriteString(k.String())
				b.WriteByte(':')
				b.WriteString(FormatSum(s))
			}
		}
	}
	b.WriteString("  ")
	if strings.ContainsFunc(r.Path, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		b.WriteString(strconv.Quote(r.Path))
	} else {
		b.WriteString(r.Path)
	}
	return b.String()
}

// WriteText writes one FormatText line per result.
func WriteText(w io.Writer, results []Result) error {
	for _, r := range results {
		if _, err := io.WriteString(w, FormatText(r)+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// TerminalProgress returns a Config.Progress callback that keeps one status
// line up to date on f, or nil when f is not a terminal: progress is for
// people watching, never for a pipe or a log file.
func TerminalProgress(f *os.File) func(Progress) {
	if f == nil || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return NewProgressRenderer(f)
}

// NewProgressRenderer returns a callback that redraws a one-line status
// ("hashing 3/16 files  1.2/2.0 GiB  60%  215 MB/s") on w with a carriage
// return, and ends it with a summary line when the walk is done. Use
// TerminalProgress unless w is known to be a terminal.
func NewProgressRenderer(w io.Writer) func(Progress) {
	last := 0
	return func(p Progress) {
		rate := ""
		if s := p.Elapsed.Seconds(); s > 0 {
			rate = fmt.Sprintf("  %.0f MB/s", float64(p.BytesDone)/1e6/s)
		}
		var line string
		if p.Done {
			line = fmt.Sprintf("hashed %d/%d files, %s in %s%s", p.FilesDone, p.FilesTotal,
				humanBytes(p.BytesDone), p.Elapsed.Round(time.Millisecond), rate)
		} else {
			pct := 100.0
			if p.BytesTotal > 0 {
				pct = 100 * float64(p.BytesDone) / float64(p.BytesTotal)
			}
			line = fmt.Sprintf("hashing %d/%d files  %s/%s  %3.0f%%%s", p.FilesDone, p.FilesTotal,
				humanBytes(p.BytesDone), humanBytes(p.BytesTotal), pct, rate)
		}
		pad := ""
		if n := last - len(line); n > 0 {
			pad = strings.Repeat(" ", n) // rub out the longer line before
		}
		last = len(line)
		end := ""
		if p.Done {
			end = "\n"
		}
		fmt.Fprintf(w, "\r%s%s%s", line, pad, end)
	}
}

// humanBytes prints n in binary units with about three significant digits.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 5 {
		v /= unit
		u++
	}
	prec := 2
	if v >= 100 {
		prec = 0
	} else if v >= 10 {
		prec = 1
	}
	return fmt.Sprintf("%.*f %ciB", prec, v, "KMGTPE"[u-1])
}
