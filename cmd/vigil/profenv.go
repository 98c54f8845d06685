package main

import (
	"fmt"
	"io"
)

// refuseProfilerEnv refuses to run when GOPPROF is set.
//
// The lab's seeders are anacrolix/torrent clients, linked into the binary
// for `vigil demo` and `vigil lab`; that library imports
// github.com/anacrolix/envpprof, whose init reads GOPPROF and, given
// "http" or "http=ADDR", serves net/http/pprof and expvar on a listener of
// its own, outside the scope guard, the access layer and the audit log. A
// heap profile of `vigil serve` holds observations and sessions. The
// listener starts before main, so the best Vigil can do is stop at once:
// exit before anything is opened, say why, and leave the profile unread.
// (`cmd/vigil/deps.txt` shows the import chain.)
func refuseProfilerEnv(getenv func(string) string, stderr io.Writer) bool {
	v := getenv("GOPPROF")
	if v == "" {
		return false
	}
	fmt.Fprintf(stderr, "vigil: GOPPROF is set (%q): a library linked for the lab would serve memory profiles over HTTP, outside Vigil's access control; unset GOPPROF and run again\n", v)
	return true
}
