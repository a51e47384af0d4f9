package rules

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"porthole/core/registry"
)

// Defaults for Options' zero values.
const (
	// DefaultAppWait bounds the wait for the program lookup when an app
	// rule comes before every other match: the lookup usually answered
	// while the request was read, and a rule must not stall a connection.
	DefaultAppWait = 250 * time.Millisecond
	// DefaultResolveWait bounds the local lookup of a name for an ip-cidr
	// rule that resolves.
	DefaultResolveWait = 2 * time.Second
)

// Resolver looks names up for ip-cidr rules with Resolve (net.Resolver
// fits).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ProgramSource is the program lookup of a connection
// (*procinfo.Future fits): Wait returns its result or ok false when ctx
// ended first or there is none.
type ProgramSource interface {
	Wait(ctx context.Context) (p *registry.Process, ok bool)
}

// Options shape a compiled set; zero values take defaults.
type Options struct {
	// Default is the action when no rule matches: ActionTunnel unless set
	// (a match rule at the end overrides it).
	Default     string
	DefaultExit string
	// Providers holds the entries of the named lists rule-set rules refer
	// to (see ParseProvider).
	Providers   map[string][]Rule
	Resolver    Resolver // nil: net.DefaultResolver
	AppWait     time.Duration
	ResolveWait time.Duration
}

// Query is what a rule can look at: the target as the client asked for it,
// the inbound protocol and, for app rules, the program's lookup.
type Query struct {
	Host    string // name or IP literal (brackets allowed); no port
	Port    uint16
	Inbound registry.Proto
	Program ProgramSource // nil: app rules never match
}

// Verdict is what the set decided: the rule (Index -1 for the default),
// its action and the exit it names ("" = the policy's pick).
type Verdict struct {
	Index  int
	Action string
	Exit   string
	Rule   registry.Rule
}

// Set is a compiled rule list. It is immutable and safe for concurrent
// use; Match takes no lock and, unless an app rule must wait for the
// program or an ip-cidr rule must resolve the name, allocates nothing.
type Set struct {
	rules []Rule
	// exitText is "tunnel:NAME" of the rules that name an exit, so a
	// verdict is built without allocating.
	exitText map[int32]string
	def      Verdict

	names    domains
	keywords keywords
	v4, v6   cidrs
	// Resolving ip-cidr rules, consulted for names only when one of them
	// could still come first.
	rv4, rv6   cidrs
	minResolve int32
	ports      []portRange
	portTable  []int32 // 65536 entries when there are many port rules
	inbound    [len(inboundNames)]int32
	apps       map[string]int32 // lower-case name or path → index
	minApp     int32
	match      int32

	resolver    Resolver
	appWait     time.Duration
	resolveWait time.Duration
	entries     int // matchers compiled, provider entries included
	// sets holds the compiled entries of each rule-set rule, by index.
	sets map[int][]Rule
}

type portRange struct {
	lo, hi uint16
	idx    int32
}

// Compile checks and compiles list. The error joins one *RuleError per bad
// rule (naming its index in list and the field); the set then holds the
// other rules, numbered by their place in Rules (after a bad rule that is
// not their place in list), and the caller decides whether to use it: the
// app refuses a list with errors, so a config is never half-applied
// without saying so.
func Compile(list []Rule, opt Options) (*Set, error) {
	s := &Set{
		minResolve:  none,
		minApp:      none,
		match:       none,
		resolver:    opt.Resolver,
		appWait:     opt.AppWait,
		resolveWait: opt.ResolveWait,
	}
	if s.appWait <= 0 {
		s.appWait = DefaultAppWait
	}
	if s.resolveWait <= 0 {
		s.resolveWait = DefaultResolveWait
	}
	for i := range s.inbound {
		s.inbound[i] = none
	}
	def, err := Rule{Kind: KindMatch, Action: orDefault(opt.Default), Exit: opt.DefaultExit}.Normalize()
	if err != nil {
		return nil, fmt.Errorf("default action: %w", err)
	}
	s.def = Verdict{Index: -1, Action: def.Action, Exit: def.Exit,
		Rule: registry.Rule{Index: -1, Kind: "default", Action: def.ActionText()}}

	var errs []error
	var kw keywordBuilder
	var v4, v6, rv4, rv6 []cidrEntry
	add := func(r Rule, idx int32) error {
		switch r.Kind {
		case KindDomain:
			s.names.add(r.Value, idx, false)
		case KindDomainSuffix:
			s.names.add(r.Value, idx, true)
		case KindDomainKeyword:
			kw.add(r.Value, idx)
		case KindIPCIDR:
			p := netip.MustParsePrefix(r.Value) // Normalize wrote it
			lo, hi := prefixRange(p)
			e := cidrEntry{lo, hi, idx}
			if p.Addr().Is4() {
				v4 = append(v4, e)
				if r.Resolve {
					rv4 = append(rv4, e)
				}
			} else {
				v6 = append(v6, e)
				if r.Resolve {
					rv6 = append(rv6, e)
				}
			}
			if r.Resolve {
				s.minResolve = min(s.minResolve, idx)
			}
		case KindPort:
			lo, hi, _ := parsePortRange(r.Value) // Normalize checked it
			s.ports = append(s.ports, portRange{lo, hi, idx})
		case KindApp:
			if s.apps == nil {
				s.apps = make(map[string]int32)
			}
			k := strings.ToLower(r.Value)
			if old, ok := s.apps[k]; !ok || idx < old {
				s.apps[k] = idx
			}
			s.minApp = min(s.minApp, idx)
		case KindInbound:
			i := inboundIndex(r.Value)
			s.inbound[i] = min(s.inbound[i], idx)
		case KindMatch:
			s.match = min(s.match, idx)
		default:
			return &FieldError{"kind", r.Kind, "not allowed here"}
		}
		s.entries++
		return nil
	}
	for i, raw := range list {
		r, err := raw.Normalize()
		if err != nil {
			errs = append(errs, &RuleError{Index: i, Rule: raw, Err: err})
			continue
		}
		idx := int32(len(s.rules))
		if r.Kind == KindRuleSet {
			entries, ok := opt.Providers[r.Value]
			if !ok {
				errs = append(errs, &RuleError{Index: i, Rule: raw, Err: &FieldError{"value", r.Value, "no provider of that name was loaded"}})
				continue
			}
			for _, e := range entries {
				e.Action = r.Action
				e.Exit = r.Exit
				n, err := e.Normalize()
				if err == nil && (n.Kind == KindRuleSet || n.Kind == KindMatch) {
					err = &FieldError{"kind", n.Kind, "not allowed in a provider"}
				}
				if err == nil {
					err = add(n, idx)
				}
				if err == nil {
					if s.sets == nil {
						s.sets = map[int][]Rule{}
					}
					s.sets[int(idx)] = append(s.sets[int(idx)], n)
				}
				if err != nil {
					errs = append(errs, &RuleError{Index: i, Rule: raw, Err: fmt.Errorf("provider %q entry %q: %w", r.Value, e.Value, err)})
				}
			}
		} else if err := add(r, idx); err != nil {
			errs = append(errs, &RuleError{Index: i, Rule: raw, Err: err})
			continue
		}
		s.rules = append(s.rules, r)
		if r.Exit != "" {
			if s.exitText == nil {
				s.exitText = map[int32]string{}
			}
			s.exitText[idx] = r.ActionText()
		}
	}
	s.keywords = kw.build()
	s.v4, s.v6 = buildCIDRs(v4), buildCIDRs(v6)
	s.rv4, s.rv6 = buildCIDRs(rv4), buildCIDRs(rv6)
	if len(s.ports) > 16 {
		s.portTable = make([]int32, 1<<16)
		for i := range s.portTable {
			s.portTable[i] = none
		}
		for _, p := range s.ports {
			for n := int(p.lo); n <= int(p.hi); n++ {
				s.portTable[n] = min(s.portTable[n], p.idx)
			}
		}
	}
	return s, errors.Join(errs...)
}

func orDefault(a string) string {
	if a == "" {
		return ActionTunnel
	}
	return a
}

// RuleError is a bad rule of a list: its position and what is wrong.
type RuleError struct {
	Index int
	Rule  Rule
	Err   error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rule %d (%s %s): %v", e.Index+1, e.Rule.Kind, e.Rule.Value, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// Rules is the compiled list (normalised; rules with errors left out). The
// slice is shared: do not modify it.
func (s *Set) Rules() []Rule { return s.rules }

// Len is the number of rules; Entries counts every compiled matcher, the
// entries of providers included.
func (s *Set) Len() int { return len(s.rules) }

// Entries is the number of matchers compiled (provider entries included).
func (s *Set) Entries() int { return s.entries }

// Expand is what rule i matches: the entries of its provider for a
// rule-set rule (each with the rule's action), the rule itself otherwise.
// The slice is shared: do not modify it.
func (s *Set) Expand(i int) []Rule {
	if s.rules[i].Kind == KindRuleSet {
		return s.sets[i]
	}
	return s.rules[i : i+1]
}

// Default is the verdict when nothing matches.
func (s *Set) Default() Verdict { return s.def }

// Match returns the verdict of the first rule that matches q.
func (s *Set) Match(ctx context.Context, q *Query) Verdict {
	best := none
	host := q.Host
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	var buf [maxName + 2]byte
	var name []byte
	if a, ok := parseIP(host); ok {
		best = min(best, s.lookupAddr(&s.v4, &s.v6, a))
	} else if n, ok := hostBytes(&buf, host); ok {
		name = n
		best = min(best, s.names.lookup(name), s.keywords.lookup(name))
	}
	if q.Port != 0 {
		best = min(best, s.lookupPort(q.Port))
	}
	if i := int(q.Inbound) - 1; i >= 0 && i < len(s.inbound) {
		best = min(best, s.inbound[i])
	}
	best = min(best, s.match)
	if name != nil && s.minResolve < best {
		best = min(best, s.resolveMatch(ctx, string(name), best))
	}
	if s.minApp < best && q.Program != nil {
		best = min(best, s.appMatch(ctx, q.Program))
	}
	if best == none {
		return s.def
	}
	return s.verdict(best)
}

func (s *Set) verdict(i int32) Verdict {
	r := &s.rules[i]
	text := r.Action
	if r.Exit != "" {
		text = s.exitText[i]
	}
	return Verdict{Index: int(i), Action: r.Action, Exit: r.Exit,
		Rule: registry.Rule{Index: int(i), Kind: r.Kind, Payload: r.Value, Action: text}}
}

// parseIP parses an IP literal; a name is told apart first, because
// netip's error for it allocates.
func parseIP(host string) (netip.Addr, bool) {
	for i := 0; i < len(host); i++ {
		if c := host[i]; c == ':' {
			break // IPv6
		} else if c != '.' && (c < '0' || c > '9') {
			return netip.Addr{}, false
		}
	}
	a, err := netip.ParseAddr(host)
	return a, err == nil
}

func (s *Set) lookupAddr(v4, v6 *cidrs, a netip.Addr) int32 {
	a = a.Unmap()
	if a.Is4() {
		return v4.lookup(addrNum(a))
	}
	return v6.lookup(addrNum(a))
}

func (s *Set) lookupPort(p uint16) int32 {
	if s.portTable != nil {
		return s.portTable[p]
	}
	best := none
	for _, r := range s.ports {
		if r.lo <= p && p <= r.hi {
			best = min(best, r.idx)
		}
	}
	return best
}

func (s *Set) resolveMatch(ctx context.Context, name string, best int32) int32 {
	ctx, cancel := context.WithTimeout(ctx, s.resolveWait)
	defer cancel()
	var r Resolver = defaultResolver{}
	if s.resolver != nil {
		r = s.resolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return none // a name that does not resolve matches no prefix
	}
	for _, a := range addrs {
		best = min(best, s.lookupAddr(&s.rv4, &s.rv6, a))
	}
	return best
}

func (s *Set) appMatch(ctx context.Context, src ProgramSource) int32 {
	ctx, cancel := context.WithTimeout(ctx, s.appWait)
	defer cancel()
	p, ok := src.Wait(ctx)
	if !ok || !p.Known() {
		return none
	}
	best := none
	if p.Name != "" {
		name := strings.ToLower(p.Name)
		if i, ok := s.apps[name]; ok {
			best = i
		}
		// Windows names end in .exe; a rule need not say it.
		if base, ok := strings.CutSuffix(name, ".exe"); ok {
			if i, ok := s.apps[base]; ok {
				best = min(best, i)
			}
		}
	}
	if p.Path != "" {
		if i, ok := s.apps[strings.ToLower(p.Path)]; ok {
			best = min(best, i)
		}
	}
	return best
}

// Size is a rough count of the bytes the compiled set holds in its
// lookup structures (for the benchmark's report).
func (s *Set) Size() int {
	n := len(s.keywords.delta)*4 + len(s.keywords.out)*4
	n += (s.v4.size() + s.v6.size() + s.rv4.size() + s.rv6.size()) * 36
	n += len(s.portTable)*4 + len(s.ports)*8
	for k := range s.names.m {
		n += len(k) + 16 + 8 + 8 // key bytes, string header, entry, bucket share
	}
	for k := range s.apps {
		n += len(k) + 16 + 8
	}
	return n
}
