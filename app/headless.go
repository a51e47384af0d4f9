package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"porthole/app/config"
	"porthole/app/sysproxy"
	"porthole/core"
	"porthole/core/inbound"
	"porthole/core/outbound"
	"porthole/core/tunnel"
)

// EngineConfig turns the user's settings into the engine's. In tunnel mode
// the token comes from PORTHOLE_TOKEN, else the token file, else the config.
func EngineConfig(cfg config.Config, log *slog.Logger) (core.Config, error) {
	ec, _, err := engineConfig(cfg, log)
	return ec, err
}

// engineConfig is EngineConfig, with the rules files it read (rules mode).
func engineConfig(cfg config.Config, log *slog.Logger) (core.Config, []string, error) {
	mode, err := outbound.ParseMode(cfg.Mode)
	if err != nil {
		return core.Config{}, nil, err
	}
	ec := core.Config{
		Listen:   cfg.Listen,
		Mode:     mode,
		Bypass:   cfg.Bypass,
		History:  cfg.History,
		MaxConns: cfg.MaxConns,
		Logger:   log,
	}
	if ec.Bypass == nil {
		ec.Bypass = []string{}
	}
	// PORTHOLE_NO_PROCESS_LOOKUP=1 turns program attribution off
	// (core.Config.NoProcessLookup). A measuring knob, not a setting: the
	// benchmark runs a second proxy with it to price attribution.
	if os.Getenv("PORTHOLE_NO_PROCESS_LOOKUP") == "1" {
		ec.NoProcessLookup = true
	}
	if cfg.Username != "" {
		ec.Auth = &inbound.Auth{Username: cfg.Username, Password: cfg.Password}
	}
	if mode == outbound.ModeTunnel || mode == outbound.ModeRules && (cfg.Exit != "" || len(cfg.Exits) > 0) {
		// A file of before several exits keeps its one exit's path (the
		// engine names it after its host, as config.ExitList does).
		if len(cfg.Exits) > 0 {
			ec.Exits, err = engineExits(cfg.Exits)
		} else {
			ec.Exit, err = exitConfig(cfg)
		}
		if err != nil {
			return core.Config{}, nil, err
		}
		ec.ExitPolicy, ec.ExitSelected = outbound.Policy(cfg.ExitPolicy), cfg.ExitSelected
	}
	var ruleFiles []string
	if mode == outbound.ModeRules {
		if ec.Rules, ruleFiles, err = CompileRules(cfg); err != nil {
			return core.Config{}, nil, err
		}
	}
	return ec, ruleFiles, nil
}

// exitConfig is the tunnel client's configuration: URL, token and the CAs
// to trust.
func exitConfig(cfg config.Config) (*tunnel.ClientConfig, error) {
	token := strings.TrimSpace(os.Getenv("PORTHOLE_TOKEN"))
	if token == "" && cfg.TokenFile != "" {
		t, err := readSecretFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		token = t
	}
	if token == "" {
		token = cfg.Token
	}
	if token == "" {
		return nil, errors.New("tunnel mode needs the exit's token: --token-file FILE, PORTHOLE_TOKEN, or \"token\" in the config")
	}
	return tunnelConfig(cfg.Exit, token, cfg.ExitCA)
}

// tunnelConfig is a porthole exit's client configuration, with the CAs of
// caFile trusted besides the system's, checked (tunnel.ClientConfig.Check).
func tunnelConfig(exitURL, token, caFile string) (*tunnel.ClientConfig, error) {
	tc := &tunnel.ClientConfig{URL: exitURL, Token: token}
	// PORTHOLE_TUNNEL_MAX_WINDOW (bytes) caps how far the receive window of
	// each tunnel stream may grow (tunnel.Config.MaxWindow; default 32 MiB).
	// It is a measuring knob, not a setting: the benchmark sets it to
	// tunnel.DefaultWindow (262144) to compare the auto-tuned window with a
	// fixed one. Values below tunnel.DefaultWindow are refused, because the
	// session would silently raise them to the default.
	if v := os.Getenv("PORTHOLE_TUNNEL_MAX_WINDOW"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n < tunnel.DefaultWindow {
			return nil, fmt.Errorf("PORTHOLE_TUNNEL_MAX_WINDOW=%q: want a number of bytes from %d to %d", v, tunnel.DefaultWindow, uint32(math.MaxUint32))
		}
		tc.Session.MaxWindow = uint32(n)
	}
	if caFile != "" {
		tlsCfg, err := trustFile(caFile)
		if err != nil {
			return nil, err
		}
		tc.TLS = tlsCfg
	}
	if err := tc.Check(); err != nil {
		return nil, err
	}
	return tc, nil
}

// trustFile is a TLS configuration trusting the CAs of a PEM file besides
// the system's.
func trustFile(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("exit CA: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots here: the file's alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("exit CA: %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
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

// NewSystemProxy returns the system proxy manager for this desktop, with
// its journal next to the config file. Where no backend fits, the manager
// can still repair a journal and its Enable says why it cannot set anything;
// problem is that reason (wrapping sysproxy.ErrUnsupported), nil where a
// backend was found.
func NewSystemProxy(configPath string, log *slog.Logger) (m *sysproxy.Manager, problem error) {
	b, err := sysproxy.Detect(log)
	if err != nil {
		log.Debug("no system proxy backend on this desktop", "err", err)
		b = nil
	}
	return sysproxy.NewManager(b, filepath.Join(filepath.Dir(configPath), sysproxy.JournalName), log), err
}

// CheckSettings reports what is wrong with settings the proxy could not
// run with (a missing token, listening beyond loopback without a password),
// without starting anything.
func CheckSettings(cfg config.Config, log *slog.Logger) error {
	eng, err := NewEngine(cfg, log)
	if err != nil {
		return err
	}
	return eng.Close()
}

// RunHeadless starts the proxy and runs it until ctx is done. It then
// puts the system proxy back first (that is what leaves a user without
// internet if it is skipped), calls release (main's signal.NotifyContext
// stop, so that a second Ctrl-C ends the process at once), stops the
// proxy, waits for every connection to end and closes the controller. A
// failure to start (port in use) is returned at once with nothing left
// changed.
func RunHeadless(ctx context.Context, ctl *Controller, log *slog.Logger, release func()) error {
	if err := ctl.Start(); err != nil {
		return errors.Join(err, ctl.Close())
	}
	if st := ctl.Status(); st.SystemProxyErr != nil {
		log.Warn("point programs at Porthole yourself", "terminal_env", sysproxy.TerminalEnv(st.Addr, ctl.Config().Bypass))
	}
	<-ctx.Done()
	var sysErr error
	if ctl.Status().SystemProxy {
		sysErr = ctl.SetSystemProxy(false)
	}
	release()
	log.Info("stopping", "reason", context.Cause(ctx))
	return errors.Join(ctl.Close(), sysErr)
}
