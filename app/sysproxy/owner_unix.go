//go:build unix

package sysproxy

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile is flock(2): per open file, so it also keeps two Managers of
// one process apart, and it is released when the process dies.
func lockFile(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return ErrBusy
	}
	if errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		// A file system without locks (NFS without lockd, some FUSE):
		// work as before the lock existed rather than never repair.
		return errNoLocks
	}
	if err != nil {
		return fmt.Errorf("system proxy journal lock: %w", err)
	}
	return nil
}
