package ui

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/internal/connecttest"
	"porthole/internal/origin"
	"porthole/internal/upstreamtest"
)

// TestFailoverNotifies drives the real path of the exits' notifications:
// a controller with two microsocks exits under failover, the GUI's
// watcher, the exit in use killed while connections go through it. The
// user is told "Exit one lost; using two", and "Exit one is back" once it
// is restarted.
func TestFailoverNotifies(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	one, two := upstreamtest.Microsocks(t, "", ""), upstreamtest.Microsocks(t, "", "")
	echo := origin.Echo(t)
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Mode = "tunnel"
	cfg.Bypass = []string{}
	cfg.Exits = []config.Exit{{Name: "one", Kind: "socks5", URL: one.URL}, {Name: "two", Kind: "socks5", URL: two.URL}}
	cfg.ExitPolicy = "failover"
	g := newTestGUIFor(t, cfg, Options{ConfigPath: filepath.Join(dir, "config.json")})
	notices := make(chan string, 16)
	g.notified = func(title, _ string) {
		select {
		case notices <- title:
		default: // more than the test reads: not what it checks
		}
	}
	if err := g.ctl.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both exits connected", func() bool { return allExitsUp(g.ctl.Exits()) })
	if a := g.ctl.Exits().Active; a != "one" {
		t.Fatalf("in use before the kill: %q, want one", a)
	}
	g.wg.Go(func() { g.watch(g.gather(nil, true)) })
	addr := g.ctl.Status().Addr

	// Load through the exit in use, then kill it: the connection breaks,
	// and the next ones find it down (or the probe does).
	held := connectVia(t, addr, echo)
	defer held.Close()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		chunk := make([]byte, 16<<10)
		for range 100_000 { // until the kill breaks it; the conn's deadline bounds a stall
			if _, err := held.Write(chunk); err != nil {
				return
			}
		}
	}()
	one.Kill(t)
	waitNotice(t, notices, "Exit one lost; using two", func() {
		if c, err := tryConnect(addr, echo); err == nil {
			_ = c.Close() // only the dial's outcome matters
		}
	})
	// The connection it carried ends as "exit lost: one", as through a
	// porthole exit.
	waitUntil(t, "the held connection closed as exit lost", func() bool {
		for _, r := range g.ctl.Registry().Snapshot().Closed {
			if r.Exit == "one" && errors.Is(r.Err, outbound.ErrExitLost) {
				return true
			}
		}
		return false
	})
	_ = held.Close() // ends the writer
	<-wrote
	one.Start(t)
	waitNotice(t, notices, "Exit one is back", func() {})
}

// waitNotice waits up to 30 s for the notification want, calling poke
// between looks; other notifications are skipped.
func waitNotice(t *testing.T, notices <-chan string, want string, poke func()) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	var seen []string
	for range 1000 {
		select {
		case got := <-notices:
			if got == want {
				return
			}
			seen = append(seen, got)
		case <-deadline:
			t.Fatalf("no notification %q within 30 s; seen %q", want, seen)
		case <-time.After(50 * time.Millisecond):
			poke()
		}
	}
	t.Fatalf("no notification %q; seen %q", want, seen)
}

// tryConnect is one CONNECT through the proxy at addr, its failure
// returned (connectVia fails the test).
func tryConnect(addr, target string) (net.Conn, error) {
	c, _, resp, err := connecttest.Dial(addr, target)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_ = c.Close()
		return nil, fmt.Errorf("CONNECT: %s", resp.Status)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}
