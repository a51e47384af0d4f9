package desktoptest

import (
	"path/filepath"
	"testing"

	"porthole/internal/childproc"
)

// GSettings points gsettings at a keyfile in a fresh HOME private to t,
// on a desktop that says it is GNOME, and returns the gsettings binary and
// that HOME; it skips the test where gsettings is not installed.
func GSettings(t *testing.T) (gsettings, home string) {
	t.Helper()
	gs := childproc.Need(t, "gsettings", "Debian: libglib2.0-bin, installed by build/deps.sh")
	home = t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GSETTINGS_BACKEND", "keyfile")
	t.Setenv("XDG_CURRENT_DESKTOP", "GNOME")
	return gs, home
}
