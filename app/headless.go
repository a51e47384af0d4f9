package app

import (
	"context"
	"errors"
	"log/slog"

	"porthole/app/config"
	"porthole/core"
	"porthole/core/inbound"
	"porthole/core/outbound"
)

// ErrTunnelUnavailable: tunnel mode is configured but this build has no
// tunnel yet.
var ErrTunnelUnavailable = errors.New("tunnel mode is not available in this version yet; use --mode direct")

// EngineConfig turns the user's settings into the engine's.
func EngineConfig(cfg config.Config, log *slog.Logger) (core.Config, error) {
	mode, err := outbound.ParseMode(cfg.Mode)
	if err != nil {
		return core.Config{}, err
	}
	if mode == outbound.ModeTunnel {
		return core.Config{}, ErrTunnelUnavailable
	}
	ec := core.Config{
		Listen:  cfg.Listen,
		Mode:    mode,
		Bypass:  cfg.Bypass,
		History: cfg.History,
		Logger:  log,
	}
	if ec.Bypass == nil {
		ec.Bypass = []string{}
	}
	if cfg.Username != "" {
		ec.Auth = &inbound.Auth{Username: cfg.Username, Password: cfg.Password}
	}
	return ec, nil
}

// NewEngine builds the engine the settings describe. Its errors are
// errors in the settings.
func NewEngine(cfg config.Config, log *slog.Logger) (*core.Engine, error) {
	ec, err := EngineConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	return core.New(ec)
}

// RunHeadless starts eng and runs it until ctx is done; it then calls
// release (main's signal.NotifyContext stop, so that a second Ctrl-C ends
// the process at once), stops the proxy, waits for every connection to
// end and closes the engine. A failure to start (port in use) is returned
// at once with nothing left running.
func RunHeadless(ctx context.Context, eng *core.Engine, log *slog.Logger, release func()) error {
	if err := eng.Start(); err != nil {
		return errors.Join(err, eng.Close())
	}
	<-ctx.Done()
	release()
	log.Info("stopping", "reason", context.Cause(ctx))
	return eng.Close()
}
