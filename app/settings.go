package app

import (
	"errors"
	"fmt"
	"log/slog"

	"porthole/app/config"
)

// Saved is what SaveSettings did.
type Saved struct {
	Config  config.Config  // the settings now in use and in the file
	Changes config.Changes // against the settings in use before
	// SetAside is where the file on disk was moved before the new one was
	// written, because it could not be used or because it held fields
	// this version does not know (kept whole for the newer Porthole);
	// SetAsideWhy is config.Load's error about it. "" and nil: nothing
	// was moved.
	SetAside    string
	SetAsideWhy error
	// StartErr: the settings needed a restart and the proxy did not start
	// with them (Status shows it too). SystemProxyErr: the system proxy
	// did not follow a change of system_proxy.
	StartErr, SystemProxyErr error
	// APIErr: the control API did not start with changed api settings.
	APIErr error
}

// SaveSettings is the one way the front ends change settings, in one
// order: change is applied to a copy of the settings in use; the result
// is validated as the file and the engine would (a token for tunnel
// mode, a password beyond loopback); a file on disk that must not be
// overwritten unseen is set aside; the settings are written (atomically,
// 0600); and the controller takes them, restarting the proxy only when a
// changed field needs it (config.Diff) and turning the system proxy on or
// off when system_proxy changed.
//
// An error means nothing was written or applied: the settings were
// refused, or the file on disk cannot be read or set aside. Once the file
// is written the settings are in use, and Saved says what did not follow.
// Calls are serialised, so a tray click and the Settings window never
// save over each other's change.
func (c *Controller) SaveSettings(path string, change func(*config.Config)) (s Saved, err error) {
	// After both locks are released (defers run last in first out): a
	// restart of the control API waits for its requests, which may be
	// waiting for these locks.
	defer func() {
		if aerr := c.syncAPI(); aerr != nil && err == nil {
			s.APIErr = aerr
		}
	}()
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	cfg := c.Config()
	change(&cfg)
	if err := cfg.Validate(); err != nil {
		return Saved{}, err
	}
	if err := CheckSettings(cfg, slog.New(slog.DiscardHandler)); err != nil {
		return Saved{}, err
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return Saved{}, ErrControllerClosed
	}
	switch _, err := config.Load(path); {
	case err == nil:
	case errors.Is(err, config.ErrInvalid), errors.Is(err, config.ErrUnknownFields):
		suffix := "broken"
		if !errors.Is(err, config.ErrInvalid) {
			suffix = "newer"
		}
		aside, serr := config.SetAside(path, suffix)
		if serr != nil {
			return Saved{}, fmt.Errorf("%w (%w)", serr, err)
		}
		c.log.Warn("the config file on disk was set aside before saving", "aside", aside, "why", err)
		s.SetAside, s.SetAsideWhy = aside, err
	default: // unreadable: never replaced unseen
		return Saved{}, fmt.Errorf("not replacing it: %w", err)
	}
	if err := config.Save(path, cfg); err != nil {
		return s, err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	// The file that could not be used is replaced by what the user chose.
	c.update(func() { c.hold = nil })
	s.Config = cfg
	s.Changes, s.StartErr, s.SystemProxyErr = c.applyOps(cfg)
	return s, nil
}

// StartOnDefaults is the user's answer to a config file that could not be
// used (config.Load's ErrInvalid, HoldForConfig), given only when the user
// asks: the hold ends, the file
// is set aside, so that it is kept to be mended and neither read at the
// next launch nor overwritten, and the proxy starts on the settings in use
// (the defaults, with any command-line flags). It returns where the file
// went ("" if it was already gone or has been mended meanwhile; a mended
// file is left for the next launch). A file that cannot be set aside does
// not keep the proxy from starting: the user asked for it; the error says
// both.
func (c *Controller) StartOnDefaults(path string) (aside string, err error) {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	var asideErr error
	if _, lerr := config.Load(path); errors.Is(lerr, config.ErrInvalid) {
		aside, asideErr = config.SetAside(path, "broken")
		if asideErr == nil {
			c.log.Warn("the config file that could not be used was set aside; starting on the defaults", "aside", aside, "why", lerr)
		}
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	c.update(func() { c.hold = nil })
	return aside, errors.Join(asideErr, c.startOps())
}
