package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vigil-oss/vigil/internal/hasher"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

func watchlistHashCommand() *command {
	return &command{
		name:    "hash",
		summary: "Compute every hash kind of known files, in one read of each file.",
		usage:   "vigil watchlist hash [--kinds K,...] [--format csv|vics|text] PATH...",
		help: `
Walks files and folders and computes md5, sha1, sha256, ed2k (eMule's
convention), tth (Tiger Tree, base32) and btv2 (the BitTorrent v2 file root),
or the kinds named with --kinds, reading each file once; files are hashed in
parallel. A progress line is shown on a terminal, never in a pipe. Symbolic
links are not followed unless --follow-symlinks. A file that cannot be read
is reported on standard error and the walk goes on (exit 1 at the end).

CSV output has the header: path,size,md5,sha1,sha256,ed2k,tth,btv2
(hex in lower case, tth in base32 upper case; empty where not computed, and
btv2 empty for an empty file, which has no v2 root).

Examples:
  vigil watchlist hash --format csv ~/reference-set > reference.csv
  vigil watchlist hash --kinds sha1,ed2k --format text file.bin
  vigil watchlist hash --format vics --category 1 ./known > known.json
`,
		setup: func(fs *flag.FlagSet) runFunc {
			kinds := fs.String("kinds", "", "hash `kinds` to compute, comma-separated (default: all six)")
			format := fs.String("format", "csv", "output `format`: csv, vics or text")
			category := fs.String("category", "", "category written with --format vics")
			follow := fs.Bool("follow-symlinks", false, "follow symbolic links")
			workers := fs.Int("workers", 0, "files hashed at once (default: one per core)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) == 0 {
					return usagef("no PATH given")
				}
				cfg := hasher.DefaultConfig()
				cfg.FollowSymlinks, cfg.Workers = *follow, *workers
				if *kinds != "" {
					ks, err := hashkind.ParseKinds(*kinds)
					if err != nil {
						return usagef("--kinds: %v", err)
					}
					cfg.Kinds = ks
				}
				if f, ok := a.stderr.(*os.File); ok {
					cfg.Progress = hasher.TerminalProgress(f)
				}
				failed := 0
				var entries []watchlist.Entry
				var csvw *hasher.CSVWriter
				switch *format {
				case "csv":
					csvw = hasher.NewCSVWriter(a.stdout)
				case "vics", "text":
				default:
					return usagef("--format %q: want csv, vics or text", *format)
				}
				n := 0
				err := hasher.Walk(ctx, args, cfg, func(r hasher.Result) error {
					if r.Err != nil {
						failed++
						fmt.Fprintf(a.stderr, "vigil watchlist hash: %v\n", r.Err)
						return nil
					}
					n++
					switch *format {
					case "csv":
						return csvw.Write(r)
					case "text":
						_, err := fmt.Fprintln(a.stdout, hasher.FormatText(r))
						return err
					}
					for _, k := range hashkind.All() {
						h, ok := r.Sums[k]
						if !ok {
							continue
						}
						entries = append(entries, watchlist.Entry{Hash: h, Category: *category,
							Name: filepath.Base(r.Path), Size: r.Size,
							Extra: map[string]string{"MediaID": strconv.Itoa(n)}})
					}
					return nil
				})
				if err != nil {
					return err
				}
				switch *format {
				case "csv":
					if err := csvw.Flush(); err != nil {
						return err
					}
				case "vics":
					if err := watchlist.WriteVICS(a.stdout, entries, watchlist.VICSOptions{}); err != nil {
						return err
					}
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d files could not be hashed", failed, failed+n)
				}
				return nil
			}
		},
	}
}
