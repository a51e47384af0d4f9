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
		Listen: cfg.Listen,
		Mode:   mode,
		Bypass: cfg.Bypass,
		Logger: log,
	}
	if ec.Bypass == nil {
		ec.Bypass = []string{}
	}
	if cfg.Username != "" {
		ec.Auth = &inbound.Auth{Username: cfg.Username, Password: cfg.Password}
	}
	return ec, nil
}

// RunHeadless runs the proxy until ctx is done, then stops it and waits for
// every connection to end. A failure to start (port in use) is returned at
// once with nothing left running.
func RunHeadless(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	ec, err := EngineConfig(cfg, log)
	if err != nil {
		return err
	}
	eng, err := core.New(ec)
	if err != nil {
		return err
	}
	if err := eng.Start(); err != nil {
		return errors.Join(err, eng.Close())
	}
	<-ctx.Done()
	log.Info("stopping", "reason", context.Cause(ctx))
	return eng.Close()
}
