package filetest

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeT records a failure instead of failing the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }

func TestWriteModeAlone(t *testing.T) {
	path := Write(t, "f.json", "{}\n")
	if data, err := os.ReadFile(path); err != nil || string(data) != "{}\n" {
		t.Fatalf("Write: %q, %v", data, err)
	}
	Mode(t, path, 0o600)
	Alone(t, path)

	ft := &fakeT{TB: t}
	Mode(ft, path, 0o644)
	if !ft.failed {
		t.Error("Mode accepted 0600 as 0644")
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), ".f.json.tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ft = &fakeT{TB: t}
	Alone(ft, path)
	if !ft.failed {
		t.Error("Alone accepted a file beside a temporary one")
	}
}
