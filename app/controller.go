package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// ErrConfigUnusable is returned by Start while the controller holds the
// proxy for a config file that could not be used (HoldForConfig).
var ErrConfigUnusable = errors.New("the config file cannot be used: start with the defaults or save new settings")

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
	// SystemProxyErr is why the last attempt to set it failed;
	// WantSystemProxy is the user's choice, kept while the proxy is
	// stopped and applied at each start.
	SystemProxy     bool
	SystemProxyErr  error
	WantSystemProxy bool
	// ConfigProblem is the config file that could not be used, while the
	// proxy is held stopped for it (HoldForConfig).
	ConfigProblem error
	// RulesProblem is why the rules file, changed while running, could not
	// be used; the rules in use stay (nil once a good version is read).
	RulesProblem error
}

// Controller owns the proxy engine and the system proxy, and is the one
// place the tray, the main window and headless mode change them through.
// The registry lives as long as the Controller, across engines, so the
// inspector keeps its history when settings change.
//
// Settings change through SaveSettings, the one policy for the config
// file (settings.go); a config file that could not be used holds the
// proxy stopped (HoldForConfig) until the user chooses StartOnDefaults or
// saves new settings.
//
// Concurrency: every method is safe from any goroutine. Changes (Start,
// Stop, SetSystemProxy, Apply, Close) are serialised by ops and may take
// seconds (stopping waits for connections, the system proxy runs tools);
// Status, Config and Changed only take the short state lock, so a UI
// reading them never waits for a change to finish and sees Starting and
// Stopping. A failed start leaves nothing half-applied: the system proxy is
// only set while the proxy runs. Close is idempotent.
type Controller struct {
	log *slog.Logger
	sys *sysproxy.Manager // nil: never touch the system proxy
	reg *registry.Registry

	ops    sync.Mutex // held through every change, never by readers
	saveMu sync.Mutex // held through SaveSettings: one read-change-write at a time

	mu      sync.Mutex // guards the fields below; held only briefly
	cfg     config.Config
	eng     *core.Engine // nil while stopped
	state   State
	err     error
	wantSys bool // the user wants the system proxy set while running
	sysOn   bool // the system proxy points at the proxy now
	sysErr  error
	hold    error // a config file that could not be used: Start refuses
	closed  bool
	changed chan struct{} // closed and replaced at every change
	// rulesWatch reloads the rules file of the running engine (rules.go);
	// rulesErr is its last failure.
	rulesWatch *rulesWatcher
	rulesErr   error

	api apiHolder // the control API's server (api.go); its own lock
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

// update changes state under the short lock and tells watchers.
func (c *Controller) update(f func()) {
	c.mu.Lock()
	f()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Status is the current state.
func (c *Controller) Status() Status {
	c.mu.Lock()
	st := Status{State: c.state, Err: c.err, Mode: outbound.Mode(c.cfg.Mode),
		SystemProxy: c.sysOn, SystemProxyErr: c.sysErr, WantSystemProxy: c.wantSys, ConfigProblem: c.hold,
		RulesProblem: c.rulesErr}
	eng := c.eng
	c.mu.Unlock()
	if eng != nil { // the engine's readers are safe while it stops
		if a := eng.Addr(); a != nil {
			st.Addr = a.String()
		}
		st.Tunnel, st.HasTunnel = eng.TunnelStatus()
	}
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
	c.ops.Lock()
	defer c.ops.Unlock()
	return c.startOps()
}

// HoldForConfig keeps the proxy from starting: the settings in use stand
// in for a config file that could not be used (problem, config.Load's
// error), and running on them could send traffic another way than the
// file says. Start refuses with ErrConfigUnusable until the user chooses
// StartOnDefaults or SaveSettings replaces the file. Call it before the
// first Start.
func (c *Controller) HoldForConfig(problem error) {
	c.update(func() { c.hold = problem })
}

// startOps starts; the caller holds ops.
func (c *Controller) startOps() error {
	c.mu.Lock()
	closed, running, cfg, hold := c.closed, c.state == StateRunning, c.cfg, c.hold
	c.mu.Unlock()
	switch {
	case closed:
		return ErrControllerClosed
	case running:
		return nil
	case hold != nil:
		return fmt.Errorf("%w: %w", ErrConfigUnusable, hold)
	}
	c.update(func() { c.state, c.err = StateStarting, nil })
	eng, ruleFiles, err := c.newEngine(cfg)
	if err != nil {
		c.update(func() { c.state, c.err = StateFailed, err })
		return err
	}
	var want bool
	c.update(func() { c.eng, c.state, want = eng, StateRunning, c.wantSys })
	c.startRulesWatchOps(eng, cfg, ruleFiles)
	if want {
		c.applySystemProxyOps(eng)
	}
	return nil
}

func (c *Controller) newEngine(cfg config.Config) (*core.Engine, []string, error) {
	ec, ruleFiles, err := engineConfig(cfg, c.log)
	if err != nil {
		return nil, nil, err
	}
	ec.Registry = c.reg
	eng, err := core.New(ec)
	if err != nil {
		return nil, nil, err
	}
	if err := eng.Start(); err != nil {
		return nil, nil, errors.Join(err, eng.Close())
	}
	return eng, ruleFiles, nil
}

// Stop puts the system proxy back, then stops the proxy and waits for its
// connections to end.
func (c *Controller) Stop() error {
	c.ops.Lock()
	defer c.ops.Unlock()
	return c.stopOps()
}

func (c *Controller) stopOps() error {
	sysErr := c.releaseSystemProxyOps()
	c.mu.Lock()
	eng, failed := c.eng, c.state == StateFailed
	c.mu.Unlock()
	if eng == nil {
		if failed {
			c.update(func() { c.state, c.err = StateStopped, nil })
		}
		return sysErr
	}
	c.update(func() { c.state = StateStopping })
	c.stopRulesWatchOps()
	err := eng.Close()
	c.update(func() { c.eng, c.state = nil, StateStopped })
	return errors.Join(sysErr, err)
}

// SetSystemProxy turns the system proxy on or off. On while stopped is
// remembered and applied at the next start.
func (c *Controller) SetSystemProxy(on bool) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	c.mu.Lock()
	closed, eng, running := c.closed, c.eng, c.state == StateRunning
	c.mu.Unlock()
	switch {
	case closed:
		return ErrControllerClosed
	case c.sys == nil:
		return sysproxy.ErrUnsupported
	}
	c.update(func() { c.wantSys, c.sysErr = on, nil })
	if !on {
		return c.releaseSystemProxyOps()
	}
	if running {
		return c.applySystemProxyOps(eng)
	}
	return nil
}

// applySystemProxyOps points the system proxy at eng; the caller holds ops.
func (c *Controller) applySystemProxyOps(eng *core.Engine) error {
	addr := eng.Addr()
	if addr == nil {
		return nil
	}
	c.mu.Lock()
	bypass := c.cfg.Bypass
	c.mu.Unlock()
	err := c.sys.Enable(proxyAddr(addr), bypass)
	c.update(func() { c.sysOn, c.sysErr = err == nil, err })
	if err != nil {
		c.log.Warn("the system proxy was not set; the proxy runs anyway", "err", err)
		return err
	}
	c.log.Info("system proxy set", "addr", proxyAddr(addr))
	return nil
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

// releaseSystemProxyOps puts the system proxy back if it is set; the
// caller holds ops.
func (c *Controller) releaseSystemProxyOps() error {
	c.mu.Lock()
	on := c.sysOn
	c.mu.Unlock()
	if c.sys == nil || !on {
		return nil
	}
	if err := c.sys.Disable(); err != nil {
		c.update(func() { c.sysErr = err })
		c.log.Error("the system proxy could not be put back; run porthole --restore-system-proxy", "err", err)
		return err
	}
	c.update(func() { c.sysOn, c.sysErr = false, nil })
	c.log.Info("system proxy put back")
	return nil
}

// Apply validates and takes new settings without saving them
// (SaveSettings saves and applies). The proxy restarts when a changed
// setting needs it (config.Diff), or when its last start failed (the new
// settings may fix it); the system proxy follows, and a change of
// system_proxy turns it on or off. The error is the failed start and the
// system proxy's, joined.
func (c *Controller) Apply(cfg config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	c.ops.Lock()
	_, startErr, sysErr := c.applyOps(cfg)
	c.ops.Unlock()
	apiErr := c.syncAPI() // without ops: see apiHolder
	return errors.Join(startErr, sysErr, apiErr)
}

// applyOps takes cfg (valid); the caller holds ops.
func (c *Controller) applyOps(cfg config.Config) (changes config.Changes, startErr, sysErr error) {
	c.mu.Lock()
	closed, old, state := c.closed, c.cfg, c.state
	c.mu.Unlock()
	if closed {
		return changes, ErrControllerClosed, nil
	}
	changes = config.Diff(old, cfg)
	c.update(func() { c.cfg = cfg })
	// The system proxy choice first, so a restart sets it (or not) once.
	switchSys := changes.Has("system_proxy")
	if switchSys {
		if c.sys == nil {
			sysErr = sysproxy.ErrUnsupported
		} else {
			c.update(func() { c.wantSys, c.sysErr = cfg.SystemProxy, nil })
			if !cfg.SystemProxy {
				sysErr = c.releaseSystemProxyOps()
			}
		}
	}
	restart := state == StateFailed || state == StateRunning && changes.Need(config.EffectRestart)
	if !restart && changes.Need(config.EffectSelectExit) {
		if err := c.selectExitOps(cfg.ExitSelected); err != nil {
			c.log.Warn("selecting an exit", "exit", cfg.ExitSelected, "err", err)
		}
	}
	if restart {
		c.log.Info("settings changed; restarting the proxy", "changed", changes.Fields)
		if err := c.stopOps(); err != nil {
			c.log.Warn("stopping for new settings", "err", err)
		}
		startErr = c.startOps()
	} else if state == StateRunning && (changes.Need(config.EffectRules) || cfg.Mode == string(outbound.ModeRules) && cfg.RulesFile != "") {
		// A rules file is read again at every Apply, changed or not.
		startErr = c.applyRulesOps(cfg)
	}
	if switchSys && c.sys != nil && cfg.SystemProxy {
		c.mu.Lock()
		eng, running, lastErr := c.eng, c.state == StateRunning, c.sysErr
		c.mu.Unlock()
		switch {
		case restart:
			sysErr = lastErr // startOps set it, if the proxy started
		case running:
			sysErr = c.applySystemProxyOps(eng)
		}
	}
	return changes, startErr, sysErr
}

// Close puts the system proxy back, stops the proxy and closes the
// registry. The controller cannot be used afterwards.
func (c *Controller) Close() error {
	apiErr := c.stopAPI() // first, without ops: its requests may wait for ops
	c.ops.Lock()
	defer c.ops.Unlock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil
	}
	err := c.stopOps()
	c.update(func() { c.closed = true })
	return errors.Join(apiErr, err, c.reg.Close())
}
