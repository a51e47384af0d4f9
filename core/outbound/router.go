package outbound

import (
	"context"
	"net"
	"sync/atomic"

	"porthole/core/registry"
	"porthole/core/rules"
)

// Mode is how connections leave the machine.
type Mode string

const (
	ModeDirect Mode = "direct"
	ModeTunnel Mode = "tunnel"
	// ModeRules lets the rule set decide per connection (the bypass list
	// is read first, as direct rules ahead of the rest).
	ModeRules Mode = "rules"
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	return parseName[Mode]("mode", s, "", ModeDirect, ModeTunnel, ModeRules)
}

// Decision is where one connection goes and why: the route, the named exit
// a rule asked for ("" = the tunnel's policy picks), and the rule (or mode)
// that decided, for the registry.
type Decision struct {
	Route registry.Route
	Exit  string
	Rule  registry.Rule
}

// The decisions that need no rule; their Rule values are shared.
var (
	decideDirect = Decision{Route: registry.RouteDirect, Rule: registry.Rule{Index: -1, Kind: "mode", Payload: "direct", Action: "direct"}}
	decideTunnel = Decision{Route: registry.RouteTunnel, Rule: registry.Rule{Index: -1, Kind: "mode", Payload: "tunnel", Action: "tunnel"}}
	decideBypass = Decision{Route: registry.RouteBypass, Rule: registry.Rule{Index: -1, Kind: "bypass", Action: "direct"}}
)

// Router chooses the route for a connection and the dialer for a route.
//
// Concurrency: safe for concurrent use. Its mode, bypass list and dialers
// are fixed; the rule set is swapped by SetRules (an atomic pointer:
// Decide never locks, and a decision already taken stays taken).
type Router struct {
	mode   Mode
	bypass *Bypass
	direct Dialer
	tunnel Dialer
	rules  atomic.Pointer[rules.Set]
	pac    atomic.Pointer[pacCache] // rules mode's PAC script, for the set in use
}

// NewRouter returns a router. In tunnel mode, tunnel must not be nil; in
// rules mode it may be (a rule sending a connection to the tunnel then
// fails with ErrNoTunnel). Rules mode starts with an empty rule set (every
// connection takes its default, the tunnel) until SetRules.
func NewRouter(mode Mode, bypass *Bypass, direct, tunnel Dialer) (*Router, error) {
	if mode == ModeTunnel && tunnel == nil {
		return nil, ErrNoTunnel
	}
	if tunnel == nil {
		tunnel = noTunnel{}
	}
	r := &Router{mode: mode, bypass: bypass, direct: direct, tunnel: tunnel}
	empty, err := rules.Compile(nil, rules.Options{})
	if err != nil {
		return nil, err
	}
	r.rules.Store(empty)
	return r, nil
}

// SetRules swaps the rule set; connections already routed keep their
// route, new ones use s. nil is the empty set.
func (r *Router) SetRules(s *rules.Set) {
	if s == nil {
		s, _ = rules.Compile(nil, rules.Options{}) // cannot fail: no rules, default action
	}
	r.rules.Store(s)
}

// Rules is the rule set in use (never nil).
func (r *Router) Rules() *rules.Set { return r.rules.Load() }

// Bypass is the router's bypass list (nil in direct mode without one).
func (r *Router) Bypass() *Bypass { return r.bypass }

// Mode is the router's mode.
func (r *Router) Mode() Mode { return r.mode }

// Route decides where a connection to host goes, as Decide does for a
// query with nothing but the host.
func (r *Router) Route(host string) registry.Route {
	return r.Decide(context.Background(), &rules.Query{Host: host}).Route
}

// Decide is the route for q. In rules mode it may wait, bounded, for the
// program lookup (an app rule) or a local name lookup (an ip-cidr rule
// that resolves); ctx ends those waits early.
func (r *Router) Decide(ctx context.Context, q *rules.Query) Decision {
	switch r.mode {
	case ModeTunnel:
		if r.bypass.Match(q.Host) {
			return decideBypass
		}
		return decideTunnel
	case ModeRules:
		if r.bypass.Match(q.Host) {
			return decideBypass
		}
		v := r.rules.Load().Match(ctx, q)
		d := Decision{Route: registry.RouteTunnel, Exit: v.Exit, Rule: v.Rule}
		switch v.Action {
		case rules.ActionDirect:
			d.Route = registry.RouteDirect
		case rules.ActionReject:
			d.Route = registry.RouteReject
		}
		return d
	}
	return decideDirect
}

// Dialer returns the dialer for a route (RouteReject has none: it is the
// direct dialer, never called for it).
func (r *Router) Dialer(route registry.Route) Dialer {
	if route == registry.RouteTunnel {
		return r.tunnel
	}
	return r.direct
}

// noTunnel is the tunnel of a rules-mode router without an exit.
type noTunnel struct{}

func (noTunnel) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, ErrNoTunnel
}
