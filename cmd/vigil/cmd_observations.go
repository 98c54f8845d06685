package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/pipeline"
	"github.com/vigil-oss/vigil/internal/store"
)

func observationsCommand() *command {
	return &command{
		name:    "observations",
		summary: "Import and export observations as JSON Lines.",
		usage:   "vigil observations COMMAND",
		help: `
An observation is one sighting of a peer sharing or looking for a watched
item: who (IP, port, transport, client), when (UTC, nanoseconds), what (the
hash and the lists it matched) and how surely (the possession level:
announced < acknowledged < partial < complete < verified).
`,
		subs: []*command{observationsExportCommand(), observationsImportCommand()},
	}
}

func observationsExportCommand() *command {
	return &command{
		name:    "export",
		summary: "Write observations as JSON Lines, oldest first.",
		usage:   "vigil observations export --case NUMBER --format jsonl [--since RFC3339] [--until RFC3339] [--out FILE]",
		help: `
One flat JSON object a line with: id, time (RFC 3339, UTC, nanoseconds),
sensor, network, method, ip, port, transport, item_kind, item (lower-case hex),
possession, pieces_have, pieces_total, peer_id (hex), client, listen_port,
node_id (hex), matched (list names), and the rest of the record (sensor
version, transcript ...). Empty where the protocol gave nothing. The
sensor's clock: clock_offset_ms and clock_uncertainty_ms (numbers, or null
when the offset is unknown: never 0 for unknown) and clock_source; its
exact build (build: version, commit, modified) and sensor_config (the
SHA-256 of its effective configuration). docs/evidence.md says what each
means.

A bulk export of suspects' addresses: it needs --case (the case number it
is made for), and is written into the audit trail, with the case number and
the operating-system user, before the first line is.

Examples:
  vigil observations export --case 2026/1234 --format jsonl > all.jsonl
  vigil observations export --case 2026/1234 --format jsonl --since 2026-11-01T00:00:00Z
`,
		setup: func(fs *flag.FlagSet) runFunc {
			format := fs.String("format", "jsonl", "output `format`: jsonl")
			since := fs.String("since", "", "only observations at or after this RFC 3339 `time`")
			until := fs.String("until", "", "only observations before this RFC 3339 `time`")
			out := fs.String("out", "", "output `file` (default: standard output)")
			caseNo := fs.String("case", "", "the case `number` this export is made for (required; recorded in the audit trail)")
			return func(ctx context.Context, a *app, args []string) error {
				if *format != "jsonl" {
					return usagef("--format %q: want jsonl", *format)
				}
				if len(args) > 0 {
					return usagef("unexpected arguments %q", args)
				}
				purpose, err := audit.RequirePurpose(*caseNo)
				if err != nil {
					return usagef("--case: a bulk export needs the case number it is made for (%v)", err)
				}
				var f store.ObservationFilter
				if f.Since, err = parseTimeFlag("since", *since); err != nil {
					return err
				}
				if f.Until, err = parseTimeFlag("until", *until); err != nil {
					return err
				}
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				if err := a.auditStore(ctx, st, audit.ActionExport, "observations", purpose,
					map[string]any{"since": *since, "until": *until, "out": *out}); err != nil {
					return fmt.Errorf("export refused: %w", err)
				}
				var w io.Writer = a.stdout
				if *out != "" {
					// Addresses of suspects: private to Vigil's user.
					file, err := createPrivate(*out)
					if err != nil {
						return err
					}
					defer file.Close()
					w = file
				}
				enc := observe.NewEncoder(w)
				n := 0
				err = st.Observations(ctx, f, func(o *observe.Observation) error {
					n++
					return enc.Encode(o)
				})
				if err != nil {
					return err
				}
				if err := enc.Flush(); err != nil {
					return err
				}
				a.log.Info("observations exported", "count", n)
				return nil
			}
		},
	}
}

func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usagef("--%s %q: want an RFC 3339 time such as 2026-11-01T00:00:00Z", name, v)
	}
	return t.UTC(), nil
}

func observationsImportCommand() *command {
	return &command{
		name:    "import",
		summary: "Read observations from JSON Lines into the store (all or nothing).",
		usage:   "vigil observations import --format jsonl FILE",
		help: `
Reads the format that 'vigil observations export' writes. A line that does
not parse stops the import with its line number; nothing is stored. Every
observation imported is marked unsigned_import: nothing proves which sensor
made it, so it is shown and scored but never becomes a row of an ISP request.
A line's sensor signature fields (sensor_key, chain, chain_seq, chain_prev,
batch_sig) are dropped: an imported line is never sensor evidence, and its
batch is not in the store to check it against. One whose time cannot be
true (before 1999, or more than 10 minutes ahead of this machine's clock:
docs/evidence.md, "Times that cannot be true") is imported with the rest,
marked time_implausible. Each imported observation
is a leaf of the evidence log like any other: the log proves what was
stored and when, not who observed it.

Example:
  vigil observations import --format jsonl sensor-paris-2026-11-23.jsonl
`,
		setup: func(fs *flag.FlagSet) runFunc {
			format := fs.String("format", "jsonl", "input `format`: jsonl")
			return func(ctx context.Context, a *app, args []string) error {
				if *format != "jsonl" {
					return usagef("--format %q: want jsonl", *format)
				}
				if len(args) != 1 {
					return usagef("want exactly one FILE (- for standard input)")
				}
				var r io.Reader = a.stdin
				if args[0] != "-" {
					file, err := os.Open(args[0])
					if err != nil {
						return err
					}
					defer file.Close()
					r = file
				}
				// Decode everything first: all or nothing.
				dec := observe.NewDecoder(r)
				var all []observe.Observation
				for {
					var o observe.Observation
					err := dec.Decode(&o)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						return fmt.Errorf("%s: %w", args[0], err)
					}
					o.Mark(observe.MarkUnsigned)
					o.Chain = observe.Chain{}
					all = append(all, o)
				}
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				// Through ingest, the only writer, in one batch: one
				// transaction, all or nothing.
				if err := pipeline.ImportObservations(ctx, st, all); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				fmt.Fprintf(a.stdout, "imported %d observations from %s\n", len(all), args[0])
				return nil
			}
		},
	}
}
