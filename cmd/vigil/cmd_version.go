package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
)

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "Print Vigil's version and build.",
		usage:   "vigil version",
		help: `
Prints the version, the VCS commit the binary was built from (and
"modified" when its tree had uncommitted changes), the Go version and the
platform: what every observation records as its sensor's build.
`,
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, a *app, args []string) error {
				ver, commit, modified := build()
				if commit == "" {
					commit = "unknown"
				}
				if modified {
					commit += ", modified"
				}
				fmt.Fprintf(a.stdout, "vigil %s (commit %s; %s, %s/%s)\n", ver, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	}
}
