// Package testenv decides what a test does when a real part it needs (a
// Debian program, a database server, a geolocation file, a network
// namespace) is missing: it skips, naming what is missing and how to get
// it, unless the environment requires that part, and then it fails.
//
// A part is required by VIGIL_REQUIRE_<PART>=1 (VIGIL_REQUIRE_QPDF=1,
// VIGIL_REQUIRE_POSTGRES=1, ...). .ci/run sets one for every part it
// installs or starts, so that a part CI failed to provide
// fails CI instead of passing as a skipped test.
//
// It is imported by tests only, and must never be imported by a package
// that is built into the vigil binary.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// Parts are the parts a test may require, each with what provides it.
// Required and Missing refuse a name that is not listed, so that a typo
// in a switch cannot silently let a test skip.
var Parts = map[string]string{
	"AMULE":        "Debian packages amule-daemon and amule-utils, root and unshare (aMule in a network namespace)",
	"CHROMIUM":     "Debian package chromium (headless browser tests)",
	"CITUS":        "a Citus coordinator for PostgreSQL 15 named by VIGIL_TEST_CITUS (a postgres:// DSN; not in Debian: build Citus from source against postgresql-server-dev-15, shared_preload_libraries = 'citus', CREATE EXTENSION citus, citus_add_node for each worker; docs/deployment.md, \"Citus, run\")",
	"GEO":          "a real geolocation database under /var/lib/vigil/geo: bash internal/geo/testdata/fetch-geo-db.sh (needs npm)",
	"IPV6":         "an IPv6 loopback address ::1 (sysctl net.ipv6.conf.lo.disable_ipv6=0)",
	"HASHTOOLS":    "Debian packages rhash, hashdeep and coreutils (reference hashers)",
	"LIBTORRENT":   "Debian package python3-libtorrent, for /usr/bin/python3",
	"LOOPBACKNS":   "a network namespace with loopback only: unshare -n sh -c 'ip link set lo up && go test ...' as root",
	"NATS":         "Debian package nats-server (/usr/sbin/nats-server: the fault tests start, kill and restart a real JetStream server on loopback)",
	"NATSCLI":      "the nats command-line tool on PATH (docs/deployment.md's commands for the stream and consumer): go install github.com/nats-io/natscli/nats@v0.5.0, then PATH=$(go env GOPATH)/bin:$PATH",
	"NETNS":        "root and iproute2, to create network namespaces joined by a veth pair",
	"OPENSSL":      "Debian package openssl (docs/alerts.md's shell check of a webhook signature)",
	"OPENTRACKER":  "Debian package opentracker",
	"POPPLER":      "Debian package poppler-utils (pdftotext)",
	"POSTGRES":     "a PostgreSQL server on 127.0.0.1:5432 (Debian package postgresql; pg_ctlcluster ... start) or VIGIL_TEST_POSTGRES; the PostgreSQL fault test starts a private one with initdb and pg_ctl (same package, /usr/lib/postgresql/*/bin)",
	"QPDF":         "Debian package qpdf",
	"TRANSMISSION": "Debian package transmission-daemon",
}

// Required reports whether the environment requires part: a test that
// cannot have it must fail rather than skip.
func Required(part string) bool {
	if _, ok := Parts[part]; !ok {
		panic(fmt.Sprintf("testenv: unknown part %q (known: %s)", part, known()))
	}
	return os.Getenv("VIGIL_REQUIRE_"+part) == "1"
}

// Missing ends t because part is missing: it skips, or fails when part is
// required. why says what was not found; the message adds how to get it.
func Missing(t testing.TB, part, why string) {
	t.Helper()
	msg := fmt.Sprintf("%s; needs %s", why, Parts[part])
	if Required(part) {
		t.Fatalf("%s (VIGIL_REQUIRE_%s=1: a missing part fails)", msg, part)
		return
	}
	t.Skipf("%s (set VIGIL_REQUIRE_%s=1 to fail instead of skipping)", msg, part)
}

// Missingf is Missing with a formatted reason.
func Missingf(t testing.TB, part, format string, args ...any) {
	t.Helper()
	Missing(t, part, fmt.Sprintf(format, args...))
}

// Need returns the path of the program prog, or ends t through Missing
// when it is not on PATH.
func Need(t testing.TB, part, prog string) string {
	t.Helper()
	path, err := exec.LookPath(prog)
	if err != nil {
		Missingf(t, part, "%s not found", prog)
	}
	return path
}

func known() string {
	var names []string
	for k := range Parts {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
