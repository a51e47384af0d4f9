// Package rules decides, per connection, where it goes: an ordered list of
// rules (first match wins) compiled once into per-kind lookup structures
// and swapped atomically by its owner. It knows nothing of the UI; the
// router in core/outbound asks it, the app loads it from the config file
// or a rules file (Porthole's JSON, Clash rule lines, Clash providers).
package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Kinds of rule, as they appear in JSON.
const (
	KindDomain        = "domain"         // the host name exactly
	KindDomainSuffix  = "domain-suffix"  // the name and every name under it
	KindDomainKeyword = "domain-keyword" // the name contains the value
	KindIPCIDR        = "ip-cidr"        // an IP target in the prefix (v4 or v6)
	KindPort          = "port"           // target port: "443" or "8000-8999"
	KindApp           = "app"            // program name, or its path when the value has a slash
	KindInbound       = "inbound"        // http, connect, socks5 or socks4
	KindRuleSet       = "rule-set"       // any entry of a named provider list matches
	KindMatch         = "match"          // everything (the final rule)
)

// Actions.
const (
	ActionDirect = "direct"
	ActionTunnel = "tunnel"
	ActionReject = "reject"
)

// Rule is one entry of a rule list, as Porthole's JSON spells it:
//
//	{"kind": "domain-suffix", "value": "example.com", "action": "direct"}
//	{"kind": "ip-cidr", "value": "10.0.0.0/8", "action": "tunnel", "exit": "office"}
//	{"kind": "ip-cidr", "value": "203.0.113.0/24", "action": "reject", "resolve": true}
//	{"kind": "app", "value": "firefox", "action": "tunnel:home"}
//	{"kind": "rule-set", "value": "ads", "path": "ads.yaml", "action": "reject"}
//	{"kind": "match", "action": "tunnel"}
//
// A named exit is "exit": NAME beside "action": "tunnel", or the short form
// "action": "tunnel:NAME"; Normalize turns the short form into the long
// one. Resolve (ip-cidr only) makes a name target match too, by resolving
// it here first; off by default, so no rule leaks a DNS lookup unasked.
// Path (rule-set only) is the provider file, relative to the rules file.
type Rule struct {
	Kind    string `json:"kind"`
	Value   string `json:"value,omitempty"`
	Action  string `json:"action"`
	Exit    string `json:"exit,omitempty"`
	Resolve bool   `json:"resolve,omitempty"`
	Path    string `json:"path,omitempty"`
}

// ErrInvalid is wrapped by every error about a rule's content.
var ErrInvalid = errors.New("invalid rule")

// FieldError names the field of a rule that is wrong.
type FieldError struct {
	Field string // "kind", "value", "action", "exit", "resolve", "path"
	Value string
	Msg   string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Msg)
}

func (e *FieldError) Unwrap() error { return ErrInvalid }

// Normalize checks r and returns it in canonical form: kind and action
// lower case, the "tunnel:NAME" form split into Action and Exit, the value
// normalised for its kind (names lower case, IDN in punycode, no trailing
// dot; prefixes masked). The error is a *FieldError.
func (r Rule) Normalize() (Rule, error) {
	r.Kind = strings.ToLower(strings.TrimSpace(r.Kind))
	r.Action = strings.TrimSpace(r.Action)
	r.Value = strings.TrimSpace(r.Value)
	r.Exit = strings.TrimSpace(r.Exit)
	// Exit names keep their case (they are the config's names); only the
	// action word is case-insensitive.
	a, exit, named := strings.Cut(r.Action, ":")
	r.Action = strings.ToLower(a)
	if named {
		exit = strings.TrimSpace(exit)
		if r.Exit != "" && r.Exit != exit {
			return r, &FieldError{"exit", r.Exit, "the action names another exit (" + exit + ")"}
		}
		r.Exit = exit
		if r.Exit == "" {
			return r, &FieldError{"action", r.Action + ":", "exit name missing after the colon"}
		}
	}
	switch r.Action {
	case ActionDirect, ActionReject:
		if r.Exit != "" {
			return r, &FieldError{"exit", r.Exit, "only a tunnel action names an exit"}
		}
	case ActionTunnel:
	case "":
		return r, &FieldError{"action", r.Action, "missing (direct, tunnel or reject)"}
	default:
		return r, &FieldError{"action", r.Action, "not direct, tunnel or reject"}
	}
	if r.Resolve && r.Kind != KindIPCIDR {
		return r, &FieldError{"resolve", "true", "only for ip-cidr rules"}
	}
	if r.Path != "" && r.Kind != KindRuleSet {
		return r, &FieldError{"path", r.Path, "only for rule-set rules"}
	}
	var err error
	switch r.Kind {
	case KindDomain, KindDomainSuffix:
		v := strings.TrimPrefix(strings.TrimPrefix(r.Value, "*."), "+.")
		if r.Kind == KindDomainSuffix {
			v = strings.TrimPrefix(v, ".")
		}
		r.Value, err = NormalizeName(v)
		if err != nil {
			return r, &FieldError{"value", r.Value, err.Error()}
		}
	case KindDomainKeyword:
		v, err := normalizeKeyword(r.Value)
		if err != nil {
			return r, &FieldError{"value", r.Value, err.Error()}
		}
		r.Value = v
	case KindIPCIDR:
		p, err := parsePrefix(r.Value)
		if err != nil {
			return r, &FieldError{"value", r.Value, err.Error()}
		}
		r.Value = p.String()
	case KindPort:
		lo, hi, err := parsePortRange(r.Value)
		if err != nil {
			return r, &FieldError{"value", r.Value, err.Error()}
		}
		if lo == hi {
			r.Value = strconv.Itoa(int(lo))
		} else {
			r.Value = strconv.Itoa(int(lo)) + "-" + strconv.Itoa(int(hi))
		}
	case KindApp:
		if r.Value == "" {
			return r, &FieldError{"value", r.Value, "a program name or path is needed"}
		}
	case KindInbound:
		r.Value = strings.ToLower(r.Value)
		if inboundIndex(r.Value) < 0 {
			return r, &FieldError{"value", r.Value, "not http, connect, socks5 or socks4"}
		}
	case KindRuleSet:
		if r.Value == "" {
			return r, &FieldError{"value", r.Value, "the provider's name is needed"}
		}
	case KindMatch:
		if r.Value != "" {
			return r, &FieldError{"value", r.Value, "a match rule has no value"}
		}
	case "":
		return r, &FieldError{"kind", r.Kind, "missing"}
	default:
		return r, &FieldError{"kind", r.Kind, "unknown kind of rule"}
	}
	return r, nil
}

// ActionText is the action as one word: "direct", "reject", "tunnel" or
// "tunnel:NAME".
func (r Rule) ActionText() string {
	if r.Exit != "" {
		return r.Action + ":" + r.Exit
	}
	return r.Action
}

// String is the rule as a person reads it: "domain-suffix example.com →
// direct".
func (r Rule) String() string {
	v := r.Value
	if r.Resolve {
		v += " (resolve)"
	}
	if v == "" {
		return r.Kind + " → " + r.ActionText()
	}
	return r.Kind + " " + v + " → " + r.ActionText()
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(strings.Trim(s, "[]"))
		if err != nil {
			return netip.Prefix{}, errors.New("not a CIDR prefix or IP address")
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not a CIDR prefix")
	}
	if p.Addr().Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, errors.New("a v4-mapped prefix shorter than /96")
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), bits)
	}
	return p.Masked(), nil
}

// parsePortRange reads "443" or "8000-8999".
func parsePortRange(s string) (lo, hi uint16, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err = parsePort(strings.TrimSpace(a))
	if err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parsePort(strings.TrimSpace(b)); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, errors.New("range ends before it starts")
		}
	}
	return lo, hi, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New("not a port from 1 to 65535 (or a range lo-hi)")
	}
	return uint16(n), nil
}

var inboundNames = [...]string{"http", "connect", "socks5", "socks4"}

func inboundIndex(s string) int {
	for i, n := range inboundNames {
		if n == s {
			return i
		}
	}
	return -1
}
