// Package core is Porthole's proxy engine. Engine puts the parts together
// and starts and stops them as one: the mixed HTTP/SOCKS port (inbound),
// the router with its direct and tunnel dialers (outbound, and in tunnel
// mode the reconnecting client of the tunnel package), and the connection
// registry, which outlives Start/Stop cycles. The exit server's engine is
// core/exit; relay is the copy both sides share. docs/ARCHITECTURE.md
// follows one connection through these packages.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"porthole/core/inbound"
	"porthole/core/outbound"
	"porthole/core/procinfo"
	"porthole/core/registry"
	"porthole/core/rules"
	"porthole/core/tunnel"
)

// DefaultListen is where the proxy listens unless configured otherwise.
const DefaultListen = "127.0.0.1:8088"

var (
	// ErrPortInUse wraps a listen failure because the address is taken.
	ErrPortInUse = errors.New("address already in use")
	// ErrRunning is returned by Start on a running engine.
	ErrRunning = errors.New("engine already running")
	// ErrClosed is returned by Start after Close: a closed engine cannot
	// be started again (a stopped one can).
	ErrClosed = errors.New("engine closed")
	// ErrAuthRequired refuses to listen beyond loopback without a password.
	ErrAuthRequired = errors.New("listening beyond loopback requires a username and password")
)

// Config is everything the engine needs; zero values take defaults.
type Config struct {
	Listen string // host:port; default DefaultListen
	Mode   outbound.Mode
	Bypass []string // nil: outbound.DefaultBypass
	// Rules is the rule set of rules mode (nil: none, every connection
	// takes the default action); SetRules swaps it while running.
	Rules *rules.Set
	Auth  *inbound.Auth
	// Exits are where tunnel mode (and a rules-mode tunnel rule) sends
	// connections, picked by ExitPolicy (ExitSelected is the manual pick);
	// the engine keeps porthole exits connected and upstream proxies probed
	// while running. Exit, the one exit server of older callers, stands for
	// a single porthole exit named after its host when Exits is empty.
	// Tunnel, if set instead, is used as the tunnel's dialer as is (tests).
	Exits        []outbound.ExitConfig
	ExitPolicy   outbound.Policy
	ExitSelected string
	Exit         *tunnel.ClientConfig
	Tunnel       outbound.Dialer
	DialTimeout  time.Duration

	HeaderTimeout  time.Duration
	KeepAliveIdle  time.Duration // HTTP keep-alive wait for the next request
	IdleTimeout    time.Duration // abort connections idle this long; 0: DefaultIdleTimeout, <0: never
	MaxConns       int
	MaxHeaderBytes int
	History        int // closed connections the registry keeps; 0: registry.DefaultHistory
	// NoProcessLookup turns off finding the program behind each connection
	// (on by default; off only to measure its cost).
	NoProcessLookup bool

	// Registry, if set, is used instead of a registry of the engine's own,
	// and is not closed by Close: the app keeps one across engines, so the
	// inspector's history survives a change of settings. History and
	// IdleTimeout are then the registry's business.
	Registry *registry.Registry

	Logger *slog.Logger
}

// DefaultIdleTimeout ends connections that moved no byte for this long.
const DefaultIdleTimeout = 15 * time.Minute

// Engine runs the proxy: New returns it stopped, Start listens and serves,
// Stop closes the listener and every connection.
//
// An engine can be restarted: Start after Stop listens again on the
// configured address (a new port where it ends in :0) with the same router,
// tunnel settings and registry, whose history therefore spans the runs.
// Close is the end: Start after Close returns ErrClosed. The app does not
// rely on restarting: its Controller builds a new engine from the settings
// at every start and closes it at every stop, passing one Config.Registry
// to all of them.
//
// Concurrency: Start, Stop and Close are safe from any goroutine and
// serialised; Stop and Close are idempotent and return when every goroutine
// the engine started has ended, even when another call is stopping it.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	registry *registry.Registry
	ownReg   bool // the engine made the registry and closes it
	router   *outbound.Router
	exits    *outbound.Group // nil unless exits were configured

	life   sync.Mutex // held through Start, Stop and Close
	server *inbound.Server
	served chan struct{} // closed when the accept loop has returned
	closed bool

	mu      sync.Mutex // guards addr and running, for readers that must not wait on life
	addr    net.Addr
	running *inbound.Server
}

// New validates cfg and returns a stopped engine with its registry.
func New(cfg Config) (*Engine, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Mode == "" {
		cfg.Mode = outbound.ModeDirect
	}
	if cfg.Bypass == nil {
		cfg.Bypass = outbound.DefaultBypass
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	if !isLoopback(host) && cfg.Auth == nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Listen, ErrAuthRequired)
	}
	bypass, err := outbound.ParseBypass(cfg.Bypass)
	if err != nil {
		return nil, err
	}
	var group *outbound.Group
	tunnelDialer := cfg.Tunnel
	if exits := exitList(cfg); len(exits) > 0 && tunnelDialer == nil && (cfg.Mode == outbound.ModeTunnel || cfg.Mode == outbound.ModeRules) {
		group, err = outbound.NewGroup(outbound.GroupConfig{
			Exits: exits, Policy: cfg.ExitPolicy, Selected: cfg.ExitSelected,
			DialTimeout: cfg.DialTimeout, Logger: cfg.Logger,
		})
		if err != nil {
			return nil, err
		}
		tunnelDialer = group
	}
	router, err := outbound.NewRouter(cfg.Mode, bypass, outbound.NewDirect(cfg.DialTimeout, nil), tunnelDialer)
	if err != nil {
		return nil, err
	}
	router.SetRules(cfg.Rules)
	reg, own := cfg.Registry, cfg.Registry == nil
	if own {
		reg = registry.New(registry.Options{IdleTimeout: max(cfg.IdleTimeout, 0), History: cfg.History})
	}
	return &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		router:   router,
		exits:    group,
		registry: reg,
		ownReg:   own,
	}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SetRules swaps the rule set (rules mode): open connections keep their
// route, new ones use s at once. Safe from any goroutine, running or not.
func (e *Engine) SetRules(s *rules.Set) { e.router.SetRules(s) }

// Rules is the rule set in use (never nil).
func (e *Engine) Rules() *rules.Set { return e.router.Rules() }

// Decide is where a connection described by q would go now (the rules
// editor's test box; the proxy itself decides in inbound).
func (e *Engine) Decide(ctx context.Context, q *rules.Query) outbound.Decision {
	return e.router.Decide(ctx, q)
}

// Registry is the engine's connection registry.
func (e *Engine) Registry() *registry.Registry { return e.registry }

// ProcessStats counts the program lookups of the proxy running now (zero
// when stopped or when Config.NoProcessLookup).
func (e *Engine) ProcessStats() procinfo.Stats {
	e.mu.Lock()
	srv := e.running
	e.mu.Unlock()
	if srv == nil {
		return procinfo.Stats{}
	}
	return srv.ProcessStats()
}

// TunnelStatus is the state of the exit in use (or, with none usable,
// of the one the policy wants) in the tunnel client's terms; ok is false
// without exits. State is tunnel.StateClosed while the engine is stopped.
func (e *Engine) TunnelStatus() (st tunnel.Status, ok bool) {
	if e.exits == nil {
		return tunnel.Status{}, false
	}
	return exitTunnelStatus(e.exits.State(), e.exits.TunnelStatus), true
}

// tunnelLine is the status page's line about the exits, nil without any.
func (e *Engine) tunnelLine() func() string {
	if e.exits == nil {
		return nil
	}
	return func() string { return exitsLine(e.exits.State()) }
}

// Addr is the address the proxy listens on, nil when stopped.
func (e *Engine) Addr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// Start listens and serves in the background. A taken port is an error
// wrapping ErrPortInUse and naming the address; nothing is left running.
func (e *Engine) Start() error {
	e.life.Lock()
	defer e.life.Unlock()
	switch {
	case e.closed:
		return ErrClosed
	case e.server != nil:
		return ErrRunning
	}
	ln, err := listen(e.cfg.Listen)
	if err != nil {
		if isAddrInUse(err) {
			return fmt.Errorf("listen on %s: %w (is another Porthole running?)", e.cfg.Listen, ErrPortInUse)
		}
		return fmt.Errorf("listen on %s: %w", e.cfg.Listen, err)
	}
	if e.exits != nil {
		if err := e.exits.Start(); err != nil {
			return errors.Join(err, ln.Close())
		}
	}
	srv := inbound.New(inbound.Config{
		Registry:       e.registry,
		Router:         e.router,
		Logger:         e.log,
		Auth:           e.cfg.Auth,
		HeaderTimeout:  e.cfg.HeaderTimeout,
		KeepAliveIdle:  e.cfg.KeepAliveIdle,
		MaxConns:       e.cfg.MaxConns,
		MaxHeaderBytes: e.cfg.MaxHeaderBytes,
		Status:         e.tunnelLine(),

		NoProcessLookup: e.cfg.NoProcessLookup,
	})
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, inbound.ErrServerClosed) {
			e.log.Error("proxy stopped accepting connections", "addr", ln.Addr(), "err", err)
		}
	}()
	e.server, e.served = srv, served
	e.mu.Lock()
	e.addr, e.running = ln.Addr(), srv
	e.mu.Unlock()
	e.log.Info("proxy listening", "addr", ln.Addr().String(), "mode", e.router.Mode())
	return nil
}

// Stop closes the listener and every connection, and waits for them. It is
// idempotent; the engine can be started again.
func (e *Engine) Stop() error {
	e.life.Lock()
	defer e.life.Unlock()
	return e.stopLocked()
}

func (e *Engine) stopLocked() error {
	if e.server == nil {
		return nil
	}
	e.mu.Lock()
	e.addr, e.running = nil, nil
	e.mu.Unlock()
	err := e.server.Close()
	<-e.served
	lookups := e.server.ProcessStats()
	e.server, e.served = nil, nil
	if e.exits != nil {
		// After the connections: they end as "proxy stopped", not as
		// "exit lost".
		err = errors.Join(err, e.exits.Stop())
	}
	if lookups.Lookups > 0 {
		// What attribution did and cost (the benchmark reads the cache's hit rate here).
		e.log.Info("proxy stopped", "lookups", lookups.Lookups, "found", lookups.Found,
			"cache_hits", lookups.CacheHits, "quick", lookups.Quick, "full_scans", lookups.FullScans,
			"shared_exec_checks", lookups.SharedExecChecks)
	} else {
		e.log.Info("proxy stopped")
	}
	return err
}

// Close stops the engine and closes its registry (unless it was given
// one); the engine cannot be started again. It is idempotent.
func (e *Engine) Close() error {
	e.life.Lock()
	defer e.life.Unlock()
	err := e.stopLocked()
	e.closed = true
	if e.exits != nil {
		err = errors.Join(err, e.exits.Close())
	}
	if e.ownReg {
		err = errors.Join(err, e.registry.Close())
	}
	return err
}
