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
	p.WaitFor(t, regexp.MustCompile(`no display .*running headless`))
	p.WaitFor(t, listenRE)
	p.Stop(t, syscall.SIGINT)
}
