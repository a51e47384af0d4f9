package ui

import (
	"errors"
	"testing"

	"porthole/app/config"
	"porthole/core/rules"
)

// TestSettingsRulesModeNeedsAnExit: in the form, rules mode without an
// exit whose rules would tunnel is a problem of the rules (not of the
// exit field), naming why; rules that end with a direct match need none.
func TestSettingsRulesModeNeedsAnExit(t *testing.T) {
	cfg := loopbackConfig()
	cfg.Mode = "rules"
	for _, tc := range []struct {
		name  string
		rules []rules.Rule
		ok    bool
	}{
		{"no rules", nil, false},
		{"a tunnel rule", []rules.Rule{{Kind: "domain", Value: "a.example", Action: "tunnel"}, {Kind: "match", Action: "direct"}}, false},
		{"ends direct", []rules.Rule{{Kind: "domain", Value: "a.example", Action: "reject"}, {Kind: "match", Action: "direct"}}, true},
	} {
		cfg.Rules = tc.rules
		_, problems := valuesOf(cfg).config()
		switch {
		case tc.ok && len(problems) > 0:
			t.Errorf("%s: %v", tc.name, problems)
		case tc.ok:
		case len(problems) != 1 || problems[0].field != fieldRules || !errors.Is(problems[0].err, config.ErrNoExit):
			t.Errorf("%s: %+v, want one ErrNoExit at the rules", tc.name, problems)
		}
	}
	// A rules file's rule is known once the engine reads it.
	cfg.Rules = nil
	if f := fieldOfEngineError(cfg.CheckRulesExit([]rules.Rule{{Kind: "match", Action: "tunnel"}}, true)); f != fieldRules {
		t.Errorf("a rules file's tunnel rule shown at field %d", f)
	}
}
