package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"porthole/core/rules"
)

// TestOneExitFileReadsAsOneExit: a config file of today's shape (one
// exit with its token file and CA) loads unchanged and stands for one
// porthole exit named after its host.
func TestOneExitFileReadsAsOneExit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	const file = `{
  "listen": "127.0.0.1:8088",
  "mode": "tunnel",
  "exit": "wss://vps.example.net/porthole",
  "token_file": "/home/me/.porthole-token",
  "exit_ca": "/home/me/exit-ca.pem",
  "bypass": ["localhost", "127.0.0.0/8"],
  "log_level": "info",
  "history": 1000,
  "start_proxy": true,
  "system_proxy": false,
  "start_at_login": false
}`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Exit{{Name: "vps.example.net", Kind: "porthole", URL: "wss://vps.example.net/porthole",
		TokenFile: "/home/me/.porthole-token", CA: "/home/me/exit-ca.pem"}}
	if got := cfg.ExitList(); !reflect.DeepEqual(got, want) {
		t.Errorf("exits %+v, want %+v", got, want)
	}
	if len(cfg.Exits) != 0 {
		t.Errorf("the file's own fields changed: exits %+v", cfg.Exits)
	}
	cfg.ExitSelected = "vps.example.net"
	if err := cfg.Validate(); err != nil {
		t.Errorf("selecting the one exit by its host: %v", err)
	}
}

func TestExitsRoundTrip(t *testing.T) {
	cfg := Default()
	cfg.Mode = "tunnel"
	cfg.Exits = []Exit{
		{Name: "home", Kind: "porthole", URL: "wss://home.example/porthole", TokenFile: "/t"},
		{Name: "office", Kind: "http", URL: "https://proxy.corp:3128", Username: "me", PasswordFile: "/p", CA: "/ca.pem"},
		{Name: "ssh", Kind: "socks5", URL: "socks5://127.0.0.1:1080"},
	}
	cfg.ExitPolicy, cfg.ExitSelected = "failover", "office"
	got := roundTrip(t, cfg)
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("round trip: %+v, want %+v", got, cfg)
	}
	if !reflect.DeepEqual(got.ExitList(), cfg.Exits) {
		t.Errorf("exit list %+v", got.ExitList())
	}
}

func TestValidateExitsNamesTheField(t *testing.T) {
	good := func() Config {
		c := Default()
		c.Mode = "tunnel"
		c.Exits = []Exit{
			{Name: "a", URL: "ws://127.0.0.1:1/porthole", Token: "x"},
			{Name: "b", Kind: "socks5", URL: "socks5://127.0.0.1:1080"},
		}
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid exits: %v", err)
	}
	cases := map[string]func(*Config){
		"exits[1].name":     func(c *Config) { c.Exits[1].Name = "" },
		"exits[1].name ":    func(c *Config) { c.Exits[1].Name = "a" },
		"exits[0].kind":     func(c *Config) { c.Exits[0].Kind = "vpn" },
		"exits[1].url":      func(c *Config) { c.Exits[1].URL = "http://127.0.0.1:1080" },
		"exits[0].url":      func(c *Config) { c.Exits[0].URL = "wss://" },
		"exits[0].username": func(c *Config) { c.Exits[0].Username = "me" },
		"exits[1].token":    func(c *Config) { c.Exits[1].Token = "t" },
		"exits[1].username": func(c *Config) { c.Exits[1].Password = "pw" },
		"exits[1].ca":       func(c *Config) { c.Exits[1].CA = "/ca.pem" },
		"exit_policy":       func(c *Config) { c.ExitPolicy = "random" },
		"exit_selected":     func(c *Config) { c.ExitSelected = "c" },
		"rules": func(c *Config) {
			c.Rules = []rules.Rule{{Kind: "domain", Value: "a.test", Action: "tunnel:A"}} // names are exact
		},
	}
	for field, mutate := range cases {
		cfg := good()
		mutate(&cfg)
		err := cfg.Validate()
		var fe *FieldError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != strings.TrimSpace(field) {
			t.Errorf("%s: Validate() = %v, want an error naming it", field, err)
		}
	}
	// A rule may name any exit the config has, in either form.
	c := good()
	c.Rules = []rules.Rule{{Kind: "domain", Value: "a.test", Action: "tunnel:b"}, {Kind: "match", Action: "tunnel", Exit: "a"}}
	if err := c.Validate(); err != nil {
		t.Errorf("rules naming the exits: %v", err)
	}
	// Tunnel mode with exits needs no "exit".
	c = good()
	if c.Exit != "" || c.Validate() != nil {
		t.Errorf("tunnel mode over exits: %v", c.Validate())
	}
}
