package ui

import (
	"os/exec"
	"testing"
)

// withXvfb starts a private X server for t and returns its DISPLAY value
// (":N"). Xvfb chooses a free display number itself (-displayfd), so
// parallel test binaries never collide. The server is stopped when t ends.
// Tests are skipped, saying why, where Xvfb is not installed.
func withXvfb(t *testing.T) (display string) {
	t.Helper()
	bin, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Skip("Xvfb is not installed (apt-get install xvfb); the real-window tests need it")
	}
	return ":" + startDaemon(t, bin, "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
}
