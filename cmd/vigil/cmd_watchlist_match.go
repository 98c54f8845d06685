package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/store"
)

// matchJSON is one line of 'watchlist match --json'.
type matchJSON struct {
	Input      string         `json:"input"`
	Kind       string         `json:"kind,omitempty"`
	Hash       string         `json:"hash,omitempty"`
	Error      string         `json:"error,omitempty"`
	Matched    bool           `json:"matched"`    // on a watch-list, enabled, and not suppressed
	Suppressed bool           `json:"suppressed"` // on a known-benign list
	Entries    []matchEntryJS `json:"entries"`
}

type matchEntryJS struct {
	List     string   `json:"list"`
	Negative bool     `json:"negative"`
	Category string   `json:"category"`
	Severity int      `json:"severity"`
	Disabled bool     `json:"disabled"`
	Reason   string   `json:"disabled_reason,omitempty"`
	Trust    int      `json:"trust"`
	TrustBy  []string `json:"trust_from"`
}

func watchlistMatchCommand() *command {
	return &command{
		name:    "match",
		summary: "Say which lists and categories hold each hash, given in any of its forms.",
		usage:   "vigil watchlist match [--kind K] [--json] HASH...",
		help: `
Each HASH may be hex, base32, a urn: (urn:sha1:, urn:btih:, urn:tree:tiger:,
...), a magnet link or an ed2k:// link; a magnet with several hashes is
checked for each. A bare digest is checked as every kind of its length
(40 hex digits: sha1 and btih; 64: sha256, btih2 and btv2; 32: md5 and
ed2k), and the kinds a list holds it as are named; --kind checks one. A hash on a known-benign (negative) list is reported as
suppressed: it does not alert. Disabled entries are shown, but do not match.

Exit code 0 when every HASH could be read (matched or not), 1 otherwise.

Examples:
  vigil watchlist match 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12
  vigil watchlist match --kind ed2k 31d6cfe0d16ae931b73c59d7e0c089c0
  vigil watchlist match --json 'magnet:?xt=urn:btih:...'
`,
		setup: func(fs *flag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print one JSON object a line")
			kind := fs.String("kind", "", "check a bare digest as this `kind` only (default: every kind of its length)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) == 0 {
					return usagef("no HASH given")
				}
				hint := hashkind.Unknown
				if *kind != "" {
					k, err := hashkind.ParseKind(*kind)
					if err != nil {
						return usagef("--kind: %v", err)
					}
					hint = k
				}
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				bad := 0
				for _, in := range args {
					hs, bare, err := matchHashes(in, hint)
					if err != nil {
						bad++
						r := matchJSON{Input: in, Error: err.Error(), Entries: []matchEntryJS{}}
						if *asJSON {
							writeJSON(a.stdout, r)
						} else {
							fmt.Fprintf(a.stdout, "%s: %v\n", in, err)
						}
						continue
					}
					var shown int
					var tried []string
					for _, h := range hs {
						recs, err := st.Lookup(ctx, h)
						if err != nil {
							return fmt.Errorf("look up %s: %w", h, err)
						}
						r := matchResult(in, h, recs)
						tried = append(tried, r.Kind)
						if *asJSON {
							writeJSON(a.stdout, r)
							continue
						}
						// A bare digest is tried as every kind of its
						// length: show the kinds some list holds it as.
						if bare && len(hs) > 1 && len(r.Entries) == 0 {
							continue
						}
						printMatch(a, r)
						shown++
					}
					if !*asJSON && bare && len(hs) > 1 && shown == 0 {
						fmt.Fprintf(a.stdout, "%s: no match as %s (give --kind to check one kind)\n", hs[0].Hex(), strings.Join(tried, ", "))
					}
				}
				if bad > 0 {
					return errSilent
				}
				return nil
			}
		},
	}
}

func matchResult(in string, h hashkind.Hash, recs []store.EntryRecord) matchJSON {
	r := matchJSON{Input: in, Kind: h.Kind().String(), Hash: h.String(), Entries: []matchEntryJS{}}
	for _, rec := range recs {
		e := matchEntryJS{List: rec.List.Name, Negative: rec.List.Negative, Category: rec.Entry.Category,
			Severity: rec.Entry.Severity, Disabled: rec.Disabled, Reason: rec.Reason,
			Trust: rec.Trust.Confirmations, TrustBy: rec.Trust.From}
		if e.TrustBy == nil {
			e.TrustBy = []string{}
		}
		r.Entries = append(r.Entries, e)
		switch {
		case rec.List.Negative:
			r.Suppressed = true
		case !rec.Disabled:
			r.Matched = true
		}
	}
	if r.Suppressed {
		r.Matched = false
	}
	return r
}

func printMatch(a *app, r matchJSON) {
	state := "no match"
	switch {
	case r.Suppressed:
		state = "SUPPRESSED (on a known-benign list)"
	case r.Matched:
		state = "MATCH"
	case len(r.Entries) > 0:
		state = "no match (entries disabled)"
	}
	fmt.Fprintf(a.stdout, "%s %s: %s\n", r.Kind, r.Hash, state)
	for _, e := range r.Entries {
		var notes []string
		if e.Negative {
			notes = append(notes, "known-benign list")
		}
		if e.Disabled {
			notes = append(notes, "disabled: "+e.Reason)
		}
		if e.Trust > 0 {
			notes = append(notes, fmt.Sprintf("confirmed by %d: %s", e.Trust, strings.Join(e.TrustBy, ", ")))
		}
		line := fmt.Sprintf("  list %s, category %q, severity %d", e.List, e.Category, e.Severity)
		if len(notes) > 0 {
			line += " (" + strings.Join(notes, "; ") + ")"
		}
		fmt.Fprintln(a.stdout, line)
	}
}

// matchHashes is what one HASH argument stands for: every hash of a magnet
// or link, the one a prefix or URN names, or, for a bare digest without
// --kind, one hash for every kind of that length (bare is then true): 40
// hex digits are looked up as sha1 and as btih.
func matchHashes(in string, hint hashkind.Kind) (hs []hashkind.Hash, bare bool, err error) {
	if hint == hashkind.Unknown && !strings.ContainsRune(strings.TrimSpace(in), ':') {
		hs, err = hashkind.Candidates(in, hint)
		return hs, true, err
	}
	ref, err := hashkind.ParseRef(in, hint)
	return ref.Hashes, false, err
}
