package outbound

import (
	"fmt"

	"porthole/core/registry"
)

// Mode is how connections leave the machine.
type Mode string

const (
	ModeDirect Mode = "direct"
	ModeTunnel Mode = "tunnel"
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeDirect, ModeTunnel:
		return Mode(s), nil
	}
	return "", fmt.Errorf("mode %q is not direct or tunnel", s)
}

// Router chooses the route for a target host and the dialer for a route.
// It is immutable and safe for concurrent use.
type Router struct {
	mode   Mode
	bypass *Bypass
	direct Dialer
	tunnel Dialer
}

// NewRouter returns a router. In tunnel mode, tunnel must not be nil.
func NewRouter(mode Mode, bypass *Bypass, direct, tunnel Dialer) (*Router, error) {
	if mode == ModeTunnel && tunnel == nil {
		return nil, ErrNoTunnel
	}
	return &Router{mode: mode, bypass: bypass, direct: direct, tunnel: tunnel}, nil
}

// Bypass is the router's bypass list (nil in direct mode without one).
func (r *Router) Bypass() *Bypass { return r.bypass }

// Mode is the router's mode.
func (r *Router) Mode() Mode { return r.mode }

// Route decides where a connection to host goes.
func (r *Router) Route(host string) registry.Route {
	if r.mode != ModeTunnel {
		return registry.RouteDirect
	}
	if r.bypass.Match(host) {
		return registry.RouteBypass
	}
	return registry.RouteTunnel
}

// Dialer returns the dialer for a route.
func (r *Router) Dialer(route registry.Route) Dialer {
	if route == registry.RouteTunnel {
		return r.tunnel
	}
	return r.direct
}
