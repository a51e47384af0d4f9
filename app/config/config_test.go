package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"porthole/core/rules"
	"porthole/internal/filetest"
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
	filetest.Mode(t, path, 0o600)
	filetest.Alone(t, path)
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Fatalf("round trip: got %+v, want %+v", got, cfg)
	}
}

// TestBrokenFileIsReportedInPlace: a file that cannot be used gives the
// defaults with an error that names the file, the field and its line, and
// stays where it is, unchanged.
func TestBrokenFileIsReportedInPlace(t *testing.T) {
	for name, tc := range map[string]struct {
		content   string
		field     string
		line, col int
	}{
		"not json":      {"{\n  \"listen\": \"127.0.0.1:8088\",\n  this is not json", "", 3, 3},
		"wrong type":    {"{\n  \"listen\": \"127.0.0.1:8088\",\n  \"history\": \"many\"\n}", "history", 3, 3},
		"bad value":     {"{\n  \"listen\": \"127.0.0.1:8088\",\n    \"mode\": \"sideways\"\n}", "mode", 3, 5},
		"misspelt mode": {"{\"listen\": \"127.0.0.1:8088\", \"mdoe\": \"tunnel\", \"exit\": \"wss://e.example/p\"}", "mdoe", 1, 30},
		"not an object": {"[1, 2]", "", 1, 0},
		"null":          {"null\n", "", 1, 1},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			var fe *FileError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) {
				t.Fatalf("Load error %v, want a *FileError wrapping ErrInvalid", err)
			}
			if fe.Path != path || fe.Field != tc.field || fe.Line != tc.line || (tc.col > 0 && fe.Column != tc.col) {
				t.Errorf("located at %s field %q %d:%d, want %s field %q %d:%d", fe.Path, fe.Field, fe.Line, fe.Column, path, tc.field, tc.line, tc.col)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("message %q should name %s and %q", err, path, tc.field)
			}
			if !reflect.DeepEqual(cfg, Default()) {
				t.Errorf("a broken file should give the defaults, got %+v", cfg)
			}
			kept, err := os.ReadFile(path)
			if err != nil || string(kept) != tc.content {
				t.Errorf("the broken file was moved or changed: %q %v", kept, err)
			}
		})
	}
}

// TestUnknownFieldsAreAWarning: fields a newer Porthole wrote are named
// with their lines; the known ones are used.
func TestUnknownFieldsAreAWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	content := "{\n  \"listen\": \"127.0.0.1:9999\",\n  \"mode\": \"tunnel\",\n  \"exit\": \"wss://exit.example/porthole\",\n  \"plugins\": [{\"deny\": \"*\"}],\n  \"Telemetry\": false\n}\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	var ue *UnknownFieldsError
	if !errors.Is(err, ErrUnknownFields) || errors.Is(err, ErrInvalid) || !errors.As(err, &ue) {
		t.Fatalf("Load error %v, want an *UnknownFieldsError only", err)
	}
	want := []UnknownField{{"plugins", 5, 3}, {"Telemetry", 6, 3}}
	if !reflect.DeepEqual(ue.Fields, want) || ue.Path != path {
		t.Errorf("unknown fields %+v in %s, want %+v", ue.Fields, ue.Path, want)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.Mode != "tunnel" || cfg.Exit != "wss://exit.example/porthole" {
		t.Errorf("the known fields were not used: %+v", cfg)
	}
	if kept, err := os.ReadFile(path); err != nil || string(kept) != content {
		t.Errorf("the file was changed: %q %v", kept, err)
	}
}

func TestSetAsideKeepsEveryCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	var asides []string
	for i := range 3 {
		if err := os.WriteFile(path, []byte{byte('a' + i)}, 0o600); err != nil {
			t.Fatal(err)
		}
		aside, err := SetAside(path, "broken")
		if err != nil {
			t.Fatal(err)
		}
		asides = append(asides, aside)
	}
	for i, aside := range asides {
		if b, err := os.ReadFile(aside); err != nil || string(b) != string(rune('a'+i)) {
			t.Errorf("%s: %q %v", aside, b, err)
		}
	}
	if _, err := SetAside(path, "broken"); !errors.Is(err, ErrStuck) {
		t.Errorf("setting aside a missing file: %v, want ErrStuck", err)
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
		"rules":     func(c *Config) { c.Rules = []rules.Rule{{Kind: "geoip", Value: "CN", Action: "direct"}} },
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
	rulesMode := Default()
	rulesMode.Mode = "rules" // no exit needed: these rules send nothing to the tunnel
	rulesMode.Rules = []rules.Rule{{Kind: "domain-suffix", Value: "example.com", Action: "reject"}, {Kind: "match", Action: "direct"}}
	if err := rulesMode.Validate(); err != nil {
		t.Errorf("rules mode: %v", err)
	}
}

// roundTrip saves cfg to a new file and returns what loading it gives.
func roundTrip(t *testing.T, cfg Config) Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRulesRoundTrip: the rules and rules_file fields in the file.
func TestRulesRoundTrip(t *testing.T) {
	cfg := Default()
	cfg.Mode = "rules"
	cfg.RulesFile = "/some/rules.list"
	cfg.Exits = []Exit{{Name: "office", Kind: "http", URL: "http://127.0.0.1:3128"}}
	cfg.Rules = []rules.Rule{
		{Kind: "domain-suffix", Value: "example.com", Action: "direct"},
		{Kind: "ip-cidr", Value: "10.0.0.0/8", Action: "tunnel", Exit: "office", Resolve: true},
	}
	got := roundTrip(t, cfg)
	if !reflect.DeepEqual(got.Rules, cfg.Rules) || got.RulesFile != cfg.RulesFile || got.Mode != "rules" {
		t.Errorf("round trip: %+v", got)
	}
}

func TestValidateAPI(t *testing.T) {
	for _, tc := range []struct {
		api API
		ok  bool
	}{
		{API{Listen: DefaultAPIListen}, true},
		{API{Listen: ""}, true}, // off
		{API{Listen: "0.0.0.0:9090", Secret: "s"}, true},
		{API{Listen: ":9090"}, false},
		{API{Listen: "9090"}, false},
		{API{Listen: "127.0.0.1:http-nope"}, false},
		{API{Listen: DefaultAPIListen, DashboardURL: "https://example.com/#/setup"}, true},
		{API{Listen: DefaultAPIListen, DashboardURL: "javascript:alert(1)"}, false},
	} {
		cfg := Default()
		cfg.API = tc.api
		err := cfg.Validate()
		var fe *FieldError
		if tc.ok != (err == nil) || err != nil && (!errors.As(err, &fe) || fe.Field != "api") {
			t.Errorf("%+v: Validate = %v", tc.api, err)
		}
	}
	for addr, beyond := range map[string]bool{"127.0.0.1:9090": false, "[::1]:9090": false, "localhost:9090": false,
		"0.0.0.0:9090": true, "192.168.1.2:9090": true, "example.com:9090": true} {
		if APIBeyondLoopback(addr) != beyond {
			t.Errorf("APIBeyondLoopback(%q) = %v", addr, !beyond)
		}
	}
}
