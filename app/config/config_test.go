package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadMissingGivesDefaults(t *testing.T) {
	cfg, err := Load(filepath.Join(t.TempDir(), "none.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("got %+v, want defaults", cfg)
	}
}

func TestSaveLoadRoundTripAtomic0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "porthole", "config.json")
	cfg := Default()
	cfg.Listen = "127.0.0.1:9999"
	cfg.Username, cfg.Password = "me", "secret"
	cfg.Bypass = []string{"localhost", "*.corp.example"}
	if err := Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600", st.Mode().Perm())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the config: %v", entries)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("round trip: got %+v, want %+v", got, cfg)
	}
}

func TestBrokenFileIsSetAsideNotOverwritten(t *testing.T) {
	for name, content := range map[string]string{
		"not json":      "{ this is not json",
		"unknown field": `{"listen": "127.0.0.1:8088", "colour": "blue"}`,
		"bad value":     `{"listen": "127.0.0.1:8088", "mode": "sideways"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Load error %v, want ErrInvalid", err)
			}
			if !reflect.DeepEqual(cfg, Default()) {
				t.Errorf("a broken file should give the defaults, got %+v", cfg)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("broken file still in place: %v", err)
			}
			aside, err := filepath.Glob(path + ".broken-*")
			if err != nil || len(aside) != 1 {
				t.Fatalf("set-aside file: %v %v", aside, err)
			}
			kept, err := os.ReadFile(aside[0])
			if err != nil || string(kept) != content {
				t.Errorf("set-aside content changed: %q %v", kept, err)
			}
		})
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := map[string]func(*Config){
		"listen":    func(c *Config) { c.Listen = "nope" },
		"mode":      func(c *Config) { c.Mode = "sideways" },
		"exit":      func(c *Config) { c.Mode = "tunnel" },
		"bypass":    func(c *Config) { c.Bypass = []string{"10.0.0.0/40"} },
		"password":  func(c *Config) { c.Username = "me" },
		"log_level": func(c *Config) { c.LogLevel = "loud" },
		"history":   func(c *Config) { c.History = -1 },
		"max_conns": func(c *Config) { c.MaxConns = -1 },
	}
	for field, mutate := range cases {
		cfg := Default()
		mutate(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: Validate() = %v, want an error naming %s", field, err, field)
		}
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}
