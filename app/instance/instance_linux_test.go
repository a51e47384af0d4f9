package instance

import (
	"net"
	"os"
	"testing"
)

// Socket files are what macOS and Windows use; on Linux pathMode tests
// their handling.

func TestSecondStartShowsTheFirstWithSocketFiles(t *testing.T) {
	usePathMode(t)
	testSecondStartShowsTheFirst(t)
}

func TestAfterCloseTheNextStartRunsWithSocketFiles(t *testing.T) {
	usePathMode(t)
	testAfterCloseTheNextStartRuns(t)
}

// A killed run leaves its socket file: the next start removes it and runs.
func TestStaleSocketFileIsReplaced(t *testing.T) {
	usePathMode(t)
	k := key(t)
	ln := listenAt(t, k)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ln.Addr().String()); err != nil {
		t.Fatalf("the stale file should be there: %v", err)
	}
	mustAcquire(t, k)
}

func usePathMode(t *testing.T) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	pathMode = true
	t.Cleanup(func() { pathMode = false })
}
