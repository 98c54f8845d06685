// Package watchlist reads and writes the hash lists that users already have
// (plain text, CSV, Project VIC VICS JSON, magnet and ed2k link lists) and
// defines lists and their entries.
//
// Parsing is all-or-nothing unless the caller asks to skip invalid input: an
// error always names the file, the line (or JSON path) and why. Parsers do
// no I/O beyond the reader they are given.
package watchlist

import (
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// Format is a watch-list file format.
type Format string

// The formats Vigil reads. FormatAuto asks Parse to detect it.
const (
	FormatAuto   Format = ""
	FormatText   Format = "text"   // one hash a line, # comments
	FormatCSV    Format = "csv"    // header with hash, kind, category, note, ...
	FormatVICS   Format = "vics"   // Project VIC VICS JSON 1.x or 2.0
	FormatMagnet Format = "magnet" // one magnet link a line
	FormatED2K   Format = "ed2k"   // one ed2k://|file|...|/ link a line
)

// Pos is where an entry, or an error, stands in its source file.
type Pos struct {
	File string // file name as given by the user
	Line int    // 1-based line, 0 when not line oriented
	Path string // JSON path (e.g. "$.value[0].Media[3].MD5") for JSON input
}

// Entry is one hash of a known file on a list.
type Entry struct {
	Hash     hashkind.Hash
	Category string // category as the list gives it (VICS: "1", "2", ...)
	Severity int    // 0 unset; 1 (lowest) .. 5 (gravest)
	Note     string
	Name     string // file name, where the list gives one (ed2k links, magnets)
	Size     int64  // file size in bytes, where the list gives one; -1 unknown

	// Project VIC fields, where given.
	Series             string
	VictimIdentified   *bool
	OffenderIdentified *bool

	// Extra keeps what the list had that Vigil does not interpret: unknown
	// CSV columns, other VICS fields (as JSON text), so that export loses
	// nothing.
	Extra map[string]string

	Pos Pos // where it was read from
}

// List is one watch-list as stored: a name, where it came from, and the
// version last imported.
type List struct {
	Name     string
	Source   string    // who publishes it ("Project VIC", "OCRVP local", ...)
	Version  string    // the publisher's version label, or the import number
	Format   Format    // format of the last import
	Negative bool      // a known-benign list: its hashes suppress matches from every other list
	Imported time.Time // time of the last import that changed it (UTC)
	Entries  int       // active entries in the current version
	Disabled int       // entries disabled by an analyst
	SHA256   string    // hex SHA-256 of the last imported file(s)
}
