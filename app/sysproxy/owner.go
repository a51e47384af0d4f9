package sysproxy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ownerLock is an exclusive lock on the journal's lock file (path.lock),
// held by the process whose journal is in effect for as long as it is.
// The operating system drops it when that process ends, however it ends:
// that is what tells a journal left by a crash (repair it) from one a
// running Porthole still owns (leave it and its proxy alone).
type ownerLock struct{ f *os.File }

// lockOwner takes the lock without waiting: ErrBusy when another process
// (or another Manager in this one) holds it.
func lockOwner(journalPath string) (*ownerLock, error) {
	if err := os.MkdirAll(filepath.Dir(journalPath), 0o700); err != nil {
		return nil, fmt.Errorf("system proxy journal lock: %w", err)
	}
	f, err := os.OpenFile(journalPath+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("system proxy journal lock: %w", err)
	}
	if err := lockFile(f); err != nil && !errors.Is(err, errNoLocks) {
		_ = f.Close() // the lock failed; the close has nothing to add
		return nil, err
	}
	return &ownerLock{f: f}, nil
}

// release drops the lock. The lock file stays: removing it would race with
// a process that just opened it.
func (l *ownerLock) release() error {
	if l == nil {
		return nil
	}
	// Closing the file releases the lock on every system.
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("system proxy journal lock: %w", err)
	}
	return nil
}
