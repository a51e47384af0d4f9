package main

// -only exits: the several-exits figures, in a report of their own
// (exits-report.md), apart from the main tables.
//
//  1. An upstream HTTP proxy (a real tinyproxy) used as Porthole's exit,
//     against the same tinyproxy used directly by the load generator, in
//     the same run: what Porthole adds on the way.
//  2. Failover time: two porthole-exit processes, policy failover; the
//     one in use is killed (SIGKILL) 20 times; from the kill to the first
//     successful new connection through Porthole, p50 and p99.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// exitsKills is how many times the failover figure kills the exit in use.
const exitsKills = 20

func runExits(o options) error {
	tp, err := exec.LookPath("tinyproxy")
	if err != nil {
		return fmt.Errorf("-only exits needs tinyproxy (build/deps.sh installs it): %w", err)
	}
	dir, err := os.MkdirTemp("", "porthole-bench-exits-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	org, err := startOrigin()
	if err != nil {
		return err
	}
	defer org.Close()

	var b strings.Builder
	fmt.Fprintf(&b, "# Porthole exits benchmark\n\n%s, %s, %d run(s) per figure.\n\n", cpuModel(), time.Now().UTC().Format("2006-01-02 15:04 UTC"), o.runs)
	if err := benchUpstream(o, tp, dir, org, &b); err != nil {
		return err
	}
	if err := benchFailover(o, dir, org, &b); err != nil {
		return err
	}
	out := filepath.Join(o.out, "exits-report.md")
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())
	fmt.Fprintln(os.Stderr, "bench: wrote", out)
	return nil
}

// startTinyproxy runs tinyproxy on a free loopback port, every CONNECT
// port allowed.
func startTinyproxy(bin, dir string) (*proc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	port := addr[strings.LastIndex(addr, ":")+1:]
	conf := filepath.Join(dir, "tinyproxy.conf")
	text := fmt.Sprintf("Port %s\nListen 127.0.0.1\nTimeout 600\nMaxClients 1000\nLogLevel Warning\nDisableViaHeader Yes\n", port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return nil, err
	}
	return startProc(procSpec{name: "tinyproxy", bin: bin, args: []string{"-d", "-c", conf}, addr: addr})
}

// startPortholeExits runs porthole --headless in tunnel mode over the
// exits (JSON) with the policy, and waits until it logs "ready".
func startPortholeExits(bin, dir, name, exits, policy, ready string) (*proc, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgDir := filepath.Join(dir, name)
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		return nil, err
	}
	cfg := filepath.Join(cfgDir, "config.json")
	text := fmt.Sprintf(`{"mode": "tunnel", "bypass": [], "max_conns": %d, "exit_policy": %q, "exits": %s}`+"\n", idleMaxStream, policy, exits)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, err
	}
	return startProc(procSpec{
		name:  name,
		bin:   bin,
		args:  []string{"--headless", "--config", cfg, "--listen", addr, "--log-level", "info"},
		env:   []string{"XDG_CONFIG_HOME=" + cfgDir},
		addr:  addr,
		ready: ready,
	})
}

func benchUpstream(o options, tpBin, dir string, org *origin, b *strings.Builder) error {
	tp, err := startTinyproxy(tpBin, dir)
	if err != nil {
		return err
	}
	defer tp.Stop()
	ph, err := startPortholeExits(o.bin, dir, "porthole-http-exit",
		fmt.Sprintf(`[{"name": "tinyproxy", "kind": "http", "url": "http://%s"}]`, tp.addr), "failover", "proxy listening")
	if err != nil {
		return err
	}
	defer ph.Stop()
	paths := []struct {
		name string
		dial dialFunc
	}{
		{"tinyproxy directly", connectDialer(tp.addr, org.addr())},
		{"Porthole → tinyproxy exit", connectDialer(ph.addr, org.addr())},
	}
	size := o.size / 4
	conns := o.seqConns
	fmt.Fprintf(b, "## Through an upstream HTTP proxy exit\n\nThe same tinyproxy, used directly by the load generator and as Porthole's `http` exit (CONNECT per connection). Medians of %d run(s).\n\n", o.runs)
	fmt.Fprintf(b, "| path | download MB/s (%d MiB) | connections/s (%d, 8 workers) | setup+echo p50 ms | p99 ms |\n|---|---|---|---|---|\n", size>>20, conns)
	for _, p := range paths {
		var down, rate, p50, p99 []float64
		for range o.runs {
			d, err := download(p.dial, size)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			r, l50, l99, err := connRate(p.dial, conns, 8)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			down, rate, p50, p99 = append(down, d), append(rate, r), append(p50, l50), append(p99, l99)
		}
		fmt.Fprintf(b, "| %s | %.0f | %.0f | %.2f | %.2f |\n", p.name, median(down), median(rate), median(p50), median(p99))
	}
	b.WriteString("\n")
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func benchFailover(o options, dir string, org *origin, b *strings.Builder) error {
	token, err := newToken(dir)
	if err != nil {
		return err
	}
	startExitAt := func(name, addr string) (*proc, error) {
		return startProc(procSpec{
			name: name, bin: o.exitBin,
			args: []string{"--listen", addr, "--token-file", token, "--allow-private", "--log-level", "warn"},
			addr: addr,
		})
	}
	addrA, err := freePort()
	if err != nil {
		return err
	}
	addrB, err := freePort()
	if err != nil {
		return err
	}
	a, err := startExitAt("exit-a", addrA)
	if err != nil {
		return err
	}
	defer func() { a.Stop() }()
	bx, err := startExitAt("exit-b", addrB)
	if err != nil {
		return err
	}
	defer bx.Stop()
	exits := fmt.Sprintf(`[{"name": "a", "url": "ws://%s%s", "token_file": %q}, {"name": "b", "url": "ws://%s%s", "token_file": %q}]`,
		addrA, exitPath, token, addrB, exitPath, token)
	var took []time.Duration
	failed := 0
	for i := range exitsKills {
		// A new client each time: the tunnel client's reconnect backoff
		// grows with every short-lived session (by design), and waiting
		// it out is not what is measured.
		d, fails, err := oneFailover(o, dir, exits, org, a)
		if err != nil {
			return fmt.Errorf("kill %d: %w", i, err)
		}
		took, failed = append(took, d), failed+fails
		if a, err = startExitAt("exit-a", addrA); err != nil {
			return err
		}
	}
	slices.Sort(took)
	fmt.Fprintf(b, "## Failover\n\nTwo porthole-exit processes, policy `failover`; the exit in use is killed with SIGKILL %d times (and started again). From the kill to the first new connection through Porthole that echoes a byte (CONNECT, through the other exit):\n\n", exitsKills)
	fmt.Fprintf(b, "| p50 ms | p99 ms | max ms | connections that failed first, all kills |\n|---|---|---|---|\n| %.2f | %.2f | %.2f | %d |\n\n",
		ms(percentile(took, 50)), ms(percentile(took, 99)), ms(took[len(took)-1]), failed)
	return nil
}

// oneFailover starts a Porthole client over the exits, waits until exit
// a is in use, kills a and returns the time from the kill to the first
// new connection that went through, and how many failed before it.
func oneFailover(o options, dir, exits string, org *origin, a *proc) (time.Duration, int, error) {
	ph, err := startPortholeExits(o.bin, dir, "porthole-failover", exits, "failover", "proxy listening")
	if err != nil {
		return 0, 0, err
	}
	defer ph.Stop()
	dial := connectDialer(ph.addr, org.addr())
	if err := waitActive(ph.addr, "a", 30*time.Second); err != nil {
		return 0, 0, err
	}
	if _, err := echoOnce(dial); err != nil {
		return 0, 0, fmt.Errorf("before the kill: %w", err)
	}
	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		return 0, 0, err
	}
	<-a.exited
	fails := 0
	for range 100000 {
		if _, err := echoOnce(dial); err == nil {
			return time.Since(killed), fails, nil
		}
		fails++
		if time.Since(killed) > 30*time.Second {
			break
		}
	}
	return 0, fails, fmt.Errorf("no connection through within 30 s of the kill")
}

// waitActive polls Porthole's status page until it shows name as the
// exit in use and connected.
func waitActive(proxy, name string, limit time.Duration) error {
	want := "✓ " + name + ": connected"
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 5 * time.Second}
	for range int(limit / (20 * time.Millisecond)) {
		resp, err := client.Get("http://" + proxy + "/")
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && strings.Contains(string(body), want) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("exit %s not in use within %v", name, limit)
}
