// Package config is Porthole's settings file: JSON in the user's config
// directory, written atomically with mode 0600 (it may hold a password or a
// token), validated on load with errors that name the field. A file that
// cannot be read as a config is reported and set aside, never silently
// overwritten.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"porthole/app/internal/atomicfile"
	"porthole/core"
	"porthole/core/outbound"
	"porthole/core/tunnel"
	"porthole/internal/loglevel"
)

// ErrInvalid wraps every validation error.
var ErrInvalid = errors.New("invalid config")

// ErrStuck is a broken config file that could not be set aside: it is
// still in place, so nothing may be saved over it.
var ErrStuck = errors.New("the broken config file is still in place")

// Config is the user's settings. The JSON names are the file format.
type Config struct {
	Listen     string   `json:"listen"`
	Mode       string   `json:"mode"`
	Exit       string   `json:"exit,omitempty"`
	TokenFile  string   `json:"token_file,omitempty"`
	Token      string   `json:"token,omitempty"`   // used when neither PORTHOLE_TOKEN nor token_file is set
	ExitCA     string   `json:"exit_ca,omitempty"` // PEM file of CAs to trust for the exit besides the system's
	Bypass     []string `json:"bypass"`
	Username   string   `json:"username,omitempty"`
	Password   string   `json:"password,omitempty"`
	LogLevel   string   `json:"log_level"`
	History    int      `json:"history"`
	StartProxy bool     `json:"start_proxy"`
	// MaxConns caps concurrent client connections (0: the core's default,
	// 8,192); an advanced setting, not shown in the Settings window.
	MaxConns int `json:"max_conns,omitempty"`
	// SystemProxy and StartAtLogin are read by the desktop app.
	SystemProxy  bool `json:"system_proxy"`
	StartAtLogin bool `json:"start_at_login"`
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

// Validate checks every field and names the first wrong one.
func (c Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil || port == "" {
		return fmt.Errorf("%w: listen: %q is not host:port", ErrInvalid, c.Listen)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%w: listen: port %q: %w", ErrInvalid, port, err)
	}
	if host == "" {
		return fmt.Errorf("%w: listen: %q has no host (use 127.0.0.1:PORT for this machine only)", ErrInvalid, c.Listen)
	}
	mode, err := outbound.ParseMode(c.Mode)
	if err != nil {
		return fmt.Errorf("%w: mode: %w", ErrInvalid, err)
	}
	if mode == outbound.ModeTunnel && c.Exit == "" {
		return fmt.Errorf("%w: exit: tunnel mode needs an exit server URL", ErrInvalid)
	}
	if c.Exit != "" {
		if err := tunnel.CheckURL(c.Exit); err != nil {
			return fmt.Errorf("%w: exit: %w", ErrInvalid, err)
		}
	}
	if _, err := outbound.ParseBypass(c.Bypass); err != nil {
		return fmt.Errorf("%w: bypass: %w", ErrInvalid, err)
	}
	if (c.Username == "") != (c.Password == "") {
		return fmt.Errorf("%w: username and password: give both or neither", ErrInvalid)
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		return fmt.Errorf("%w: log_level: %w", ErrInvalid, err)
	}
	if c.History < 0 || c.History > 100000 {
		return fmt.Errorf("%w: history: %d is not between 0 and 100000", ErrInvalid, c.History)
	}
	if c.MaxConns < 0 || c.MaxConns > 1000000 {
		return fmt.Errorf("%w: max_conns: %d is not between 0 (the default) and 1000000", ErrInvalid, c.MaxConns)
	}
	return nil
}

// ParseLogLevel reads debug, info, warn or error (internal/loglevel, which
// porthole-exit shares).
func ParseLogLevel(s string) (slog.Level, error) { return loglevel.Parse(s) }

// Load reads path. A missing file gives the defaults. A file that is not
// valid JSON or does not validate is renamed to path.broken-TIMESTAMP and
// reported in the returned error together with the defaults, so the caller
// can run and tell the user; the file is never overwritten in place.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return Default(), fmt.Errorf("reading config %s: %w", path, err)
	}
	cfg := Default()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(&cfg)
	if err == nil {
		err = cfg.Validate()
	} else {
		err = fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err == nil {
		return cfg, nil
	}
	aside := fmt.Sprintf("%s.broken-%s", path, time.Now().Format("20060102-150405"))
	if rerr := os.Rename(path, aside); rerr != nil {
		return Default(), fmt.Errorf("config %s: %w (and it could not be set aside: %w): %w", path, err, rerr, ErrStuck)
	}
	return Default(), fmt.Errorf("config %s: %w; it was moved to %s and the defaults are used", path, err, aside)
}

// Save writes cfg to path atomically (temporary file, fsync, rename) with
// mode 0600, creating the directory (0700) if needed.
func Save(path string, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.Write(path, data, 0o600, 0o700); err != nil {
		return fmt.Errorf("saving config: %w", err)
	}
	return nil
}
