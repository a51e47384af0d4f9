//go:build linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"porthole/internal/childproc"
)

// gnomeDesktop is a GNOME-like desktop for child processes: gsettings
// writing a keyfile in a temporary HOME. It skips where gsettings or the
// proxy schema is missing.
type gnomeDesktop struct {
	env []string
}

func newGnomeDesktop(t *testing.T) *gnomeDesktop {
	t.Helper()
	childproc.Need(t, "gsettings", "Debian: libglib2.0-bin, installed by build/deps.sh")
	home := t.TempDir()
	d := &gnomeDesktop{env: append(os.Environ(),
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"GSETTINGS_BACKEND=keyfile", "XDG_CURRENT_DESKTOP=GNOME")}
	if out, err := d.gsettingsErr("list-keys", "org.gnome.system.proxy"); err != nil {
		t.Skipf("no org.gnome.system.proxy schema (Debian: gsettings-desktop-schemas): %s", out)
	}
	return d
}

func (d *gnomeDesktop) gsettingsErr(args ...string) (string, error) {
	cmd := exec.Command("gsettings", args...)
	cmd.Env = d.env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (d *gnomeDesktop) gsettings(t *testing.T, args ...string) string {
	t.Helper()
	out, err := d.gsettingsErr(args...)
	if err != nil {
		t.Fatalf("gsettings %q: %v: %s", args, err, out)
	}
	return out
}

func (d *gnomeDesktop) all(t *testing.T) string {
	return d.gsettings(t, "list-recursively", "org.gnome.system.proxy")
}

// porthole starts the program as a child on this desktop.
func (d *gnomeDesktop) porthole(t *testing.T, args ...string) *childproc.Proc {
	t.Helper()
	return startPortholeEnv(t, d.env, args...)
}

// TestSystemProxyPutBackAfterCtrlCAndAfterKill: --system-proxy points
// GNOME's proxy at Porthole while it runs; Ctrl-C puts the user's own
// settings back byte for byte; after a SIGKILL the journal makes
// --restore-system-proxy (and equally the next start) put them back.
func TestSystemProxyPutBackAfterCtrlCAndAfterKill(t *testing.T) {
	d := newGnomeDesktop(t)
	d.gsettings(t, "set", "org.gnome.system.proxy", "mode", "'manual'")
	d.gsettings(t, "set", "org.gnome.system.proxy.http", "host", "'corp-proxy'")
	d.gsettings(t, "set", "org.gnome.system.proxy.http", "port", "3128")
	before := d.all(t)
	cfg := filepath.Join(t.TempDir(), "config.json")

	run := func() (*childproc.Proc, string) {
		p := d.porthole(t, "--headless", "--config", cfg, "--listen", "127.0.0.1:0", "--system-proxy")
		addr := p.WaitFor(t, listenRE)[1]
		p.WaitFor(t, regexp.MustCompile(`msg="system proxy set"`))
		_, port, _ := strings.Cut(addr, ":")
		if got := d.gsettings(t, "get", "org.gnome.system.proxy.http", "port"); got != port {
			t.Fatalf("while running, the http proxy port is %s, want Porthole's %s", got, port)
		}
		if got := d.gsettings(t, "get", "org.gnome.system.proxy", "mode"); got != "'manual'" {
			t.Fatalf("while running, mode %s", got)
		}
		return p, port
	}

	p, _ := run()
	p.Stop(t, syscall.SIGINT)
	if after := d.all(t); after != before {
		t.Fatalf("after Ctrl-C the settings are not the user's:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	p, port := run()
	p.Kill(t)
	var ee *exec.ExitError
	if err := p.Err(); !errors.As(err, &ee) {
		t.Fatalf("killed porthole: %v", err)
	}
	if got := d.gsettings(t, "get", "org.gnome.system.proxy.http", "port"); got != port {
		t.Fatalf("after SIGKILL the port is %s; the test needs the crash to have left it set", got)
	}
	r := d.porthole(t, "--config", cfg, "--restore-system-proxy")
	r.WaitFor(t, regexp.MustCompile(`put back`))
	if code, rest := r.Wait(t); code != 0 {
		t.Fatalf("--restore-system-proxy exit %d; stderr:\n%s", code, rest)
	}
	if after := d.all(t); after != before {
		t.Fatalf("after --restore-system-proxy the settings are not the user's:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Nothing left to repair: a second run says nothing and succeeds.
	r = d.porthole(t, "--config", cfg, "--restore-system-proxy")
	if code, rest := r.Wait(t); code != 0 || strings.Contains(rest, "put back") {
		t.Fatalf("second --restore-system-proxy: exit %d; stderr:\n%s", code, rest)
	}
}

// TestSecondProcessLeavesTheRunningOnesSystemProxy: a second porthole with
// the same config (headless, so single instance does not apply) must not
// take the running one's journal for a crash's: its start-up repair leaves
// the system proxy pointing at the first, its own --system-proxy is
// refused, and its exit changes nothing. The first still puts the user's
// settings back.
func TestSecondProcessLeavesTheRunningOnesSystemProxy(t *testing.T) {
	d := newGnomeDesktop(t)
	d.gsettings(t, "set", "org.gnome.system.proxy", "mode", "'none'")
	before := d.all(t)
	cfg := filepath.Join(t.TempDir(), "config.json")

	first := d.porthole(t, "--headless", "--config", cfg, "--listen", "127.0.0.1:0", "--system-proxy")
	addr := first.WaitFor(t, listenRE)[1]
	first.WaitFor(t, regexp.MustCompile(`msg="system proxy set"`))
	_, port, _ := strings.Cut(addr, ":")
	set := d.all(t)

	second := d.porthole(t, "--headless", "--config", cfg, "--listen", "127.0.0.1:0", "--system-proxy")
	second.WaitFor(t, regexp.MustCompile(`set by another running Porthole; left as it is`))
	second.WaitFor(t, listenRE)
	second.WaitFor(t, regexp.MustCompile(`another running Porthole has the system proxy set`))
	if got := d.all(t); got != set {
		t.Fatalf("the second process changed the first's system proxy:\nnow:\n%s\nwas:\n%s", got, set)
	}
	second.Stop(t, syscall.SIGINT)
	if got := d.gsettings(t, "get", "org.gnome.system.proxy.http", "port"); got != port {
		t.Fatalf("after the second ended the port is %s, want the first's %s", got, port)
	}

	first.Stop(t, syscall.SIGINT)
	if after := d.all(t); after != before {
		t.Fatalf("after the first's Ctrl-C the settings are not the user's:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
