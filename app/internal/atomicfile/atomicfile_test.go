package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"porthole/internal/filetest"
)

func TestWriteReplacesWithModeAndLeavesNoTemporaryFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "f.json")
	for _, content := range []string{"first\n", "second, longer\n"} {
		if err := Write(path, []byte(content), 0o600, 0o700); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read back %q, %v; want %q", got, err, content)
		}
	}
	filetest.Mode(t, path, 0o600)
	filetest.Alone(t, path)
}

func TestWriteIntoAFileFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(file, "under"), []byte("x"), 0o600, 0o700); err == nil {
		t.Fatal("writing under a regular file succeeded")
	}
}

func TestWriteJSONIndentsAndEndsWithNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	if err := WriteJSON(path, map[string]int{"a": 1}, 0o600, 0o700); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "{\n  \"a\": 1\n}\n" {
		t.Fatalf("read back %q, %v", got, err)
	}
	filetest.Mode(t, path, 0o600)
	other := filepath.Join(t.TempDir(), "g.json")
	if err := WriteJSON(other, make(chan int), 0o600, 0o700); err == nil {
		t.Fatal("a value JSON cannot encode was written")
	}
	if _, err := os.Stat(other); err == nil {
		t.Error("a failed encoding left a file")
	}
}
