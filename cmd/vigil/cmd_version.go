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
		setup: func(fs *flag.FlagSet) runFunc {
			return func(ctx context.Context, a *app, args []string) error {
				fmt.Fprintf(a.stdout, "vigil %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	}
}
