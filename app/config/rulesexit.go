package config

import (
	"errors"

	"porthole/core/rules"
)

// ErrNoExit is wrapped by the error of rules mode whose rules would send
// connections through the tunnel while no exit is configured: every such
// connection would fail, so the mode is refused (fail closed, and say why)
// rather than taken.
var ErrNoExit = errors.New("no exit is configured")

// CheckRulesExit says why rules mode cannot use the rules when c has no
// exit: the first rule that would tunnel (field rules, or rules_file for
// one of fileRules, the rules file's, read after c.Rules), or the default,
// the tunnel, when no match rule ends the list (field mode). whole says
// fileRules is the whole rest of the list; without it (a rules file not
// read yet) the default is left to the caller that reads the file. It
// does not look at c.Mode: Validate checks rules mode, and the tray asks
// before switching to it. The error is a *FieldError wrapping ErrNoExit.
func (c Config) CheckRulesExit(fileRules []rules.Rule, whole bool) error {
	if len(c.ExitList()) > 0 {
		return nil
	}
	list := append(c.Rules[:len(c.Rules):len(c.Rules)], fileRules...)
	i := tunnelsAt(list)
	var r rules.Rule
	if i >= 0 && i < len(list) {
		r, _ = list[i].Normalize() // tunnelsAt took only rules that normalise
	}
	switch {
	case i < 0:
		return nil
	case i < len(c.Rules):
		return invalid("rules", "rules: rule %d (%s) sends connections through the tunnel, and %w: add an exit, or make the rule direct",
			i+1, r.String(), ErrNoExit)
	case i < len(list):
		return invalid("rules_file", "rules_file: rule %d (%s) sends connections through the tunnel, and %w: add an exit, or make the rule direct",
			i-len(c.Rules)+1, r.String(), ErrNoExit)
	case !whole:
		return nil
	}
	return invalid("mode", "mode: rules mode sends what no rule matches through the tunnel, and %w: add an exit, or end the rules with a match rule that goes direct", ErrNoExit)
}

// tunnelsAt is the index of the first rule of list that tunnels, before
// any match rule ends the list; len(list) when none does and no match
// rule ends it (the default then applies, which is the tunnel); -1 when a
// match rule that does not tunnel comes first. Rules that do not
// normalise are skipped: their own errors are reported elsewhere.
func tunnelsAt(list []rules.Rule) int {
	for i, raw := range list {
		r, err := raw.Normalize()
		if err != nil {
			continue
		}
		if r.Action == rules.ActionTunnel {
			return i
		}
		if r.Kind == rules.KindMatch {
			return -1
		}
	}
	return len(list)
}
