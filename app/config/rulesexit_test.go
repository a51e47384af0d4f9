package config

import (
	"errors"
	"strings"
	"testing"

	"porthole/core/rules"
)

// TestRulesModeNeedsAnExit: rules mode without an exit is refused when a
// rule, or the default after them, would tunnel; the error names the
// field. A rules file's rules are judged by CheckRulesExit with the
// file's rules (app.CompileRules); Validate leaves the default to it.
func TestRulesModeNeedsAnExit(t *testing.T) {
	direct := rules.Rule{Kind: "domain", Value: "a.example", Action: "direct"}
	tunnel := rules.Rule{Kind: "domain", Value: "b.example", Action: "TUNNEL"}
	matchDirect := rules.Rule{Kind: "match", Action: "direct"}
	for _, tc := range []struct {
		name      string
		own, file []rules.Rule
		rulesFile bool
		field     string // "" for valid
		rule      string // the rule number and text the message gives
	}{
		{name: "no rules", field: "mode"},
		{name: "direct rules, no match", own: []rules.Rule{direct}, field: "mode"},
		{name: "a tunnel rule", own: []rules.Rule{direct, tunnel, matchDirect}, field: "rules", rule: "rule 2 (domain b.example → tunnel)"},
		{name: "ends direct", own: []rules.Rule{direct, matchDirect}},
		{name: "a tunnel rule after the match never matches", own: []rules.Rule{matchDirect, tunnel}},
		{name: "a match that tunnels", own: []rules.Rule{{Kind: "match", Action: "tunnel"}}, field: "rules", rule: "rule 1"},
		{name: "the file's tunnel rule", own: []rules.Rule{direct}, file: []rules.Rule{direct, tunnel}, rulesFile: true,
			field: "rules_file", rule: "rule 2 (domain b.example → tunnel)"},
		{name: "the file ends direct", own: []rules.Rule{direct}, file: []rules.Rule{matchDirect}, rulesFile: true},
		{name: "the file leaves the default", file: []rules.Rule{direct}, rulesFile: true, field: "mode"},
	} {
		cfg := Default()
		cfg.Mode = "rules"
		cfg.Rules = tc.own
		if tc.rulesFile {
			cfg.RulesFile = "rules.list"
		}
		err := cfg.CheckRulesExit(tc.file, true)
		var fe *FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v, want none", tc.name, err)
		case tc.field == "":
		case !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrNoExit) || !errors.Is(err, ErrInvalid):
			t.Errorf("%s: %v, want ErrNoExit naming %s", tc.name, err, tc.field)
		case !strings.Contains(err.Error(), tc.field+": "+tc.rule):
			t.Errorf("%s: %q does not say %q", tc.name, err, tc.field+": "+tc.rule)
		}

		// Validate gives the same answer for the config's own rules, and
		// leaves a rules file's to the one that reads it.
		verr := cfg.Validate()
		switch {
		case tc.rulesFile && (tc.field == "rules") != (verr != nil):
			t.Errorf("%s with a rules file: Validate %v", tc.name, verr)
		case !tc.rulesFile && (tc.field == "") != (verr == nil):
			t.Errorf("%s: Validate %v, CheckRulesExit %v", tc.name, verr, err)
		}

		// Any exit lifts it, and other modes do not care.
		cfg.Exit = "wss://exit.example/porthole"
		if err := cfg.CheckRulesExit(tc.file, true); err != nil {
			t.Errorf("%s with an exit: %v", tc.name, err)
		}
		cfg.Exit, cfg.Mode = "", "direct"
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s in direct mode: %v", tc.name, err)
		}
	}
}
