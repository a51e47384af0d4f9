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
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// fd 3 in the child is the pipe's write end (ExtraFiles[0]).
	cmd := exec.Command(bin, "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	// A file, not a buffer: no copying goroutine to race with.
	logPath := filepath.Join(t.TempDir(), "xvfb.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	stderr := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	if err := cmd.Start(); err != nil {
		w.Close()
		t.Fatalf("starting Xvfb: %v", err)
	}
	w.Close() // the child holds its own copy
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("stopping Xvfb: %v", err)
		}
		<-exited
	})

	got := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n') // EOF if Xvfb dies first
		got <- strings.TrimSpace(line)
	}()
	select {
	case n := <-got:
		if n == "" {
			t.Fatalf("Xvfb did not report a display number; stderr:\n%s", stderr())
		}
		return ":" + n
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("Xvfb exited at start (%v); stderr:\n%s", err, stderr())
	case <-time.After(20 * time.Second):
		t.Fatalf("Xvfb reported no display within 20 s; stderr:\n%s", stderr())
	}
	return ""
}
