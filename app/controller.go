package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"

	"porthole/app/config"
	"porthole/app/sysproxy"
	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/core/tunnel"
)

// State is where the proxy is in its life.
type State uint8

const (
	StateStopped State = iota
	StateStarting
	StateRunning
	StateStopping
	StateFailed // the last start failed; Status.Err says why
)

func (s State) String() string {
	switch s {
	case StateStopped:
		return "stopped"
	case StateStarting:
		return "starting"
	case StateRunning:
		return "running"
	case StateStopping:
		return "stopping"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// ErrControllerClosed is returned by a closed Controller.
var ErrControllerClosed = errors.New("porthole is quitting")

// Status is the app's state for the tray and the main window.
type Status struct {
	State State
	Err   error         // StateFailed: why the start failed
	Addr  string        // StateRunning: where the proxy listens
	Mode  outbound.Mode // of the settings in use
	// Tunnel is the tunnel client's state; HasTunnel is false in direct
	// mode.
	Tunnel    tunnel.Status
	HasTunnel bool
	// SystemProxy says the system proxy points at Porthole now;
	// SystemProxyErr is why the last attempt to set it failed.
	SystemProxy    bool
	SystemProxyErr error
}

// Controller owns the proxy engine and the system proxy, and is the one
// place the tray, the main window and headless mode change them through.
// The registry lives as long as the Controller, across engines, so the
// inspector keeps its history when settings change.
//
// Concurrency: every method is safe from any goroutine; changes are
// serialised. A failed start leaves nothing half-applied: the system proxy
// is only set while the proxy runs. Close is idempotent.
type Controller struct {
	log *slog.Logger
	sys *sysproxy.Manager // nil: never touch the system proxy
	reg *registry.Registry

	mu      sync.Mutex // held through every change
	cfg     config.Config
	eng     *core.Engine // nil while stopped
	state   State
	err     error
	wantSys bool // the user wants the system proxy set while running
	sysErr  error
	closed  bool
	changed chan struct{} // closed and replaced at every change
}

// NewController returns a stopped controller for cfg. sys may be nil.
func NewController(cfg config.Config, sys *sysproxy.Manager, log *slog.Logger) *Controller {
	return &Controller{
		log: log, sys: sys, cfg: cfg,
		reg:     registry.New(registry.Options{IdleTimeout: core.DefaultIdleTimeout, History: cfg.History}),
		wantSys: cfg.SystemProxy && sys != nil,
		changed: make(chan struct{}),
	}
}

// Registry is the connection registry of every engine this controller
// runs.
func (c *Controller) Registry() *registry.Registry { return c.reg }

// Changed is closed at the next change of Status (not of the tunnel's
// RTT or counts); call it again for the one after.
func (c *Controller) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Controller) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Status is the current state.
func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{State: c.state, Err: c.err, Mode: outbound.Mode(c.cfg.Mode), SystemProxyErr: c.sysErr}
	if c.eng != nil {
		if a := c.eng.Addr(); a != nil {
			st.Addr = a.String()
		}
		st.Tunnel, st.HasTunnel = c.eng.TunnelStatus()
	}
	st.SystemProxy = c.sys != nil && c.sys.Enabled()
	return st
}

// Config is the settings in use.
func (c *Controller) Config() config.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// Start builds the engine from the settings and starts it, then sets the
// system proxy if wanted. Starting a running proxy does nothing.
func (c *Controller) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startLocked()
}

func (c *Controller) startLocked() error {
	switch {
	case c.closed:
		return ErrControllerClosed
	case c.state == StateRunning:
		return nil
	}
	c.setLocked(StateStarting, nil)
	ec, err := EngineConfig(c.cfg, c.log)
	if err == nil {
		ec.Registry = c.reg
		var eng *core.Engine
		if eng, err = core.New(ec); err == nil {
			if err = eng.Start(); err != nil {
				err = errors.Join(err, eng.Close())
			} else {
				c.eng = eng
			}
		}
	}
	if err != nil {
		c.setLocked(StateFailed, err)
		return err
	}
	c.setLocked(StateRunning, nil)
	if c.wantSys {
		c.applySystemProxyLocked()
	}
	return nil
}

// Stop puts the system proxy back, then stops the proxy and waits for its
// connections to end.
func (c *Controller) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopLocked()
}

func (c *Controller) stopLocked() error {
	sysErr := c.releaseSystemProxyLocked()
	if c.eng == nil {
		if c.state == StateFailed {
			c.setLocked(StateStopped, nil)
		}
		return sysErr
	}
	c.setLocked(StateStopping, nil)
	err := c.eng.Close()
	c.eng = nil
	c.setLocked(StateStopped, nil)
	return errors.Join(sysErr, err)
}

// SetSystemProxy turns the system proxy on or off. On while stopped is
// remembered and applied at the next start.
func (c *Controller) SetSystemProxy(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrControllerClosed
	}
	if c.sys == nil {
		return sysproxy.ErrUnsupported
	}
	c.wantSys = on
	if !on {
		err := c.releaseSystemProxyLocked()
		c.notifyLocked()
		return err
	}
	if c.state == StateRunning {
		c.applySystemProxyLocked()
	}
	c.notifyLocked()
	return c.sysErr
}

func (c *Controller) applySystemProxyLocked() {
	addr := c.eng.Addr()
	if addr == nil {
		return
	}
	c.sysErr = c.sys.Enable(proxyAddr(addr), c.cfg.Bypass)
	if c.sysErr != nil {
		c.log.Warn("the system proxy was not set; the proxy runs anyway", "err", c.sysErr)
	} else {
		c.log.Info("system proxy set", "addr", proxyAddr(addr))
	}
}

// proxyAddr is the address to give programs: a proxy listening on every
// interface is reached on loopback.
func proxyAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func (c *Controller) releaseSystemProxyLocked() error {
	if c.sys == nil || !c.sys.Enabled() {
		return nil
	}
	if err := c.sys.Disable(); err != nil {
		c.log.Error("the system proxy could not be put back; run porthole --restore-system-proxy", "err", err)
		return err
	}
	c.log.Info("system proxy put back")
	return nil
}

// Apply validates and takes new settings. The proxy restarts only when a
// setting the running engine depends on changed; the system proxy follows.
func (c *Controller) Apply(cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrControllerClosed
	}
	old := c.cfg
	c.cfg = cfg
	c.notifyLocked()
	if c.state != StateRunning || !needsRestart(old, cfg) {
		return nil
	}
	c.log.Info("settings changed; restarting the proxy")
	if err := c.stopLocked(); err != nil {
		c.log.Warn("stopping for new settings", "err", err)
	}
	return c.startLocked()
}

// needsRestart reports whether the engine must be rebuilt for b.
func needsRestart(a, b config.Config) bool {
	return a.Listen != b.Listen || a.Mode != b.Mode || a.Exit != b.Exit || a.TokenFile != b.TokenFile ||
		a.Token != b.Token || a.ExitCA != b.ExitCA || !slices.Equal(a.Bypass, b.Bypass) ||
		a.Username != b.Username || a.Password != b.Password
}

// Close puts the system proxy back, stops the proxy and closes the
// registry. The controller cannot be used afterwards.
func (c *Controller) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	err := c.stopLocked()
	c.closed = true
	return errors.Join(err, c.reg.Close())
}

func (c *Controller) setLocked(s State, err error) {
	c.state, c.err = s, err
	c.notifyLocked()
}
