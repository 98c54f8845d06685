package isp

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportsArePlain keeps the package a library of plain data: it may
// read observations but never the store, the analysis or the web code.
func TestImportsArePlain(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/vigil-oss/vigil/internal/observe": true,
		"gopkg.in/yaml.v3":                            true,
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") && !allowed[imp] {
			t.Errorf("isp imports %s: only plain data packages are allowed (%v)", imp, allowed)
		}
	}
}
