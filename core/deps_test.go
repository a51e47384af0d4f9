package core_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoFyneInCoreOrApp keeps the proxy engine and the application logic
// free of the GUI toolkit: headless builds and their tests must not pull in
// fyne.io.
func TestNoFyneInCoreOrApp(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	root := moduleRoot(t, goTool)
	cmd := exec.Command(goTool, "list", "-deps", "./core/...", "./app/...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	pkgs := strings.Fields(string(out))
	seen := false
	for _, p := range pkgs {
		if p == "porthole/core" {
			seen = true
		}
		if strings.HasPrefix(p, "fyne.io") {
			t.Errorf("core or app depends on %s", p)
		}
	}
	if !seen {
		t.Fatalf("go list -deps did not list porthole/core; output:\n%s", out)
	}
}

// moduleRoot is the directory holding go.mod, asked of the go tool.
func moduleRoot(t *testing.T, goTool string) string {
	t.Helper()
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" || gomod == "NUL" {
		t.Fatalf("not inside a module (GOMOD=%q)", gomod)
	}
	return filepath.Dir(gomod)
}
