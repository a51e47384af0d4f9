//go:build !darwin && !windows

package autostart

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"porthole/internal/filetest"
)

// tempXDG points XDG_CONFIG_HOME at a fresh directory and returns the path
// of Porthole's desktop file in it.
func tempXDG(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	return filepath.Join(dir, "autostart", "porthole.desktop")
}

// validator is desktop-file-validate, or "" when it is not installed.
func validator() string {
	tool, err := exec.LookPath("desktop-file-validate")
	if err != nil {
		return ""
	}
	return tool
}

const noValidator = "desktop-file-validate not installed (Debian package desktop-file-utils, see build/deps.sh); the files were written and read back but not validated"

// validate runs desktop-file-validate on path; it must print nothing.
func validate(t *testing.T, tool, path string) {
	t.Helper()
	out, err := exec.Command(tool, path).CombinedOutput()
	if err != nil || len(out) != 0 {
		data, rerr := os.ReadFile(path)
		t.Fatalf("desktop-file-validate %s: %v\n%s\nfile (read error %v):\n%s", path, err, out, rerr, data)
	}
}

func TestXDGRoundTrip(t *testing.T) {
	path := tempXDG(t)
	exe := "/opt/My Apps/porthole"

	if on, err := Enabled(); on || err != nil {
		t.Fatalf("Enabled before = %v, %v", on, err)
	}
	if err := Disable(); err != nil {
		t.Fatalf("Disable with nothing there: %v", err)
	}
	if err := Enable(exe, nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := desktopEntry(exe, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", data, want)
	}
	filetest.Mode(t, path, 0o644)
	filetest.Alone(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}

	// Idempotent: enabling again leaves the same file (same inode: not
	// even rewritten).
	if err := Enable(exe, nil); err != nil {
		t.Fatal(err)
	}
	fi2, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi, fi2) {
		t.Errorf("second Enable rewrote the file")
	}
	if on, err := Enabled(); !on || err != nil {
		t.Fatalf("Enabled after Enable = %v, %v", on, err)
	}
	if err := Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file still there after Disable: %v", err)
	}
	if on, err := Enabled(); on || err != nil {
		t.Fatalf("Enabled after Disable = %v, %v", on, err)
	}
	if err := Disable(); err != nil {
		t.Fatalf("second Disable: %v", err)
	}
}

func TestXDGValidates(t *testing.T) {
	path := tempXDG(t)
	tool := validator()
	for _, c := range []struct {
		exe  string
		args []string
	}{
		{"/usr/bin/porthole", nil},
		{"/opt/My Apps/porthole", []string{"--flag", "a b", ""}},
		{`/opt/odd "quoted" $dir\back` + "`tick`" + `/100% sure/porthole`, []string{"%f", "it's"}},
		{"/home/josé/Ünïcode dir/porthole", nil},
		{"/opt/all ' > < ~ | & ; * ? # ( ) chars/porthole", []string{"x=y"}},
	} {
		if err := Enable(c.exe, c.args); err != nil {
			t.Fatalf("Enable(%q, %q): %v", c.exe, c.args, err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		exe, args, err := parseDesktopEntry(string(data))
		if err != nil || exe != c.exe || len(args) != len(c.args) {
			t.Fatalf("file for %q %q reads back as %q %q %v", c.exe, c.args, exe, args, err)
		}
		if tool != "" {
			validate(t, tool, path)
		}
	}
	if tool == "" {
		t.Skip(noValidator)
	}
}

func TestXDGUserEditedIsKept(t *testing.T) {
	path := tempXDG(t)
	if err := Enable("/usr/bin/porthole", nil); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("X-My-Own=1\n")
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	edited, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if err := Disable(); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Disable of an edited file: %v, want ErrNotOurs", err)
	}
	if err := Enable("/usr/bin/porthole", nil); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Enable over an edited file: %v, want ErrNotOurs", err)
	}
	if on, err := Enabled(); !on || !errors.Is(err, ErrNotOurs) {
		t.Errorf("Enabled with an edited file = %v, %v; want true, ErrNotOurs", on, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("edited file gone: %v", err)
	}
	if string(data) != string(edited) {
		t.Errorf("edited file changed:\n%s", data)
	}
}

func TestXDGSymlinkIsKept(t *testing.T) {
	path := tempXDG(t)
	content, err := desktopEntry("/usr/bin/porthole", nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "dotfiles-porthole.desktop")
	if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := Disable(); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Disable of a symlink: %v, want ErrNotOurs", err)
	}
	if err := Enable("/usr/bin/porthole", nil); !errors.Is(err, ErrNotOurs) {
		t.Errorf("Enable over a symlink: %v, want ErrNotOurs", err)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("symlink not kept: %v, %v", fi, err)
	}
}

func TestXDGLeavesOtherEntries(t *testing.T) {
	path := tempXDG(t)
	other := filepath.Join(filepath.Dir(path), "other.desktop")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("[Desktop Entry]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Enable("/usr/bin/porthole", nil); err != nil {
		t.Fatal(err)
	}
	if err := Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another entry was touched: %v", err)
	}
}

func TestXDGDefaultDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "relative/ignored")
	if err := Enable("/usr/bin/porthole", nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, ".config", "autostart", "porthole.desktop")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("not written to ~/.config/autostart: %v", err)
	}
	if err := Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("not removed: %v", err)
	}
}

func TestXDGRelativeExe(t *testing.T) {
	path := tempXDG(t)
	if err := Enable("porthole", nil); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("Enable(relative): %v, want ErrInvalidCommand", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("something was written: %v", err)
	}
}
