package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/testenv"
)

// privatePostgres is a PostgreSQL instance of the test's own: a cluster
// made by initdb in a temporary directory, on a free loopback port, with
// its unix sockets in that directory. The test may crash it and start it
// again without touching the machine's shared cluster, which other tests
// use at the same time.
type privatePostgres struct {
	t    *testing.T
	bin  string // the directory of initdb, pg_ctl, postgres
	dir  string // owned by the server's user
	port int
	as   string // the user the server runs as when the test runs as root; "" otherwise
}

// postgresBinaries finds the directory of initdb and pg_ctl: on PATH, or
// Debian's /usr/lib/postgresql/VERSION/bin (the newest).
func postgresBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(found, func(i, j int) bool { return pgVersion(found[i]) < pgVersion(found[j]) })
	if len(found) == 0 {
		return "", fmt.Errorf("initdb and pg_ctl not found on PATH nor under /usr/lib/postgresql/*/bin")
	}
	return filepath.Dir(found[len(found)-1]), nil
}

func pgVersion(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// startPrivatePostgres makes and starts a private cluster, or ends t
// through testenv (part POSTGRES) when PostgreSQL's programs are missing.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bin, err := postgresBinaries()
	if err != nil {
		testenv.Missingf(t, "POSTGRES", "a private PostgreSQL instance for the fault test: %v", err)
	}
	p := &privatePostgres{t: t, bin: bin, port: freePort(t)}
	// initdb refuses to run as root: as root, the cluster belongs to the
	// user postgres (Debian's package makes it), in a directory of its own
	// outside t.TempDir (whose parents only root may enter).
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Missingf(t, "POSTGRES", "running as root, a private PostgreSQL instance needs the user postgres: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		p.as = "postgres"
	}
	p.dir, err = os.MkdirTemp("", "vigil-pgfault-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(p.dir) })
	if err := os.Chmod(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(p.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := p.command("initdb", "-D", p.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start()
	t.Cleanup(func() { _ = p.command("pg_ctl", "-D", p.data(), "-m", "immediate", "stop").Run() })
	return p
}

func (p *privatePostgres) data() string { return filepath.Join(p.dir, "data") }

// command runs one of PostgreSQL's programs, as the server's user.
func (p *privatePostgres) command(prog string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, prog)
	if p.as != "" {
		return exec.Command("runuser", append([]string{"-u", p.as, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// dsn is the store's URL: the database postgres, Vigil's tables in the
// schema vigil.
func (p *privatePostgres) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&schema=vigil", p.port)
}

// start starts the server and waits until it answers a query (after a
// crash, once it has replayed its WAL).
func (p *privatePostgres) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", p.port, p.dir)
	out, err := p.command("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "log"), "-o", opts, "-t", "120", "-w", "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		p.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	waitUntil(p.t, 60*time.Second, "the private PostgreSQL answering", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, strings.TrimSuffix(p.dsn(), "&schema=vigil"))
		if err != nil {
			return false
		}
		defer c.Close(context.Background())
		var one int
		return c.QueryRow(ctx, "SELECT 1").Scan(&one) == nil && one == 1
	})
}

// crash stops the server as a crash would: 'pg_ctl stop -m immediate'
// kills its processes without a checkpoint; the next start replays the
// WAL.
func (p *privatePostgres) crash() {
	p.t.Helper()
	if out, err := p.command("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		p.t.Fatalf("pg_ctl stop -m immediate: %v\n%s", err, out)
	}
}

// recoveredFromCrash reports whether the server's log says it replayed
// its WAL after an unclean stop.
func (p *privatePostgres) recoveredFromCrash() bool {
	log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
	return strings.Contains(string(log), "was not properly shut down")
}
