// Package api is Porthole's control API: the REST and WebSocket API of
// Clash/mihomo's "external controller", which the dashboards people already
// use (metacubexd, Yacd-meta, zashboard) speak, and Porthole's own under
// /porthole/ (the closed-connection history with close reasons, the
// registry's event stream). It is an http.Handler over a Backend, the
// registry and the log ring; the Clash shapes live here and nowhere else,
// so the Backend stays in Porthole's own terms.
package api

import (
	"context"
	"errors"
	"time"

	"porthole/core/registry"
)

// Backend is what the API reads and changes, in Porthole's terms. The app
// implements it over its Controller.
//
// Concurrency: the API calls it from many goroutines at once.
type Backend interface {
	// Registry is the connection registry: /connections reads it, DELETE
	// closes through it.
	Registry() *registry.Registry
	// Mode is Porthole's routing mode: "direct", "tunnel" or "rules".
	Mode() string
	// SetMode switches the mode and keeps it (the settings file). Its
	// error is shown to the caller as a 400.
	SetMode(mode string) error
	// Listen is the address of the mixed HTTP/SOCKS port, as configured
	// or as listening.
	Listen() string
	// Exits are the named exits, in their order, and the one the GLOBAL
	// selector shows as chosen: where the exits' policy sends tunnelled
	// connections now (the manual pick when none is usable); "" when
	// there are no exits.
	Exits() (exits []Exit, now string)
	// SelectExit makes name the exit the tunnel uses (GLOBAL's choice).
	// ErrUnknownExit when there is none of that name; any other error
	// says why it cannot be chosen (the exit policy picks by itself).
	SelectExit(name string) error
	// Delay measures a request to url through the exit name (or directly
	// for DirectName) and returns how long it took; ctx bounds it.
	Delay(ctx context.Context, name, url string) (time.Duration, error)
	// Rules are the routing rules in their order, as the mode applies
	// them: what decides first (the bypass list) to the final match.
	Rules() []Rule
}

// Exit is one way out, as the proxies page shows it.
type Exit struct {
	Name string
	// Kind is the exit's kind in Clash's words, which dashboards show
	// and pick an icon by: "Porthole" (the tunnel), "Http", "Socks5".
	Kind string
	// Alive: not known to be down (an exit not tried yet is alive, as
	// an untested proxy is in mihomo).
	Alive bool
	UDP   bool
	// Latency is the exit's last round trip as its health check measured
	// it (0: not known); the proxies page shows it as the latest delay.
	Latency time.Duration
}

// Rule is one routing rule in Clash's terms (RuleType and the rest as
// mihomo's /rules gives them; ClashRule turns Porthole's into it).
type Rule struct {
	Type    string // "DomainSuffix", "IPCIDR", "Match", ...
	Payload string
	Proxy   string // where it sends a connection: "DIRECT", "REJECT", an exit's name or "GLOBAL"
	Size    int    // entries of a RuleSet's provider; -1 for the other types
}

// The names Clash gives the built-in proxies and the selector group.
const (
	DirectName = "DIRECT"
	RejectName = "REJECT"
	GlobalName = "GLOBAL"
)

// ErrUnknownExit is a SelectExit or Delay of a name no exit has.
var ErrUnknownExit = errors.New("no such exit")

// ErrNotSelectable is a SelectExit the exits' policy does not let a
// person make (fastest and failover pick by themselves), or of DIRECT
// (the direct mode's business).
var ErrNotSelectable = errors.New("not selectable")
