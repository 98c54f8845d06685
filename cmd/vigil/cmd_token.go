package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
)

func tokenCommand() *command {
	return &command{
		name:    "token",
		summary: "Create, list and revoke API tokens.",
		usage:   "vigil token COMMAND",
		help: `
An API token lets a program call /api/v1 as a user, with
"Authorization: Bearer TOKEN". It has the user's role and scope. Vigil keeps
only its hash: the token is printed once, when created.
`,
		subs: []*command{tokenCreateCommand(), tokenListCommand(), tokenRevokeCommand()},
	}
}

func tokenCreateCommand() *command {
	return &command{
		name:    "create",
		summary: "Create an API token for a user and print it once.",
		usage:   "vigil token create --user NAME [--expires 90d] [--label TEXT]",
		help: `
Prints a new token for user NAME on standard output (and nothing else), so
that it can be piped into a secret store. It cannot be shown again: create
another if it is lost, and revoke the old one.

Every token expires: --expires is at most 90 days ("never" is refused). A
password change ('vigil user passwd') revokes the user's tokens.

A token has its user's role: give a program an account of the narrowest
role that does its work. A platform's trust-and-safety team gets an account
of role platform ('vigil user add --role platform'), whose token may only
call POST /api/v1/check (docs/platforms.md).

Examples:
  vigil token create --user ts-filehost --expires 90d --label "platform check" > token.txt
  curl -H "Authorization: Bearer $(cat token.txt)" -H "Content-Type: application/json" \
      -d '{"purpose": "ticket 4242", "checks": [{"address": "203.0.113.7", "port": 51413, "time": "2026-12-01T21:04:05Z"}]}' \
      http://127.0.0.1:8080/api/v1/check
`,
		setup: func(fs *flag.FlagSet) runFunc {
			name := fs.String("user", "", "user `name`")
			expires := fs.String("expires", "90d", "lifetime: days (90d) or a duration (12h); at most 90 days")
			label := fs.String("label", "", "what the token is for")
			return func(ctx context.Context, a *app, args []string) error {
				if *name == "" {
					return usagef("--user is required")
				}
				ttl, err := parseTTL(*expires)
				if err != nil {
					return usagef("--expires %v", err)
				}
				if ttl <= 0 || ttl > access.DefaultMaxTokenTTL {
					return usagef("--expires %s: want a lifetime of at most 90 days (a token that never expires is not allowed)", *expires)
				}
				svc, _, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				tok, t, err := svc.CreateToken(ctx, a.cliActor(), *name, *label, ttl)
				if err != nil {
					return err
				}
				fmt.Fprintln(a.stdout, tok)
				exp := "never"
				if !t.Expires.IsZero() {
					exp = t.Expires.Format(time.RFC3339)
				}
				fmt.Fprintf(a.stderr, "token %d for %s, expires %s; it will not be shown again\n", t.ID, *name, exp)
				return nil
			}
		},
	}
}

func tokenListCommand() *command {
	return &command{
		name:    "list",
		summary: "List API tokens (never the tokens themselves).",
		usage:   "vigil token list [--user NAME]",
		help: `
Lists tokens with their id, user, label, creation, expiry, last use and
revocation. The token values are not stored and cannot be listed.

Example:
  vigil token list --user ts-filehost
`,
		setup: func(fs *flag.FlagSet) runFunc {
			name := fs.String("user", "", "only this user's tokens")
			return func(ctx context.Context, a *app, args []string) error {
				_, sq, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				var uid int64
				names := map[int64]string{}
				us, err := sq.Users(ctx)
				if err != nil {
					return err
				}
				for _, u := range us {
					names[u.ID] = u.Name
					if u.Name == *name {
						uid = u.ID
					}
				}
				if *name != "" && uid == 0 {
					return fmt.Errorf("user %s: not found", *name)
				}
				ts, err := sq.Tokens(ctx, uid)
				if err != nil {
					return err
				}
				tf := func(t time.Time) string {
					if t.IsZero() {
						return "-"
					}
					return t.Format(time.RFC3339)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tUSER\tLABEL\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
				for _, t := range ts {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, names[t.UserID], t.Label, tf(t.Created), tf(t.Expires), tf(t.LastUsed), tf(t.Revoked))
				}
				return tw.Flush()
			}
		},
	}
}

func tokenRevokeCommand() *command {
	return &command{
		name:    "revoke",
		summary: "Revoke an API token by its id.",
		usage:   "vigil token revoke --id ID",
		help: `
Revokes token ID (see 'vigil token list'): it is refused from then on.

Example:
  vigil token revoke --id 7
`,
		setup: func(fs *flag.FlagSet) runFunc {
			id := fs.String("id", "", "token `id`")
			return func(ctx context.Context, a *app, args []string) error {
				n, err := strconv.ParseInt(*id, 10, 64)
				if err != nil || n <= 0 {
					return usagef("--id %q: want a token id from 'vigil token list'", *id)
				}
				svc, _, err := a.accounts(ctx)
				if err != nil {
					return err
				}
				if err := svc.RevokeToken(ctx, a.cliActor(), n); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "token %d revoked\n", n)
				return nil
			}
		},
	}
}
