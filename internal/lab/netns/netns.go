// Package netns runs Vigil's tests inside Linux network namespaces the
// test itself creates, with no default route and no way out of the
// machine: the whole test in a namespace of its own with loopback only
// (Isolated), or in a namespace the test named and wired itself (Run).
// The test binary re-executes itself there for the one test, and the
// parent test reports what the child did.
//
// It must never set up anything in the namespace the tests run in (the
// host's): every address and route it adds lives in a namespace that
// Linux deletes when its last process ends, or that the test removes in
// Cleanup.
//
// A test that needs namespaces skips, naming what is missing (root,
// unshare, ip), unless VIGIL_REQUIRE_NETNS=1 is set: then it fails
// (internal/testenv, part NETNS). For tests only.
package netns

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/testenv"
)

// childEnv holds, in a re-executed test binary, the name of the test it
// runs inside a namespace.
const childEnv = "VIGIL_NETNS_CHILD"

// Need checks that the test runs as root with tools (e.g. "ip",
// "unshare") on PATH; otherwise it skips, or fails with
// VIGIL_REQUIRE_NETNS=1. It skips in -short mode.
func Need(tb testing.TB, tools ...string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("namespace test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		testenv.Missing(tb, "NETNS", "not root: cannot create a network namespace (.ci/run runs as root)")
	}
	for _, t := range tools {
		testenv.Need(tb, "NETNS", t)
	}
}

// Child reports whether this process is the re-executed child running
// tb inside its namespace.
func Child(tb testing.TB) bool {
	return os.Getenv(childEnv) == tb.Name()
}

// Isolated runs tb in a network namespace of its own with loopback only
// (unshare -n), down: the child brings it up. In the child it returns
// true and the test goes on; in the parent it runs the child, reports
// what it did, and returns false: the test must then return.
func Isolated(tb testing.TB) bool {
	tb.Helper()
	if Child(tb) {
		return true
	}
	Need(tb, "unshare", "ip")
	Run(tb, []string{"unshare", "-n", "--"})
	return false
}

// Run re-executes the test binary for tb alone under prefix (a command
// that enters a namespace and runs the rest of its arguments:
// "unshare -n --", "ip netns exec NAME"), with env added to the child's
// environment. The child's output goes to tb's log; the child failing
// fails tb, the child skipping skips it with the child's reason.
func Run(tb testing.TB, prefix []string, env ...string) {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	var parts []string
	for _, p := range strings.Split(tb.Name(), "/") {
		parts = append(parts, "^"+regexp.QuoteMeta(p)+"$")
	}
	args := append(append([]string(nil), prefix...), exe, "-test.run", strings.Join(parts, "/"), "-test.v", "-test.count", "1")
	timeout := 10 * time.Minute
	if d, ok := deadline(tb); ok {
		timeout = time.Until(d) - 5*time.Second
		if timeout < 10*time.Second {
			tb.Fatalf("%v left: too little to run %s in a namespace", time.Until(d), tb.Name())
		}
	}
	args = append(args, "-test.timeout", timeout.String())
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), childEnv+"="+tb.Name()), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	tb.Logf("%s in a namespace (%s):\n%s", tb.Name(), strings.Join(prefix, " "), out.String())
	if err != nil {
		tb.Fatalf("%s in a namespace: %v", tb.Name(), err)
	}
	switch {
	case bytes.Contains(out.Bytes(), []byte("--- PASS: "+tb.Name()+" ")):
	case bytes.Contains(out.Bytes(), []byte("--- SKIP: "+tb.Name()+" ")):
		tb.Skip("skipped in the namespace: the reason is in the log above")
	default:
		tb.Fatalf("%s did not run in the namespace (no PASS or SKIP line)", tb.Name())
	}
}

// deadline is tb's test deadline, if it has one.
func deadline(tb testing.TB) (time.Time, bool) {
	if t, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		return t.Deadline()
	}
	return time.Time{}, false
}
