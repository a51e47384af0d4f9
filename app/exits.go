package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"porthole/app/config"
	"porthole/core/outbound"
)

// ErrNotRunning is an action that needs the proxy running (testing an
// exit now).
var ErrNotRunning = errors.New("the proxy is not running")

// engineExits turns the settings' exits into the engine's: tokens and
// passwords read from their files, CA files loaded.
func engineExits(exits []config.Exit) ([]outbound.ExitConfig, error) {
	out := make([]outbound.ExitConfig, 0, len(exits))
	for i, x := range exits {
		ec, err := engineExit(x)
		if err != nil {
			return nil, fmt.Errorf("exits[%d] (%s): %w", i, x.Name, err)
		}
		out = append(out, ec)
	}
	return out, nil
}

func engineExit(x config.Exit) (outbound.ExitConfig, error) {
	kind, err := outbound.ParseKind(x.Kind)
	if err != nil {
		return outbound.ExitConfig{}, err
	}
	ec := outbound.ExitConfig{Name: x.Name, Kind: kind}
	if kind == outbound.KindPorthole {
		token := x.Token
		if x.TokenFile != "" {
			if token, err = readSecretFile(x.TokenFile); err != nil {
				return ec, fmt.Errorf("token file: %w", err)
			}
		}
		if token == "" {
			token = strings.TrimSpace(os.Getenv("PORTHOLE_TOKEN"))
		}
		if token == "" {
			return ec, fmt.Errorf("a porthole exit needs its token: token_file, token, or PORTHOLE_TOKEN")
		}
		tc, err := tunnelConfig(x.URL, token, x.CA)
		if err != nil {
			return ec, err
		}
		ec.Tunnel = *tc
		return ec, nil
	}
	password := x.Password
	if x.PasswordFile != "" {
		if password, err = readSecretFile(x.PasswordFile); err != nil {
			return ec, fmt.Errorf("password file: %w", err)
		}
	}
	ec.Upstream = outbound.UpstreamConfig{URL: x.URL, Username: x.Username, Password: password}
	if x.CA != "" {
		if ec.Upstream.TLS, err = trustFile(x.CA); err != nil {
			return ec, err
		}
	}
	return ec, nil
}

// Exits is the state of every exit and the policy's pick. While the
// proxy is stopped (or in direct mode) it is the configured exits, each
// ExitStopped.
func (c *Controller) Exits() outbound.GroupState {
	c.mu.Lock()
	eng, cfg := c.eng, c.cfg
	c.mu.Unlock()
	if eng != nil {
		if st, ok := eng.Exits(); ok {
			return st
		}
	}
	policy, _ := outbound.ParsePolicy(cfg.ExitPolicy) // validated
	st := outbound.GroupState{Policy: policy, Selected: cfg.ExitSelected}
	for i, x := range cfg.ExitList() {
		kind, _ := outbound.ParseKind(x.Kind) // validated
		if st.Selected == "" && i == 0 {
			st.Selected = x.Name
		}
		st.Exits = append(st.Exits, outbound.ExitStatus{Name: x.Name, Kind: kind, URL: redactURL(x.URL),
			State: outbound.ExitStopped, Selected: x.Name == st.Selected})
	}
	return st
}

// WatchExits is the running engine's exits and a watch of their changes
// (outbound.ExitWatch); the watch is nil while no engine with exits runs.
// A restart makes a new engine: watch Changed too, and subscribe again.
func (c *Controller) WatchExits() (outbound.GroupState, *outbound.ExitWatch) {
	c.mu.Lock()
	eng := c.eng
	c.mu.Unlock()
	if eng != nil {
		if st, w := eng.SubscribeExits(); w != nil {
			return st, w
		}
	}
	return c.Exits(), nil
}

// SelectExit makes name the manual pick: saved as exit_selected in the
// file at path and taken by the running proxy at once (no restart).
func (c *Controller) SelectExit(path, name string) error {
	_, err := c.SaveSettings(path, func(cfg *config.Config) { cfg.ExitSelected = name })
	return err
}

// TestExit measures an exit's latency now (the proxy must be running).
func (c *Controller) TestExit(ctx context.Context, name string) (time.Duration, error) {
	c.mu.Lock()
	eng := c.eng
	c.mu.Unlock()
	if eng == nil {
		return 0, ErrNotRunning
	}
	return eng.TestExit(ctx, name)
}

// selectExitOps hands a changed exit_selected to the running engine; the
// caller holds ops.
func (c *Controller) selectExitOps(name string) error {
	c.mu.Lock()
	eng := c.eng
	c.mu.Unlock()
	if eng == nil || name == "" {
		return nil
	}
	if _, ok := eng.Exits(); !ok {
		return nil
	}
	return eng.SelectExit(name)
}

// redactURL drops user info from a URL for display.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s[i+3:], "@"); at >= 0 {
			return s[:i+3] + s[i+3+at+1:]
		}
	}
	return s
}
