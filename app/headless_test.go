package app

import (
	"crypto/x509"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/internal/filetest"
	"porthole/internal/testcert"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func tunnelSettings(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Mode = string(outbound.ModeTunnel)
	cfg.Exit = "wss://exit.example:9443/porthole"
	return cfg
}

// TestTokenPrecedence: PORTHOLE_TOKEN, then the token file, then the
// config's token.
func TestTokenPrecedence(t *testing.T) {
	cfg := tunnelSettings(t)
	cfg.Token = "from-config"
	token := func() string {
		t.Helper()
		ec, err := EngineConfig(cfg, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if ec.Exit == nil || ec.Exit.URL != cfg.Exit {
			t.Fatalf("exit config %+v, want the URL %s", ec.Exit, cfg.Exit)
		}
		return ec.Exit.Token
	}
	t.Setenv("PORTHOLE_TOKEN", "")
	if got := token(); got != "from-config" {
		t.Errorf("token %q, want the config's", got)
	}
	cfg.TokenFile = filetest.Write(t, "token", "  from-file  \nsecond line ignored\n")
	if got := token(); got != "from-file" {
		t.Errorf("token %q, want the file's first line, trimmed", got)
	}
	t.Setenv("PORTHOLE_TOKEN", "from-env")
	if got := token(); got != "from-env" {
		t.Errorf("token %q, want PORTHOLE_TOKEN", got)
	}
}

func TestTunnelSettingsErrors(t *testing.T) {
	t.Setenv("PORTHOLE_TOKEN", "")
	cases := map[string]func(*config.Config){
		"no token":         func(c *config.Config) {},
		"missing file":     func(c *config.Config) { c.TokenFile = filepath.Join(t.TempDir(), "absent") },
		"empty file":       func(c *config.Config) { c.TokenFile = filetest.Write(t, "empty", "\n\n") },
		"CA not PEM":       func(c *config.Config) { c.Token, c.ExitCA = "t", filetest.Write(t, "ca.pem", "not a certificate") },
		"CA file missing":  func(c *config.Config) { c.Token, c.ExitCA = "t", filepath.Join(t.TempDir(), "absent.pem") },
		"exit is not a ws": func(c *config.Config) { c.Token, c.Exit = "t", "https://exit.example/porthole" },
	}
	for name, mutate := range cases {
		cfg := tunnelSettings(t)
		mutate(&cfg)
		if _, err := EngineConfig(cfg, quiet); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Direct mode needs none of it, even with an exit configured.
	cfg := tunnelSettings(t)
	cfg.Mode = string(outbound.ModeDirect)
	ec, err := EngineConfig(cfg, quiet)
	if err != nil || ec.Exit != nil {
		t.Errorf("direct mode: exit %+v, err %v; want no tunnel and no error", ec.Exit, err)
	}
}

func TestExitCATrusted(t *testing.T) {
	ca := testcert.New(t, "test exit CA")
	cfg := tunnelSettings(t)
	cfg.Token = "t"
	cfg.ExitCA = filetest.Write(t, "ca.pem", string(ca.PEM()))
	t.Setenv("PORTHOLE_TOKEN", "")
	ec, err := EngineConfig(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if ec.Exit.TLS == nil || ec.Exit.TLS.RootCAs == nil {
		t.Fatal("the exit CA is not in the TLS config")
	}
	if _, err := ca.Cert.Verify(x509.VerifyOptions{Roots: ec.Exit.TLS.RootCAs}); err != nil {
		t.Errorf("the CA does not verify against the pool built from the file: %v", err)
	}
}

// TestExitsTokenPrecedence: a named porthole exit takes its token file,
// then its token, then PORTHOLE_TOKEN (docs/exits.md); a bad URL is
// refused there too, now that tunnelConfig checks for both paths.
func TestExitsTokenPrecedence(t *testing.T) {
	x := config.Exit{Name: "home", Kind: "porthole", URL: "wss://exit.example:9443/porthole"}
	token := func() string {
		t.Helper()
		ec, err := engineExit(x)
		if err != nil {
			t.Fatal(err)
		}
		return ec.Tunnel.Token
	}
	t.Setenv("PORTHOLE_TOKEN", "from-env")
	if got := token(); got != "from-env" {
		t.Errorf("token %q, want PORTHOLE_TOKEN when the exit has none", got)
	}
	x.Token = "from-config"
	if got := token(); got != "from-config" {
		t.Errorf("token %q, want the exit's own over PORTHOLE_TOKEN", got)
	}
	x.TokenFile = filetest.Write(t, "token", "from-file\n")
	if got := token(); got != "from-file" {
		t.Errorf("token %q, want the token file's", got)
	}
	x.URL = "https://exit.example/porthole"
	if _, err := engineExit(x); err == nil {
		t.Error("an https:// porthole exit was accepted")
	}
}
