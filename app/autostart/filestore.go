//go:build !windows

package autostart

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"porthole/app/internal/atomicfile"
)

// maxEntrySize bounds what Read loads; a bigger file is not ours.
const maxEntrySize = 64 << 10

// fileStore keeps the entry in one regular file, written atomically.
type fileStore struct {
	path string
}

func (s fileStore) Location() string { return s.path }

func (s fileStore) Read() (string, bool, error) {
	fi, err := os.Lstat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if !fi.Mode().IsRegular() {
		return "", true, fmt.Errorf("%s: %w (it is a %s, not a regular file; left as it is)", s.path, ErrNotOurs, fi.Mode().Type())
	}
	if fi.Size() > maxEntrySize {
		return "", true, fmt.Errorf("%s: %w (%d bytes; left as it is)", s.path, ErrNotOurs, fi.Size())
	}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil // removed since Lstat
	}
	if err != nil {
		return "", false, err
	}
	return string(data), true, nil
}

// Write writes content to a temporary file in the same directory (a dot
// name that no autostart reader picks up), syncs it and renames it over the
// entry, creating the directory (0755, as desktops do) if needed. The file is
// 0644: it holds nothing secret and launchd refuses group/world-writable
// agents.
func (s fileStore) Write(content string) error {
	return atomicfile.Write(s.path, []byte(content), 0o644, 0o755)
}

func (s fileStore) Remove() error {
	err := os.Remove(s.path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("removing %s: %w", s.path, err)
}
