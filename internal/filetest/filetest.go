// Package filetest writes the files a test starts from and checks the
// ones the code under test wrote: their mode, and that an atomic write
// left nothing beside them. Only tests import it.
package filetest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Write writes content to a file called name in a new temporary
// directory, readable by the user only, and returns its path.
func Write(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Mode fails the test (without stopping it) unless the file at path has
// the permission bits want.
func Mode(t testing.TB, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
	}
}

// Alone fails the test (without stopping it) unless the file at path is
// the only entry of its directory: a write through a temporary file left
// nothing behind.
func Alone(t testing.TB, path string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(path) {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		t.Errorf("%s's directory holds %q, want only it (no temporary files)", filepath.Base(path), names)
	}
}
