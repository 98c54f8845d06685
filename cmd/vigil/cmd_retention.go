package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/retention"
)

// defineRetentionFlags adds the retention settings to fs (vigil retention
// run|show and vigil serve), defaults from retention.DefaultConfig.
func defineRetentionFlags(fs *flag.FlagSet) *retention.Config {
	c := retention.DefaultConfig()
	fs.Var(&c.Transcripts, "keep-transcripts", "how long an observation keeps its transcript, `PERIOD` (y, mo, d: 1y, 6mo, 90d); at most --keep-observations")
	fs.Var(&c.Observations, "keep-observations", "how long an observation is kept, `PERIOD`; its evidence-log leaf is never removed")
	fs.Var(&c.Leads, "keep-leads", "how long an associated-file lead is kept after it was last seen, unless confirmed, `PERIOD`")
	fs.Var(&c.Audit, "keep-audit", "how long the audit trail must be kept, `PERIOD`: at least every other period; never purged by this version")
	fs.IntVar(&c.Chunk, "retention-chunk", c.Chunk, "rows one purge transaction removes")
	return &c
}

func retentionCommand() *command {
	return &command{
		name:    "retention",
		summary: "Purge what is past its retention period (legal holds spared), or show what is due.",
		usage:   "vigil retention run|show",
		help: `
Periods (flags, VIGIL_KEEP_* or the config file's retention section):
transcripts 1y, observations 2y, leads 1y, audit 10y by default. A purge
removes an observation's transcript, then the observation itself; its
evidence-log leaf stays, and a bundle says it was purged under retention.
The audit trail is never purged. An active legal hold ('vigil hold') on a
target spares everything of it, also after a merge. Observations the
analysis has not read yet are never purged.

Each run that has something to remove writes to the audit trail first what
it will remove (per kind: count, oldest, newest, cutoff, rows held back;
the periods; the holds honoured), then removes it in transactions of
--retention-chunk rows, then records what it removed. A run stopped half
way leaves whole chunks removed, each with its record; the next run
removes the rest. 'vigil serve' runs it every --retention-interval.

Examples:
  vigil retention show
  vigil retention run --dry-run
  vigil retention run --keep-observations 3y --keep-transcripts 6mo
`,
		subs: []*command{retentionRunCommand(false), retentionRunCommand(true)},
	}
}

func retentionRunCommand(show bool) *command {
	name, summary, usage := "run", "Purge what is due (--dry-run: say what would be purged, change nothing).",
		"vigil retention run [--dry-run] [--keep-observations P] [--keep-transcripts P] [--keep-leads P] [--keep-audit P]"
	if show {
		name, summary, usage = "show", "Show the periods, the active holds and what a run would purge (changes nothing).",
			"vigil retention show [--keep-... P]"
	}
	return &command{
		name: name, summary: summary, usage: usage,
		help: `
Prints, per kind, the period, the cutoff, how many rows are due (oldest,
newest) and how many a hold keeps back; 'run' then purges, printing its
progress after each chunk. Audited (show and --dry-run write nothing).

Example:
  vigil retention ` + name + `
`,
		setup: func(fs *flag.FlagSet) runFunc {
			cfg := defineRetentionFlags(fs)
			dry := show
			if !show {
				fs.BoolVar(&dry, "dry-run", false, "say what would be purged; change nothing")
			}
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if err := cfg.Validate(); err != nil {
					return usagef("%v", err)
				}
				sq, err := a.targetsStore(ctx, true)
				if err != nil {
					return err
				}
				r := a.retentionRunner(sq, *cfg)
				if !dry {
					r.Progress = func(k retention.Kind, done retention.Span, due retention.Due) {
						fmt.Fprintf(a.stdout, "  %s: %d of %d purged\n", k, done.N, due.N)
					}
				}
				rep, err := r.Run(ctx, dry)
				if rep != nil {
					printRetention(a, rep)
				}
				return err
			}
		},
	}
}

func (a *app) retentionRunner(sq backend, cfg retention.Config) *retention.Runner {
	p := a.cliActor()
	return &retention.Runner{Store: sq, Trail: &audit.Log{Store: sq}, Config: cfg,
		Actor: retention.Actor{Name: p.Name, Role: "cli", Remote: p.Remote}}
}

func printRetention(a *app, rep *retention.Report) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	verb := "PURGED"
	if rep.DryRun {
		verb = "WOULD PURGE"
	}
	fmt.Fprintf(tw, "KIND\tPERIOD\tCUTOFF\tDUE\tOLDEST\tNEWEST\tHELD BACK\t%s\t\n", verb)
	day := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format("2006-01-02")
	}
	for _, k := range retention.Kinds {
		d, p := rep.Due[k], rep.Purged[k].N
		if rep.DryRun {
			p = d.N
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t\n", k, rep.Periods[k], rep.Cutoffs[k].Format(time.RFC3339), d.N, day(d.Oldest), day(d.Newest), d.Held, p)
	}
	fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\tnever (kept whole)\t\n", retention.KindAudit, rep.Periods[retention.KindAudit])
	tw.Flush()
	fmt.Fprintf(a.stdout, "%d active legal hold(s) honoured\n", len(rep.Holds))
}

// retentionService runs the purge every interval until ctx ends (vigil
// serve); a failed run is logged and counted, and tried again next time.
func retentionService(r *retention.Runner, every time.Duration, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			rep, err := r.Run(ctx, false)
			switch {
			case err != nil && ctx.Err() == nil:
				log.Error("retention purge failed", "err", err)
			case rep != nil && rep.Total() > 0:
				log.Info("retention purge", "transcripts", rep.Purged[retention.KindTranscripts].N, "observations", rep.Purged[retention.KindObservations].N,
					"leads", rep.Purged[retention.KindLeads].N, "holds", len(rep.Holds))
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}

func holdCommand() *command {
	return &command{
		name:    "hold",
		summary: "Legal holds: a held target's observations, transcripts and leads are never purged.",
		usage:   "vigil hold add|release|list",
		help: `
Only a national office analyst (every target) or a supervisor (the targets
their agency sees) places, releases or lists holds: --as names the user
account, whose role is checked; the audit trail records the account and
the operating-system user. Every hold, release, list and refusal is
audited, the record written before the change. A hold on a target that is
later merged into another protects the survivor.

Examples:
  vigil hold add --as m.durand --target T-000042-69 --case "PV 2026/0042" --reason "judicial inquiry"
  vigil hold release --as m.durand --target T-000042-69 --reason "case closed"
  vigil hold list --as m.durand
`,
		subs: []*command{holdAddCommand(), holdReleaseCommand(), holdListCommand()},
	}
}

// holdsAs returns the holds service acting as the user named by --as.
func (a *app) holdsAs(ctx context.Context, as string) (*retention.Holds, retention.Actor, error) {
	if as == "" {
		return nil, retention.Actor{}, usagef("want --as USER: the account (national office analyst or supervisor) that places the hold")
	}
	sq, err := a.targetsStore(ctx, true)
	if err != nil {
		return nil, retention.Actor{}, err
	}
	u, err := sq.UserByName(ctx, as)
	if errors.Is(err, access.ErrNotFound) {
		return nil, retention.Actor{}, usagef("--as %q: no such user", as)
	}
	if err != nil {
		return nil, retention.Actor{}, err
	}
	if u.Disabled {
		return nil, retention.Actor{}, fmt.Errorf("--as %q: the account is disabled", as)
	}
	who := retention.Actor{Name: u.Name, Agency: u.Agency, Role: u.Role, Remote: a.cliActor().Remote}
	return &retention.Holds{Store: sq, Targets: sq, Trail: &audit.Log{Store: sq}}, who, nil
}

func holdAddCommand() *command {
	return &command{
		name:    "add",
		summary: "Place a legal hold on a target.",
		usage:   "vigil hold add --as USER --target ID [--case REF] --reason TEXT",
		help: `
Example:
  vigil hold add --as m.durand --target T-000042-69 --case "PV 2026/0042" --reason "judicial inquiry"
`,
		setup: func(fs *flag.FlagSet) runFunc {
			as := fs.String("as", "", "the `USER` placing the hold (analyst or supervisor)")
			target := fs.String("target", "", "the target's `ID`")
			caseRef := fs.String("case", "", "the case `REF` the hold is for")
			reason := fs.String("reason", "", "why (required)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *target == "" {
					return usagef("want --as USER --target ID --reason TEXT")
				}
				if _, ok := analysis.ParseTargetID(*target); !ok {
					return usagef("--target %q: want a target id such as T-000042-69", *target)
				}
				h, who, err := a.holdsAs(ctx, *as)
				if err != nil {
					return err
				}
				x, err := h.Add(ctx, who, *target, *caseRef, *reason)
				if errors.Is(err, retention.ErrReason) {
					return usagef("%v", err)
				}
				if err != nil {
					return fmt.Errorf("--target %s: %w", *target, err)
				}
				fmt.Fprintf(a.stdout, "hold %d on %s (case %q) by %s\n", x.ID, x.Target, x.Case, x.By)
				return nil
			}
		},
	}
}

func holdReleaseCommand() *command {
	return &command{
		name:    "release",
		summary: "Release the legal holds on a target (of one case with --case).",
		usage:   "vigil hold release --as USER --target ID [--case REF] --reason TEXT",
		help: `
The hold's row stays, with who released it, when and why. A supervisor
releases only the holds they placed themselves (name their --case when
the target has others); a national office analyst releases any.

Example:
  vigil hold release --as m.durand --target T-000042-69 --reason "case closed"
`,
		setup: func(fs *flag.FlagSet) runFunc {
			as := fs.String("as", "", "the `USER` releasing the hold (analyst or supervisor)")
			target := fs.String("target", "", "the target's `ID`")
			caseRef := fs.String("case", "", "release only the hold of this case `REF`")
			reason := fs.String("reason", "", "why (required)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *target == "" {
					return usagef("want --as USER --target ID --reason TEXT")
				}
				h, who, err := a.holdsAs(ctx, *as)
				if err != nil {
					return err
				}
				rel, err := h.Release(ctx, who, *target, *caseRef, *reason)
				if errors.Is(err, retention.ErrReason) {
					return usagef("%v", err)
				}
				if err != nil {
					return fmt.Errorf("--target %s: %w", *target, err)
				}
				for _, x := range rel {
					fmt.Fprintf(a.stdout, "hold %d on %s (case %q) released by %s\n", x.ID, x.Target, x.Case, x.ReleasedBy)
				}
				return nil
			}
		},
	}
}

func holdListCommand() *command {
	return &command{
		name:    "list",
		summary: "List the legal holds (--all: the released ones too).",
		usage:   "vigil hold list --as USER [--all]",
		help: `
A supervisor sees the holds on the targets their agency sees. Audited.

Example:
  vigil hold list --as m.durand --all
`,
		setup: func(fs *flag.FlagSet) runFunc {
			as := fs.String("as", "", "the `USER` asking (analyst or supervisor)")
			all := fs.Bool("all", false, "list released holds too")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				h, who, err := a.holdsAs(ctx, *as)
				if err != nil {
					return err
				}
				hs, err := h.List(ctx, who, !*all)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTARGET\tCASE\tBY\tAT\tREASON\tRELEASED\t")
				for _, x := range hs {
					rel := "-"
					if !x.Active() {
						rel = x.Released.Format("2006-01-02 15:04") + " by " + x.ReleasedBy + ": " + x.ReleaseReason
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", x.ID, x.Target, x.Case, x.By, x.At.Format("2006-01-02 15:04"), x.Reason, rel)
				}
				return tw.Flush()
			}
		},
	}
}
