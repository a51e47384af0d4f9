package rules

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// LineError is a problem on one line of a rules or provider file. The
// line is skipped; the caller gets every such error and decides.
type LineError struct {
	Line  int    // 1-based
	Field string // "kind", "value", "action", "option", "line"
	Value string
	Err   error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("line %d: %s %q: %v", e.Line, e.Field, e.Value, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ErrUnknownKind is wrapped by the error about a Clash rule type Porthole
// does not implement (GEOIP, SRC-IP-CIDR, AND, ...): the line is skipped.
var ErrUnknownKind = errors.New("unknown kind of rule (skipped)")

// clashKinds maps Clash rule types to Porthole's kinds.
var clashKinds = map[string]string{
	"DOMAIN":         KindDomain,
	"DOMAIN-SUFFIX":  KindDomainSuffix,
	"DOMAIN-KEYWORD": KindDomainKeyword,
	"IP-CIDR":        KindIPCIDR,
	"IP-CIDR6":       KindIPCIDR,
	"DST-PORT":       KindPort,
	"PROCESS-NAME":   KindApp,
	"PROCESS-PATH":   KindApp,
	"RULE-SET":       KindRuleSet,
	"IN-TYPE":        KindInbound,
	"MATCH":          KindMatch,
	"FINAL":          KindMatch,
}

// clashAction maps a Clash policy to an action: DIRECT, REJECT (and its
// variants), and every other policy (PROXY or a proxy group's name) goes
// through the tunnel, the exit left to Porthole's policy.
func clashAction(p string) string {
	switch strings.ToUpper(p) {
	case "DIRECT":
		return ActionDirect
	case "REJECT", "REJECT-DROP", "REJECT-TINY":
		return ActionReject
	}
	return ActionTunnel
}

// ParseClashLine parses one Clash rule ("DOMAIN-SUFFIX,example.com,DIRECT",
// "IP-CIDR,10.0.0.0/8,DIRECT,no-resolve", "MATCH,PROXY"). An IP-CIDR rule
// without no-resolve resolves a name target, as Clash does. The error is a
// *LineError with Line 0.
func ParseClashLine(line string) (Rule, error) {
	return parseClash(line, true)
}

// parseClash reads a rule line; withAction false reads a classical
// provider's entry, which has no policy.
func parseClash(line string, withAction bool) (Rule, error) {
	f := strings.Split(line, ",")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	typ := strings.ToUpper(f[0])
	kind, ok := clashKinds[typ]
	if !ok {
		return Rule{}, &LineError{Field: "kind", Value: f[0], Err: ErrUnknownKind}
	}
	var r Rule
	r.Kind = kind
	rest := f[1:]
	if kind != KindMatch {
		if len(rest) == 0 || rest[0] == "" {
			return Rule{}, &LineError{Field: "value", Value: "", Err: errors.New("missing")}
		}
		r.Value, rest = rest[0], rest[1:]
	}
	if withAction {
		if len(rest) == 0 || rest[0] == "" {
			return Rule{}, &LineError{Field: "action", Value: "", Err: errors.New("missing (DIRECT, REJECT or a proxy)")}
		}
		r.Action, rest = clashAction(rest[0]), rest[1:]
	} else {
		r.Action = ActionTunnel // replaced by the rule-set's action
	}
	if kind == KindIPCIDR {
		r.Resolve = true
	}
	if kind == KindInbound && strings.EqualFold(r.Value, "HTTPS") {
		r.Value = "connect" // mihomo's HTTPS inbound is CONNECT
	}
	for _, opt := range rest {
		switch {
		case strings.EqualFold(opt, "no-resolve") && kind == KindIPCIDR:
			r.Resolve = false
		case strings.EqualFold(opt, "no-resolve") && kind == KindRuleSet:
			// Porthole's providers carry the choice per entry.
		default:
			return Rule{}, &LineError{Field: "option", Value: opt, Err: errors.New("not understood")}
		}
	}
	if kind == KindRuleSet {
		return r, nil // the provider's name is checked when it is loaded
	}
	n, err := r.Normalize()
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Rule{}, &LineError{Field: fe.Field, Value: fe.Value, Err: errors.New(fe.Msg)}
		}
		return Rule{}, &LineError{Field: "line", Value: line, Err: err}
	}
	return n, nil
}

// ParseClash reads Clash rule lines, one per line; blank lines and
// comments (#, //) are skipped, and a leading "- " (a YAML list pasted as
// is) is allowed. Every bad line is reported in the error (one
// *LineError each, joined) and left out of the rules.
func ParseClash(data []byte) ([]Rule, error) {
	var out []Rule
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := cleanLine(sc.Text())
		if line == "" {
			continue
		}
		r, err := ParseClashLine(line)
		if err != nil {
			errs = append(errs, atLine(err, n))
			continue
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func cleanLine(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "#") || strings.HasPrefix(s, "//") {
		return ""
	}
	if rest, ok := strings.CutPrefix(s, "- "); ok {
		s = strings.TrimSpace(rest)
	}
	return strings.Trim(s, `'"`)
}

func atLine(err error, n int) error {
	var le *LineError
	if errors.As(err, &le) {
		c := *le
		c.Line = n
		return &c
	}
	return &LineError{Line: n, Field: "line", Err: err}
}

// Provider behaviours (Clash's rule-provider "behavior").
const (
	BehaviorDomain    = "domain"    // names: "example.com", "+.example.com", ".example.com", "*.example.com"
	BehaviorIPCIDR    = "ipcidr"    // prefixes
	BehaviorClassical = "classical" // rule lines without a policy
)

// ParseProvider reads a Clash rule-provider file: YAML with a payload:
// list, or plain text with one entry per line. behavior "" guesses per
// entry (a comma: classical; a prefix: ipcidr; else domain). Entries come
// back as rules whose action the rule-set rule that refers to them sets.
// "+.", "." and "*." all mean the name and every name under it (Clash's
// "*." is one label only; Porthole is broader there).
func ParseProvider(data []byte, behavior string) ([]Rule, error) {
	behavior = strings.ToLower(strings.TrimSpace(behavior))
	switch behavior {
	case "", BehaviorDomain, BehaviorIPCIDR, BehaviorClassical:
	default:
		return nil, fmt.Errorf("provider behavior %q: not domain, ipcidr or classical", behavior)
	}
	type entry struct {
		line int
		text string
	}
	var entries []entry
	if isYAMLPayload(data) {
		var doc struct {
			Payload yaml.Node `yaml:"payload"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("provider: %w", err)
		}
		if doc.Payload.Kind != yaml.SequenceNode {
			return nil, &LineError{Line: doc.Payload.Line, Field: "payload", Err: errors.New("not a list")}
		}
		for _, n := range doc.Payload.Content {
			if n.Kind != yaml.ScalarNode {
				return nil, &LineError{Line: n.Line, Field: "payload", Err: errors.New("an entry is not a string")}
			}
			entries = append(entries, entry{n.Line, n.Value})
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for n := 1; sc.Scan(); n++ {
			if t := cleanLine(sc.Text()); t != "" {
				entries = append(entries, entry{n, t})
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	var out []Rule
	var errs []error
	for _, e := range entries {
		r, err := providerEntry(strings.TrimSpace(e.text), behavior)
		if err != nil {
			errs = append(errs, atLine(err, e.line))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func isYAMLPayload(data []byte) bool {
	for line := range bytes.Lines(data) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		return bytes.HasPrefix(t, []byte("payload:"))
	}
	return false
}

func providerEntry(s, behavior string) (Rule, error) {
	if behavior == "" {
		switch {
		case strings.Contains(s, ","):
			behavior = BehaviorClassical
		case strings.Contains(s, "/") || strings.Contains(s, ":"):
			behavior = BehaviorIPCIDR
		default:
			if _, err := parsePrefix(s); err == nil {
				behavior = BehaviorIPCIDR
			} else {
				behavior = BehaviorDomain
			}
		}
	}
	var r Rule
	switch behavior {
	case BehaviorClassical:
		return parseClash(s, false)
	case BehaviorIPCIDR:
		r = Rule{Kind: KindIPCIDR, Value: s, Action: ActionTunnel}
	default:
		r = Rule{Kind: KindDomain, Value: s, Action: ActionTunnel}
		for _, p := range []string{"+.", ".", "*."} {
			if rest, ok := strings.CutPrefix(s, p); ok {
				r = Rule{Kind: KindDomainSuffix, Value: rest, Action: ActionTunnel}
				break
			}
		}
	}
	n, err := r.Normalize()
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Rule{}, &LineError{Field: fe.Field, Value: fe.Value, Err: errors.New(fe.Msg)}
		}
		return Rule{}, err
	}
	return n, nil
}
