// Package config resolves Vigil's settings from, in order of precedence,
// command-line flags, VIGIL_* environment variables and a YAML config file,
// so that every flag of every command can be set in any of the three places.
//
// It must never invent a value: a key in the file or environment that does
// not name a flag is an error naming the file, the key and its line.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrUnknownKey is returned for a config-file key that names no flag.
var ErrUnknownKey = errors.New("unknown setting")

// File is a parsed config file: top-level keys are global flags; nested
// mappings are per-command sections ("sensor: {bittorrent: {identities: 8}}").
type File struct {
	Path string
	root *yaml.Node
}

// Load reads and parses a YAML config file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse parses YAML config bytes; path is used in messages.
func Parse(path string, b []byte) (*File, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // an empty file
			return &File{Path: path}, nil
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return &File{Path: path}, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config %s line %d: the top level must be a mapping of setting: value", path, root.Line)
	}
	return &File{Path: path, root: root}, nil
}

// section returns the mapping node for a command path, or nil.
func (f *File) section(path []string) *yaml.Node {
	if f == nil || f.root == nil {
		return nil
	}
	n := f.root
	for _, p := range path {
		next := mapValue(n, p)
		if next == nil || next.Kind != yaml.MappingNode {
			return nil
		}
		n = next
	}
	return n
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// Apply fills every flag of fs that was not set on the command line, first
// from the environment (VIGIL_<NAME> for global flags, VIGIL_<CMD>_<NAME>
// for a command's own), then from the config file (global flags at the top
// level, a command's own flags under its section). global names the flags
// that are global. getenv is os.Getenv in production.
func Apply(fs *flag.FlagSet, cmdPath []string, global map[string]bool, f *File, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var errs []error
	fs.VisitAll(func(fl *flag.Flag) {
		if set[fl.Name] {
			return
		}
		env := EnvName(cmdPath, fl.Name, global[fl.Name])
		if v := getenv(env); v != "" {
			if err := fl.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("environment %s=%q: %w", env, v, err))
			}
			return
		}
		var node *yaml.Node
		if global[fl.Name] {
			node = f.section(nil)
		} else {
			node = f.section(cmdPath)
		}
		if node == nil {
			return
		}
		v := mapValue(node, fl.Name)
		if v == nil {
			return
		}
		if v.Kind != yaml.ScalarNode && v.Kind != yaml.SequenceNode {
			errs = append(errs, fmt.Errorf("config %s line %d: %s must be a value, not a section", f.Path, v.Line, fl.Name))
			return
		}
		val := v.Value
		if v.Kind == yaml.SequenceNode {
			parts := make([]string, 0, len(v.Content))
			for _, c := range v.Content {
				parts = append(parts, c.Value)
			}
			val = strings.Join(parts, ",")
		}
		if err := fl.Value.Set(val); err != nil {
			errs = append(errs, fmt.Errorf("config %s line %d: %s: %w", f.Path, v.Line, fl.Name, err))
		}
	})
	return errors.Join(errs...)
}

// EnvName is the environment variable that sets a flag.
func EnvName(cmdPath []string, name string, global bool) string {
	parts := []string{"VIGIL"}
	if !global {
		parts = append(parts, cmdPath...)
	}
	parts = append(parts, name)
	s := strings.ToUpper(strings.Join(parts, "_"))
	return strings.NewReplacer("-", "_", ".", "_").Replace(s)
}

// Check reports keys in the file that name no known setting. known maps a
// command path (space-joined, "" for top level) to its flag names; a key
// that names a sub-command is a section.
func (f *File) Check(known map[string]map[string]bool) error {
	if f == nil || f.root == nil {
		return nil
	}
	var errs []error
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := append(append([]string{}, path...), k.Value)
			if _, isSection := known[strings.Join(sub, " ")]; isSection {
				switch {
				case v.Kind == yaml.MappingNode:
					walk(v, sub)
					continue
				case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
					continue // a section whose settings are all commented out
				}
			}
			if known[strings.Join(path, " ")][k.Value] {
				continue
			}
			where := "at the top level"
			if len(path) > 0 {
				where = "in section " + strings.Join(path, ".")
			}
			errs = append(errs, fmt.Errorf("config %s line %d: %w %q %s", f.Path, k.Line, ErrUnknownKey, k.Value, where))
		}
	}
	walk(f.root, nil)
	return errors.Join(errs...)
}
