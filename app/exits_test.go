package app

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"porthole/app/config"
	"porthole/core/outbound"
	"porthole/core/registry"
	"porthole/internal/fetch"
	"porthole/internal/upstreamtest"
)

// lastExit waits for the next closed record and returns the exit that
// carried it.
func lastExit(t *testing.T, sub *registry.Subscription) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case batch, ok := <-sub.C:
			if !ok {
				t.Fatal("registry subscription ended")
			}
			for _, ev := range batch {
				if ev.Kind == registry.KindClosed {
					return ev.Conn.Exit
				}
			}
		case <-deadline:
			t.Fatal("no connection closed within 10 s")
		}
	}
}

// waitExits waits, at most 10 s, for the running engine's exits to be
// as cond wants, on the Controller's exits watch (subscribed again if it
// falls behind), and returns that state.
func waitExits(t *testing.T, c *Controller, what string, cond func(outbound.GroupState) bool) outbound.GroupState {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for range 1000 { // each pass is a change or a new watch; the deadline bounds the time
		st, w := c.WatchExits()
		if cond(st) {
			if w != nil {
				w.Close()
			}
			return st
		}
		if w == nil {
			t.Fatalf("waiting for %s: no engine with exits runs; exits %+v", what, st)
		}
		for ended := false; !ended; {
			select {
			case st, ok := <-w.C:
				if !ok {
					ended = true // fell behind: subscribe again
					break
				}
				if cond(st) {
					w.Close()
					return st
				}
			case <-deadline:
				w.Close()
				t.Fatalf("no %s within 10 s; exits %+v", what, c.Exits())
			}
		}
	}
	t.Fatalf("no %s: the exits watch kept ending", what)
	return outbound.GroupState{}
}

// TestControllerExits: tunnel mode over two SOCKS5 exits (real
// microsocks); the manual pick changes from the controller at once,
// without a restart, and is saved in the file.
func TestControllerExits(t *testing.T) {
	one, two := upstreamtest.Microsocks(t, "", ""), upstreamtest.Microsocks(t, "", "")
	path := filepath.Join(t.TempDir(), "config.json")
	cfg := directSettings()
	cfg.Mode = string(outbound.ModeTunnel)
	cfg.Exits = []config.Exit{
		{Name: "one", Kind: "socks5", URL: one.URL},
		{Name: "two", Kind: "socks5", URL: two.URL},
	}
	cfg.ExitPolicy = "manual"
	if err := config.Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	c := NewController(cfg, nil, quiet)
	defer c.Close()
	if st := c.Exits(); len(st.Exits) != 2 || st.Exits[0].State != outbound.ExitStopped || st.Selected != "one" {
		t.Errorf("exits while stopped: %+v", st)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	_, sub := c.Registry().Subscribe()
	defer sub.Close()
	addr := c.Status().Addr
	target := origin(t)
	if got := fetch.Via(t, addr, "http://"+target+"/"); got != "hi" {
		t.Fatalf("through exit one: %q", got)
	}
	if via := lastExit(t, sub); via != "one" {
		t.Errorf("first request via %q, want one", via)
	}

	if err := c.SelectExit(path, "two"); err != nil {
		t.Fatal(err)
	}
	if c.Status().Addr != addr {
		t.Errorf("selecting an exit restarted the proxy")
	}
	if st := c.Exits(); st.Selected != "two" {
		t.Errorf("after selecting two: selected %q", st.Selected)
	}
	// Two is in use once its health check has passed, which may come
	// after the pick under load.
	waitExits(t, c, "two in use", func(st outbound.GroupState) bool { return st.Active == "two" && st.Selected == "two" })
	if got := fetch.Via(t, addr, "http://"+target+"/"); got != "hi" {
		t.Fatalf("through exit two: %q", got)
	}
	if via := lastExit(t, sub); via != "two" {
		t.Errorf("request after selecting two via %q", via)
	}
	saved, err := config.Load(path)
	if err != nil || saved.ExitSelected != "two" {
		t.Errorf("saved exit_selected %q, %v", saved.ExitSelected, err)
	}
	if d, err := c.TestExit(t.Context(), "one"); err != nil || d <= 0 {
		t.Errorf("test exit one: %v, %v", d, err)
	}
	if err := c.SelectExit(path, "three"); err == nil {
		t.Error("selecting an exit that does not exist went through")
	}
}

// TestParseArgsExitFlags: --exit on the command line stands for the
// file's list of exits; --exit-policy and --exit-select override the
// file's.
func TestParseArgsExitFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	cfg := config.Default()
	cfg.Mode = "tunnel"
	cfg.Exits = []config.Exit{{Name: "a", URL: "ws://127.0.0.1:1/porthole", Token: "t"}, {Name: "b", URL: "ws://127.0.0.1:2/porthole", Token: "t"}}
	cfg.ExitSelected = "a"
	if err := config.Save(path, cfg); err != nil {
		t.Fatal(err)
	}
	o, err := ParseArgs([]string{"--config", path, "--exit-policy", "fastest", "--exit-select", "b"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Config.ExitPolicy != "fastest" || o.Config.ExitSelected != "b" || len(o.Config.Exits) != 2 {
		t.Errorf("flags over the file: %+v", o.Config)
	}
	o, err = ParseArgs([]string{"--config", path, "--exit", "wss://other.example/porthole"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if list := o.Config.ExitList(); len(list) != 1 || list[0].Name != "other.example" || list[0].URL != "wss://other.example/porthole" {
		t.Errorf("--exit: exits %+v", list)
	}
	if _, err := ParseArgs([]string{"--config", path, "--exit-policy", "random"}, io.Discard); err == nil {
		t.Error("a bad --exit-policy went through")
	}
}
