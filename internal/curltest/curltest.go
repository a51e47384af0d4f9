// Package curltest runs curl, the client a user types into a terminal and
// an independent implementation of every protocol the proxy speaks. Only
// tests import it.
package curltest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"porthole/internal/childproc"
)

// maxTime is curl's own bound on one run (--max-time, seconds); the
// process is killed a little after it.
const maxTime = 20

// Need skips the test if curl is not installed and returns its path.
func Need(t testing.TB) string {
	t.Helper()
	return childproc.Need(t, "curl", "build/deps.sh installs it")
}

// Run runs curl with args and returns what it wrote to stdout. curl runs
// in a clean environment (-q: no ~/.curlrc; no *_proxy or NO_PROXY
// variables, a fresh HOME), fails on an HTTP error status (--fail) and
// gives up after 20 s. A failure's error names args and has curl's
// stderr. The test is skipped if curl is not installed.
func Run(t testing.TB, args ...string) (string, error) {
	t.Helper()
	path := Need(t)
	ctx, cancel := context.WithTimeout(t.Context(), (maxTime+10)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-q", "-sS", "--fail", "--max-time", fmt.Sprint(maxTime)}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("curl %q: %w: %s", args, err, stderr.String())
	}
	return stdout.String(), nil
}
