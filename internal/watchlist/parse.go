package watchlist

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// Sentinel errors that Parse wraps, for callers that test with errors.Is.
var (
	// ErrInvalid: some entries are invalid. The error is an *InvalidError
	// and the Result lists every rejected entry.
	ErrInvalid = errors.New("invalid watch-list entries")
	// ErrFormat: the format cannot be detected, or the input is not in the
	// format named.
	ErrFormat = errors.New("unrecognised watch-list format")
	// ErrMalformed: the file's structure is broken (a JSON syntax error, a
	// truncated document, a CSV header without a hash column), so no entry
	// after the fault can be trusted and none is skipped past it.
	ErrMalformed = errors.New("malformed watch-list")
	// ErrEmpty: the file holds no entry.
	ErrEmpty = errors.New("no entries")
)

// DefaultMaxLineBytes is the longest line Parse accepts unless told
// otherwise. A hash with a long name fits many times over; a longer line is
// junk, or a file in a format that is not line oriented.
const DefaultMaxLineBytes = 64 << 10

// MaxRejected bounds how many rejected entries a Result lists: a junk file
// read with SkipInvalid must not cost memory per junk line. RejectedTotal
// still counts them all.
const MaxRejected = 10000

// ParseOptions says how to read one watch-list file.
type ParseOptions struct {
	// Format of the file; FormatAuto detects it from the content.
	Format Format
	// Kind is the kind of bare digests whose length fits several kinds (32
	// hex digits: md5 or ed2k) in text and CSV lists.
	Kind hashkind.Kind
	// Category is given to entries for which the file has none.
	Category string
	// SkipInvalid imports the valid entries and lists the invalid ones,
	// instead of failing the whole file.
	SkipInvalid bool
	// File is the file's name as the user gave it, for messages.
	File string
	// MaxLineBytes is the longest line accepted (default
	// DefaultMaxLineBytes); a longer one is rejected with its line number.
	MaxLineBytes int
}

// Result is what Parse read from one file.
type Result struct {
	Format     Format  // the format read (detected, or as given)
	Entries    []Entry // valid entries, each hash once, in file order
	Duplicates int     // entries dropped because the same hash came earlier with the same category
	// Rejected lists invalid entries (at most MaxRejected of them).
	Rejected      []Rejected
	RejectedTotal int // how many entries were rejected in all
	// SchemaVersion is the VICS data-model version the file declares
	// ("1.3", "2.0"), "" for other formats or when it declares none.
	SchemaVersion string
}

// Rejected is one invalid entry and why it was refused.
type Rejected struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Path   string `json:"path,omitempty"`
	Reason string `json:"reason"`
}

func (r Rejected) where() string {
	s := r.File
	if r.Line > 0 {
		s += fmt.Sprintf(" line %d", r.Line)
	}
	if r.Path != "" {
		s += " " + r.Path
	}
	return s
}

// InvalidError is the error Parse returns when entries are invalid and
// SkipInvalid is false. It names the first few problems; the Result that
// comes with it lists them all.
type InvalidError struct {
	File     string
	Problems []Rejected // the first few
	Total    int        // how many entries were rejected
}

// maxProblems is how many problems an InvalidError message names.
const maxProblems = 5

func (e *InvalidError) Error() string {
	var b strings.Builder
	noun := "entries"
	if e.Total == 1 {
		noun = "entry"
	}
	fmt.Fprintf(&b, "%s: %d invalid %s", e.File, e.Total, noun)
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(strings.TrimPrefix(p.where(), e.File+" "))
		b.WriteString(": ")
		b.WriteString(p.Reason)
	}
	if n := e.Total - len(e.Problems); n > 0 {
		fmt.Fprintf(&b, "; and %d more", n)
	}
	return b.String()
}

func (e *InvalidError) Unwrap() error { return ErrInvalid }

// fileName is the name used in messages for a file given without one.
func fileName(opt ParseOptions) string {
	if opt.File == "" {
		return "<input>"
	}
	return opt.File
}

// Parse reads one watch-list file in the format opt names, or the format it
// detects (see Detect). It reads r to its end and does no other I/O.
//
// Parsing is all or nothing: if any entry is invalid, Parse returns the
// Result with every rejection listed in Rejected and an *InvalidError
// (wrapping ErrInvalid); the caller should import nothing. With
// opt.SkipInvalid the error is nil and Rejected lists what was skipped.
//
// The same hash twice with the same category is kept once and counted in
// Duplicates. The same hash with two categories is invalid: both lines are
// named, and with SkipInvalid both are dropped, since neither category can
// be trusted over the other. An entry without a severity gets the one its
// category implies (see CategorySeverity). Entry.Extra keeps what the list
// had that Vigil does not interpret, as text: CSV cells as written, VICS
// string fields unquoted and other VICS values as compact JSON; empty
// values are not kept.
//
// Errors that leave no entry to trust (an undetectable or wrong format,
// broken JSON, a CSV header without a hash column) return a nil Result and
// an error wrapping ErrFormat or ErrMalformed that names the file, the line
// and, for JSON, the path. A file with no entry gives an error wrapping
// ErrEmpty.
func Parse(r io.Reader, opt ParseOptions) (*Result, error) {
	if opt.MaxLineBytes <= 0 {
		opt.MaxLineBytes = DefaultMaxLineBytes
	}
	opt.File = fileName(opt)
	opt.Category = strings.TrimSpace(opt.Category)
	br := bufio.NewReaderSize(r, max(64<<10, opt.MaxLineBytes+2))
	if head, _ := br.Peek(3); bytes.Equal(head, utf8BOM) {
		br.Discard(3)
	}
	c := newCollector(opt)
	format := opt.Format
	head, _ := br.Peek(detectWindow)
	if format != FormatAuto {
		c.head = bytes.Clone(head)
	} else {
		f, err := detect(head, opt)
		if err != nil {
			return nil, wrapf(err, "cannot detect format of %s: %v; give --format", opt.File, err)
		}
		format = f
	}
	c.res.Format = format
	c.presize(r, head, format)
	var err error
	switch format {
	case FormatText, FormatMagnet, FormatED2K:
		err = parseLines(br, c, format)
	case FormatCSV:
		err = parseCSV(br, c)
	case FormatVICS:
		err = parseVICS(br, c)
	default:
		return nil, wrapf(ErrFormat, "%s: unknown format %q (want text, csv, vics, magnet or ed2k)", opt.File, string(format))
	}
	if err != nil {
		return nil, err
	}
	return c.finish()
}

// collector gathers entries from a parser: it applies defaults, drops
// duplicates, finds conflicting categories and records rejections.
type collector struct {
	opt   ParseOptions
	res   *Result
	index map[hashkind.Hash]int32 // position in res.Entries
	// disputed marks entries whose hash came again with another category.
	disputed map[int32][]Pos
	// head is a copy of the file's first bytes when the user named the
	// format, to tell them what the file looks like if it is not that.
	head []byte
}

func newCollector(opt ParseOptions) *collector {
	return &collector{
		opt:   opt,
		res:   &Result{},
		index: make(map[hashkind.Hash]int32),
	}
}

// presize makes room for the entries a line-oriented file will give when
// the reader says how long it is (bytes.Reader, strings.Reader: what a
// caller that read the file whole passes): a list of millions is then
// read without growing, and copying, its entries and index again and again.
func (c *collector) presize(r io.Reader, head []byte, format Format) {
	lr, ok := r.(interface{ Len() int })
	if !ok || format == FormatVICS {
		return
	}
	lines := bytes.Count(head, []byte{'\n'})
	if lines == 0 {
		return
	}
	est := int(float64(lr.Len()+len(head)) / float64(len(head)) * float64(lines))
	est = min(est, 1<<26) // a bad guess must not cost gigabytes
	c.res.Entries = make([]Entry, 0, est)
	c.index = make(map[hashkind.Hash]int32, est)
}

func (c *collector) reject(pos Pos, reason string) {
	c.res.RejectedTotal++
	if len(c.res.Rejected) < MaxRejected {
		c.res.Rejected = append(c.res.Rejected, Rejected{File: pos.File, Line: pos.Line, Path: pos.Path, Reason: reason})
	}
}

// add takes one valid entry. e.Pos must be set.
func (c *collector) add(e *Entry) {
	e.Category, e.Note, e.Name, e.Series = cleanText(e.Category), cleanText(e.Note), cleanText(e.Name), cleanText(e.Series)
	// Extra holds no empty value: CSV cannot tell one from a missing one.
	for k, v := range e.Extra {
		if ck, cv := cleanText(k), cleanText(v); ck != k || cv != v || v == "" {
			delete(e.Extra, k)
			if cv != "" {
				e.Extra[ck] = cv
			}
		}
	}
	if len(e.Extra) == 0 {
		e.Extra = nil
	}
	if e.Category == "" {
		e.Category = c.opt.Category
	}
	if e.Severity == 0 {
		e.Severity = CategorySeverity(e.Category)
	}
	if i, ok := c.index[e.Hash]; ok {
		first := &c.res.Entries[i]
		if first.Category == e.Category {
			c.res.Duplicates++
			return
		}
		c.reject(e.Pos, fmt.Sprintf("hash %s has category %q here but %q at %s", e.Hash, e.Category, first.Category, posText(first.Pos)))
		if c.disputed == nil {
			c.disputed = make(map[int32][]Pos)
		}
		c.disputed[i] = append(c.disputed[i], e.Pos)
		return
	}
	c.index[e.Hash] = int32(len(c.res.Entries))
	c.res.Entries = append(c.res.Entries, *e)
}

// posText names a position within the same file: "line 12", "line 3
// $.value[0].Media[2]".
func posText(p Pos) string {
	switch {
	case p.Line > 0 && p.Path != "":
		return fmt.Sprintf("line %d %s", p.Line, p.Path)
	case p.Path != "":
		return p.Path
	default:
		return fmt.Sprintf("line %d", p.Line)
	}
}

func (c *collector) finish() (*Result, error) {
	res := c.res
	if len(c.disputed) > 0 {
		// The first of each disputed hash is rejected too, and dropped.
		kept := res.Entries[:0]
		for i, e := range res.Entries {
			others, bad := c.disputed[int32(i)]
			if !bad {
				kept = append(kept, e)
				continue
			}
			where := make([]string, len(others))
			for j, p := range others {
				where[j] = posText(p)
			}
			c.reject(e.Pos, fmt.Sprintf("hash %s has category %q here but another at %s", e.Hash, e.Category, strings.Join(where, ", ")))
		}
		clear(res.Entries[len(kept):])
		res.Entries = kept
		c.index = nil
	}
	sortRejected(res.Rejected)
	if res.RejectedTotal > 0 && !c.opt.SkipInvalid {
		n := min(len(res.Rejected), maxProblems)
		return res, &InvalidError{File: c.opt.File, Problems: res.Rejected[:n:n], Total: res.RejectedTotal}
	}
	if len(res.Entries) == 0 {
		if res.RejectedTotal > 0 {
			return res, fmt.Errorf("%s: %w (%d invalid entries skipped)", c.opt.File, ErrEmpty, res.RejectedTotal)
		}
		return res, fmt.Errorf("%s: %w", c.opt.File, ErrEmpty)
	}
	return res, nil
}

// sortRejected puts rejections in file order: a dispute found at the end
// is reported at the line of the first occurrence.
func sortRejected(r []Rejected) {
	slices.SortStableFunc(r, func(a, b Rejected) int { return cmp.Compare(a.Line, b.Line) })
}

// sentinelError is an error whose message is written in full for the
// user and which wraps a sentinel for errors.Is, without the sentinel's
// own words in the message.
type sentinelError struct {
	msg string
	err error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.err }

func wrapf(sentinel error, format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), err: sentinel}
}

// cleanText makes s valid UTF-8 text without NUL bytes. Names decoded from
// %-escapes in links, and JSON "\u0000", can hold bytes that no text
// format (and no terminal) carries; each becomes U+FFFD.
func cleanText(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= utf8.RuneSelf {
			if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
				return s
			}
			return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
		}
	}
	return s
}
