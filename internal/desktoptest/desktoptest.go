// Package desktoptest starts what the desktop tests need, for real and
// private to one test: an X server (Xvfb), a D-Bus session daemon, and a
// way to see which windows are open. Only tests import it.
package desktoptest

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"porthole/internal/childproc"
)

// Daemon runs bin with args for the rest of t; the program reports
// that it is ready by writing one line to fd 3 (Xvfb's -displayfd 3,
// dbus-daemon's --print-address=3), which Daemon returns. Output goes
// to a log file quoted on failure; the program is killed when t ends.
func Daemon(t *testing.T, bin string, args ...string) string {
	t.Helper()
	name := filepath.Base(bin)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{w} // fd 3 in the child
	// A file, not a buffer: no copying goroutine to race with.
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	output := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	w.Close() // the child holds its own copy
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("stopping %s: %v", name, err)
		}
		<-exited
	})
	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n') // EOF if it dies first
		got <- strings.TrimSpace(line)
	}()
	select {
	case line := <-got:
		if line == "" {
			t.Fatalf("%s did not say it was ready; output:\n%s", name, output())
		}
		return line
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("%s exited at start (%v); output:\n%s", name, err, output())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not say it was ready within 20 s; output:\n%s", name, output())
	}
	return ""
}

// Xvfb starts a private X server for t and returns its DISPLAY value
// (":N"). Xvfb chooses a free display number itself (-displayfd), so
// parallel test binaries never collide. The server is stopped when t ends.
// Tests are skipped, saying why, where Xvfb is not installed.
func Xvfb(t *testing.T) (display string) {
	t.Helper()
	bin := childproc.Need(t, "Xvfb", "apt-get install xvfb; the real-window tests need it")
	return ":" + Daemon(t, bin, "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
}

// SessionBus starts a private D-Bus session daemon for t and returns
// its address. Nothing of the desktop's own session bus is touched.
func SessionBus(t *testing.T) (address string) {
	t.Helper()
	bin := childproc.Need(t, "dbus-daemon", "apt-get install dbus; the tray tests need a private session bus")
	return Daemon(t, bin, "--session", "--nofork", "--nopidfile", "--print-address=3")
}

// WaitForWindows waits until the X server at display has windows whose
// names contain each of names, asking xwininfo ten times a second for at
// most 30 s. It skips the check where xwininfo is not installed.
func WaitForWindows(t *testing.T, display string, names ...string) {
	t.Helper()
	bin, err := exec.LookPath("xwininfo")
	if err != nil {
		t.Log("xwininfo is not installed (x11-utils): not checking that the windows opened")
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	var tree []byte
	for {
		tree, err = exec.Command(bin, "-display", display, "-root", "-tree").Output()
		if err != nil {
			t.Fatalf("xwininfo: %v", err)
		}
		missing := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return strings.Contains(string(tree), n) })
		if len(missing) == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no window named %q within 30 s; windows:\n%s", missing, tree)
		}
	}
}

// FindWindow looks in the X server at display for a window whose name
// contains name and returns its id ("0x…", "" when there is none) and
// whether it is mapped and viewable (shown) rather than unmapped (hidden);
// a viewable one is preferred. It skips t where xwininfo is not installed.
func FindWindow(t *testing.T, display, name string) (id string, viewable bool) {
	t.Helper()
	bin := childproc.Need(t, "xwininfo", "x11-utils")
	tree, err := exec.Command(bin, "-display", display, "-root", "-tree").Output()
	if err != nil {
		t.Fatalf("xwininfo: %v", err)
	}
	for _, line := range strings.Split(string(tree), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.HasPrefix(fields[0], "0x") || !strings.Contains(line, `"`) || !strings.Contains(line, name) {
			continue
		}
		info, err := exec.Command(bin, "-display", display, "-id", fields[0]).Output()
		if err != nil {
			// Destroyed between the tree and this query (a window being
			// closed): it is not there, which is an answer, not a failure.
			continue
		}
		id = fields[0]
		if strings.Contains(string(info), "Map State: IsViewable") {
			return id, true
		}
	}
	return id, false
}

// WaitWindow waits up to 30 s for the window whose name contains name to be
// shown (viewable true) or hidden or gone (false), and returns its id as
// FindWindow does. It fails t at the deadline.
func WaitWindow(t *testing.T, display, name string, viewable bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, shown := FindWindow(t, display, name)
		if shown == viewable {
			return id
		}
		if time.Now().After(deadline) {
			t.Fatalf("the window %q is not %s within 30 s", name, map[bool]string{true: "shown", false: "hidden"}[viewable])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
