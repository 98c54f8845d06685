package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

func watchlistExportCommand() *command {
	return &command{
		name:    "export",
		summary: "Write one list's current entries as CSV or VICS JSON.",
		usage:   "vigil watchlist export --list NAME [--format csv|vics] [--out FILE]",
		help: `
Exports the current version of a list, disabled entries excepted unless
--include-disabled. CSV keeps every column the list was imported with; VICS
JSON 2.0 carries the fields VICS knows.

Examples:
  vigil watchlist export --list national --format csv --out national.csv
  vigil watchlist export --list national --format vics > national.json
`,
		setup: func(fs *flag.FlagSet) runFunc {
			list := fs.String("list", "", "list `name` (required)")
			format := fs.String("format", "csv", "output `format`: csv or vics")
			out := fs.String("out", "", "output `file` (default: standard output)")
			return func(ctx context.Context, a *app, args []string) error {
				if *list == "" {
					return usagef("--list is required")
				}
				if *format != "csv" && *format != "vics" {
					return usagef("--format %q: want csv or vics", *format)
				}
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				var entries []watchlist.Entry
				err = st.ListEntries(ctx, *list, func(e *watchlist.Entry) error {
					entries = append(entries, *e)
					return nil
				})
				if err != nil {
					return fmt.Errorf("list %q: %w", *list, err)
				}
				// Audited before a byte is written.
				if err := a.auditStore(ctx, st, audit.ActionExport, "list:"+*list, "", map[string]any{"format": *format,
					"entries": len(entries), "out": *out}); err != nil {
					return fmt.Errorf("export of list %q refused: %w", *list, err)
				}
				w := a.stdout
				var f *os.File
				if *out != "" {
					// Write beside the target and rename, so a crash never
					// leaves half a list where a whole one is expected.
					f, err = os.CreateTemp(filepath.Dir(*out), ".vigil-export-*")
					if err != nil {
						return err
					}
					defer os.Remove(f.Name())
					w = f
				}
				if *format == "csv" {
					err = watchlist.WriteCSV(w, entries)
				} else {
					err = watchlist.WriteVICS(w, entries, watchlist.VICSOptions{})
				}
				if err != nil {
					return fmt.Errorf("export list %q: %w", *list, err)
				}
				if f != nil {
					if err := f.Close(); err != nil {
						return err
					}
					if err := os.Rename(f.Name(), *out); err != nil {
						return err
					}
					fmt.Fprintf(a.stderr, "wrote %d entries of list %q to %s\n", len(entries), *list, *out)
				}
				return nil
			}
		},
	}
}

func watchlistShowCommand() *command {
	return &command{
		name:    "show",
		summary: "Show a hash's entries on every list, its trust and its history.",
		usage:   "vigil watchlist show [--kind K] [--json] HASH",
		help: `
Examples:
  vigil watchlist show 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12
`,
		setup: func(fs *flag.FlagSet) runFunc {
			kind := fs.String("kind", "", "hash `kind` where the form is ambiguous")
			asJSON := fs.Bool("json", false, "print one JSON object")
			return func(ctx context.Context, a *app, args []string) error {
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				h, err := listedHash(ctx, st, args, *kind, "")
				if err != nil {
					return err
				}
				if err := a.auditStore(ctx, st, audit.ActionViewList, "hash:"+h.Kind().String()+":"+h.String(), "", nil); err != nil {
					return err
				}
				recs, err := st.Lookup(ctx, h)
				if err != nil {
					return err
				}
				hist, err := st.History(ctx, h)
				if err != nil {
					return err
				}
				type event struct {
					Time   string `json:"time"`
					Action string `json:"action"`
					List   string `json:"list"`
					By     string `json:"by"`
					Reason string `json:"reason"`
				}
				out := struct {
					matchJSON
					History []event `json:"history"`
				}{matchJSON: matchResult(args[0], h, recs), History: []event{}}
				for _, e := range hist {
					out.History = append(out.History, event{e.Time.UTC().Format(time.RFC3339), e.Action, e.List, e.By, e.Reason})
				}
				if *asJSON {
					writeJSON(a.stdout, out)
					return nil
				}
				printMatch(a, out.matchJSON)
				if len(out.History) > 0 {
					fmt.Fprintln(a.stdout, "history:")
					for _, e := range out.History {
						fmt.Fprintf(a.stdout, "  %s  %-9s list %s by %s %s\n", e.Time, e.Action, e.List, e.By, e.Reason)
					}
				}
				return nil
			}
		},
	}
}

// listedHash reads the one HASH argument. A bare digest without --kind
// may be several kinds (40 hex digits: sha1 or btih): the one a list holds
// it as is taken (on list, when list is not ""), and more than one is a
// usage error that names them. When no list holds it, a digest of one
// possible kind is taken as that kind, and else the kinds tried are named.
func listedHash(ctx context.Context, st store.Store, args []string, kind, list string) (hashkind.Hash, error) {
	if len(args) != 1 {
		return hashkind.Hash{}, usagef("want exactly one HASH, got %d", len(args))
	}
	hint := hashkind.Unknown
	if kind != "" {
		k, err := hashkind.ParseKind(kind)
		if err != nil {
			return hashkind.Hash{}, usagef("--kind: %v", err)
		}
		hint = k
	}
	hs, err := hashkind.Candidates(args[0], hint)
	if err != nil {
		return hashkind.Hash{}, usagef("%v", err)
	}
	if len(hs) == 1 {
		return hs[0], nil
	}
	var listed []hashkind.Hash
	var tried, kinds []string
	for _, h := range hs {
		tried = append(tried, h.Kind().String())
		recs, err := st.Lookup(ctx, h)
		if err != nil {
			return hashkind.Hash{}, fmt.Errorf("look up %s: %w", h, err)
		}
		for _, r := range recs {
			if list == "" || r.List.Name == list {
				listed = append(listed, h)
				kinds = append(kinds, h.Kind().String())
				break
			}
		}
	}
	where := "any list"
	if list != "" {
		where = fmt.Sprintf("list %q", list)
	}
	switch len(listed) {
	case 1:
		return listed[0], nil
	case 0:
		return hashkind.Hash{}, fmt.Errorf("%s is not on %s as %s: %w", hs[0].Hex(), where, strings.Join(tried, " or "), store.ErrNotFound)
	default:
		return hashkind.Hash{}, usagef("%s is on %s as %s: give --kind", hs[0].Hex(), where, strings.Join(kinds, " and "))
	}
}

func watchlistDisableCommand(disable bool) *command {
	name, summary := "disable", "Disable one entry of a list, with a reason, without re-importing it."
	help := `
A disabled entry no longer matches; it stays in the list's history with who
disabled it and why, and stays disabled when the list is re-imported.
'vigil watchlist enable' undoes it.

Example:
  vigil watchlist disable --list national --reason "benign installer, ticket 4711" \
      2fd4e1c67a2d28fced849ee1bb76e7391b93eb12
`
	if !disable {
		name, summary = "enable", "Re-enable an entry that was disabled."
		help = `
Example:
  vigil watchlist enable --list national --reason "re-checked" 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12
`
	}
	return &command{
		name:    name,
		summary: summary,
		usage:   "vigil watchlist " + name + " --list NAME --reason TEXT [--kind K] HASH",
		help:    help,
		setup: func(fs *flag.FlagSet) runFunc {
			list := fs.String("list", "", "list `name` (required)")
			reason := fs.String("reason", "", "why (required; kept in the entry's history)")
			kind := fs.String("kind", "", "hash `kind` where the form is ambiguous")
			by := fs.String("by", "", "who, for the entry's history (default: the operating-system user; the audit trail always records that user)")
			return func(ctx context.Context, a *app, args []string) error {
				if *list == "" || *reason == "" {
					return usagef("--list and --reason are required")
				}
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				h, err := listedHash(ctx, st, args, *kind, *list)
				if err != nil {
					return err
				}
				who := *by
				if who == "" {
					who = cliUser()
				}
				if err := a.auditStore(ctx, st, audit.ActionChange, "list:"+*list, "", map[string]any{name: h.Kind().String() + ":" + h.String(),
					"by": who, "reason": *reason}); err != nil {
					return fmt.Errorf("%s refused: %w", name, err)
				}
				if err := st.SetDisabled(ctx, *list, h, disable, who, *reason); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("%s %s is not on list %q: %w", h.Kind(), h, *list, err)
					}
					return err
				}
				fmt.Fprintf(a.stdout, "%sd %s %s on list %q\n", name, h.Kind(), h, *list)
				return nil
			}
		},
	}
}

func watchlistConfirmCommand() *command {
	return &command{
		name:    "confirm",
		summary: "Record an independent confirmation of a listed hash.",
		usage:   "vigil watchlist confirm --by NAME --org ORG [--note TEXT] [--kind K] HASH",
		help: `
An entry's trust is the number of distinct organisations (and other lists)
that confirm it. Confirmations are kept in the hash's history.

Example:
  vigil watchlist confirm --by "A. Martin" --org OCRVP --note "reviewed 2026-11-23" \
      2fd4e1c67a2d28fced849ee1bb76e7391b93eb12
`,
		setup: func(fs *flag.FlagSet) runFunc {
			by := fs.String("by", "", "who confirms (required)")
			org := fs.String("org", "", "their organisation (required)")
			note := fs.String("note", "", "a note")
			kind := fs.String("kind", "", "hash `kind` where the form is ambiguous")
			return func(ctx context.Context, a *app, args []string) error {
				if *by == "" || *org == "" {
					return usagef("--by and --org are required")
				}
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				h, err := listedHash(ctx, st, args, *kind, "")
				if err != nil {
					return err
				}
				if err := a.auditStore(ctx, st, audit.ActionChange, "hash:"+h.Kind().String()+":"+h.String(), "", map[string]any{"confirm_by": *by,
					"org": *org, "note": *note}); err != nil {
					return fmt.Errorf("confirmation refused: %w", err)
				}
				if err := st.Confirm(ctx, h, store.Confirmation{By: *by, Org: *org, Note: *note, Time: time.Now().UTC()}); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "confirmed %s %s by %s (%s)\n", h.Kind(), h, *by, *org)
				return nil
			}
		},
	}
}
