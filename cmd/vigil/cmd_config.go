package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

func configCommand() *command {
	return &command{
		name:    "config",
		summary: "Work with Vigil's config file.",
		usage:   "vigil config COMMAND",
		subs: []*command{{
			name:    "example",
			summary: "Print a commented config file with every setting and its default.",
			usage:   "vigil config example > vigil.yaml",
			help: `
Every flag of every command can be set in the config file: global flags at
the top level, a command's own flags in its section (for 'vigil watchlist
import', under watchlist: import:). Flags given on the command line win over
VIGIL_* environment variables, which win over the file. Unknown keys are an
error, named with their line.

Example:
  vigil config example > /etc/vigil/vigil.yaml
  VIGIL_CONFIG=/etc/vigil/vigil.yaml vigil watchlist list
`,
			setup: func(fs *flag.FlagSet) runFunc {
				return func(ctx context.Context, a *app, args []string) error {
					writeConfigExample(a.stdout, rootCommand())
					return nil
				}
			},
		}},
	}
}

// writeConfigExample prints every setting of the command tree, commented
// out at its default, so the file documents itself and stays in step with
// the flags.
func writeConfigExample(w io.Writer, root *command) {
	fmt.Fprintln(w, "# Vigil config file (YAML). Uncomment what you change.")
	fmt.Fprintln(w, "# Precedence: command-line flag > VIGIL_* environment variable > this file.")
	fmt.Fprintln(w)
	a := &app{}
	g := flag.NewFlagSet("", flag.ContinueOnError)
	a.defineGlobal(g)
	g.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return // the file cannot name itself
		}
		writeSetting(w, 0, f)
	})
	var walk func(c *command, depth int)
	walk = func(c *command, depth int) {
		if c.setup != nil {
			fs := flag.NewFlagSet("", flag.ContinueOnError)
			c.setup(fs)
			fs.VisitAll(func(f *flag.Flag) { writeSetting(w, depth, f) })
		}
		for _, s := range c.subs {
			if !hasFlags(s) {
				continue
			}
			fmt.Fprintf(w, "\n%s# %s\n%s%s:\n", indent(depth), s.summary, indent(depth), s.name)
			walk(s, depth+1)
		}
	}
	walk(root, 0)
}

func hasFlags(c *command) bool {
	if c.setup != nil {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		c.setup(fs)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			return true
		}
	}
	for _, s := range c.subs {
		if hasFlags(s) {
			return true
		}
	}
	return false
}

func writeSetting(w io.Writer, depth int, f *flag.Flag) {
	_, usage := flag.UnquoteUsage(f)
	fmt.Fprintf(w, "%s# %s\n", indent(depth), usage)
	def := f.DefValue
	if def == "" {
		def = `""`
	}
	fmt.Fprintf(w, "%s# %s: %s\n", indent(depth), f.Name, def)
}

func indent(depth int) string { return strings.Repeat("  ", depth) }
