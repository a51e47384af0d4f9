//go:build !windows && !darwin

package sysproxy

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"porthole/core/outbound"
	"porthole/internal/desktoptest"
)

// useGsettings points gsettings at a keyfile in a temporary HOME and
// returns the real gsettings, or skips the test where it cannot run.
func useGsettings(t *testing.T) string {
	t.Helper()
	gs, _ := desktoptest.GSettings(t)
	if out, err := exec.Command(gs, "list-keys", gnomeSchema).CombinedOutput(); err != nil {
		t.Skipf("gsettings has no %s schema (Debian: gsettings-desktop-schemas, installed by build/deps.sh): %s",
			gnomeSchema, strings.TrimSpace(string(out)))
	}
	return gs
}

func gsettings(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("gsettings", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("gsettings %q: %v: %s", args, err, out)
	}
	return string(out)
}

// gnomeAll is every key of the proxy schemas, as gsettings prints them.
func gnomeAll(t *testing.T) string {
	return gsettings(t, "list-recursively", gnomeSchema)
}

// setUserProxy sets up what a user of a corporate proxy has.
func setUserProxy(t *testing.T) {
	t.Helper()
	gsettings(t, "set", gnomeSchema, "mode", "'manual'")
	gsettings(t, "set", gnomeSchema, "ignore-hosts", "['intranet', '*.corp.example']")
	gsettings(t, "set", gnomeSchema+".http", "host", "corp-proxy")
	gsettings(t, "set", gnomeSchema+".http", "port", "3128")
	gsettings(t, "set", gnomeSchema+".https", "host", "'corp-proxy'")
	gsettings(t, "set", gnomeSchema+".https", "port", "3129")
}

func TestGnomeEnableDisableRestoresByteForByte(t *testing.T) {
	useGsettings(t)
	setUserProxy(t)
	before := gnomeAll(t)
	keyfile := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "glib-2.0", "settings", "keyfile")
	if _, err := os.Stat(keyfile); err != nil {
		t.Fatalf("gsettings is not writing the keyfile the test reads: %v", err)
	}

	b := detect(t, "gnome")
	path := journalPath(t)
	m := NewManager(b, path, nil)
	if err := m.Enable("127.0.0.1:8088", outbound.DefaultBypass); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][3]string{
		{gnomeSchema, "mode", "'manual'"},
		{gnomeSchema, "ignore-hosts", "['localhost', '127.0.0.0/8', '::1', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '*.local']"},
		{gnomeSchema + ".http", "host", "'127.0.0.1'"},
		{gnomeSchema + ".http", "port", "8088"},
		{gnomeSchema + ".https", "host", "'127.0.0.1'"},
		{gnomeSchema + ".https", "port", "8088"},
		{gnomeSchema + ".socks", "host", "'127.0.0.1'"},
		{gnomeSchema + ".socks", "port", "8088"},
		{gnomeSchema + ".ftp", "host", "''"}, // not Porthole's business
	} {
		if got := strings.TrimSpace(gsettings(t, "get", c[0], c[1])); got != c[2] {
			t.Errorf("%s %s = %s, want %s", c[0], c[1], got, c[2])
		}
	}
	keyData, err := os.ReadFile(keyfile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(keyData), "host='127.0.0.1'") {
		t.Errorf("keyfile does not hold Porthole's host:\n%s", keyData)
	}

	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	if after := gnomeAll(t); after != before {
		t.Fatalf("settings after Disable differ from before.\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("journal kept after Disable")
	}
}

func TestGnomeDefaultsRestored(t *testing.T) {
	// A user who never set a proxy: everything at its default, mode none.
	useGsettings(t)
	before := gnomeAll(t)
	b := detect(t, "")
	m := NewManager(b, journalPath(t), nil)
	if err := m.Enable("[::1]:8088", nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(gsettings(t, "get", gnomeSchema+".http", "host")); got != "'::1'" {
		t.Errorf("http host %s", got)
	}
	if got := strings.TrimSpace(gsettings(t, "get", gnomeSchema, "ignore-hosts")); got != "@as []" {
		t.Errorf("ignore-hosts %s", got)
	}
	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	if after := gnomeAll(t); after != before {
		t.Fatalf("after Disable:\n%s\nbefore:\n%s", after, before)
	}
}

func TestGnomeChangedMeanwhileIsLeftAlone(t *testing.T) {
	useGsettings(t)
	setUserProxy(t)
	b := detect(t, "")
	log, logs := newLog()
	m := NewManager(b, journalPath(t), log)
	if err := m.Enable("127.0.0.1:8088", outbound.DefaultBypass); err != nil {
		t.Fatal(err)
	}
	gsettings(t, "set", gnomeSchema+".http", "host", "'new-corp-proxy'") // the user, in Settings
	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(gsettings(t, "get", gnomeSchema+".http", "host")); got != "'new-corp-proxy'" {
		t.Fatalf("http host %s: the user's change was overwritten", got)
	}
	for _, c := range [][3]string{
		{gnomeSchema + ".http", "port", "3128"},
		{gnomeSchema + ".https", "host", "'corp-proxy'"},
		{gnomeSchema, "ignore-hosts", "['intranet', '*.corp.example']"},
		{gnomeSchema + ".socks", "host", "''"},
	} {
		if got := strings.TrimSpace(gsettings(t, "get", c[0], c[1])); got != c[2] {
			t.Errorf("%s %s = %s, want %s (restored)", c[0], c[1], got, c[2])
		}
	}
	if len(logs.lines("level=INFO", "left alone", gnomeSchema+".http host", "new-corp-proxy")) != 1 {
		t.Fatalf("no INFO line about the key left alone:\n%s", logs)
	}
}

func TestGnomeRepairAfterCrash(t *testing.T) {
	useGsettings(t)
	setUserProxy(t)
	before := gnomeAll(t)
	path := journalPath(t)
	b := detect(t, "")
	if err := enableThenCrash(NewManager(b, path, nil), "127.0.0.1:8088", outbound.DefaultBypass); err != nil {
		t.Fatal(err)
	}
	// The process dies here: no Disable. The next start:
	b2 := detect(t, "")
	log, logs := newLog()
	repaired, err := NewManager(b2, path, log).Repair()
	if err != nil || !repaired {
		t.Fatalf("Repair: %v, %v", repaired, err)
	}
	if after := gnomeAll(t); after != before {
		t.Fatalf("after Repair:\n%s\nbefore:\n%s", after, before)
	}
	info := logs.lines("level=INFO")
	if len(info) != 1 || !strings.Contains(info[0], "put back") || !strings.Contains(info[0], "corp-proxy") {
		t.Fatalf("want one INFO line saying what was put back:\n%s", logs)
	}
	// Without a backend detected (say the session has none now), the
	// journal's own backend is used.
	if err := enableThenCrash(NewManager(b, path, nil), "127.0.0.1:8088", nil); err != nil {
		t.Fatal(err)
	}
	if repaired, err := NewManager(nil, path, nil).Repair(); err != nil || !repaired {
		t.Fatalf("Repair without a detected backend: %v, %v", repaired, err)
	}
	if after := gnomeAll(t); after != before {
		t.Fatalf("after Repair:\n%s\nbefore:\n%s", after, before)
	}
}

func TestGnomeFailingCommandLeavesPreviousSettings(t *testing.T) {
	real := useGsettings(t)
	setUserProxy(t)
	before := gnomeAll(t)

	// A gsettings that refuses one write, after the others went through.
	dir := t.TempDir()
	script := "#!/bin/sh\n" +
		"if [ \"$1\" = set ] && [ \"$2\" = " + gnomeSchema + ".socks ] && [ \"$3\" = port ]; then\n" +
		"  echo 'GLib-GIO-CRITICAL: the settings store refused the write' >&2\n" +
		"  exit 1\n" +
		"fi\n" +
		"exec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "gsettings"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))

	b := detect(t, "")
	path := journalPath(t)
	m := NewManager(b, path, nil)
	err := m.Enable("127.0.0.1:8088", outbound.DefaultBypass)
	var ce *CommandError
	if !errors.As(err, &ce) || !strings.Contains(ce.Output, "refused the write") {
		t.Fatalf("Enable: %v; want the command's own output", err)
	}
	if !strings.Contains(err.Error(), "refused the write") {
		t.Errorf("the error message lacks the command's output: %v", err)
	}
	if after := gnomeAll(t); after != before {
		t.Fatalf("settings after the failed Enable:\n%s\nbefore:\n%s", after, before)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("journal kept after a complete rollback")
	}
	if m.Enabled() {
		t.Fatal("Enabled after a failed Enable")
	}
}

func TestGnomeNotDetectedWithoutGsettings(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("XDG_CURRENT_DESKTOP", "XFCE")
	b, err := Detect(nil)
	if !errors.Is(err, ErrUnsupported) || b != nil {
		t.Fatalf("Detect: %v, %v; want ErrUnsupported", b, err)
	}
	if !strings.Contains(err.Error(), "gsettings") || !strings.Contains(err.Error(), "XFCE") {
		t.Errorf("the error does not say what was looked for: %v", err)
	}
}

func TestGvariantText(t *testing.T) {
	for in, want := range map[string]string{"a": "'a'", "it's": `'it\'s'`, `a\b`: `'a\\b'`, "": "''"} {
		if got := gvString(in); got != want {
			t.Errorf("gvString(%q) = %s, want %s", in, got, want)
		}
	}
	if got := gvStrings(nil); got != "@as []" {
		t.Errorf("empty: %s", got)
	}
	if got := gvStrings([]string{"a", "b"}); got != "['a', 'b']" {
		t.Errorf("list: %s", got)
	}
	order := gnomeOrder(map[string]string{gnomeSchema + " mode": "'manual'", gnomeSchema + ".http host": "'x'"})
	if order[len(order)-1] != gnomeSchema+" mode" {
		t.Errorf("mode not last when switching to manual: %v", order)
	}
	order = gnomeOrder(map[string]string{gnomeSchema + " mode": "'none'", gnomeSchema + ".http host": "''"})
	if order[0] != gnomeSchema+" mode" {
		t.Errorf("mode not first when switching away: %v", order)
	}
}

// detect is Detect on this desktop; the test fails unless it finds a
// backend, named want when want is set.
func detect(t *testing.T, want string) Backend {
	t.Helper()
	b, err := Detect(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want != "" && b.Name() != want {
		t.Fatalf("Detect: backend %s, want %s", b.Name(), want)
	}
	return b
}
