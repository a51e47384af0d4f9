package core_test

// The layer table of docs/ARCHITECTURE.md, enforced: the test reads the
// table from the document, so the document and the code cannot disagree,
// and checks every package of the module against it on each OS Porthole
// ships for.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"porthole/internal/childproc"
)

// architectureDoc is the document holding the layer table, from the
// module root.
const architectureDoc = "docs/ARCHITECTURE.md"

// layerHeader starts the table: its columns are the layer, what lives
// there, what its code may import and what its tests may import besides.
const layerHeader = "| layer | what lives there | may import | its tests may also import |"

// goosList are the systems Porthole is built for; imports differ by file
// build constraints.
var goosList = []string{"linux", "windows", "darwin"}

// layer is one row of the table. Patterns are import paths; "x/..." means x
// and every package under it.
type layer struct {
	pattern     string
	imports     []string // what its non-test files may import
	testImports []string // what its tests may import besides
}

// pkgInfo is what go list says about one package.
type pkgInfo struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Error        *struct{ Err string }
}

func TestImportsFollowTheLayerTable(t *testing.T) {
	goTool, root := goEnv(t)
	layers := readLayers(t, filepath.Join(root, architectureDoc))
	for _, goos := range goosList {
		t.Run(goos, func(t *testing.T) {
			for _, p := range listPackages(t, goTool, root, goos) {
				l, ok := layerOf(layers, p.ImportPath)
				if !ok {
					t.Errorf("%s belongs to no layer of %s: add a row", p.ImportPath, architectureDoc)
					continue
				}
				for _, imp := range p.Imports {
					if !allowed(imp, l.imports) {
						t.Errorf("%s imports %s, which the %s row of %s does not allow", p.ImportPath, imp, l.pattern, architectureDoc)
					}
				}
				both := append(slices.Clone(l.imports), l.testImports...)
				both = append(both, p.ImportPath) // external tests import their package
				for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
					if !allowed(imp, both) {
						t.Errorf("tests of %s import %s, which the %s row of %s does not allow", p.ImportPath, imp, l.pattern, architectureDoc)
					}
				}
			}
		})
	}
}

// TestNoFyneInCoreOrApp keeps the proxy engine, the application logic and
// the exit server free of the GUI toolkit, even indirectly: they build
// without cgo and run where there is no display.
func TestNoFyneInCoreOrApp(t *testing.T) {
	goTool, root := goEnv(t)
	for _, goos := range goosList {
		seen := false
		for _, p := range listPackages(t, goTool, root, goos) {
			if p.ImportPath == "porthole" || under(p.ImportPath, "porthole/ui") {
				continue
			}
			seen = seen || p.ImportPath == "porthole/core"
			for _, d := range p.Deps {
				if under(d, "fyne.io") {
					t.Errorf("%s: %s depends on %s", goos, p.ImportPath, d)
					break
				}
			}
		}
		if !seen {
			t.Fatalf("%s: go list did not list porthole/core", goos)
		}
	}
}

// TestTestHelpersStayInTests: a package that depends on "testing" is a
// test helper, lives in internal/, and only tests import it; no program
// links the testing package.
func TestTestHelpersStayInTests(t *testing.T) {
	goTool, root := goEnv(t)
	for _, goos := range goosList {
		for _, p := range listPackages(t, goTool, root, goos) {
			if slices.Contains(p.Deps, "testing") && !under(p.ImportPath, "porthole/internal") {
				t.Errorf("%s: %s depends on package testing: only tests may import test helpers", goos, p.ImportPath)
			}
		}
	}
}

// readLayers parses the layer table from the document.
func readLayers(t *testing.T, doc string) []layer {
	t.Helper()
	text, err := os.ReadFile(doc)
	if err != nil {
		t.Fatalf("the layer table lives in %s: %v", architectureDoc, err)
	}
	code := regexp.MustCompile("`([^`]+)`")
	var layers []layer
	in := false
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == layerHeader:
			in = true
			continue
		case !in:
			continue
		case !strings.HasPrefix(line, "|"):
			in = false
			continue
		case strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			t.Fatalf("%s: layer row %q has %d cells, want 4", architectureDoc, line, len(cells))
		}
		tokens := func(cell string) []string {
			var out []string
			for _, m := range code.FindAllStringSubmatch(cell, -1) {
				out = append(out, m[1])
			}
			return out
		}
		name := tokens(cells[0])
		if len(name) == 0 {
			t.Fatalf("%s: layer row %q names no layer in backquotes", architectureDoc, line)
		}
		l := layer{pattern: "porthole/" + name[0], imports: tokens(cells[2]), testImports: tokens(cells[3])}
		if name[0] == "main.go" {
			l.pattern = "porthole"
		}
		layers = append(layers, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(layers) < 6 {
		t.Fatalf("%s: found %d layer rows under %q; the table moved or lost rows", architectureDoc, len(layers), layerHeader)
	}
	return layers
}

// layerOf is the most specific layer whose pattern holds path.
func layerOf(layers []layer, path string) (layer, bool) {
	var best layer
	found := false
	for _, l := range layers {
		if match(l.pattern, path) && (!found || len(l.pattern) > len(best.pattern)) {
			best, found = l, true
		}
	}
	return best, found
}

// allowed: the standard library always, otherwise a listed pattern.
func allowed(imp string, patterns []string) bool {
	if isStd(imp) {
		return true
	}
	for _, p := range patterns {
		if match(p, imp) {
			return true
		}
	}
	return false
}

func match(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return under(path, prefix)
	}
	return path == pattern
}

// under: path is prefix or a package below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// isStd: standard library paths have no dot in their first element (the
// module's own "porthole" has none either, so it is excluded by name).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return first != "porthole" && !strings.Contains(first, ".")
}

var listed sync.Map // goos -> []pkgInfo, so each OS is listed once per test binary

// listPackages is go list of the whole module for goos.
func listPackages(t *testing.T, goTool, root, goos string) []pkgInfo {
	t.Helper()
	if v, ok := listed.Load(goos); ok {
		return v.([]pkgInfo)
	}
	cmd := exec.Command(goTool, "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports,Deps,Error", "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+goos)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("GOOS=%s go list: %v\n%s", goos, err, stderr.String())
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkgInfo
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("GOOS=%s go list output: %v", goos, err)
		}
		if p.Error != nil {
			t.Fatalf("GOOS=%s go list %s: %s", goos, p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("GOOS=%s go list listed no package", goos)
	}
	listed.Store(goos, pkgs)
	return pkgs
}

// goEnv finds the go tool and the module root (the directory of go.mod).
func goEnv(t *testing.T) (goTool, root string) {
	t.Helper()
	goTool = childproc.Need(t, "go", "the go tool lists the packages")
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" || gomod == "NUL" {
		t.Fatalf("not inside a module (GOMOD=%q)", gomod)
	}
	return goTool, filepath.Dir(gomod)
}
