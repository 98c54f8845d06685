package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

func watchlistCommand() *command {
	return &command{
		name:    "watchlist",
		summary: "Load, inspect and maintain the hash lists Vigil matches against.",
		usage:   "vigil watchlist COMMAND",
		help: `
A watch-list is a list of hashes of known files (md5, sha1, sha256, ed2k,
tth, BitTorrent v2 roots and info-hashes). Vigil reads the files you already
have: plain text, CSV, Project VIC VICS JSON, magnet and ed2k link lists.
Negative lists of known-benign files suppress matches from every other list.
`,
		subs: []*command{
			watchlistImportCommand(),
			watchlistListCommand(),
			watchlistMatchCommand(),
			watchlistHashCommand(),
			watchlistExportCommand(),
			watchlistShowCommand(),
			watchlistDisableCommand(true),
			watchlistDisableCommand(false),
			watchlistConfirmCommand(),
		},
	}
}

// importJSON is the --json output of 'watchlist import' (a contract).
type importJSON struct {
	List       string               `json:"list"`
	Format     string               `json:"format"`
	Imported   int                  `json:"imported"`
	Duplicates int                  `json:"duplicates"`
	Rejected   []watchlist.Rejected `json:"rejected"`
	Version    int                  `json:"version,omitempty"`
	Unchanged  bool                 `json:"unchanged"`
	Added      int                  `json:"added"`
	Removed    int                  `json:"removed"`
	Changed    int                  `json:"changed"`
}

func watchlistImportCommand() *command {
	return &command{
		name:    "import",
		summary: "Import one or more files as a watch-list (all or nothing).",
		usage:   "vigil watchlist import [--list NAME] [--format F] [--kind K] [--category C] [--skip-invalid] [--json] FILE...",
		help: `
Reads FILE... (- for standard input) as one list and stores it as the list's
new version. The format is detected from the content, or named with
--format text|csv|vics|magnet|ed2k. Import is all or nothing: if any line is
invalid, nothing is stored, every problem is printed with its file and line
(or JSON path), and the exit code is 1. --skip-invalid imports the rest and
lists what was skipped.

Re-importing the same content changes nothing. Importing a new version of a
list reports how many entries were added, removed and changed; an entry that
an analyst disabled stays disabled.

32 hex digits are md5 or ed2k: plain text and CSV lists of them need --kind.

Output with --json (one object):
  {"list","format","imported","duplicates","rejected":[{"file","line","reason"}],
   "version","unchanged","added","removed","changed"}

Examples:
  vigil watchlist import --list national national.csv
  vigil watchlist import --list local --kind md5 --category 1 hashes.txt
  vigil watchlist import --list benign --negative known-benign.txt
  vigil watchlist import --format vics --json export-2026-11.json
`,
		setup: func(fs *flag.FlagSet) runFunc {
			var f importFlags
			fs.StringVar(&f.list, "list", "", "list `name` (default: the first file's name without extension)")
			fs.StringVar(&f.format, "format", "", "input `format`: text, csv, vics, magnet, ed2k (default: detect)")
			fs.StringVar(&f.kind, "kind", "", "hash `kind` where the length is ambiguous: md5 or ed2k, ...")
			fs.StringVar(&f.category, "category", "", "`category` for entries whose file gives none")
			fs.BoolVar(&f.skip, "skip-invalid", false, "import the valid entries and list the invalid ones")
			fs.BoolVar(&f.asJSON, "json", false, "print the result as one JSON object")
			fs.BoolVar(&f.negative, "negative", false, "this is a known-benign list: its hashes suppress matches from every list")
			fs.StringVar(&f.source, "source", "", "who publishes the list (e.g. \"Project VIC\")")
			fs.StringVar(&f.ver, "version", "", "the publisher's version `label` (default: numbered)")
			fs.StringVar(&f.by, "by", "", "who imports it, for the list's history (default: the operating-system user; the audit trail always records that user)")
			return func(ctx context.Context, a *app, args []string) error { return f.run(ctx, a, args) }
		},
	}
}

func printRejected(w io.Writer, rej []watchlist.Rejected) {
	for _, r := range rej {
		where := r.File
		if r.Line > 0 {
			where = fmt.Sprintf("%s:%d", where, r.Line)
		}
		if r.Path != "" {
			where += " " + r.Path
		}
		fmt.Fprintf(w, "  %s: %s\n", where, r.Reason)
	}
}

// readInput reads a whole input file, or standard input for "-".
func readInput(a *app, file string) ([]byte, error) {
	if file == "-" {
		b, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err // *PathError names the file
	}
	return b, nil
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

type listJSON struct {
	Name     string `json:"name"`
	Source   string `json:"source"`
	Version  string `json:"version"`
	Format   string `json:"format"`
	Negative bool   `json:"negative"`
	Imported string `json:"imported"`
	Entries  int    `json:"entries"`
	Disabled int    `json:"disabled"`
	SHA256   string `json:"sha256"`
}

func watchlistListCommand() *command {
	return &command{
		name:    "list",
		summary: "Show the stored watch-lists with their versions and sizes.",
		usage:   "vigil watchlist list [--json]",
		help: `
Examples:
  vigil watchlist list
  vigil watchlist list --json | jq '.[] | select(.negative)'
`,
		setup: func(fs *flag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print a JSON array")
			return func(ctx context.Context, a *app, args []string) error {
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				lists, err := st.Lists(ctx)
				if err != nil {
					return err
				}
				names := make([]string, 0, len(lists))
				for _, l := range lists {
					names = append(names, l.Name)
				}
				if err := a.auditStore(ctx, st, audit.ActionViewList, "lists", "", map[string]any{"lists": names}); err != nil {
					return err
				}
				out := make([]listJSON, 0, len(lists))
				for _, l := range lists {
					out = append(out, listJSON{Name: l.Name, Source: l.Source, Version: l.Version, Format: string(l.Format),
						Negative: l.Negative, Imported: l.Imported.UTC().Format("2006-01-02T15:04:05Z"),
						Entries: l.Entries, Disabled: l.Disabled, SHA256: l.SHA256})
				}
				if *asJSON {
					writeJSON(a.stdout, out)
					return nil
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "LIST\tKIND\tVERSION\tENTRIES\tDISABLED\tIMPORTED (UTC)\tSOURCE")
				for _, l := range out {
					kind := "watch"
					if l.Negative {
						kind = "benign"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", l.Name, kind, l.Version, l.Entries, l.Disabled, l.Imported, l.Source)
				}
				return tw.Flush()
			}
		},
	}
}

// importFlags are 'watchlist import”s settings.
type importFlags struct {
	list, format, kind, category, source, ver, by string
	skip, asJSON, negative                        bool
}

// run imports the files in args as one list version, all or nothing.
func (f *importFlags) run(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("no FILE given")
	}
	opt := watchlist.ParseOptions{Format: watchlist.Format(f.format), Category: f.category, SkipInvalid: f.skip}
	switch opt.Format {
	case watchlist.FormatAuto, watchlist.FormatText, watchlist.FormatCSV, watchlist.FormatVICS, watchlist.FormatMagnet, watchlist.FormatED2K:
	default:
		return usagef("--format %q: want text, csv, vics, magnet or ed2k", f.format)
	}
	if f.kind != "" {
		k, err := hashkind.ParseKind(f.kind)
		if err != nil {
			return usagef("--kind: %v", err)
		}
		opt.Kind = k
	}
	name := f.list
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))
		if args[0] == "-" {
			return usagef("--list is required when reading standard input")
		}
	}
	out := importJSON{List: name, Rejected: []watchlist.Rejected{}}
	var perFile [][]watchlist.Entry
	sum := sha256.New()
	var invalid bool
	for _, file := range args {
		data, err := readInput(a, file)
		if err != nil {
			return err
		}
		sum.Write(data)
		o := opt
		o.File = file
		res, perr := watchlist.Parse(bytes.NewReader(data), o)
		if res != nil {
			perFile = append(perFile, res.Entries)
			out.Duplicates += res.Duplicates
			out.Rejected = append(out.Rejected, res.Rejected...)
			if out.Format == "" {
				out.Format = string(res.Format)
			} else if out.Format != string(res.Format) {
				out.Format = "mixed"
			}
		}
		if perr != nil {
			if !errors.Is(perr, watchlist.ErrInvalid) || res == nil {
				return perr
			}
			invalid = true
		}
	}
	// The same hash across files follows the rule Parse applies
	// within one: a duplicate is kept once, a dispute is rejected.
	entries, dups, disputes := watchlist.Merge(perFile...)
	out.Duplicates += dups
	if len(disputes) > 0 {
		out.Rejected = append(out.Rejected, disputes...)
		invalid = invalid || !opt.SkipInvalid
	}
	if invalid {
		out.Imported = 0
		if f.asJSON {
			writeJSON(a.stdout, out)
		} else {
			fmt.Fprintf(a.stderr, "vigil watchlist import: %d invalid entries; nothing was imported (use --skip-invalid to import the rest):\n", len(out.Rejected))
			printRejected(a.stderr, out.Rejected)
		}
		return errSilent
	}
	st, err := a.store(ctx)
	if err != nil {
		return err
	}
	who := f.by
	if who == "" {
		who = cliUser()
	}
	digest := hex.EncodeToString(sum.Sum(nil))
	// Audited before the list changes: no import without its trace.
	if err := a.auditStore(ctx, st, audit.ActionChange, "list:"+name, "", map[string]any{"import": args, "format": out.Format,
		"entries": len(entries), "sha256": digest, "by": who, "negative": f.negative, "source": f.source}); err != nil {
		return fmt.Errorf("import into list %q refused: %w", name, err)
	}
	rep, err := st.ImportList(ctx, store.ListImport{
		Name: name, Source: f.source, Version: f.ver, Format: watchlist.Format(out.Format),
		Negative: f.negative, SHA256: digest, By: who, Entries: entries,
	})
	if err != nil {
		return fmt.Errorf("import %s into list %q: %w", strings.Join(args, ", "), name, err)
	}
	out.Imported = len(entries)
	out.Version, out.Unchanged = rep.Version, rep.Unchanged
	out.Added, out.Removed, out.Changed = rep.Added, rep.Removed, rep.Changed
	a.log.Info("watch-list imported", "list", name, "entries", len(entries), "version", rep.Version,
		"added", rep.Added, "removed", rep.Removed, "changed", rep.Changed, "unchanged", rep.Unchanged)
	if f.asJSON {
		writeJSON(a.stdout, out)
		return nil
	}
	switch {
	case rep.Unchanged:
		fmt.Fprintf(a.stdout, "list %q: unchanged (%d entries, same as version %d)\n", name, len(entries), rep.Version)
	default:
		fmt.Fprintf(a.stdout, "list %q version %d: %d entries (%s); %d added, %d removed, %d changed; %d duplicates in the input\n",
			name, rep.Version, len(entries), out.Format, rep.Added, rep.Removed, rep.Changed, out.Duplicates)
	}
	if len(out.Rejected) > 0 {
		fmt.Fprintf(a.stdout, "%d invalid entries skipped:\n", len(out.Rejected))
		printRejected(a.stdout, out.Rejected)
	}
	return nil
}
