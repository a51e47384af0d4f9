package ui

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"porthole/app"
	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/rules"
	"porthole/internal/chantest"
)

// TestSettingsRulesEditor edits rules through the widgets: inline
// validation, add, update, move, delete, and Apply saves the list in
// order with mode rules, applied without a restart.
func TestSettingsRulesEditor(t *testing.T) {
	path := settingsEnv(t)
	ctl := startController(t, loopbackConfig())
	s, done := openSettings(t, ctl, path)
	e := s.form.rules
	s.form.mode.SetSelected(modeRulesLabel)

	// Inline validation names the problem and blocks Add.
	e.kind.SetSelected(rules.KindIPCIDR)
	retype(e.value, "10.0.0.0/33")
	if !e.problem.Visible() || !strings.Contains(e.problem.Text, "CIDR") || !e.add.Disabled() {
		t.Errorf("bad CIDR: problem %q shown %v, add disabled %v", e.problem.Text, e.problem.Visible(), e.add.Disabled())
	}
	retype(e.value, "10.0.0.0/8")
	e.action.SetSelected(rules.ActionDirect)
	if e.problem.Visible() || e.add.Disabled() {
		t.Fatalf("good CIDR: problem %q, add disabled %v", e.problem.Text, e.add.Disabled())
	}
	test.Tap(e.add)
	e.rows.UnselectAll()
	e.selected = -1
	e.kind.SetSelected(rules.KindDomainSuffix)
	retype(e.value, "Ads.Example.")
	e.action.SetSelected(rules.ActionReject)
	test.Tap(e.add)
	if len(e.list) != 2 || e.list[1].Value != "ads.example" || e.selected != 1 {
		t.Fatalf("after two adds: %+v, selected %d", e.list, e.selected)
	}
	// Move the reject rule first, then change it to tunnel through an exit.
	test.Tap(e.up)
	if e.list[0].Kind != rules.KindDomainSuffix || e.selected != 0 || !e.up.Disabled() {
		t.Fatalf("after up: %+v, selected %d", e.list, e.selected)
	}
	e.action.SetSelected(rules.ActionTunnel)
	retype(e.exit, "home")
	test.Tap(e.replace)
	if e.list[0].ActionText() != "tunnel:home" {
		t.Errorf("after update: %+v", e.list[0])
	}
	// Add a third and delete it again.
	e.kind.SetSelected(rules.KindMatch)
	retype(e.value, "")
	retype(e.exit, "")
	e.action.SetSelected(rules.ActionDirect)
	test.Tap(e.add) // after the selected first rule
	if len(e.list) != 3 || e.list[1].Kind != rules.KindMatch {
		t.Fatalf("insert after the selection: %+v", e.list)
	}
	test.Tap(e.del)
	if len(e.list) != 2 {
		t.Fatalf("after delete: %+v", e.list)
	}
	// The exit the rule names, added in the exits editor.
	if !strings.Contains(s.form.problems[fieldRules].Text, `exit "home"`) {
		t.Errorf("a rule naming an unknown exit: %q", s.form.problems[fieldRules].Text)
	}
	s.exitsRefresh = 0 // for the section of the exits Apply builds
	x := s.form.exits
	retype(x.name, "home")
	x.kind.SetSelected("socks5")
	retype(x.url, "socks5://127.0.0.1:1")
	test.Tap(x.add)
	first := s.ctl.Status().Addr
	if err := tapApply(t, s, done); err != nil {
		t.Fatalf("Apply: %v (%s)", err, s.status.Text)
	}
	cfg, err := config.Load(path)
	if err != nil || cfg.Mode != "rules" || len(cfg.Rules) != 2 || cfg.Rules[0].Exit != "home" || cfg.Rules[1].Value != "10.0.0.0/8" {
		t.Fatalf("saved: %+v, %v", cfg, err)
	}
	if st := s.ctl.Status(); st.Addr == first {
		t.Logf("mode change restarted on the same port") // ports may repeat; the rules below are what matters
	}
	if v := ctl.Rules(); len(v.Rules) != 2 {
		t.Errorf("rules in use: %+v", v)
	}
}

func TestRulesEditorImportAndTestBox(t *testing.T) {
	test.NewTempApp(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.list")
	bad := filepath.Join(dir, "bad.list")
	if err := os.WriteFile(good, []byte("DOMAIN-SUFFIX,corp.example,DIRECT\nDST-PORT,22,REJECT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("DOMAIN,a.example,DIRECT\nGEOIP,CN,DIRECT\nIP-CIDR,1.2.3.0/99,DIRECT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changes := 0
	var e *rulesEditor
	e = newRulesEditor(nil, "", func() { changes++ }, func() config.Config {
		cfg := config.Default()
		cfg.Mode, cfg.Bypass, cfg.Rules = string(outbound.ModeRules), []string{}, e.rules()
		return cfg
	})
	e.importFile(bad)
	if len(e.list) != 0 || !strings.Contains(e.importNote.Text, "line 2") || !strings.Contains(e.importNote.Text, "line 3") {
		t.Errorf("bad import: %d rules, note %q", len(e.list), e.importNote.Text)
	}
	e.importFile(good)
	if len(e.list) != 2 || changes == 0 || !strings.Contains(e.importNote.Text, "Imported 2") {
		t.Fatalf("good import: %+v, note %q", e.list, e.importNote.Text)
	}
	if got := testBox(t, e, "git.corp.example:443"); !strings.HasPrefix(got, "rule 1 matches") {
		t.Errorf("test box: %q", got)
	}
	if got := testBox(t, e, "x.test:22"); got != "rule 2 matches: #2 port 22 →reject" {
		t.Errorf("test box: %q", got)
	}
	if got := testBox(t, e, "other.test:80"); got != "no rule matches: the default, tunnel" {
		t.Errorf("test box: %q", got)
	}
}

// testBox taps Test for target and returns the answer, which comes from a
// goroutine.
func testBox(t *testing.T, e *rulesEditor, target string) string {
	t.Helper()
	got := make(chan string, 1)
	e.onTested = func(s string) { got <- s }
	retype(e.testTarget, target)
	test.Tap(findButton(t, e.content, "Test"))
	return chantest.Within(t, 10*time.Second, "the answer for "+target, got)
}

func TestRuleColumnFilterAndDetails(t *testing.T) {
	info := registry.Info{Meta: registry.Meta{Target: "ads.example:443", Proto: registry.ProtoConnect, Route: registry.RouteReject,
		Rule: registry.Rule{Index: 2, Kind: "domain-suffix", Payload: "ads.example", Action: "reject"}}}
	r := newConnRow(info)
	if got := columns[colRule].text(r, time.Time{}); got != "#3 domain-suffix ads.example →reject" {
		t.Errorf("rule column %q", got)
	}
	for text, want := range map[string]bool{"rule:ads": true, "rule:#3": true, "rule:reject": true, "rule:direct": false, "-rule:ads": false, "route:rej": true} {
		if got := parseFilter(text).match(r); got != want {
			t.Errorf("%s: %v, want %v", text, got, want)
		}
	}
	if d := detailsText(r, time.Now()); !strings.Contains(d, "Rule         #3 domain-suffix ads.example →reject") {
		t.Errorf("details:\n%s", d)
	}
	mode := newConnRow(registry.Info{Meta: registry.Meta{Route: registry.RouteTunnel, Rule: registry.Rule{Index: -1, Kind: "mode", Payload: "tunnel", Action: "tunnel"}}})
	if compareRule(r, mode) >= 0 || mode.ruleText != "mode: tunnel" {
		t.Errorf("numbered rules sort before the mode's: %q", mode.ruleText)
	}
}

func TestRulesProblemIsNoted(t *testing.T) {
	v := viewOf(controlsInput{Status: app.Status{State: app.StateRunning, RulesProblem: errors.New("line 2: kind \"GEOIP\": unknown")}, Config: config.Default()})
	if !strings.Contains(v.FileNote, "rules file changed but cannot be used") || !strings.Contains(v.FileNote, "GEOIP") {
		t.Errorf("note %q", v.FileNote)
	}
}
