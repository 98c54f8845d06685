package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
)

// sensorExamples returns every `vigil sensor bittorrent` command line of
// text (backslash continuations joined), as the arguments after
// "bittorrent", up to a shell operator or a comment.
func sensorExamples(text string) [][]string {
	text = strings.ReplaceAll(text, "\\\n", " ")
	var out [][]string
	for _, line := range strings.Split(text, "\n") {
		_, after, ok := strings.Cut(line, "sensor bittorrent ")
		if !ok || !strings.Contains(line, "vigil ") {
			continue
		}
		var args []string
		for _, f := range strings.Fields(after) {
			if f == "&" || f == "|" || f == ";" || strings.HasPrefix(f, "#") || strings.HasPrefix(f, "`") {
				break
			}
			args = append(args, strings.Trim(f, "`"))
		}
		out = append(out, args)
	}
	return out
}

// Every `vigil sensor bittorrent` example in README.md, docs/*.md and the
// command's --help must get past the sensor's own checks of its
// addresses and trackers: a documented command that fails at start (a loopback
// --listen that cannot reach a namespace's bootstrap node) is a trap.
// Examples whose values come from the shell ("$(jq ...)") are skipped.
func TestSensorExamplesInDocsStart(t *testing.T) {
	texts := map[string]string{"--help": sensorBitTorrentCommand().help}
	files, _ := filepath.Glob("../../docs/*.md")
	for _, f := range append(files, "../../README.md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts[filepath.Base(f)] = string(b)
	}
	shell := regexp.MustCompile(`[$"']`)
	checked := 0
	for name, text := range texts {
		for _, args := range sensorExamples(text) {
			if shell.MatchString(strings.Join(args, " ")) || len(args) == 0 || !strings.HasPrefix(args[0], "--") {
				continue
			}
			fs := flag.NewFlagSet("bittorrent", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			sensorBitTorrentCommand().setup(fs)
			if err := fs.Parse(args); err != nil {
				t.Errorf("%s: %q: %v", name, args, err)
				continue
			}
			if err := checkSensorExample(fs); err != nil {
				t.Errorf("%s: vigil sensor bittorrent %s: fails at start: %v", name, strings.Join(args, " "), err)
			}
			checked++
		}
	}
	if checked < 5 {
		t.Fatalf("%d examples checked: the extraction is broken", checked)
	}
}

// checkSensorExample runs the checks the command makes of its addresses
// before any socket.
func checkSensorExample(fs *flag.FlagSet) error {
	cfg := bittorrent.DefaultConfig()
	var err error
	if cfg.ListenAddrs, err = parseListen(fs.Lookup("listen").Value.String()); err != nil {
		return err
	}
	cfg.Listen = cfg.ListenAddrs[0]
	if cfg.Bootstrap, err = parseAddrPorts(fs.Lookup("bootstrap").Value.String()); err != nil {
		return err
	}
	cfg.Discover = false
	if err := cfg.Validate(); err != nil {
		return err
	}
	sc := scope.DefaultConfig()
	if sc.Allow, err = parsePrefixes(fs.Lookup("scope-allow").Value.String()); err != nil {
		return err
	}
	g, err := scope.New(sc, nil)
	if err != nil {
		return err
	}
	return bittorrent.CheckTrackers(*fs.Lookup("tracker").Value.(*trackerList), g)
}
