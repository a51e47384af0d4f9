package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// configFile writes content as the config file of a fresh XDG_CONFIG_HOME
// and returns the environment that uses it and its path.
func configFile(t *testing.T, content string) ([]string, string) {
	t.Helper()
	xdg := t.TempDir()
	path := filepath.Join(xdg, "porthole", "config.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "XDG_CONFIG_HOME="+xdg, "HOME="+t.TempDir()), path
}

// unchanged fails t unless path still holds content and nothing was set
// aside beside it.
func unchanged(t *testing.T, path, content string) {
	t.Helper()
	if data, err := os.ReadFile(path); err != nil || string(data) != content {
		t.Errorf("the config file was changed: %q %v", data, err)
	}
	if aside, _ := filepath.Glob(path + ".*"); len(aside) > 0 {
		t.Errorf("files beside the config: %v", aside)
	}
}

// TestHeadlessRefusesABrokenConfig: a config file that cannot be used
// never turns into the defaults (direct mode, for a file that says
// tunnel): porthole exits 2 naming the file, the line and the field, and
// leaves the file as it is.
func TestHeadlessRefusesABrokenConfig(t *testing.T) {
	for name, tc := range map[string]struct{ content, where, field string }{
		"bad value": {"{\n  \"listen\": \"127.0.0.1:0\",\n  \"mode\": \"sideways\"\n}\n", ":3:3:", "mode"},
		"misspelt":  {"{\n  \"listen\": \"127.0.0.1:0\",\n  \"mdoe\": \"tunnel\"\n}\n", ":3:3:", "mdoe"},
		"not JSON":  {"{\n  \"mode\": \"tunnel\"\n  \"exit\": \"wss://exit.example/porthole\"\n}\n", ":3:3:", ""},
	} {
		t.Run(name, func(t *testing.T) {
			env, path := configFile(t, tc.content)
			p := startPortholeEnv(t, env, "--headless")
			code, stderr := p.Wait(t)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, path+tc.where) || !strings.Contains(stderr, tc.field) {
				t.Errorf("stderr should name %s%s and %q:\n%s", path, tc.where, tc.field, stderr)
			}
			if strings.Contains(stderr, "proxy listening") {
				t.Errorf("the proxy started:\n%s", stderr)
			}
			// --print-env would print the defaults' address: refused too.
			if code, stderr := startPortholeEnv(t, env, "--print-env").Wait(t); code != 2 || !strings.Contains(stderr, path) {
				t.Errorf("--print-env: exit %d, want 2 naming %s; stderr:\n%s", code, path, stderr)
			}
			unchanged(t, path, tc.content)
		})
	}
}

// TestHeadlessRunsTheKnownFieldsOfANewerFile: fields a newer Porthole
// wrote are a warning; the rest of the file is used.
func TestHeadlessRunsTheKnownFieldsOfANewerFile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	want := ln.Addr().String()
	if err := ln.Close(); err != nil { // free for porthole; loopback ports are not reused at once
		t.Fatal(err)
	}
	content := "{\n  \"listen\": \"" + want + "\",\n  \"plugins\": [{\"deny\": \"*\"}]\n}\n"
	env, path := configFile(t, content)
	p := startPortholeEnv(t, env, "--headless")
	p.WaitFor(t, regexp.MustCompile(`level=WARN .*does not know.*\\"plugins\\" \(line 3\)`))
	if addr := p.WaitFor(t, listenRE)[1]; addr != want {
		t.Errorf("listening on %s, want the file's %s", addr, want)
	}
	p.Stop(t, syscall.SIGINT) // fails the test unless it exits 0
	unchanged(t, path, content)
}
