// Package config is Porthole's settings file: JSON in the user's config
// directory, written atomically with mode 0600 (it may hold a password or a
// token), validated on load with errors that name the field and its line.
// A file that cannot be used is reported and left where it is, never
// silently replaced by the defaults: it is set aside only when the user
// saves new settings or asks for the defaults. Diff says what a change of
// settings takes while Porthole runs.
package config

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/rules"
	"porthole/core/tunnel"
	"porthole/internal/loglevel"
)

// Config is the user's settings. The JSON names are the file format. The
// apply tag says what a change of the field takes while Porthole runs (see
// Effect and Diff); every field must have one.
type Config struct {
	Listen     string   `json:"listen" apply:"restart"`
	Mode       string   `json:"mode" apply:"restart"`
	Exit       string   `json:"exit,omitempty" apply:"restart"`
	TokenFile  string   `json:"token_file,omitempty" apply:"restart"`
	Token      string   `json:"token,omitempty" apply:"restart"`     // used when neither PORTHOLE_TOKEN nor token_file is set
	ExitCA     string   `json:"exit_ca,omitempty" apply:"restart"`   // PEM file of CAs to trust for the exit besides the system's
	Bypass     []string `json:"bypass" apply:"restart,system_proxy"` // also the system proxy's own bypass list
	Username   string   `json:"username,omitempty" apply:"restart"`
	Password   string   `json:"password,omitempty" apply:"restart"`
	LogLevel   string   `json:"log_level" apply:"next_launch"`
	History    int      `json:"history" apply:"next_launch"` // the registry lives as long as the app
	StartProxy bool     `json:"start_proxy" apply:"none"`    // read at launch only, by definition
	// MaxConns caps concurrent client connections (0: the core's default,
	// 8,192); an advanced setting, not shown in the Settings window.
	MaxConns int `json:"max_conns,omitempty" apply:"restart"`
	// SystemProxy and StartAtLogin are read by the desktop app.
	SystemProxy  bool `json:"system_proxy" apply:"system_proxy"`
	StartAtLogin bool `json:"start_at_login" apply:"autostart"`
	// Rules are the rules of rules mode, in order (core/rules' JSON), and
	// RulesFile a file of more (JSON, Clash rule lines, a Clash config or a
	// provider), read after them and reloaded when it changes. Both apply
	// at once, without a restart.
	Rules     []rules.Rule `json:"rules,omitempty" apply:"rules"`
	RulesFile string       `json:"rules_file,omitempty" apply:"rules"`

	// Exits are the exits tunnel mode picks from (see exits.go); a file
	// with only exit (and its token and CA) stands for one porthole exit
	// named after its host (ExitList). ExitPolicy is manual, fastest or
	// failover (""); ExitSelected the manual pick, taken at once.
	Exits        []Exit `json:"exits,omitempty" apply:"restart"`
	ExitPolicy   string `json:"exit_policy,omitempty" apply:"restart"`
	ExitSelected string `json:"exit_selected,omitempty" apply:"select_exit"`
	// API is the control API (app/api); its server is restarted alone
	// when it changes.
	API API `json:"api" apply:"api"`
}

// Default is the configuration of a first start.
func Default() Config {
	return Config{
		Listen:     core.DefaultListen,
		Mode:       string(outbound.ModeDirect),
		Bypass:     append([]string(nil), outbound.DefaultBypass...),
		LogLevel:   "info",
		History:    1000,
		StartProxy: true,
		API:        API{Listen: DefaultAPIListen},
	}
}

// DefaultPath is config.json in the user's config directory.
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(dir, "porthole", "config.json"), nil
}

// checkListen checks a listening address: host:port, with a host. field
// is the FieldError's, name the field's name in the message (api.listen)
// and hint what the message of an address that is not host:port adds.
func checkListen(field, name, addr, hint string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return invalid(field, "%s: %q is not host:port%s", name, addr, hint)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return invalid(field, "%s: port %q: %w", name, port, err)
	}
	if host == "" {
		return invalid(field, "%s: %q has no host (use 127.0.0.1:PORT for this machine only)", name, addr)
	}
	return nil
}

// Validate checks every field and names the first wrong one; the error
// is a *FieldError.
func (c Config) Validate() error {
	if err := checkListen("listen", "listen", c.Listen, ""); err != nil {
		return err
	}
	mode, err := outbound.ParseMode(c.Mode)
	if err != nil {
		return invalid("mode", "mode: %w", err)
	}
	for i, r := range c.Rules {
		if _, err := r.Normalize(); err != nil {
			return invalid("rules", "rules: rule %d: %w", i+1, err)
		}
	}
	if mode == outbound.ModeTunnel && c.Exit == "" && len(c.Exits) == 0 {
		return invalid("exit", "exit: tunnel mode needs an exit server URL")
	}
	if err := c.validateExits(); err != nil {
		return err
	}
	if i, name := c.UnknownRuleExit(c.Rules); i >= 0 {
		return invalid("rules", "rules: rule %d: exit %q is not one of the exits (%s)", i+1, name, c.exitNames())
	}
	if mode == outbound.ModeRules {
		if err := c.CheckRulesExit(nil, c.RulesFile == ""); err != nil {
			return err
		}
	}
	if c.Exit != "" && len(c.Exits) == 0 {
		if err := tunnel.CheckURL(c.Exit); err != nil {
			return invalid("exit", "exit: %w", err)
		}
	}
	if _, err := outbound.ParseBypass(c.Bypass); err != nil {
		return invalid("bypass", "bypass: %w", err)
	}
	if (c.Username == "") != (c.Password == "") {
		field := "password"
		if c.Username == "" {
			field = "username"
		}
		return invalid(field, "username and password: give both or neither")
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		return invalid("log_level", "log_level: %w", err)
	}
	if c.History < 0 || c.History > 100000 {
		return invalid("history", "history: %d is not between 0 and 100000", c.History)
	}
	if c.MaxConns < 0 || c.MaxConns > 1000000 {
		return invalid("max_conns", "max_conns: %d is not between 0 (the default) and 1000000", c.MaxConns)
	}
	if err := c.API.validate(); err != nil {
		return err
	}
	return nil
}

// ParseLogLevel reads debug, info, warn or error (internal/loglevel, which
// porthole-exit shares).
func ParseLogLevel(s string) (slog.Level, error) { return loglevel.Parse(s) }
