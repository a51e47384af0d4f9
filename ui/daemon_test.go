package ui

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startDaemon runs bin with args for the rest of t; the program reports
// that it is ready by writing one line to fd 3 (Xvfb's -displayfd 3,
// dbus-daemon's --print-address=3), which startDaemon returns. Output goes
// to a log file quoted on failure; the program is killed when t ends.
func startDaemon(t *testing.T, bin string, args ...string) string {
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
