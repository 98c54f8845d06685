package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

// accounts opens the store and the account service over it. Changes made
// from the command line are audited as "cli:<os user>".
func (a *app) accounts(ctx context.Context) (*access.Service, backend, error) {
	st, err := a.store(ctx)
	if err != nil {
		return nil, nil, err
	}
	sq, ok := st.(backend)
	if !ok {
		return nil, nil, fmt.Errorf("store %s keeps no accounts", redactDSN(a.dbPath))
	}
	svc, err := access.New(sq, &audit.Log{Store: sq}, access.DefaultConfig())
	if err != nil {
		return nil, nil, err
	}
	return svc, sq, nil
}

// readPassword reads the first line of standard input.
func (a *app) readPassword() (string, error) {
	line, err := bufio.NewReader(io.LimitReader(a.stdin, access.MaxPassword+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usagef("no password on standard input (give it as the first line, at least %d characters)", access.MinPassword)
	}
	if err := access.CheckPassword(pw); err != nil {
		return "", usagef("%v", err)
	}
	return pw, nil
}

func userCommand() *command {
	return &command{
		name:    "user",
		summary: "Add, list and disable user accounts; set passwords.",
		usage:   "vigil user COMMAND",
		help: `
Accounts belong to an agency and have one role: admin, analyst (national
view), supervisor (own agency, and its staff's audit trail), investigator
(own agency's targets and those shared with it), auditor (the audit
trail) or platform (a platform's trust-and-safety team: the address check
POST /api/v1/check and nothing else; docs/platforms.md). Passwords are read from standard input, never from the command
line, and stored as argon2id hashes. Every change is in the audit trail.
`,
		subs: []*command{userAddCommand(), userPasswdCommand(), userDisableCommand(), userListCommand(), userLinkCommand()},
	}
}

func userAddCommand() *command {
	return &command{
		name:    "add",
		summary: "Create an account; the password is the first line of standard input.",
		usage:   "vigil user add --agency ID --role ROLE --name NAME [--lang fr|en] [--tz ZONE] [--oidc-only]",
		help: `
Creates the account NAME in agency ID (add the agency first: 'vigil agency
add') with role admin, analyst, supervisor, investigator, auditor or
platform (a platform's trust-and-safety team: it may only call POST
/api/v1/check, with an API token, and sees no page; its agency is the
platform itself, added with 'vigil agency add'). The
password is read from the first line of standard input and must be at least
12 characters. --oidc-only makes an account without a local password, that
logs in through the agency's single sign-on only (see 'vigil user link').

Examples:
  printf '%s\n' "$PASSWORD" | vigil user add --agency fr-ofmin --role analyst --name a.martin
  vigil user add --agency fr-szpj-sud-est --role investigator --name j.dupont --lang fr --tz Europe/Paris < pw.txt
  vigil user add --agency fr-ofmin --role auditor --name audit1 --oidc-only
  printf '%s\n' "$PASSWORD" | vigil user add --agency filehost --role platform --name ts-filehost --lang en
`,
		setup: func(fs *flag.FlagSet) runFunc {
			agency := fs.String("agency", "", "the user's agency `id`")
			role := fs.String("role", "", "`role`: admin, analyst, supervisor, investigator, auditor, platform")
			name := fs.String("name", "", "user `name` (letters, digits, . _ @ + -)")
			lang := fs.String("lang", "fr", "interface language: fr or en")
			tz := fs.String("tz", "Europe/Paris", "time `zone` for displayed times (IANA name)")
			oidcOnly := fs.Bool("oidc-only", false, "no local password: log in through OpenID Connect only")
			return func(ctx context.Context, a *app, args []string) error {
				if *agency == "" || *role == "" || *name == "" {
					return usagef("--agency, --role and --name are required")
				}
				r, err := access.ParseRole(*role)
				if err != nil {
					return usagef("--role: %v", err)
				}
				pw := ""
				if !*oidcOnly {
					if pw, err = a.readPassword(); err != nil {
						return err
					}
				}
				svc, _, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				u, err := svc.AddUser(ctx, a.cliActor(), access.User{Name: *name, Agency: *agency, Role: r, Lang: access.Lang(*lang), TimeZone: *tz}, pw)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "user %s added: %s of %s\n", u.Name, u.Role, u.Agency)
				return nil
			}
		},
	}
}

func userPasswdCommand() *command {
	return &command{
		name:    "passwd",
		summary: "Set a user's password (first line of standard input); ends their sessions and revokes their tokens.",
		usage:   "vigil user passwd --name NAME",
		help: `
Replaces the password of NAME with the first line of standard input, lifts
a lockout, ends the user's open sessions and revokes their API tokens.
The password must have at least 12 characters and must not be a common
or breached password (a list of 30,000 shipped with Vigil), nor one with
digits or symbols around it, nor a repetition or a run of characters.

Example:
  printf '%s\n' "$NEW_PASSWORD" | vigil user passwd --name a.martin
`,
		setup: func(fs *flag.FlagSet) runFunc {
			name := fs.String("name", "", "user `name`")
			return func(ctx context.Context, a *app, args []string) error {
				if *name == "" {
					return usagef("--name is required")
				}
				pw, err := a.readPassword()
				if err != nil {
					return err
				}
				svc, _, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				if err := svc.SetPassword(ctx, a.cliActor(), *name, pw); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "password of %s changed; their sessions were ended and their API tokens revoked\n", *name)
				return nil
			}
		},
	}
}

func userDisableCommand() *command {
	return &command{
		name:    "disable",
		summary: "Disable an account: no login, sessions ended, tokens refused.",
		usage:   "vigil user disable --name NAME [--reason TEXT]",
		help: `
Disables NAME: its password and single sign-on logins are refused, its
open sessions end at once and its API tokens stop working. The account and
its history stay, for the audit trail.

Example:
  vigil user disable --name j.dupont --reason "left the service 2026-11-30"
`,
		setup: func(fs *flag.FlagSet) runFunc {
			name := fs.String("name", "", "user `name`")
			reason := fs.String("reason", "", "why (kept with the account and in the audit trail)")
			return func(ctx context.Context, a *app, args []string) error {
				if *name == "" {
					return usagef("--name is required")
				}
				svc, _, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				if err := svc.DisableUser(ctx, a.cliActor(), *name, *reason); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "user %s disabled\n", *name)
				return nil
			}
		},
	}
}

// userJSON is one line of 'user list --json' (a contract).
type userJSON struct {
	Name        string `json:"name"`
	Agency      string `json:"agency"`
	Role        string `json:"role"`
	Lang        string `json:"lang"`
	TimeZone    string `json:"time_zone"`
	Disabled    bool   `json:"disabled"`
	Reason      string `json:"disabled_reason,omitempty"`
	Password    bool   `json:"password"` // has a local password
	LockedUntil string `json:"locked_until,omitempty"`
	Created     string `json:"created"`
}

func userListCommand() *command {
	return &command{
		name:    "list",
		summary: "List accounts with agency, role and state.",
		usage:   "vigil user list [--json]",
		help: `
Lists every account. With --json, one object per line:
  {"name","agency","role","lang","time_zone","disabled","disabled_reason",
   "password","locked_until","created"}

Example:
  vigil user list --json | jq -r 'select(.role=="investigator") | .name'
`,
		setup: func(fs *flag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "one JSON object per line")
			return func(ctx context.Context, a *app, args []string) error {
				_, sq, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				us, err := sq.Users(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				enc := json.NewEncoder(a.stdout)
				if !*asJSON {
					fmt.Fprintln(tw, "NAME\tAGENCY\tROLE\tLANG\tSTATE")
				}
				now := time.Now()
				for _, u := range us {
					j := userJSON{Name: u.Name, Agency: u.Agency, Role: string(u.Role), Lang: string(u.Lang), TimeZone: u.TimeZone,
						Disabled: u.Disabled, Reason: u.DisabledReason, Password: u.PasswordHash != "", Created: u.Created.Format(time.RFC3339)}
					state := "active"
					if now.Before(u.LockedUntil) {
						j.LockedUntil = u.LockedUntil.Format(time.RFC3339)
						state = "locked until " + j.LockedUntil
					}
					if u.Disabled {
						state = "disabled"
					}
					if *asJSON {
						if err := enc.Encode(j); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Agency, u.Role, u.Lang, state)
				}
				if !*asJSON {
					return tw.Flush()
				}
				return nil
			}
		},
	}
}

func userLinkCommand() *command {
	return &command{
		name:    "link",
		summary: "Link a single sign-on identity (OpenID Connect) to an account.",
		usage:   "vigil user link --name NAME --issuer URL --subject VALUE",
		help: `
Lets NAME log in through the OpenID provider at URL: VALUE is the value of
the configured claim (by default the e-mail address) in that provider's ID
tokens. An identity that is neither linked nor equal to a user name is
refused, and the refusal is audited.

Example:
  vigil user link --name j.dupont --issuer https://sso.interieur.example --subject jean.dupont@interieur.example
`,
		setup: func(fs *flag.FlagSet) runFunc {
			name := fs.String("name", "", "user `name`")
			issuer := fs.String("issuer", "", "the provider's issuer `URL`")
			subject := fs.String("subject", "", "the claim's `value` for this user")
			return func(ctx context.Context, a *app, args []string) error {
				if *name == "" || *issuer == "" || *subject == "" {
					return usagef("--name, --issuer and --subject are required")
				}
				svc, _, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				if err := svc.LinkIdentity(ctx, a.cliActor(), *name, *issuer, *subject); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s at %s now logs in as %s\n", *subject, *issuer, *name)
				return nil
			}
		},
	}
}

// parseTTL reads a lifetime: a Go duration (12h, 90m) or days (90d); 0 or
// "never" for none.
func parseTTL(s string) (time.Duration, error) {
	if s == "" || s == "0" || s == "never" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("%q: want a number of days such as 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration such as 90d or 12h", s)
	}
	return d, nil
}
