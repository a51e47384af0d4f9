package main

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"porthole/internal/connecttest"
	"porthole/internal/fetch"
)

// TestHeadlessRulesModeFromFlags: --mode rules --rules FILE with Clash
// lines: a loopback target goes direct by its rule, a blocked name is
// refused with the rule named, and the file's change is picked up
// without a restart.
func TestHeadlessRulesModeFromFlags(t *testing.T) {
	originAddr := helloOrigin(t, "ruled")
	file := filepath.Join(t.TempDir(), "rules.list")
	if err := os.WriteFile(file, []byte("DOMAIN-SUFFIX,blocked.test,REJECT\nIP-CIDR,127.0.0.0/8,DIRECT,no-resolve\nMATCH,REJECT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The default bypass list would send loopback direct before any rule.
	cfgFile := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfgFile, []byte(`{"bypass": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startPorthole(t, "--headless", "--config", cfgFile, "--listen", "127.0.0.1:0", "--mode", "rules", "--rules", file, "--log-level", "info")
	addr := p.WaitFor(t, listenRE)[1]
	if body := fetch.Via(t, addr, "http://"+originAddr+"/"); body != "ruled" {
		t.Fatalf("direct by rule: %q", body)
	}
	if status := connectStatus(t, addr, "www.blocked.test:443"); status != http.StatusForbidden {
		t.Errorf("blocked: status %d, want 403", status)
	}
	// Now the loopback rule rejects too: the reload is logged and applies.
	if err := os.WriteFile(file, []byte("IP-CIDR,127.0.0.0/8,REJECT,no-resolve\nMATCH,REJECT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.WaitFor(t, regexp.MustCompile(`msg="rules reloaded"`))
	if status := connectStatus(t, addr, originAddr); status != http.StatusForbidden {
		t.Errorf("after the reload: status %d, want 403", status)
	}
	stopCleanly(t, p)
}

// connectStatus asks for a CONNECT to target and returns the answer's
// status code.
func connectStatus(t *testing.T, proxy, target string) int {
	t.Helper()
	c, _, resp, err := connecttest.Dial(proxy, target)
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	_ = c.Close() // the answer is all the test wants
	return resp.StatusCode
}

// TestHeadlessRulesFileWithErrorsExits2: a rules file with an unknown kind
// is refused whole, naming the line, before anything listens.
func TestHeadlessRulesFileWithErrorsExits2(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.list")
	if err := os.WriteFile(file, []byte("DOMAIN,a.test,DIRECT\nGEOIP,CN,DIRECT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "--headless", "--listen", "127.0.0.1:0", "--mode", "rules", "--rules", file)
	cmd.Env = append(os.Environ(), "PORTHOLE_AS_MAIN=1", "XDG_CONFIG_HOME="+t.TempDir(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "line 2") || !strings.Contains(string(out), "GEOIP") {
		t.Errorf("exit %v, output %q; want a refusal naming line 2", err, out)
	}
}

// TestHeadlessRulesModeWithoutExitExits2: rules mode that would send
// connections through the tunnel with no exit configured fails closed
// before anything listens, naming the field: mode for the default (no
// rules at all), rules_file for the file's PROXY line.
func TestHeadlessRulesModeWithoutExitExits2(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.list")
	if err := os.WriteFile(file, []byte("DOMAIN,a.test,DIRECT\nDOMAIN-SUFFIX,b.test,PROXY\nMATCH,DIRECT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "rules"}, "mode: rules mode sends what no rule matches through the tunnel"},
		{[]string{"--mode", "rules", "--rules", file}, "rules_file: rule 2 (domain-suffix b.test → tunnel)"},
	} {
		args := append([]string{"--headless", "--listen", "127.0.0.1:0"}, tc.args...)
		cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
		cmd.Env = append(os.Environ(), "PORTHOLE_AS_MAIN=1", "XDG_CONFIG_HOME="+t.TempDir(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "no exit is configured") {
			t.Errorf("%v: exit %v, output %q; want exit 2 saying %q", tc.args, err, out, tc.want)
		}
	}
}
