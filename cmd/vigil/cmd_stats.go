package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
)

func statsCommand() *command {
	return &command{
		name:    "stats",
		summary: "The figures the field lacks: targets and devices by agency, region, network; the trend by month.",
		usage:   "vigil stats [--since DATE] [--json]",
		help: `
Counts targets (devices, or lone endpoints when nothing links them), devices
(targets of more than one linked endpoint) by agency, country, subdivision
(département) and network, and observations by month since --since. Devices
are counted once however many addresses they used: a figure of unique
devices, not of IP addresses.

Examples:
  vigil stats
  vigil stats --since 2026-01-01 --json
`,
		setup: func(fs *flag.FlagSet) runFunc {
			since := fs.String("since", "", "trend from this `date` (YYYY-MM-DD; default: a year ago)")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, a *app, args []string) error {
				from := time.Now().UTC().AddDate(-1, 0, 0)
				if *since != "" {
					t, err := time.Parse("2006-01-02", *since)
					if err != nil {
						return usagef("--since %q: want a date such as 2026-01-01", *since)
					}
					from = t
				}
				sq, err := a.targetsStore(ctx, true)
				if err != nil {
					return err
				}
				st, err := sq.Stats(ctx, analysis.AllAgencies, from)
				if err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, audit.ActionSearch, "stats", map[string]any{"since": from.Format("2006-01-02")}); err != nil {
					return err
				}
				months := map[string]int{}
				for _, d := range st.Daily {
					if len(d.Day) >= 7 {
						months[d.Day[:7]] += d.Observations
					}
				}
				if *asJSON {
					return writeIndentedJSON(a.stdout, map[string]any{"stats": st, "by_month": months})
				}
				fmt.Fprintf(a.stdout, "%d targets, of which %d devices with several linked endpoints\n", st.Targets, st.Devices)
				printCounts(a.stdout, "AGENCY", st.ByAgency)
				printCounts(a.stdout, "COUNTRY", st.ByCountry)
				printCounts(a.stdout, "SUBDIVISION", st.BySubdivision)
				printCounts(a.stdout, "NETWORK", st.ByNetwork)
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "\nMONTH\tOBSERVATIONS\t")
				keys := make([]string, 0, len(months))
				for k := range months {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%d\t\n", k, months[k])
				}
				return tw.Flush()
			}
		},
	}
}

func printCounts(w io.Writer, title string, m map[string]int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n%s\tTARGETS\t\n", title)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%d\t\n", orDash(k), m[k])
	}
	_ = tw.Flush()
}
