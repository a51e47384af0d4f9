package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// tunnelSetup is porthole in tunnel mode: one porthole-exit process and
// porthole client processes whose tunnel reaches it over WebSocket,
// directly or through a delay relay in this process.
type tunnelSetup struct {
	dir     string // token and config files
	token   string // path of the token file
	exit    *proc
	relay   *delayRelay // nil: the clients dial the exit directly
	clients []*proc
}

// exitPath is the exit's URL path (porthole-exit's default).
const exitPath = "/porthole"

// startTunnel starts an exit and, if delay > 0, a relay in front of it
// that delays each direction by delay. Clients are added with addClient.
// Both allow idleMaxStream connections (streams).
func startTunnel(exitBin string, delay time.Duration, pprof bool) (*tunnelSetup, error) {
	dir, err := os.MkdirTemp("", "porthole-bench-tunnel-")
	if err != nil {
		return nil, fmt.Errorf("tunnel: temp dir: %w", err)
	}
	t := &tunnelSetup{dir: dir}
	ok := false
	defer func() {
		if !ok {
			t.Stop()
		}
	}()
	if t.token, err = newToken(dir); err != nil {
		return nil, err
	}
	// An empty bypass list sends loopback targets (the origin) through the
	// tunnel instead of direct.
	cfg := fmt.Appendf(nil, `{"bypass": [], "max_conns": %d}`+"\n", idleMaxStream)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return nil, fmt.Errorf("tunnel: config: %w", err)
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	t.exit, err = startProc(procSpec{
		name: "porthole-exit",
		bin:  exitBin,
		args: []string{"--listen", addr, "--token-file", t.token, "--allow-private", "--log-level", "info",
			"--max-streams", strconv.Itoa(idleMaxStream)},
		addr:  addr,
		ready: "porthole-exit listening",
		pprof: pprof,
	})
	if err != nil {
		return nil, err
	}
	if delay > 0 {
		if t.relay, err = startDelayRelay(addr, delay); err != nil {
			return nil, err
		}
	}
	ok = true
	return t, nil
}

// addClient starts a porthole client in tunnel mode (through the relay,
// if any) and waits until its tunnel session is up. env is added to its
// environment.
func (t *tunnelSetup) addClient(bin, name string, pprof bool, env ...string) (*proc, error) {
	exitAddr := t.exit.addr
	if t.relay != nil {
		exitAddr = t.relay.addr()
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := startProc(procSpec{
		name: name,
		bin:  bin,
		args: []string{"--headless", "--config", filepath.Join(t.dir, "config.json"), "--listen", addr,
			"--mode", "tunnel", "--exit", "ws://" + exitAddr + exitPath, "--token-file", t.token,
			"--log-level", "info"},
		env:   append([]string{"XDG_CONFIG_HOME=" + t.dir}, env...),
		addr:  addr,
		ready: "tunnel connected",
		pprof: pprof,
	})
	if err != nil {
		return nil, err
	}
	t.clients = append(t.clients, p)
	return p, nil
}

// Stop stops the clients, the relay and the exit, in that order, removes
// the files and says how each process ended.
func (t *tunnelSetup) Stop() []string {
	var exits []string
	for _, c := range t.clients {
		exits = append(exits, c.name+": "+c.Stop())
	}
	t.clients = nil
	if t.relay != nil {
		// Let the clients' close frames, still in the relay's queues,
		// reach the exit before the relay cuts its connections.
		t.relay.drain(time.Second)
		if err := t.relay.Close(); err != nil && !errors.Is(err, errRelayClosed) {
			fmt.Fprintln(os.Stderr, "bench: relay:", err)
		}
	}
	if t.exit != nil {
		exits = append(exits, t.exit.name+": "+t.exit.Stop())
	}
	if err := os.RemoveAll(t.dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench: tunnel:", err)
	}
	return exits
}
