//go:build !windows && !darwin

package sysproxy

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"porthole/core/outbound"
	"porthole/internal/childproc"
)

// useKDE points kwriteconfig5/kreadconfig5 at a temporary XDG_CONFIG_HOME
// and hides gsettings and kwriteconfig6, or skips where they are missing.
// It returns the path of kioslaverc.
func useKDE(t *testing.T, withGsettings bool) string {
	t.Helper()
	var tools []string
	for _, name := range []string{"kwriteconfig5", "kreadconfig5"} {
		tools = append(tools, childproc.Need(t, name, "Debian: libkf5config-bin, installed by build/deps.sh; the KDE backend is not tested here"))
	}
	if withGsettings {
		tools = append(tools, childproc.Need(t, "gsettings", "Debian: libglib2.0-bin"))
	}
	// Only these tools in PATH, so the test does not depend on what else
	// is installed (kwriteconfig6 would be preferred).
	bin := t.TempDir()
	for _, p := range tools {
		if err := os.Symlink(p, filepath.Join(bin, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_CURRENT_DESKTOP", "KDE")
	t.Setenv("GSETTINGS_BACKEND", "keyfile")
	return filepath.Join(home, ".config", "kioslaverc")
}

func kwrite(t *testing.T, key, value string) {
	t.Helper()
	if out, err := exec.Command("kwriteconfig5", "--file", "kioslaverc", "--group", "Proxy Settings", "--key", key, value).CombinedOutput(); err != nil {
		t.Fatalf("kwriteconfig5 %s: %v: %s", key, err, out)
	}
}

func kread(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("kreadconfig5", "--file", "kioslaverc", "--group", "Proxy Settings", "--key", key).CombinedOutput()
	if err != nil {
		t.Fatalf("kreadconfig5 %s: %v: %s", key, err, out)
	}
	return strings.TrimSuffix(string(out), "\n")
}

func TestKDEEnableDisableRestoresFile(t *testing.T) {
	rc := useKDE(t, false)
	// What the proxy settings module writes for a manual corporate proxy,
	// plus an unrelated group that must survive.
	kwrite(t, "ProxyType", "1")
	kwrite(t, "httpProxy", "http://corp-proxy 3128")
	kwrite(t, "httpsProxy", "http://corp-proxy 3128")
	kwrite(t, "NoProxyFor", "intranet,.corp.example")
	if out, err := exec.Command("kwriteconfig5", "--file", "kioslaverc", "--group", "Cache", "--key", "MaxCacheSize", "5120").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	before, err := os.ReadFile(rc)
	if err != nil {
		t.Fatal(err)
	}

	log, logs := newLog()
	b, err := Detect(log)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "kde" {
		t.Fatalf("Detect on KDE without gsettings: %s", b.Name())
	}
	m := NewManager(b, journalPath(t), log)
	if err := m.Enable("127.0.0.1:8088", append(outbound.DefaultBypass, "<local>")); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"ProxyType":         "1",
		"httpProxy":         "http://127.0.0.1 8088",
		"httpsProxy":        "http://127.0.0.1 8088",
		"socksProxy":        "socks://127.0.0.1 8088",
		"NoProxyFor":        "localhost,127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,*.local",
		"ReversedException": "false",
	} {
		if got := kread(t, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	// No session bus here: telling running programs is best effort.
	if len(logs.lines("level=DEBUG", "KDE proxy settings written")) == 0 {
		t.Errorf("no DEBUG line about the D-Bus reparse signal:\n%s", logs)
	}

	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(rc)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Fatalf("kioslaverc after Disable:\n%s\nbefore:\n%s", after, before)
	}
}

func TestKDEChangedMeanwhileAndRepair(t *testing.T) {
	useKDE(t, false)
	kwrite(t, "ProxyType", "0")
	path := journalPath(t)
	b := detect(t, "")
	if err := enableThenCrash(NewManager(b, path, nil), "127.0.0.1:8088", nil); err != nil {
		t.Fatal(err)
	}
	kwrite(t, "NoProxyFor", "users-own.example") // the user, meanwhile
	// Crash; the next start repairs.
	log, logs := newLog()
	repaired, err := NewManager(b, path, log).Repair()
	if err != nil || !repaired {
		t.Fatalf("Repair: %v, %v", repaired, err)
	}
	for key, want := range map[string]string{"ProxyType": "0", "httpProxy": "", "socksProxy": "", "NoProxyFor": "users-own.example"} {
		if got := kread(t, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if len(logs.lines("level=INFO", "left alone", "key=NoProxyFor")) != 1 {
		t.Fatalf("log:\n%s", logs)
	}
}

func TestKDEWithGsettingsSetsBoth(t *testing.T) {
	rc := useKDE(t, true)
	if out, err := exec.Command("gsettings", "list-keys", gnomeSchema).CombinedOutput(); err != nil {
		t.Skipf("no %s schema: %s", gnomeSchema, out)
	}
	gnomeBefore := gnomeAll(t)
	b := detect(t, "kde+gnome")
	path := journalPath(t)
	if err := enableThenCrash(NewManager(b, path, nil), "127.0.0.1:8088", nil); err != nil {
		t.Fatal(err)
	}
	if got := kread(t, "httpProxy"); got != "http://127.0.0.1 8088" {
		t.Errorf("httpProxy %q", got)
	}
	if got := strings.TrimSpace(gsettings(t, "get", gnomeSchema+".http", "host")); got != "'127.0.0.1'" {
		t.Errorf("gsettings http host %s", got)
	}
	// Repaired by name from the journal, without Detect.
	if repaired, err := NewManager(nil, path, nil).Repair(); err != nil || !repaired {
		t.Fatalf("Repair: %v, %v", repaired, err)
	}
	if got := gnomeAll(t); got != gnomeBefore {
		t.Fatalf("gsettings after Repair:\n%s\nbefore:\n%s", got, gnomeBefore)
	}
	if data, err := os.ReadFile(rc); err == nil && strings.Contains(string(data), "127.0.0.1") {
		t.Fatalf("kioslaverc still points at Porthole:\n%s", data)
	}
}

func TestKDEWithoutToolsFallsBackToGnomeOrUnsupported(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("XDG_CURRENT_DESKTOP", "KDE")
	_, err := Detect(nil)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "kwriteconfig") {
		t.Fatalf("Detect: %v", err)
	}
	if !isKDE("ubuntu:KDE") || isKDE("GNOME") || isKDE("") {
		t.Error("isKDE")
	}
}

// TestKDETellsRunningPrograms runs a private D-Bus session bus and checks
// that Enable and Disable each send KIO's reparse signal on it.
func TestKDETellsRunningPrograms(t *testing.T) {
	var tools []string
	for _, name := range []string{"dbus-daemon", "dbus-monitor", "dbus-send"} {
		tools = append(tools, childproc.Need(t, name, "Debian: dbus, dbus-bin; the reparse signal is not tested here"))
	}
	useKDE(t, false)
	for _, p := range tools {
		if err := os.Symlink(p, filepath.Join(os.Getenv("PATH"), filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}

	daemon := exec.Command(tools[0], "--session", "--nofork", "--print-address=1")
	addrOut, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(t, daemon) })
	addr, err := bufio.NewReader(addrOut).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	addr = strings.TrimSpace(addr)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)

	monitor := exec.Command(tools[1], "--address", addr, "type='signal',interface='org.kde.KIO.Scheduler'")
	monOut, err := monitor.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := monitor.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(lines)
		sc := bufio.NewScanner(monOut)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		stopProcess(t, monitor)
		for range lines { // drain so the reader ends
		}
		<-readerDone
	})
	// dbus-monitor is a monitor once it has lost its own name.
	waitLine(t, lines, "member=NameLost")

	b := detect(t, "")
	m := NewManager(b, journalPath(t), nil)
	if err := m.Enable("127.0.0.1:8088", nil); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "path=/KIO/Scheduler; interface=org.kde.KIO.Scheduler; member=reparseSlaveConfiguration")
	if err := m.Disable(); err != nil {
		t.Fatal(err)
	}
	waitLine(t, lines, "path=/KIO/Scheduler; interface=org.kde.KIO.Scheduler; member=reparseSlaveConfiguration")
}

// waitLine reads lines until one contains want; a deadline, not a pause.
func waitLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before %q", want)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within 10s", want)
		}
	}
}

func stopProcess(t *testing.T, cmd *exec.Cmd) {
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("stopping %s: %v", cmd.Path, err)
	}
	_ = cmd.Wait() // killed: the exit status says so
}
