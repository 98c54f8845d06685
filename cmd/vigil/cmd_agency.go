package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
)

func agencyCommand() *command {
	return &command{
		name:    "agency",
		summary: "Add and list the agencies users belong to and targets are routed to.",
		usage:   "vigil agency COMMAND",
		help: `
An agency is a police service. Its id is the one the jurisdiction rules file
routes observations to, so that an investigator sees exactly the targets
routed to their agency (and those shared with it).
`,
		subs: []*command{agencyAddCommand(), agencyImportCommand(), agencyListCommand()},
	}
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

func agencyAddCommand() *command {
	return &command{
		name:    "add",
		summary: "Add an agency.",
		usage:   "vigil agency add --id ID --name NAME [--country CC] [--jurisdiction J]...",
		help: `
Adds agency ID. Use the id of the jurisdiction rules file. --jurisdiction
(repeatable, or comma-separated) records what it covers, for people to read;
routing itself follows the rules file.

Examples:
  vigil agency add --id fr-ofmin --name "Office mineurs (OFMIN)" --country FR --jurisdiction FR
  vigil agency add --id fr-szpj-sud-est --name "SZPJ Sud-Est" --country FR --jurisdiction FR-69,FR-38
`,
		setup: func(fs *flag.FlagSet) runFunc {
			id := fs.String("id", "", "agency `id` (as in the jurisdiction rules)")
			name := fs.String("name", "", "agency `name`")
			country := fs.String("country", "", "ISO 3166-1 alpha-2 `code`")
			var jur stringList
			fs.Var(&jur, "jurisdiction", "what it covers, e.g. FR-69 (repeatable)")
			return func(ctx context.Context, a *app, args []string) error {
				if *id == "" || *name == "" {
					return usagef("--id and --name are required")
				}
				svc, _, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				if err := svc.AddAgency(ctx, a.cliActor(), access.Agency{ID: *id, Name: *name, Country: strings.ToUpper(*country), Jurisdictions: jur}); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "agency %s added\n", *id)
				return nil
			}
		},
	}
}

func agencyImportCommand() *command {
	return &command{
		name:    "import",
		summary: "Add every agency a jurisdiction rules file declares.",
		usage:   "vigil agency import --rules FILE",
		help: `
Adds the agencies declared in a jurisdiction rules file (or a shipped
example, example:france), skipping those already present.

Examples:
  vigil agency import --rules /etc/vigil/france.yaml
  vigil agency import --rules example:france
`,
		setup: func(fs *flag.FlagSet) runFunc {
			rules := fs.String("rules", "", "jurisdiction rules `YAML`, or example:NAME")
			return func(ctx context.Context, a *app, args []string) error {
				if *rules == "" {
					return usagef("--rules is required")
				}
				r, err := loadRules(*rules)
				if err != nil {
					return err
				}
				svc, _, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				added, skipped, err := importAgencies(ctx, svc, a.cliActor(), r, *rules)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%d agencies added, %d already present\n", added, skipped)
				return nil
			}
		},
	}
}

// importAgencies adds the agencies rules declares (read from file),
// skipping those already present.
func importAgencies(ctx context.Context, svc *access.Service, actor *access.Principal, r *jurisdiction.Rules, file string) (added, skipped int, err error) {
	for _, ag := range r.Agencies() {
		err := svc.AddAgency(ctx, actor, access.Agency{ID: ag.ID, Name: ag.Name, Country: ag.Country, Address: ag.Address})
		switch {
		case errors.Is(err, access.ErrExists):
			skipped++
		case err != nil:
			return added, skipped, fmt.Errorf("%s line %d: %w", file, ag.Line, err)
		default:
			added++
		}
	}
	return added, skipped, nil
}

func agencyListCommand() *command {
	return &command{
		name:    "list",
		summary: "List agencies.",
		usage:   "vigil agency list",
		help: `
Lists the agencies with their country and jurisdictions.

Example:
  vigil agency list
`,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, a *app, args []string) error {
				_, sq, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				as, err := sq.Agencies(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tCOUNTRY\tNAME\tJURISDICTIONS")
				for _, ag := range as {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ag.ID, ag.Country, ag.Name, strings.Join(ag.Jurisdictions, ","))
				}
				return tw.Flush()
			}
		},
	}
}
