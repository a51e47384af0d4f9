package desktoptest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// What GSettings writes lands in the private HOME's keyfile, not in the
// user's settings.
func TestGSettingsWritesTheKeyfile(t *testing.T) {
	gs, home := GSettings(t)
	if os.Getenv("HOME") != home || os.Getenv("GSETTINGS_BACKEND") != "keyfile" {
		t.Fatalf("HOME %q, GSETTINGS_BACKEND %q; want %q and keyfile", os.Getenv("HOME"), os.Getenv("GSETTINGS_BACKEND"), home)
	}
	if out, err := exec.Command(gs, "set", "org.gnome.system.proxy", "mode", "'manual'").CombinedOutput(); err != nil {
		t.Skipf("gsettings cannot set the proxy schema here (Debian: gsettings-desktop-schemas): %v: %s", err, out)
	}
	keyfile, err := os.ReadFile(filepath.Join(home, ".config", "glib-2.0", "settings", "keyfile"))
	if err != nil || !strings.Contains(string(keyfile), "mode='manual'") {
		t.Errorf("keyfile: %q, %v; want the mode just set", keyfile, err)
	}
}
