// Package core is Porthole's proxy engine: the inbound mixed port, the
// outbound router and the connection registry, started and stopped as one.
package core

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"porthole/core/inbound"
	"porthole/core/outbound"
	"porthole/core/registry"
)

// DefaultListen is where the proxy listens unless configured otherwise.
const DefaultListen = "127.0.0.1:8088"

var (
	// ErrPortInUse wraps a listen failure because the address is taken.
	ErrPortInUse = errors.New("address already in use")
	// ErrRunning is returned by Start on a running engine.
	ErrRunning = errors.New("engine already running")
	// ErrAuthRequired refuses to listen beyond loopback without a password.
	ErrAuthRequired = errors.New("listening beyond loopback requires a username and password")
)

// Config is everything the engine needs; zero values take defaults.
type Config struct {
	Listen      string // host:port; default DefaultListen
	Mode        outbound.Mode
	Bypass      []string // nil: outbound.DefaultBypass
	Auth        *inbound.Auth
	Tunnel      outbound.Dialer // required in tunnel mode
	DialTimeout time.Duration

	HeaderTimeout  time.Duration
	IdleTimeout    time.Duration // abort connections idle this long; 0: DefaultIdleTimeout, <0: never
	MaxConns       int
	MaxHeaderBytes int

	Logger *slog.Logger
}

// DefaultIdleTimeout ends connections that moved no byte for this long.
const DefaultIdleTimeout = 15 * time.Minute

// Engine runs the proxy. The registry lives as long as the engine, across
// Start/Stop cycles, so the inspector keeps its history when the user stops
// and starts the proxy.
//
// Concurrency: Start and Stop are safe from any goroutine; Stop is
// idempotent and returns when every goroutine the engine started has ended.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	registry *registry.Registry
	router   *outbound.Router

	mu     sync.Mutex
	server *inbound.Server
	addr   net.Addr
	served chan struct{} // closed when the accept loop has returned
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
	router, err := outbound.NewRouter(cfg.Mode, bypass, outbound.NewDirect(cfg.DialTimeout, nil), cfg.Tunnel)
	if err != nil {
		return nil, err
	}
	return &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		router:   router,
		registry: registry.New(registry.Options{IdleTimeout: max(cfg.IdleTimeout, 0)}),
	}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Registry is the engine's connection registry.
func (e *Engine) Registry() *registry.Registry { return e.registry }

// Mode is the outbound mode the engine was configured with.
func (e *Engine) Mode() outbound.Mode { return e.router.Mode() }

// Addr is the address the proxy listens on, nil when stopped.
func (e *Engine) Addr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// Start listens and serves in the background. A taken port is an error
// wrapping ErrPortInUse and naming the address; nothing is left running.
func (e *Engine) Start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.server != nil {
		return ErrRunning
	}
	ln, err := net.Listen("tcp", e.cfg.Listen)
	if err != nil {
		if isAddrInUse(err) {
			return fmt.Errorf("listen on %s: %w (is another Porthole running?)", e.cfg.Listen, ErrPortInUse)
		}
		return fmt.Errorf("listen on %s: %w", e.cfg.Listen, err)
	}
	srv := inbound.New(inbound.Config{
		Registry:       e.registry,
		Router:         e.router,
		Logger:         e.log,
		Auth:           e.cfg.Auth,
		HeaderTimeout:  e.cfg.HeaderTimeout,
		MaxConns:       e.cfg.MaxConns,
		MaxHeaderBytes: e.cfg.MaxHeaderBytes,
	})
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, inbound.ErrServerClosed) {
			e.log.Error("proxy stopped accepting connections", "addr", ln.Addr(), "err", err)
		}
	}()
	e.server, e.addr, e.served = srv, ln.Addr(), served
	e.log.Info("proxy listening", "addr", ln.Addr().String(), "mode", e.router.Mode())
	return nil
}

// Stop closes the listener and every connection, and waits for them. It is
// idempotent; the engine can be started again.
func (e *Engine) Stop() error {
	e.mu.Lock()
	srv, served := e.server, e.served
	e.server, e.addr, e.served = nil, nil, nil
	e.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-served
	e.log.Info("proxy stopped")
	return err
}

// Close stops the engine and closes its registry. It is idempotent.
func (e *Engine) Close() error {
	err := e.Stop()
	return errors.Join(err, e.registry.Close())
}
