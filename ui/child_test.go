package ui

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"porthole/internal/chantest"
	"porthole/internal/childproc"
)

// uiChild is the real GUI (runUIChild) running in a child process on a
// given X display and session bus.
type uiChild struct {
	cmd     *exec.Cmd
	proc    *childproc.Proc // its stderr: waitLine, and every line for the final checks
	home    string          // its HOME; XDG_CONFIG_HOME is home/.config
	stdin   io.WriteCloser  // commands for childCommands
	started time.Time
}

// childWait bounds every wait for the GUI child: a line, its exit.
const childWait = 30 * time.Second

// startUIChild starts the child with its own HOME and config directory.
func startUIChild(t *testing.T, display, bus string, extraEnv ...string) *uiChild {
	t.Helper()
	home := t.TempDir()
	for _, d := range []string{".config", ".cache", ".local/share", "run"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(),
		uiChildEnv+"=1",
		"DISPLAY="+display, "WAYLAND_DISPLAY=",
		"DBUS_SESSION_BUS_ADDRESS="+bus,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "run"),
		"XDG_CURRENT_DESKTOP=",
		"PORTHOLE_UI_CONFIG="+filepath.Join(home, ".config", "porthole", "config.json"),
		"PORTHOLE_TOKEN=",
	)
	// A -race child otherwise waits a second at exit.
	cmd := childproc.Self(childproc.QuietRace(append(env, extraEnv...)))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &uiChild{cmd: cmd, home: home, stdin: stdin}
	// Registered before Start, so it runs after Start's cleanup has ended
	// a leftover child: the log then has all of stderr.
	t.Cleanup(func() {
		if c.proc != nil && (t.Failed() || testing.Verbose()) {
			t.Logf("child stderr:\n%s", c.proc.Stderr())
		}
	})
	c.started = time.Now()
	c.proc = childproc.Start(t, "the GUI", childWait, cmd)
	return c
}

// startTrayChild starts the GUI child where watcher plays the panel and
// waits until its tray item registered; it returns the child and the
// proxy's address.
func startTrayChild(t *testing.T, display, bus string, watcher *fakeWatcher) (*uiChild, string) {
	t.Helper()
	child := startUIChild(t, display, bus)
	addr := child.waitLine(t, listeningRE)[1]
	watcher.waitItem(t)
	return child, addr
}

// waitLine returns the submatches of the first stderr line from now on
// that matches re, failing after 30 s.
func (c *uiChild) waitLine(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	return c.proc.WaitFor(t, re)
}

// command sends the child one of childCommands' commands.
func (c *uiChild) command(t *testing.T, cmd string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		t.Fatalf("command %q: %v", cmd, err)
	}
}

// signal sends sig to the child.
func (c *uiChild) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits for the child to end and checks that it ended well: Run
// returned nil and the process exited 0, with no Fyne threading error and
// no data race of ours in its output.
//
// A -race child exits 66 when the race detector reported anything. One
// report is known and not ours: fyne.io/systray (the version Fyne 2.8.1
// pins) reads its menu revision in GetLayout under one mutex while the
// refresh it schedules from GetLayout writes it under another. Such
// reports are logged; exit status 66 is then accepted when the child
// logged that Run returned nil. Any other report fails the test.
func (c *uiChild) waitExit(t *testing.T) {
	t.Helper()
	chantest.Within(t, childWait, "the GUI's exit", c.proc.Exited())
	err := c.proc.Err()
	out := c.proc.Stderr()
	upstream := 0
	for _, r := range raceReports(out) {
		if !onlySystrayRace(r) {
			t.Errorf("a data race in the GUI:\n%s", r)
			continue
		}
		upstream++
	}
	if upstream > 0 {
		t.Logf("%d data race report(s) inside fyne.io/systray (upstream, not Porthole's)", upstream)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == 66 && upstream > 0 && strings.Contains(out, runReturnedNil):
	case errors.As(err, &ee):
		t.Errorf("the GUI exited with status %d, want 0", ee.ExitCode())
	case err != nil:
		t.Errorf("waiting for the GUI: %v", err)
	}
	for _, bad := range []string{"Error in Fyne call thread", "panic:"} {
		if strings.Contains(out, bad) {
			t.Errorf("the GUI's stderr has %q", bad)
		}
	}
}

// runReturnedNil is what runUIChild logs when Run returned without error.
const runReturnedNil = "ui child: Run returned nil"

// raceReports splits the race detector's reports out of a stderr.
func raceReports(out string) []string {
	var reports []string
	for _, part := range strings.Split(out, "WARNING: DATA RACE")[1:] {
		report, _, _ := strings.Cut(part, "==================")
		reports = append(reports, report)
	}
	return reports
}

// onlySystrayRace reports whether every memory access in a race report
// happened in fyne.io/systray's own code.
func onlySystrayRace(report string) bool {
	lines := strings.Split(report, "\n")
	accesses := 0
	for i, l := range lines {
		if !accessRE.MatchString(l) || i+1 >= len(lines) {
			continue
		}
		accesses++
		if !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "fyne.io/systray.") {
			return false
		}
	}
	return accesses >= 2
}

var accessRE = regexp.MustCompile(`^\s*(Previous )?(read|write|Read|Write) at `)
