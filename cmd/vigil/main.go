// Command vigil finds the peers that share known child-sexual-abuse material
// on peer-to-peer networks, from hashes and protocol metadata only.
//
// This file holds only the command tree and the plumbing every command
// shares (settings, logging, exit codes); each command lives in its own file
// and calls the packages under internal/, which are the program.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/config"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/postgres"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"golang.org/x/term"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, part of the contract: 0 success, 1 input rejected or the work
// failed, 2 a usage error.
const (
	exitOK       = 0
	exitRejected = 1
	exitUsage    = 2
)

// usageError is a mistake in the command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// errSilent has already been reported to the user: exit 1, print nothing more.
var errSilent = errors.New("reported")

// command is one node of the command tree.
type command struct {
	name    string
	summary string // one line, for the parent's list
	usage   string // "vigil watchlist import [flags] FILE..."
	help    string // what it does, with examples
	// setup defines the command's flags on fs and returns its run function.
	setup func(fs *flag.FlagSet) runFunc
	subs  []*command
}

type runFunc func(ctx context.Context, a *app, args []string) error

// app is what every command gets: settings, streams, logger, store.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	log            *slog.Logger

	dbPath    string
	logLevel  string
	logFormat string
	cfgPath   string
	// endpointWindow bounds an analysis endpoint in time
	// (analysis.Config.EndpointWindow).
	endpointWindow time.Duration
	// ipv6Prefixes is the subscriber prefix length per ISP
	// (analysis.Config.IPv6, in analysis.ParseIPv6Config's form).
	ipv6Prefixes string
	// ownAddresses is --own-addresses: the file of the deployment's own
	// addresses (package own), "" for none.
	ownAddresses string

	st store.Store
	// mayCreate is set for the commands that bring data into a store
	// (storeCreators): any other command refuses a store file that does
	// not exist, so that a typo in --db is not an empty store.
	mayCreate bool
}

// storeCreators are the commands that may create the SQLite store file.
var storeCreators = map[string]bool{
	"demo": true, "watchlist import": true, "observations import": true, "sensor bittorrent": true,
	"ingest": true, "agency import": true, "agency add": true, "user add": true,
}

// errNoStore is returned when a command that only reads is given a store
// file that does not exist.
var errNoStore = errors.New("no such store")

// flagName is the name of the flag arg gives ("--db=x" and "-db" are "db").
func flagName(arg string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name
}

// globalFlags are accepted before the command and after it.
var globalFlags = map[string]bool{"db": true, "config": true, "log-level": true, "log-format": true, "endpoint-window": true, "ipv6-prefixes": true, "own-addresses": true}

func (a *app) defineGlobal(fs *flag.FlagSet) {
	fs.StringVar(&a.dbPath, "db", "vigil.db", "store: a SQLite file (the embedded default) or postgres://USER@HOST:PORT/DB[?schema=NAME] (every command; tables in the schema vigil unless NAME); env VIGIL_DB")
	fs.StringVar(&a.cfgPath, "config", "", "YAML config file; env VIGIL_CONFIG (see 'vigil config example')")
	fs.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error; env VIGIL_LOG_LEVEL")
	fs.StringVar(&a.logFormat, "log-format", "auto", "log format: json, text, or auto (text on a terminal, else JSON)")
	fs.DurationVar(&a.endpointWindow, "endpoint-window", analysis.DefaultConfig().EndpointWindow,
		"analysis: an IP:port silent for longer than this is a new endpoint when seen again (addresses are reassigned); env VIGIL_ENDPOINT_WINDOW")
	fs.StringVar(&a.ipv6Prefixes, "ipv6-prefixes", analysis.DefaultConfig().IPv6.String(),
		"analysis: the IPv6 prefix length an ISP gives one subscriber, `DEFAULT[,ASnnn=LEN...]` (48 to 128; 128: never group), e.g. 64,AS3215=56; env VIGIL_IPV6_PREFIXES")
	fs.StringVar(&a.ownAddresses, "own-addresses", "",
		"the deployment's own addresses, a `FILE` of IP (every port), IP:PORT ([IPv6]:PORT) or CIDR lines, # comments: its sensors' hosts. "+
			"No sensor records or probes one; the analysis makes no target of one. Give every sensor and every process that runs the analysis (ingest, serve, ...) the same file; env VIGIL_OWN_ADDRESSES")
}

// benchNoEvidenceLog and benchNoGate are for BenchmarkIngestNATSPostgres
// and BenchmarkIngestNATSSQLite only, so that they can time 'vigil
// ingest' with and without signing and logging in the same run: with
// benchNoEvidenceLog the store opens without its evidence log (the
// stores' Config.NoEvidenceLog); with benchNoGate ingest reads its bus
// without the signature gate (pipeline.Config.FromSensors false: nothing
// held, checked before it is stored, nor marked unsigned_import, so that
// the analysis does the same work on unsigned observations). No flag,
// variable or file of a user's sets them: a store run for real always
// keeps its log, and ingest always gates what it reads from a bus.
var benchNoEvidenceLog, benchNoGate bool

// store opens the store once, on first use.
func (a *app) store(ctx context.Context) (store.Store, error) {
	if a.st != nil {
		return a.st, nil
	}
	var (
		st  store.Store
		err error
	)
	if i := strings.Index(a.dbPath, "://"); i >= 0 && !isPostgresURL(a.dbPath) {
		return nil, usagef("--db %s: unknown store scheme %q (want a SQLite file path or a postgres:// URL)", redactDSN(a.dbPath), a.dbPath[:i])
	}
	if isPostgresURL(a.dbPath) {
		// PostgreSQL at national scale: everything the SQLite store keeps,
		// in the schema "vigil" (or ?schema=NAME) of the database the URL
		// names.
		dsn, cfg, perr := postgresConfig(a.dbPath)
		if perr != nil {
			return nil, usagef("--db %s: %v", redactDSN(a.dbPath), perr)
		}
		cfg.NoEvidenceLog = benchNoEvidenceLog
		st, err = postgres.Open(ctx, dsn, cfg)
	} else {
		if _, serr := os.Stat(a.dbPath); !a.mayCreate && errors.Is(serr, fs.ErrNotExist) {
			return nil, fmt.Errorf("store %s: %w (check --db or VIGIL_DB; 'vigil demo', 'vigil watchlist import', 'vigil sensor bittorrent', 'vigil agency import' or 'vigil user add' make one)", a.dbPath, errNoStore)
		}
		cfg := sqlite.DefaultConfig()
		cfg.NoEvidenceLog = benchNoEvidenceLog
		st, err = sqlite.Open(ctx, a.dbPath, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redactDSN(a.dbPath), err)
	}
	a.st = st
	return st, nil
}

// postgresConfig splits Vigil's own parameter, schema (the PostgreSQL
// schema that holds Vigil's tables; default vigil), off a postgres:// URL:
// several deployments, or tests, can share one database. The rest of the
// URL goes to the driver as given.
func postgresConfig(dsn string) (string, postgres.Config, error) {
	cfg := postgres.DefaultConfig()
	u, err := url.Parse(dsn)
	if err != nil {
		return "", cfg, fmt.Errorf("not a URL: %w", err)
	}
	q := u.Query()
	if !q.Has("schema") {
		return dsn, cfg, nil
	}
	cfg.Schema = q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	return u.String(), cfg, nil
}

// isPostgresURL reports whether --db names a PostgreSQL store.
func isPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// storeKind names the kind of store --db names, for people.
func storeKind(db string) string {
	if isPostgresURL(db) {
		return "PostgreSQL"
	}
	return "SQLite"
}

// defaultAuditKey is where serve keeps the audit checkpoint key when
// --audit-key does not say: beside a SQLite file, and for a PostgreSQL
// store (no file to put it beside, and it must not be in the store) in
// the user's configuration directory, named for the server, database and
// schema.
func (a *app) defaultAuditKey() (string, error) {
	if !isPostgresURL(a.dbPath) {
		return a.dbPath + ".audit-key", nil
	}
	dir := a.getenv("XDG_CONFIG_HOME")
	if h := a.getenv("HOME"); dir == "" && h != "" {
		dir = filepath.Join(h, ".config")
	}
	if dir == "" {
		return "", usagef("--audit-key FILE is needed with a postgres:// store when neither XDG_CONFIG_HOME nor HOME is set")
	}
	u, err := url.Parse(a.dbPath)
	if err != nil {
		return "", usagef("--db: %v", err)
	}
	_, cfg, _ := postgresConfig(a.dbPath)
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	name := strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, u.Hostname()+"_"+port+"_"+strings.TrimPrefix(u.Path, "/")+"_"+cfg.Schema)
	return filepath.Join(dir, "vigil", name+".audit-key"), nil
}

// redactDSN hides a password in a database URL.
func redactDSN(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return s
}

func (a *app) close() {
	if a.st != nil {
		if err := a.st.Close(); err != nil {
			a.log.Error("closing store", "db", redactDSN(a.dbPath), "err", err)
		}
	}
}

func (a *app) setupLogger() error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(a.logLevel)); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	format := a.logFormat
	if format == "auto" {
		format = "json"
		if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	switch format {
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	case "text":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	default:
		return usagef("--log-format %q: want json, text or auto", a.logFormat)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code. Tests call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if refuseProfilerEnv(getenv, stderr) {
		return exitUsage
	}
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv,
		log: slog.New(slog.NewTextHandler(stderr, nil))}
	defer a.close()
	root := rootCommand()

	// Walk down the tree: global flags may stand before any command name.
	path := []string{}
	cmd := root
	pre := flag.NewFlagSet("vigil", flag.ContinueOnError)
	pre.SetOutput(io.Discard)
	a.defineGlobal(pre)
	rest := args
	for len(cmd.subs) > 0 {
		// A command with both subcommands and flags of its own ('vigil claim
		// --target ID' beside 'vigil claim release'): its own flag ends the
		// walk.
		if len(rest) > 0 && cmd.setup != nil && strings.HasPrefix(rest[0], "-") && !isHelp(rest[0]) && !globalFlags[flagName(rest[0])] {
			break
		}
		// Consume global flags that stand before a command name.
		if len(rest) > 0 && strings.HasPrefix(rest[0], "-") && !isHelp(rest[0]) {
			if err := pre.Parse(rest); err != nil {
				fmt.Fprintf(stderr, "vigil: %v\nRun 'vigil --help' for usage.\n", err)
				return exitUsage
			}
			rest = pre.Args()
			continue
		}
		if len(rest) == 0 {
			break
		}
		if isHelp(rest[0]) || rest[0] == "help" {
			printHelp(stdout, cmd, path)
			return exitOK
		}
		next := cmd.find(rest[0])
		if next == nil {
			fmt.Fprintf(stderr, "vigil: unknown command %q\n\n", strings.Join(append(path, rest[0]), " "))
			printHelp(stderr, cmd, path)
			return exitUsage
		}
		path = append(path, next.name)
		cmd = next
		rest = rest[1:]
	}
	if cmd.setup == nil {
		printHelp(stderr, cmd, path)
		return exitUsage
	}
	a.mayCreate = storeCreators[strings.Join(path, " ")]

	// Values given before the command name count as set on the command
	// line. Read them before the command's flag set, which shares their
	// variables, resets them to their defaults.
	given := map[string]string{}
	pre.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })
	fs := flag.NewFlagSet("vigil "+strings.Join(path, " "), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.defineGlobal(fs)
	runFn := cmd.setup(fs)
	for name, v := range given {
		_ = fs.Set(name, v)
	}
	// Flags may follow arguments ('vigil target flag T-000004-86 --why ...'), as
	// users type them; "--" ends the flags.
	var positional []string
	for args := rest; ; {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printCommandHelp(stdout, cmd, path, fs)
				return exitOK
			}
			fmt.Fprintf(stderr, "vigil %s: %v\nRun 'vigil %s --help' for usage.\n", strings.Join(path, " "), err, strings.Join(path, " "))
			return exitUsage
		}
		left := fs.Args()
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			positional = append(positional, left...)
			break
		}
		if len(left) == 0 {
			break
		}
		positional = append(positional, left[0])
		args = left[1:]
	}
	// The config file itself can be named by flag or environment only.
	if a.cfgPath == "" {
		a.cfgPath = getenv("VIGIL_CONFIG")
	}
	var cf *config.File
	if a.cfgPath != "" {
		var err error
		if cf, err = config.Load(a.cfgPath); err != nil {
			fmt.Fprintf(stderr, "vigil: %v\n", err)
			return exitUsage
		}
		if err := cf.Check(knownSettings(root)); err != nil {
			fmt.Fprintf(stderr, "vigil: %v\n", err)
			return exitUsage
		}
	}
	if err := config.Apply(fs, path, globalFlags, cf, getenv); err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return exitUsage
	}
	if err := a.setupLogger(); err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return exitUsage
	}
	if a.endpointWindow <= 0 {
		fmt.Fprintf(stderr, "vigil: --endpoint-window %v: must be positive\n", a.endpointWindow)
		return exitUsage
	}
	analysisEndpointWindow.Store(int64(a.endpointWindow))
	v6, err := analysis.ParseIPv6Config(a.ipv6Prefixes)
	if err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return exitUsage
	}
	analysisIPv6.Store(&v6)
	if err := a.loadOwn(); err != nil {
		fmt.Fprintf(stderr, "vigil: %v\n", err)
		return exitUsage
	}
	err = runFn(ctx, a, positional)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "vigil %s: %v\nRun 'vigil %s --help' for usage.\n", strings.Join(path, " "), err, strings.Join(path, " "))
		return exitUsage
	case errors.Is(err, errSilent):
		return exitRejected
	default:
		fmt.Fprintf(stderr, "vigil %s: %v\n", strings.Join(path, " "), err)
		return exitRejected
	}
}

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "-help" }

func (c *command) find(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

func printHelp(w io.Writer, c *command, path []string) {
	if len(path) == 0 {
		fmt.Fprint(w, strings.TrimLeft(c.help, "\n"))
	} else {
		fmt.Fprintf(w, "%s\n\n", c.summary)
		if c.help != "" {
			fmt.Fprintf(w, "%s\n", strings.Trim(c.help, "\n"))
		}
	}
	fmt.Fprintf(w, "\nUsage:\n  %s\n\nCommands:\n", c.usage)
	for _, s := range c.subs {
		fmt.Fprintf(w, "  %-14s %s\n", s.name, s.summary)
	}
	if len(path) == 0 {
		// The global flags, which stand before or after any command.
		fmt.Fprintf(w, "\nGlobal flags:\n")
		var a app
		fs := flag.NewFlagSet("vigil", flag.ContinueOnError)
		a.defineGlobal(fs)
		fs.VisitAll(func(f *flag.Flag) { printFlag(w, f, nil) })
	}
	fmt.Fprintf(w, "\nRun 'vigil %s --help' for a command's flags and examples.\n",
		strings.TrimSpace(strings.Join(path, " ")+" COMMAND"))
}

func printCommandHelp(w io.Writer, c *command, path []string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s\n", c.summary, c.usage)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.Trim(c.help, "\n"))
	}
	fmt.Fprintf(w, "\nFlags:\n")
	var own, glob []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if globalFlags[f.Name] {
			glob = append(glob, f)
		} else {
			own = append(own, f)
		}
	})
	for _, f := range own {
		printFlag(w, f, path)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n")
	for _, f := range glob {
		printFlag(w, f, nil)
	}
	fmt.Fprintf(w, "\nEvery flag can also be set in the environment (shown) or in the config file\n(see 'vigil config example'); a flag on the command line wins.\n")
}

func printFlag(w io.Writer, f *flag.Flag, path []string) {
	name, usage := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if name != "" {
		line += " " + name
	}
	fmt.Fprintf(w, "%s\n      %s", line, usage)
	if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
		fmt.Fprintf(w, " (default %s)", f.DefValue)
	}
	fmt.Fprintf(w, " [%s]\n", config.EnvName(path, f.Name, path == nil))
}

// knownSettings maps each command path to its flag names, for checking the
// config file.
func knownSettings(root *command) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	var walk func(c *command, path []string)
	walk = func(c *command, path []string) {
		key := strings.Join(path, " ")
		names := map[string]bool{}
		if len(path) == 0 {
			for g := range globalFlags {
				names[g] = true
			}
		}
		if c.setup != nil {
			fs := flag.NewFlagSet("", flag.ContinueOnError)
			c.setup(fs)
			fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
		}
		out[key] = names
		for _, s := range c.subs {
			walk(s, append(append([]string{}, path...), s.name))
		}
	}
	walk(root, nil)
	return out
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
