package autostart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"porthole/internal/childproc"
)

// TestGioLaunch checks the Exec quoting against GLib, the launcher GNOME's
// autostart uses: `gio launch` runs the written porthole.desktop, whose
// executable (in a directory full of reserved characters) is a script that
// writes its arguments to a FIFO. Skipped without gio (libglib2.0-bin).
func TestGioLaunch(t *testing.T) {
	gio := childproc.Need(t, "gio", "Debian package libglib2.0-bin; skipping the launch through GLib")
	tempXDG(t)
	// No '%' in the executable's path: GLib checks that the program exists
	// before expanding %%, so it refuses such an entry (see desktopExec).
	dir := filepath.Join(t.TempDir(), `odd "q" $d\b`+"`t`"+` it's (x) & y; ~#`)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "porthole")
	script := "#!/bin/sh\n" +
		`{ for a in "$@"; do printf '%s\0' "$a"; done; printf '\001'; } > "$PORTHOLE_ARGV_FIFO"` + "\n"
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "argv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opened read-write, so reads wait for the script instead of seeing
	// EOF, and a deadline bounds the wait.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read end of a test FIFO
	args := []string{"a b", "", "%f", "100% x", `q"d`, "$HOME", `b\s`, `c\\"`, "t`i", "it's", "~", "<>|&;*?#()", "--flag=x", "ünï"}
	if err := Enable(exe, args); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "autostart", DesktopFileName)
	cmd := exec.Command(gio, "launch", path)
	cmd.Env = append(os.Environ(), "PORTHOLE_ARGV_FIFO="+fifo)
	if out, err := cmd.CombinedOutput(); err != nil {
		data, rerr := os.ReadFile(path)
		t.Fatalf("gio launch: %v\n%s\nfile (read error %v):\n%s", err, out, rerr, data)
	}
	if err := f.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(got, []byte{1}) && len(got) < 1<<20 {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("reading the script's arguments (got %q): %v", got, err)
		}
	}
	argv := strings.Split(strings.TrimSuffix(string(got), "\x01"), "\x00")
	argv = argv[:len(argv)-1] // after the last NUL
	if !slices.Equal(argv, args) {
		t.Errorf("GLib passed\n%q\nwant\n%q", argv, args)
	}
}
