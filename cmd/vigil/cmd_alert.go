package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/audit"
)

func alertCommand() *command {
	return &command{
		name:    "alert",
		summary: "Alert rules, the alerts they fired and their deliveries (e-mail, webhooks).",
		usage:   "vigil alert COMMAND",
		help: `
An agency's alert rules tell it, on its overview and live feed, by e-mail
and by webhook, when something it watches happens. vigil serve evaluates
the rules and sends the deliveries (--alert-every, --alert-attempts). Each event fires a rule once, whatever restarts or
processes; a rule sends at most --max-per-hour alerts an hour, and the
surplus is kept and summarised. An alert says only what its agency may
read. docs/alerts.md describes them.
`,
		subs: []*command{alertRuleCommand(), alertListCommand(), alertDeliveriesCommand()},
	}
}

func alertRuleCommand() *command {
	return &command{
		name:    "rule",
		summary: "Add, list and remove an agency's alert rules.",
		usage:   "vigil alert rule add|list|remove ...",
		subs:    []*command{alertRuleAddCommand(), alertRuleListCommand(), alertRuleRemoveCommand()},
	}
}

func alertRuleAddCommand() *command {
	return &command{
		name:    "add",
		summary: "Add an alert rule for an agency.",
		usage:   "vigil alert rule add --id ID --agency ID --kind KIND [parameters] [--email ADDR]... [--webhook ID]...",
		help: `
Kinds and their parameters:
  list_seen         a file of --list NAME and/or --category CAT seen in the
                    agency's jurisdiction (an observation routed to it made
                    after the rule); --jurisdiction may only name the
                    agency itself
  score_passed      a target in the agency's scope at or above --score N
                    (once per target)
  flagged_active    a target in its scope carrying --flag (known_offender,
                    the default, or access_to_children) seen on a new day
                    after the rule was made (once per target and day)
  held_new_address  a target the agency holds (vigil claim) seen at an IP
                    address first seen after its claim began (once per
                    target and address)
A rule reads through its agency's scope: the targets routed to, assigned
to or shared with it; no parameter widens it. Audited.

Examples:
  vigil alert rule add --id nat-78 --agency fr-versailles --kind list_seen --list national --email alerts@versailles.example
  vigil alert rule add --id high --agency fr-versailles --kind score_passed --score 60 --webhook soc --max-per-hour 5
`,
		setup: func(fs *flag.FlagSet) runFunc {
			var r alerts.Rule
			var emails, hooks stringList
			fs.StringVar(&r.ID, "id", "", "the rule's `ID` (a-z, 0-9, '_', '-')")
			fs.StringVar(&r.Agency, "agency", "", "the owning agency's `ID`: the alerts are for it alone")
			fs.StringVar(&r.Kind, "kind", "", "`KIND`: "+strings.Join(alerts.Kinds, ", "))
			fs.StringVar(&r.Params.List, "list", "", "list_seen: a watch-list `NAME`")
			fs.StringVar(&r.Params.Category, "category", "", "list_seen: a list `CATEGORY`")
			fs.StringVar(&r.Params.Jurisdiction, "jurisdiction", "", "list_seen: only observations routed to this agency `ID` (the rule's own)")
			fs.Float64Var(&r.Params.Score, "score", 0, "score_passed: the threshold")
			fs.StringVar(&r.Params.Flag, "flag", "", "flagged_active: the analyst's `FLAG` (default known_offender)")
			fs.Var(&emails, "email", "send by e-mail to `ADDR` (repeatable)")
			fs.Var(&hooks, "webhook", "send to the webhook `ID` configured in vigil serve (repeatable)")
			fs.IntVar(&r.MaxPerHour, "max-per-hour", alerts.DefaultMaxPerHour, "send at most `N` alerts an hour; the surplus is kept and summarised")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				r.Emails, r.Webhooks = emails, hooks
				r.By, r.Created = a.cliActor().Name, time.Now().UTC()
				if err := r.Validate(); err != nil {
					return usagef("%v", err)
				}
				sq, err := a.backendStore(ctx)
				if err != nil {
					return err
				}
				if _, err := sq.Agency(ctx, r.Agency); err != nil {
					return fmt.Errorf("--agency %s: %w ('vigil agency list' lists them)", r.Agency, err)
				}
				if _, r.FromSeq, err = sq.AnalysisSeqs(ctx, nil); err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, audit.ActionChange, "alert_rule:"+r.ID, r); err != nil {
					return err
				}
				if err := sq.AddAlertRule(ctx, r); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "alert rule %s added for %s (%s)\n", r.ID, r.Agency, r.Kind)
				return nil
			}
		},
	}
}

func alertRuleListCommand() *command {
	return &command{
		name:    "list",
		summary: "List alert rules.",
		usage:   "vigil alert rule list [--agency ID] [--json]",
		help: `
Example:
  vigil alert rule list --agency fr-versailles
`,
		setup: func(fs *flag.FlagSet) runFunc {
			ag := fs.String("agency", "", "only this agency's rules")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, a *app, args []string) error {
				sq, err := a.backendStore(ctx)
				if err != nil {
					return err
				}
				rs, err := sq.AlertRules(ctx, *ag)
				if err != nil {
					return err
				}
				if *asJSON {
					return writeIndentedJSON(a.stdout, rs)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tAGENCY\tKIND\tPARAMETERS\tCHANNELS\tMAX/H")
				for _, r := range rs {
					p := r.Params
					var ps []string
					for _, kv := range [][2]string{{"list", p.List}, {"category", p.Category}, {"jurisdiction", p.Jurisdiction}, {"flag", p.Flag}} {
						if kv[1] != "" {
							ps = append(ps, kv[0]+"="+kv[1])
						}
					}
					if p.Score != 0 {
						ps = append(ps, fmt.Sprintf("score=%g", p.Score))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.Agency, r.Kind, strings.Join(ps, " "),
						strings.Join(append([]string{"feed"}, r.Channels()...), " "), r.MaxPerHour)
				}
				return tw.Flush()
			}
		},
	}
}

func alertRuleRemoveCommand() *command {
	return &command{
		name:    "remove",
		summary: "Remove an agency's alert rule (its alerts are kept).",
		usage:   "vigil alert rule remove --id ID --agency ID",
		help: `
Its alerts are kept under its id, so the id is not given to a new rule
once it has alerts.

Example:
  vigil alert rule remove --id nat-78 --agency fr-versailles
`,
		setup: func(fs *flag.FlagSet) runFunc {
			id := fs.String("id", "", "the rule's `ID`")
			ag := fs.String("agency", "", "the agency `ID` that owns it")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *id == "" || *ag == "" {
					return usagef("want --id ID and --agency ID")
				}
				sq, err := a.backendStore(ctx)
				if err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, audit.ActionChange, "alert_rule:"+*id, map[string]any{"remove": *id, "agency": *ag}); err != nil {
					return err
				}
				if err := sq.RemoveAlertRule(ctx, *ag, *id); err != nil {
					if errors.Is(err, alerts.ErrNotFound) {
						return fmt.Errorf("--id %s --agency %s: no such rule ('vigil alert rule list')", *id, *ag)
					}
					return err
				}
				fmt.Fprintf(a.stdout, "alert rule %s removed\n", *id)
				return nil
			}
		},
	}
}

func alertListCommand() *command {
	return &command{
		name:    "list",
		summary: "List an agency's alerts, newest first (audited as a read).",
		usage:   "vigil alert list --agency ID [--since DATE] [--limit N] [--json]",
		help: `
HELD marks an alert over its rule's limit: kept, shown, not sent; a later
summary alert counts it.

Example:
  vigil alert list --agency fr-versailles --since 2026-06-01
`,
		setup: func(fs *flag.FlagSet) runFunc {
			ag := fs.String("agency", "", "the agency `ID` (required)")
			since := fs.String("since", "", "only alerts recorded on or after `DATE` (YYYY-MM-DD)")
			limit := fs.Int("limit", 50, "at most `N` alerts")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *ag == "" {
					return usagef("want --agency ID")
				}
				q := alerts.Query{Agency: *ag, Limit: *limit}
				if *since != "" {
					d, err := time.Parse(time.DateOnly, *since)
					if err != nil {
						return usagef("--since %q: want YYYY-MM-DD", *since)
					}
					q.Since = d
				}
				sq, err := a.backendStore(ctx)
				if err != nil {
					return err
				}
				as, err := sq.AgencyAlerts(ctx, q)
				if err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, alerts.ActionAlertView, "alerts:"+*ag, alerts.ViewDetail(as)); err != nil {
					return err
				}
				if *asJSON {
					return writeIndentedJSON(a.stdout, as)
				}
				for _, al := range as {
					held := ""
					if al.Held {
						held = " HELD"
					}
					fmt.Fprintf(a.stdout, "%s  %s  %s  %s%s\n", al.Created.Format("2006-01-02 15:04"), al.ID, al.Rule, al.Subject, held)
				}
				return nil
			}
		},
	}
}

func alertDeliveriesCommand() *command {
	return &command{
		name:    "deliveries",
		summary: "List alert deliveries: channel, attempts, next try, outcome, last error.",
		usage:   "vigil alert deliveries [--agency ID] [--limit N] [--json]",
		help: `
Outcomes: pending (waiting for its next try), delivered, failed (a
permanent refusal: a 4xx answer, a refused address, an unconfigured
channel) and gave_up (after vigil serve's --alert-attempts).

Example:
  vigil alert deliveries --agency fr-versailles
`,
		setup: func(fs *flag.FlagSet) runFunc {
			ag := fs.String("agency", "", "only this agency's deliveries")
			limit := fs.Int("limit", 50, "at most `N` deliveries")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, a *app, args []string) error {
				sq, err := a.backendStore(ctx)
				if err != nil {
					return err
				}
				ds, err := sq.Deliveries(ctx, *ag, *limit)
				if err != nil {
					return err
				}
				if *asJSON {
					return writeIndentedJSON(a.stdout, ds)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "DELIVERY\tRULE\tCHANNEL\tATTEMPTS\tOUTCOME\tNEXT TRY\tLAST ERROR")
				for _, d := range ds {
					next := ""
					if d.Outcome == alerts.Pending {
						next = d.NextTry.Format("2006-01-02 15:04:05")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Rule, d.Channel, d.Attempts, d.Outcome, next, d.LastError)
				}
				return tw.Flush()
			}
		},
	}
}
