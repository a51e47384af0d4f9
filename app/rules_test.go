package app

import (
	"bufio"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/rules"
	"porthole/internal/fetch"
)

func rulesSettings(list ...rules.Rule) config.Config {
	cfg := directSettings()
	cfg.Mode = string(outbound.ModeRules)
	cfg.Rules = list
	return cfg
}

// TestRulesApplyLiveKeepsOpenConnections: a change of rules is swapped
// into the running engine (no restart: same address, the open tunnel keeps
// working), and new connections follow it at once.
func TestRulesApplyLiveKeepsOpenConnections(t *testing.T) {
	target := origin(t)
	c := startController(t, rulesSettings(rules.Rule{Kind: "match", Action: "direct"}), nil)
	addr := c.Status().Addr
	held, code := connectThrough(t, addr, target)
	if code != http.StatusOK {
		t.Fatalf("before: %d", code)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	saved, err := c.SaveSettings(path, func(cfg *config.Config) {
		cfg.Rules = []rules.Rule{{Kind: "ip-cidr", Value: "127.0.0.0/8", Action: "reject"}, {Kind: "match", Action: "direct"}}
	})
	if err != nil || saved.StartErr != nil || saved.Changes.Need(config.EffectRestart) || !saved.Changes.Need(config.EffectRules) {
		t.Fatalf("SaveSettings: %v, %v, %+v", err, saved.StartErr, saved.Changes)
	}
	if c.Status().Addr != addr {
		t.Fatalf("restarted: %s → %s", addr, c.Status().Addr)
	}
	if _, code := connectThrough(t, addr, target); code != http.StatusForbidden {
		t.Errorf("after: %d, want 403", code)
	}
	if _, err := held.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(held), nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the tunnel opened before the change: %v %v", resp, err)
	}
	// A rule that does not compile is refused whole.
	if _, err := c.SaveSettings(path, func(cfg *config.Config) {
		cfg.Rules = append(cfg.Rules, rules.Rule{Kind: "geoip", Value: "CN", Action: "direct"})
	}); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("bad rule saved: %v", err)
	}
	if v := c.Rules(); len(v.Rules) != 2 || v.Rules[0].Action != "reject" {
		t.Errorf("rules in use: %+v", v)
	}
}

// TestRulesFileReloadsOnChange: the rules file is polled; a good change
// is swapped in, a broken one is reported and the last good set stays.
func TestRulesFileReloadsOnChange(t *testing.T) {
	target := origin(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.list")
	write := func(text string) {
		t.Helper()
		// A new mtime and size for each version, whatever the clock's step.
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("IP-CIDR,127.0.0.0/8,DIRECT,no-resolve\nMATCH,DIRECT\n") // no exit: nothing may tunnel
	cfg := rulesSettings()
	cfg.RulesFile = file
	c := startController(t, cfg, nil)
	addr := c.Status().Addr
	if _, code := connectThrough(t, addr, target); code != http.StatusOK {
		t.Fatalf("before: %d", code)
	}
	write("# now refused\nIP-CIDR,127.0.0.0/8,REJECT,no-resolve\nMATCH,DIRECT\n")
	waitRules(t, c, func(v RulesView) bool { return len(v.Rules) == 2 && v.Rules[0].Action == "reject" })
	if _, code := connectThrough(t, addr, target); code != http.StatusForbidden {
		t.Errorf("after reload: %d, want 403", code)
	}
	write("GEOIP,CN,DIRECT\nDOMAIN,x.test,DIRECT\n")
	st := waitFor(t, c, "the rules problem", func(st Status) bool { return st.RulesProblem != nil })
	if !errors.Is(st.RulesProblem, rules.ErrUnknownKind) {
		t.Errorf("rules problem %v", st.RulesProblem)
	}
	if v := c.Rules(); len(v.Rules) != 2 || v.Rules[0].Action != "reject" {
		t.Errorf("a broken file replaced the rules: %+v", v)
	}
	write("IP-CIDR,127.0.0.0/8,DIRECT,no-resolve\nDOMAIN,x.test,DIRECT\nMATCH,DIRECT\n")
	waitFor(t, c, "the problem to clear", func(st Status) bool { return st.RulesProblem == nil })
	if _, code := connectThrough(t, addr, target); code != http.StatusOK {
		t.Errorf("after the fix: %d", code)
	}
}

func waitRules(t *testing.T, c *Controller, cond func(RulesView) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range 10 * time.Second / (50 * time.Millisecond) {
		if cond(c.Rules()) {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	t.Fatalf("rules not as wanted within 10 s: %+v", c.Rules())
}

func TestTestRule(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ads.txt"), []byte("+.ads.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "rules.list")
	if err := os.WriteFile(file, []byte("RULE-SET,ads,REJECT\nPROCESS-NAME,curl,DIRECT\nMATCH,PROXY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := rulesSettings(rules.Rule{Kind: "port", Value: "22", Action: "direct"})
	cfg.Bypass = []string{"*.lan"}
	cfg.RulesFile = file
	// MATCH,PROXY needs an exit; none answers there, and none is dialled.
	cfg.Exit, cfg.Token = "ws://127.0.0.1:1/porthole", "t"
	c := NewController(cfg, nil, quiet)
	defer c.Close()
	for _, running := range []bool{false, true} {
		if running {
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			target, program string
			route           registry.Route
			why             string
		}{
			{"nas.lan:443", "", registry.RouteBypass, "on the bypass list"},
			{"host.test:22", "", registry.RouteDirect, "rule 1 matches: #1 port 22 → direct"},
			{"x.ads.example:443", "curl", registry.RouteReject, "rule 2 matches: #2 rule-set ads → reject"},
			{"x.test:443", "/usr/bin/curl", registry.RouteDirect, "rule 3 matches: #3 app curl → direct"},
			{"x.test:443", "", registry.RouteTunnel, "rule 4 matches: #4 match → tunnel"},
		} {
			got, err := c.TestRule(t.Context(), tc.target, tc.program)
			if err != nil || got.Decision.Route != tc.route || !strings.HasPrefix(got.Why, tc.why) {
				t.Errorf("running %v: %s %s: %+v %v", running, tc.target, tc.program, got, err)
			}
		}
	}
	if _, err := c.TestRule(t.Context(), "no port", ""); err == nil {
		t.Error("a bad target tested")
	}
	if v := c.Rules(); len(v.Rules) != 4 || v.Entries != 4 || v.File != file || v.Bypass[0] != "*.lan" {
		t.Errorf("view %+v", v)
	}
}

// TestRulesModeMigratesBypass: today's config file (a bypass list, no
// rules) in rules mode sends the bypass entries direct ahead of the rules,
// and in tunnel mode routes exactly as before.
func TestRulesModeMigratesBypass(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(`{"listen":"127.0.0.1:0","mode":"rules","exit":"ws://127.0.0.1:1/porthole","token":"t","bypass":["localhost","127.0.0.0/8","*.corp.example"],"log_level":"info","history":100,"start_proxy":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c := NewController(cfg, nil, quiet)
	defer c.Close()
	for _, tc := range []struct {
		target string
		route  registry.Route
	}{{"localhost:80", registry.RouteBypass}, {"127.0.0.1:80", registry.RouteBypass}, {"a.corp.example:443", registry.RouteBypass}, {"example.com:443", registry.RouteTunnel}} {
		got, err := c.TestRule(t.Context(), tc.target, "")
		if err != nil || got.Decision.Route != tc.route {
			t.Errorf("%s: %+v %v", tc.target, got, err)
		}
	}
	// Rules mode starts with its exit down; a loopback target goes direct
	// by the bypass list.
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	target := origin(t)
	if got := fetch.Via(t, c.Status().Addr, "http://"+target+"/"); got != "hi" {
		t.Errorf("through the bypass: %q", got)
	}
}

// TestRulesModeWithoutExitFailsClosed: a rules file whose PROXY lines
// tunnel, with no exit configured, does not start (every such connection
// would fail), naming rules_file; switching a direct-mode user with no
// rules to rules mode is refused naming mode, the settings unchanged.
func TestRulesModeWithoutExitFailsClosed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.list")
	if err := os.WriteFile(file, []byte("DOMAIN-SUFFIX,lan,DIRECT\nDOMAIN-SUFFIX,example.com,PROXY\nMATCH,DIRECT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := rulesSettings()
	cfg.RulesFile = file
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate cannot read the file, and must leave it to the start: %v", err)
	}
	c := NewController(cfg, nil, quiet)
	defer c.Close()
	var fe *config.FieldError
	err := c.Start()
	if !errors.Is(err, config.ErrNoExit) || !errors.As(err, &fe) || fe.Field != "rules_file" || !strings.Contains(err.Error(), "rule 2") {
		t.Fatalf("start: %v, want ErrNoExit naming rules_file rule 2", err)
	}
	if st := c.Status(); st.State == StateRunning {
		t.Errorf("running without an exit: %+v", st)
	}

	d := NewController(directSettings(), nil, quiet)
	defer d.Close()
	path := filepath.Join(t.TempDir(), "config.json")
	_, err = d.SaveSettings(path, func(cfg *config.Config) { cfg.Mode = string(outbound.ModeRules) })
	if !errors.Is(err, config.ErrNoExit) || !errors.As(err, &fe) || fe.Field != "mode" {
		t.Errorf("rules mode with no rules and no exit: %v, want ErrNoExit naming mode", err)
	}
	if _, lerr := os.Stat(path); !errors.Is(lerr, os.ErrNotExist) || d.Config().Mode != string(outbound.ModeDirect) {
		t.Errorf("saved anyway: %v, mode %q", lerr, d.Config().Mode)
	}
}
