package main

import (
	"regexp"
	"syscall"
	"testing"
)

// Without --headless and without a display, porthole says why in one line
// and runs headless, Ctrl-C included.
func TestWithoutADisplayRunsHeadless(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	p := startPorthole(t, "--listen", "127.0.0.1:0")
	p.waitFor(t, regexp.MustCompile(`no display .*running headless`))
	p.waitFor(t, listenRE)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, rest := p.wait(t); code != 0 {
		t.Fatalf("exit code %d after Ctrl-C, want 0; stderr:\n%s", code, rest)
	}
}
