package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"porthole/core/exit"
	"porthole/internal/exittest"
	"porthole/internal/fetch"
)

// TestHeadlessTunnelMode runs porthole --mode tunnel against an exit
// server on loopback: the token comes from a file, requests go through the
// tunnel (the exit logs their stream ids), and Ctrl-C still ends cleanly.
func TestHeadlessTunnelMode(t *testing.T) {
	originAddr := helloOrigin(t, "hello through the tunnel")

	opened := make(chan string, 16)
	exitAddr := exittest.Serve(t, exit.Config{Token: "s3cret", AllowPrivate: true, Logger: streamLogger(opened)})

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	cfgFile := filepath.Join(dir, "config.json")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An empty bypass list: the origin is on loopback, which the default
	// list sends direct.
	if err := os.WriteFile(cfgFile, []byte(`{"bypass": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startPorthole(t, "--headless", "--config", cfgFile, "--listen", "127.0.0.1:0", "--mode", "tunnel",
		"--exit", "ws://"+exitAddr+"/porthole", "--token-file", tokenFile)
	// The exit is dialled before the proxy says it listens: the two lines
	// come in either order.
	addr := p.WaitForEach(t, listenRE, regexp.MustCompile(`msg="tunnel connected"`))[0][1]

	if body := fetch.Via(t, addr, "http://"+originAddr+"/"); body != "hello through the tunnel" {
		t.Fatalf("through the tunnel: %q", body)
	}
	select {
	case target := <-opened:
		if target != originAddr {
			t.Errorf("the exit dialled %s, want the origin %s", target, originAddr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not go through the exit")
	}
	stopCleanly(t, p)
}

// streamLogger is a logger for the exit that reports the target of every
// stream it dials (its DEBUG "dialing" line) on ch.
func streamLogger(ch chan<- string) *slog.Logger {
	return slog.New(dialWatch{ch})
}

type dialWatch struct{ ch chan<- string }

func (dialWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h dialWatch) WithAttrs([]slog.Attr) slog.Handler     { return h }
func (h dialWatch) WithGroup(string) slog.Handler          { return h }
func (h dialWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "dialing" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "target" {
			select {
			case h.ch <- a.Value.String():
			default:
			}
		}
		return true
	})
	return nil
}
