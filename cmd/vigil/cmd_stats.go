package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/figures"
)

func statsCommand() *command {
	return &command{
		name:    "stats",
		summary: "The figures the field lacks: observations, unique addresses and devices by week or month; targets by agency, region, network.",
		usage: "vigil stats [--by week|month] [--group network|country|subdivision|category|level]\n" +
			"      [--from DATE --to DATE] [--format csv|json] [--min-cell N]\n" +
			"  vigil stats --outcomes [--group service|operation] [--format csv|json] [--min-cell N]\n  vigil stats [--since DATE] [--json]",
		help: `
With any of --by, --group, --from, --to, --format or --min-cell: one row per
period (and group) with the columns period, [group,] observations,
unique_addresses, unique_devices, the change of each against the previous
period (in percent, of the same group), estimated, and suppressed.

- Periods are ISO weeks (2026-W05, Monday to Sunday) or calendar months
  (2026-01, the default), UTC. --from (default: a year ago, or --since) is
  taken back to the first day of its period, --to (default: today) on to
  the last day of its own: every period is whole.
- Groups: network; country; subdivision (country/département); category
  (of the list entries an observation's file matched: an observation of a
  file on lists of two categories counts under both, so category rows do
  not add up to the total); level (the possession level the analysis
  credits the observation with, as a target's file shows it: an
  observation marked unsigned_import, signature_failed or
  infohash_mismatch counts at most as announced, whatever it recorded).
  "-" is an unknown value.
- Counted: the observations the analysis placed on an endpoint; a device is
  a target (linked endpoints).
- Exact or estimated: when the periods asked for, with the period before
  the first, span at most 62 days, every figure is counted exactly from the
  observations (a device is then the target as linked today). Longer spans
  are read from the weekly and monthly roll-ups the analysis keeps (this
  command brings the analysis up to date first): observations are still
  exact, unique addresses and devices are HyperLogLog estimates (standard
  error about 0.8%), and a target linked to another after its
  observations were counted counts once for each. The column estimated, and
  the note printed after the table (or the JSON's method, estimated and
  note), say which.
- --min-cell N (publication, k-anonymity): every figure below N is left
  out (an empty CSV field, null in JSON, "x" in the table), and so is
  every change computed from a figure left out. With --group, where that
  leaves a single group's figure of a period out, that of the other group
  with the fewest observations is left out too (the groups add up to the
  total: a figure left out alone would be the total minus the others);
  with --group subdivision, the same within each country (its figure,
  by --group country, is its départements' sum). The column suppressed names the
  figures left out of each row, and the note says so.

Without those flags, as before: targets (devices, or lone endpoints when
nothing links them) and devices (targets of more than one linked endpoint)
by agency, country, subdivision (département) and network, and
observations by month since --since (--json for JSON).

With --outcomes: the outcomes of the cases ('vigil case'), one row per
service (--group service, the default: the service that recorded the
case's latest step) or per operation (--group operation: 'vigil
operation'; a target in several operations counts in each, and once in the
total), then the total, with the columns group, cases (targets with at
least one case step), closed, and one per outcome (closed cases that
recorded it: ` + strings.Join(casework.Outcomes, ", ") + `), and
suppressed. --min-cell leaves figures out as above: every figure below N,
and where that leaves a single group's figure of a column out, the other
group's with the fewest cases too. --by, --from and --to do not apply (every
case is counted, as it stands now).

Every run is written to the audit trail. The web interface shows the same
report, charts and tables, at /figures, with these exports (national
scopes only: the figures count every agency's observations).

Examples:
  vigil stats --by month --from 2026-01-01 --to 2026-12-31
  vigil stats --by week --group subdivision --from 2026-03-01 --to 2026-03-31 --format csv
  vigil stats --by month --group category --min-cell 10 --format csv > yearly-report.csv
  vigil stats --outcomes --min-cell 5 --format csv
  vigil stats --outcomes --group operation --format json
  vigil stats
  vigil stats --since 2026-01-01 --json
`,
		setup: func(fs *flag.FlagSet) runFunc {
			since := fs.String("since", "", "trend from this `date` (YYYY-MM-DD; default: a year ago); the same as --from with the new flags")
			asJSON := fs.Bool("json", false, "print JSON (with the new flags: the same as --format json)")
			by := fs.String("by", "", "cut the figures by `period`: week or month (default month)")
			group := fs.String("group", "", "one row per value of `dimension`: network, country, subdivision, category or level")
			fromF := fs.String("from", "", "first `date` (YYYY-MM-DD), taken back to its period's first day (default: --since, or a year ago)")
			toF := fs.String("to", "", "last `date` (YYYY-MM-DD), taken on to its period's last day (default: today)")
			format := fs.String("format", "", "print `csv` or json (default: a table)")
			minCell := fs.Int("min-cell", 0, "leave out every figure below `N`, and every change computed from one (k-anonymity, for publication)")
			outcomes := fs.Bool("outcomes", false, "the cases' outcomes per service or (--group operation) per operation")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 {
					return usagef("stats takes no arguments, got %q", args)
				}
				if *outcomes {
					var bad []string
					fs.Visit(func(f *flag.Flag) {
						if f.Name == "by" || f.Name == "from" || f.Name == "to" || f.Name == "since" {
							bad = append(bad, "--"+f.Name)
						}
					})
					if len(bad) > 0 {
						return usagef("--outcomes counts every case as it stands: %s do not apply", strings.Join(bad, ", "))
					}
					return a.outcomeFigures(ctx, *group, *format, *asJSON, *minCell)
				}
				newForm := false
				fs.Visit(func(f *flag.Flag) {
					switch f.Name {
					case "by", "group", "from", "to", "format", "min-cell":
						newForm = true
					}
				})
				from := time.Now().UTC().AddDate(-1, 0, 0)
				if *since != "" {
					t, err := time.Parse(time.DateOnly, *since)
					if err != nil {
						return usagef("--since %q: want a date such as 2026-01-01", *since)
					}
					from = t
				}
				if newForm {
					return a.figures(ctx, figuresFlags{by: *by, group: *group, from: from, fromF: *fromF, toF: *toF, format: *format, json: *asJSON, minCell: *minCell})
				}
				return a.legacyStats(ctx, from, *asJSON)
			}
		},
	}
}

// figuresFlags are the figures' flags as given.
type figuresFlags struct {
	by, group, fromF, toF, format string
	from                          time.Time
	json                          bool
	minCell                       int
}

// figures prints the report of `vigil stats --by ...`.
func (a *app) figures(ctx context.Context, f figuresFlags) error {
	q := figures.Query{By: f.by, Group: f.group, From: f.from, To: time.Now().UTC(), MinCell: f.minCell}
	if q.By == "" {
		q.By = figures.Month
	}
	for _, d := range []struct {
		flag string
		v    string
		t    *time.Time
	}{{"--from", f.fromF, &q.From}, {"--to", f.toF, &q.To}} {
		if d.v == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, d.v)
		if err != nil {
			return usagef("%s %q: want a date such as 2026-01-01", d.flag, d.v)
		}
		*d.t = t
	}
	format := f.format
	if format == "" && f.json {
		format = "json"
	}
	if format != "" && format != "csv" && format != "json" {
		return usagef("--format %q: want csv or json", format)
	}
	if err := q.Validate(); err != nil {
		return usagef("%s", strings.TrimPrefix(err.Error(), figures.ErrQuery.Error()+": "))
	}
	sq, err := a.targetsStore(ctx, true)
	if err != nil {
		return err
	}
	if err := a.auditCLI(ctx, sq, audit.ActionSearch, "stats", map[string]any{"by": q.By, "group": q.Group,
		"from": q.From.Format(time.DateOnly), "to": q.To.Format(time.DateOnly), "min_cell": q.MinCell}); err != nil {
		return err
	}
	rep, err := figures.Compute(ctx, sq, q)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		return writeIndentedJSON(a.stdout, rep)
	case "csv":
		return figures.WriteCSV(a.stdout, rep)
	}
	return printFigures(a.stdout, rep)
}

// outcomeFigures prints the report of 'vigil stats --outcomes'.
func (a *app) outcomeFigures(ctx context.Context, group, format string, asJSON bool, minCell int) error {
	if group == "" {
		group = casework.ByService
	}
	if group != casework.ByService && group != casework.ByOperation {
		return usagef("--group %q: with --outcomes, want service or operation", group)
	}
	if format == "" && asJSON {
		format = "json"
	}
	if format != "" && format != "csv" && format != "json" {
		return usagef("--format %q: want csv or json", format)
	}
	if minCell < 0 {
		return usagef("--min-cell %d: want 0 or more", minCell)
	}
	sq, err := a.targetsStore(ctx, false)
	if err != nil {
		return err
	}
	if err := a.auditCLI(ctx, sq, audit.ActionSearch, "stats", map[string]any{"outcomes": group, "min_cell": minCell}); err != nil {
		return err
	}
	latest, err := sq.LatestCaseSteps(ctx)
	if err != nil {
		return err
	}
	var ops []casework.Operation
	if group == casework.ByOperation {
		list, err := sq.Operations(ctx)
		if err != nil {
			return err
		}
		for _, o := range list {
			op, err := sq.Operation(ctx, o.ID)
			if err != nil {
				return err
			}
			ops = append(ops, *op)
		}
	}
	rep, err := casework.CountOutcomes(group, minCell, latest, ops)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		if rep.Rows == nil {
			rep.Rows = []casework.OutcomeRow{}
		}
		return writeIndentedJSON(a.stdout, rep)
	case "csv":
		return writeOutcomesCSV(a.stdout, rep)
	}
	return printOutcomes(a.stdout, rep)
}

// outcomeCells are a row's figures in casework.OutcomeColumns' order.
func outcomeCells(r casework.OutcomeRow) []*int64 {
	out := []*int64{r.Cases, r.Closed}
	for _, o := range casework.Outcomes {
		out = append(out, r.Outcomes[o])
	}
	return out
}

// writeOutcomesCSV writes the rows then the total (group "total"); a
// figure left out is an empty field, named in the suppressed column.
func writeOutcomesCSV(w io.Writer, rep *casework.OutcomeReport) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(append(append([]string{"group"}, casework.OutcomeColumns()...), "suppressed")); err != nil {
		return err
	}
	for _, r := range append(slices.Clone(rep.Rows), rep.Total) {
		g := r.Group
		if g == "" {
			g = "total"
		}
		rec := []string{figures.SafeCell(g)}
		for _, v := range outcomeCells(r) {
			rec = append(rec, figures.Int(v))
		}
		if err := cw.Write(append(rec, strings.Join(r.Suppressed, ";"))); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func printOutcomes(w io.Writer, rep *casework.OutcomeReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.ToUpper(rep.Group+"\t"+strings.Join(casework.OutcomeColumns(), "\t"))+"\t")
	for _, r := range append(slices.Clone(rep.Rows), rep.Total) {
		line := r.Group
		if line == "" {
			line = "TOTAL"
		}
		for _, v := range outcomeCells(r) {
			if v == nil {
				line += "\tx"
			} else {
				line += "\t" + figures.Int(v)
			}
		}
		fmt.Fprintln(tw, line+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s.\n", rep.Note)
	return err
}

// printFigures prints a report as a table, then its note.
func printFigures(w io.Writer, rep *figures.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := "PERIOD\t"
	if rep.Group != figures.All {
		head += strings.ToUpper(rep.Group) + "\t"
	}
	fmt.Fprintln(tw, head+"OBSERVATIONS\tCHANGE\tUNIQUE ADDRESSES\tCHANGE\tUNIQUE DEVICES\tCHANGE\t")
	cellOf := func(v *int64) string {
		if v == nil {
			return "x" // below --min-cell, or left out with one that is: the same mark, so that none is told from the other
		}
		return figures.Int(v)
	}
	pct := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return figures.Pct(v) + "%"
	}
	for _, r := range rep.Rows {
		line := r.Period + "\t"
		if rep.Group != figures.All {
			line += figures.GroupLabel(r.Group) + "\t"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t\n", line, cellOf(r.Observations), pct(r.ObservationsChange),
			cellOf(r.UniqueAddresses), pct(r.UniqueAddressesChange), cellOf(r.UniqueDevices), pct(r.UniqueDevicesChange))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s to %s, %s: %s.\n", rep.From, rep.To, rep.Method, rep.Note)
	return err
}

// legacyStats is `vigil stats [--since DATE] [--json]` as before the
// figures: targets and devices by agency, place and network, and
// observations by month.
func (a *app) legacyStats(ctx context.Context, from time.Time, asJSON bool) error {
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
	if asJSON {
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
