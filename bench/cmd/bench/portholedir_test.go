package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPortholeDirHoldsOnlyItsFiles(t *testing.T) {
	dir, err := portholeDir("porthole-bench-test-", map[string]string{"config.json": "{}\n", "rules.list": "MATCH,DIRECT\n"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries in the config dir, want 2", len(entries))
	}
	for name, want := range map[string]string{"config.json": "{}\n", "rules.list": "MATCH,DIRECT\n"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
}
