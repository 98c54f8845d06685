package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The import rules of docs/architecture.md, as a table after tailscale's
// cmd/tailscaled/deps_test.go and depaware.txt: every package of the
// module sits in one layer, and a package imports only packages of lower
// layers (test files aside). A package missing from the table fails the
// test: a new package is placed on purpose, with what it may use. A
// package listed here that is not in the tree yet is tolerated (logged),
// so that the table can name what is being built.
//
// The layers read bottom-up in pipeline order: the words and codecs the
// sensors speak, the Observation, the parts with I/O at their edges, the
// domain (analysis, audit, the store's contract, the bus), the stage
// implementations and store backends, the HTTP handlers, the lab, the
// wiring, the programs.
var layerTable = []struct {
	name string
	why  string
	pkgs []string
}{
	{"testenv", "the one switch a test calls when a real part is missing; for tests only", []string{
		"internal/testenv",
	}},
	{"words", "hash kinds, wire codecs and need to know (agency ids, Scope, roles, ErrNotFound) with nothing below them: bytes in, values out, no I/O", []string{
		"internal/agency",
		"internal/bencode",
		"internal/bep42",
		"internal/evidence/canon",
		"internal/hashkind",
		"internal/own",
		"internal/sensor/bittorrent/peerid",
		"internal/sensor/ed2k/cursor",
		"internal/sensor/bittorrent/transcript",
	}},
	{"codecs", "codecs built on the words (KRPC, peer wire, torrent info dictionaries, digests, list formats) and the routing table: no I/O", []string{
		"internal/digest",
		"internal/sensor/bittorrent/krpc",
		"internal/sensor/bittorrent/metainfo",
		"internal/sensor/bittorrent/peerwire",
		"internal/sensor/bittorrent/routing",
		"internal/watchlist",
		"internal/sensor/ed2k/kadwire",
		"internal/sensor/ed2k/wire",
	}},
	{"record", "the Observation and the exact index of watched hashes: what flows down the pipeline", []string{
		"internal/match",
		"internal/observe",
	}},
	{"parts", "self-contained parts, I/O at their edges, no pipeline stage; and the test helpers", []string{
		"examples/jurisdictions",
		"internal/lab/netns",
		"internal/config",
		"internal/geo",
		"internal/hasher",
		"internal/netlimit",
		"internal/scope",
		"internal/figures",
		"internal/notify",
		"internal/store",
		"internal/store/obsblock", // issue 13: observations in blocks
		"internal/sensor/ed2k/record",
		"internal/web/i18n",
		"internal/web/maps",
		"internal/web/webtest",
	}},
	{"domain", "what the stages agree on: the store's contract, the bus, the analysis, the audit trail, routing rules; and the sensor's network parts", []string{
		"internal/analysis",
		"internal/audit",
		"internal/casework",
		"internal/bus",
		"internal/bus/wire",
		"internal/evidence/verify",
		"internal/jurisdiction",
		"internal/notify/notifytest",
		"internal/sensor/bittorrent/dhtnode", // issue 12, build 6
		"internal/sensor/bittorrent/probe",   // issue 12, build 6
		"internal/sensor/bittorrent/tracker",
		"internal/sensor/ed2k/kad",
		"internal/sensor/ed2k/pconn",
		"internal/timesync",
	}},
	{"services", "services over the domain: access, ISP requests, enrichment, the JetStream bus and the sensors' queue in front of it, the stores' shared codec and contract suites", []string{
		"internal/access",
		"internal/alerts",
		"internal/analysis/analysistest", // issue 12, build 3
		"internal/figures/figurestest",
		"internal/casework/casetest",
		"internal/retention",
		"internal/audit/audittest", // issue 12, build 3
		"internal/bus/inproc",
		"internal/bus/jetstream",
		"internal/bus/spool",
		"internal/evidence",
		"internal/isp",
		"internal/sensor/bittorrent/discover", // issue 12, build 6
		"internal/sensor/ed2k/probe",
		"internal/sensor/ed2k/server",
		"internal/store/rowcodec",
		"internal/webviews",
		"internal/store/storetest",
	}},
	{"stages", "the pipeline's stages and the store backends", []string{
		"internal/access/accesstest", // issue 12, build 3
		"internal/alerts/alertstest",
		"internal/retention/retentiontest",
		"internal/bus/bustest",
		"internal/ingest",
		"internal/sensor/bittorrent",
		"internal/sensor/ed2k",
		"internal/store/postgres",
		"internal/store/sqlite",
	}},
	{"web trail", "the web tree's one way to write the audit trail: a read is recorded before its data leaves, or refused", []string{
		"internal/web/trail",
	}},
	{"handlers", "HTTP handlers of the web tree: they read through the domain's interfaces; neither imports the other", []string{
		"internal/web/api",
		"internal/web/pages",
	}},
	{"web", "the web server: mux, access wrapping, OIDC, /metrics, /healthz, and the composition over a store", []string{
		"internal/web",
	}},
	{"lab parts", "the lab's simulated network, announcer, tracker and torrents", []string{
		"internal/lab/announcer",
		"internal/lab/ed2k",
		"internal/lab/ntpserver",
		"internal/lab/opentracker",
		"internal/lab/simdht",
		"internal/lab/torrentmake",
	}},
	{"lab", "a BitTorrent network on loopback with ground truth", []string{
		"internal/lab",
	}},
	{"wiring", "assembles store, bus, enrichment, ingest and analysis (issue 12, build 1)", []string{
		"internal/pipeline",
	}},
	{"lab accuracy", "the measured error rate: a lab, a sensor and a pipeline end to end", []string{
		"internal/lab/accuracy",
	}},
	{"programs", "binaries and generators", []string{
		"cmd/vigil",
		"internal/web/maps/gen",
	}},
}

// Rules the layers alone cannot say. Paths are module-relative; a rule on
// "x" covers x and everything under it.
var (
	// wiring may import a backend; nothing else names one (issue 12,
	// build 3: "nothing outside store/* and the wiring names sqlite or
	// postgres").
	wiring   = []string{"cmd/vigil", "internal/pipeline", "internal/lab/accuracy"}
	backends = []string{"internal/store/sqlite", "internal/store/postgres", "internal/bus/jetstream"}

	// testOnly packages are imported by tests and by each other only.
	// A package that imports testing or net/http/httptest must be one of
	// them.
	testOnly = []string{"internal/testenv", "internal/lab/netns", "internal/bus/bustest", "internal/web/webtest", "internal/store/storetest",
		"internal/analysis/analysistest", "internal/access/accesstest", "internal/audit/audittest", "internal/figures/figurestest",
		"internal/casework/casetest", "internal/notify/notifytest", "internal/alerts/alertstest", "internal/retention/retentiontest"}

	// never lists what a package must not depend on, even through
	// another package.
	never = []struct {
		from, to []string
		why      string
	}{
		{[]string{"internal/sensor"},
			[]string{"internal/store", "internal/analysis", "internal/audit", "internal/access", "internal/isp",
				"internal/jurisdiction", "internal/geo", "internal/ingest"},
			"a sensor only emits observations: it knows no storage, analysis, casework or enrichment"},
		{[]string{"internal/web"},
			[]string{"internal/sensor", "internal/bus", "internal/ingest", "internal/lab"},
			"the web reads what the pipeline stored; it runs no part of the pipeline"},
		{[]string{"internal/sensor/bittorrent/probe"}, []string{"internal/observe"},
			"a probe returns a result and a transcript, never an Observation (issue 12, build 6)"},
		{[]string{"internal/sensor/bittorrent/dhtnode"}, []string{"internal/observe"},
			"the DHT part tells the sensor what it heard; the sensor makes the observations (issue 12, build 6)"},
		{[]string{"internal/store"}, []string{"internal/sensor", "internal/lab"},
			"storage imports no protocol code"},
		{[]string{"internal/notify"}, []string{"internal/store", "internal/web"},
			"a sender holds no state and serves nothing: the alerts package keeps the queue and the log"},
	}

	// cmdNever is what cmd/vigil itself must not import: the pipeline
	// runs these (issue 12, problems 1 and 2).
	cmdNever = []string{"internal/ingest", "internal/bus"}

	// httpAllowed may import net/http outside the web tree: HTTP clients
	// (trackers, OIDC, the witness, the lab's tracker, the alerts'
	// webhooks and their test receiver) and the program.
	// The web tree is internal/web and everything under it: one tree
	// serves HTTP (issue 12, problem 4).
	httpAllowed = []string{"internal/sensor/bittorrent/tracker", "internal/access", "internal/audit",
		"internal/lab", "internal/lab/opentracker", "cmd/vigil", "internal/notify", "internal/notify/notifytest"}

	// noIO packages are parsers: bytes in, values out. They must not reach
	// net, os, io/fs or syscall (or a package under them), through any
	// chain of imports.
	noIO = []string{"internal/agency", "internal/bencode", "internal/bep42", "internal/own", "internal/hashkind", "internal/digest", "internal/watchlist",
		"internal/sensor/bittorrent/krpc", "internal/sensor/bittorrent/peerwire", "internal/sensor/bittorrent/peerid",
		"internal/sensor/bittorrent/metainfo",
		"internal/sensor/bittorrent/transcript", "internal/sensor/bittorrent/routing",
		"internal/sensor/ed2k/wire", "internal/sensor/ed2k/kadwire", "internal/sensor/ed2k/cursor"}
	ioRoots = []string{"net", "os", "io/fs", "syscall"}
	// noNet packages embed what they serve and must never fetch it.
	noNet = []string{"internal/web/maps"}

	// pureStd are standard packages under the I/O roots that do no I/O.
	pureStd = map[string]string{
		"net/netip": "addresses as values",
		"net/url":   "a string parser (magnet links)",
	}
	// incidentalStd reach the I/O roots for a reason a parser does not
	// touch; the walk does not go through them.
	incidentalStd = map[string]string{
		"fmt":           "os only for Print to standard output; a parser uses Errorf and Sprintf",
		"time":          "syscall for the clock and the zoneinfo files",
		"crypto":        "the FIPS module's self-checks and entropy, not the caller's data",
		"crypto/md5":    "as crypto",
		"crypto/sha1":   "as crypto",
		"crypto/sha256": "as crypto",
		"crypto/sha512": "as crypto",
	}

	// knownViolations are today's breaches of the rules above, each
	// named by the problem of issue 12 it is. The test fails when one
	// is no longer there: delete its line, so that it cannot come back.
	knownViolations = map[string]string{}
)

// goPkg is what the tests read of `go list -deps -json`.
type goPkg struct {
	ImportPath string
	Imports    []string // direct, test files aside
	Deps       []string // transitive
	Standard   bool
}

// listEnv fixes the build the listing describes: what `go build
// ./cmd/vigil` gives on linux/amd64 without cgo.
var listEnv = []string{"GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0"}

// goList runs `go list -deps -json` at the module root.
func goList(t *testing.T, patterns ...string) (mod string, pkgs map[string]*goPkg, order []string) {
	t.Helper()
	modOut, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	mod = strings.TrimSpace(string(modOut))
	cmd := exec.Command("go", append([]string{"list", "-deps", "-json=ImportPath,Imports,Deps,Standard"}, patterns...)...)
	cmd.Dir = "../.." // the module root
	cmd.Env = append(os.Environ(), listEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs = map[string]*goPkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		p := new(goPkg)
		if err := dec.Decode(p); err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
		order = append(order, p.ImportPath)
	}
	return mod, pkgs, order
}

var (
	moduleOnce  sync.Once
	moduleMod   string
	modulePkgs  map[string]*goPkg
	moduleOrder []string
)

// moduleGraph is every package of the module and everything they import.
func moduleGraph(t *testing.T) (string, map[string]*goPkg, []string) {
	moduleOnce.Do(func() { moduleMod, modulePkgs, moduleOrder = goList(t, "./...") })
	if modulePkgs == nil {
		t.Fatal("go list failed")
	}
	return moduleMod, modulePkgs, moduleOrder
}

// under reports whether path is one of roots or below one.
func under(path string, roots ...string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, r+"/") {
			return true
		}
	}
	return false
}

// TestLayers checks the layer table and the rules beside it.
func TestLayers(t *testing.T) {
	mod, pkgs, order := moduleGraph(t)
	rel := func(p string) (string, bool) {
		r, ok := strings.CutPrefix(p, mod+"/")
		return r, ok
	}
	layerOf := map[string]int{}
	for i, l := range layerTable {
		for _, p := range l.pkgs {
			if _, dup := layerOf[p]; dup {
				t.Errorf("%s is in the layer table twice", p)
			}
			layerOf[p] = i
		}
	}
	var ours []string
	for _, p := range order {
		if r, ok := rel(p); ok {
			ours = append(ours, r)
		}
	}
	if len(ours) < 20 {
		t.Fatalf("go list found only %d packages of %s", len(ours), mod)
	}
	for _, p := range ours {
		if _, ok := layerOf[p]; !ok {
			t.Errorf("%s is in no layer: add it to layerTable in cmd/vigil/deps_test.go, and to docs/architecture.md", p)
		}
	}
	for _, l := range layerTable {
		for _, p := range l.pkgs {
			if !slices.Contains(ours, p) {
				t.Logf("%s is in the layer table but not in the tree (yet)", p)
			}
		}
	}

	violations := map[string]bool{}
	breach := func(what, why string) {
		violations[what] = true
		if _, known := knownViolations[what]; !known {
			t.Errorf("%s: %s", what, why)
		}
	}
	for _, p := range ours {
		pl, placed := layerOf[p]
		for _, full := range pkgs[mod+"/"+p].Imports {
			q, inMod := rel(full)
			if !inMod {
				continue
			}
			if ql, ok := layerOf[q]; ok && placed && ql >= pl {
				breach(p+" imports "+q, fmt.Sprintf("layer %q may import only lower layers, and %s is in layer %q",
					layerTable[pl].name, q, layerTable[ql].name))
			}
			if under(q, backends...) && !under(p, wiring...) && !under(p, backends...) && !under(p, testOnly...) {
				breach(p+" imports "+q, "only the wiring ("+strings.Join(wiring, ", ")+") names a backend: depend on the interface")
			}
			if under(q, testOnly...) && !under(p, testOnly...) {
				breach(p+" imports "+q, "a test helper is for tests only")
			}
			if p == "cmd/vigil" && slices.Contains(cmdNever, q) {
				breach(p+" imports "+q, "cmd/vigil parses flags; the pipeline runs ingest, enrichment and the bus")
			}
		}
		for _, std := range pkgs[mod+"/"+p].Imports {
			switch {
			case (std == "testing" || std == "net/http/httptest") && !under(p, testOnly...):
				breach(p+" imports "+std, "only a test helper imports "+std+": list it in testOnly")
			case std == "net/http" && !under(p, "internal/web") && !under(p, httpAllowed...):
				breach(p+" imports net/http", "HTTP is served by the web tree (internal/web/...); a client must be listed in httpAllowed")
			}
		}
		for _, r := range never {
			if !under(p, r.from...) || under(p, testOnly...) {
				continue
			}
			for _, full := range pkgs[mod+"/"+p].Deps {
				if q, inMod := rel(full); inMod && under(q, r.to...) {
					breach(p+" depends on "+q, r.why)
				}
			}
		}
	}
	for _, v := range slices.Sorted(maps.Keys(knownViolations)) {
		if why := knownViolations[v]; !violations[v] {
			t.Errorf("known violation %q (%s) is gone: delete it from knownViolations so that it cannot come back", v, why)
		}
	}
}

// TestParsersDoNoIO walks every chain of imports from each parser, through
// the module, third-party and standard packages, and fails on one that
// reaches net, os, io/fs or syscall. The walk does not go through the few
// standard packages that reach them for their own needs (incidentalStd);
// a parser may use those.
func TestParsersDoNoIO(t *testing.T) {
	mod, pkgs, _ := moduleGraph(t)
	check := func(root string, roots []string) {
		forbidden := func(p string) bool {
			_, pure := pureStd[p]
			return !pure && under(p, roots...)
		}
		// Breadth first, keeping the way each package was reached.
		from := map[string]string{root: ""}
		queue := []string{root}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if forbidden(p) {
				chain := []string{p}
				for q := from[p]; q != ""; q = from[q] {
					chain = append(chain, strings.TrimPrefix(q, mod+"/"))
				}
				slices.Reverse(chain)
				t.Errorf("%s reaches %s (%s): a parser does no I/O", strings.TrimPrefix(root, mod+"/"), p, strings.Join(chain, " -> "))
				continue
			}
			if _, ok := incidentalStd[p]; ok {
				continue
			}
			gp := pkgs[p]
			if gp == nil {
				t.Fatalf("%s: not in go list's output", p)
			}
			for _, q := range gp.Imports {
				if _, seen := from[q]; !seen {
					from[q] = p
					queue = append(queue, q)
				}
			}
		}
	}
	for _, p := range noIO {
		check(mod+"/"+p, ioRoots)
	}
	for _, p := range noNet {
		check(mod+"/"+p, []string{"net"})
	}
}

// TestLayerTableAgreesWithItsRules keeps the lists beside the table
// honest: each names packages of the table.
func TestLayerTableAgreesWithItsRules(t *testing.T) {
	inTable := map[string]bool{}
	for _, l := range layerTable {
		for _, p := range l.pkgs {
			inTable[p] = true
		}
	}
	lists := map[string][]string{"wiring": wiring, "backends": backends, "testOnly": testOnly, "httpAllowed": httpAllowed,
		"noIO": noIO, "noNet": noNet}
	for name, l := range lists {
		for _, p := range l {
			if !inTable[p] {
				t.Errorf("%s names %s, which is in no layer", name, p)
			}
		}
	}
}

var updateDeps = flag.Bool("update", false, "rewrite deps.txt, the listing of the vigil binary's dependencies")

//go:generate go test -run ^TestVigilDependencies$ -update .

// TestVigilDependencies compares every package built into the vigil
// binary with deps.txt, so that a new dependency (a library, or a
// standard package such as os/exec or net/http/pprof) shows in review.
// `go generate ./cmd/vigil` (or go test -run TestVigilDependencies
// -update) rewrites it.
func TestVigilDependencies(t *testing.T) {
	mod, pkgs, order := goList(t, "./cmd/vigil")
	got := depListing(mod, pkgs, order)
	if *updateDeps {
		if err := os.WriteFile("deps.txt", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("deps.txt")
	if err != nil {
		t.Fatalf("%v: run go generate ./cmd/vigil", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gotL, wantL := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	name := func(l string) string {
		if f := strings.Fields(l); len(f) > 0 {
			return f[0]
		}
		return ""
	}
	wantN, gotN := map[string]bool{}, map[string]bool{}
	for _, l := range wantL {
		wantN[name(l)] = true
	}
	for _, l := range gotL {
		gotN[name(l)] = true
	}
	for _, l := range gotL {
		if !wantN[name(l)] {
			t.Errorf("new dependency: %s", l)
		}
	}
	for _, l := range wantL {
		if !gotN[name(l)] {
			t.Errorf("dependency gone: %s", l)
		}
	}
	t.Errorf("the vigil binary's dependencies differ from cmd/vigil/deps.txt: if that is meant, run go generate ./cmd/vigil and commit deps.txt")
}

// depListing is deps.txt: every package the binary is built from, with
// the package that brings it in ("+" when there are others), but the
// standard library's internal and vendored packages (they change with Go,
// not with Vigil).
func depListing(mod string, pkgs map[string]*goPkg, order []string) []byte {
	importers := map[string][]string{}
	for _, p := range order {
		for _, q := range pkgs[p].Imports {
			importers[q] = append(importers[q], p)
		}
	}
	var lines []string
	for _, p := range order {
		gp := pkgs[p]
		if gp.Standard && (strings.HasPrefix(p, "vendor/") || slices.Contains(strings.Split(p, "/"), "internal")) {
			continue
		}
		if p == "unsafe" || p == "C" {
			continue
		}
		by := importers[p]
		sort.Strings(by)
		// Vigil's own importers first, then other modules', then the
		// standard library's: the first says why the package is there.
		rank := func(p string) int {
			switch {
			case under(p, mod):
				return 0
			case !pkgs[p].Standard:
				return 1
			}
			return 2
		}
		sort.SliceStable(by, func(i, j int) bool { return rank(by[i]) < rank(by[j]) })
		line := p
		if len(by) > 0 {
			line = fmt.Sprintf("%-70s from %s", p, by[0])
			if len(by) > 1 {
				line += "+"
			}
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The packages built into vigil (linux/amd64, no cgo), each with what imports it.\n")
	fmt.Fprintf(&b, "# Checked by TestVigilDependencies; rewrite with: go generate ./cmd/vigil\n")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// oneWord lists the domain words defined once (issue 12, build 5): a type,
// a role constant or a sentinel of this name is declared in pkg and
// nowhere else under internal/ or cmd/; another package may name its own
// only as an alias (type Scope = agency.Scope, const RoleAnalyst =
// agency.RoleAnalyst, var ErrNotFound = agency.ErrNotFound), so that there
// is one type, one Allows, one set of roles and one errors.Is.
var oneWord = []struct{ name, pkg string }{
	{"Scope", "internal/agency"},
	{"Role", "internal/agency"},
	{"RoleAdmin", "internal/agency"},
	{"RoleAnalyst", "internal/agency"},
	{"RoleSupervisor", "internal/agency"},
	{"RoleInvestigator", "internal/agency"},
	{"RoleAuditor", "internal/agency"},
	{"ErrNotFound", "internal/agency"},
}

// TestDomainWordsDefinedOnce reads every non-test Go file under internal/
// and cmd/ and fails on a second definition of a word of oneWord: a type
// that is not an alias, or an ErrNotFound that is not another package's.
func TestDomainWordsDefinedOnce(t *testing.T) {
	defs := map[string][]string{} // name -> "dir/file.go:line"
	fset := token.NewFileSet()
	for _, root := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join("../..", root), func(file string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(file, ".go") || strings.HasSuffix(file, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for _, word := range definitions(f) {
				pos := fset.Position(word.pos)
				rel, _ := filepath.Rel("../..", pos.Filename)
				defs[word.name] = append(defs[word.name], fmt.Sprintf("%s:%d", filepath.ToSlash(rel), pos.Line))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range oneWord {
		var here, elsewhere []string
		for _, at := range defs[w.name] {
			if path.Dir(strings.SplitN(at, ":", 2)[0]) == w.pkg {
				here = append(here, at)
			} else {
				elsewhere = append(elsewhere, at)
			}
		}
		if len(here) != 1 {
			t.Errorf("%s is defined %d times in %s (%v), want once", w.name, len(here), w.pkg, here)
		}
		for _, at := range elsewhere {
			t.Errorf("%s: a second %s: %s defines it; name it with an alias (= agency.%s)", at, w.name, w.pkg, w.name)
		}
	}
}

type definition struct {
	name string
	pos  token.Pos
}

// definitions returns the words of oneWord that f defines: a type
// declared by name (not an alias), a constant or variable whose value is
// not a selector of the same name (pkg.ErrNotFound).
func definitions(f *ast.File) []definition {
	watched := map[string]bool{}
	for _, w := range oneWord {
		watched[w.name] = true
	}
	var out []definition
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range gd.Specs {
			switch s := spec.(type) {
			case *ast.TypeSpec:
				if watched[s.Name.Name] && !s.Assign.IsValid() {
					out = append(out, definition{s.Name.Name, s.Pos()})
				}
			case *ast.ValueSpec:
				for i, n := range s.Names {
					if !watched[n.Name] {
						continue
					}
					if i < len(s.Values) {
						if sel, ok := s.Values[i].(*ast.SelectorExpr); ok && sel.Sel.Name == n.Name {
							continue
						}
					}
					out = append(out, definition{n.Name, n.Pos()})
				}
			}
		}
	}
	return out
}
